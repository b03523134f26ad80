-- Analytics, part 1: switched supply per cabinet, faults on cabinets and sensors, the job
-- runner's cursors, and the fault detectors' state kept between passes.

-- On a switched network (most of Brussels) the cabinet's supply is off by day: its controllers
-- are unpowered and silent from dawn to dusk. Other networks are powered all day.
ALTER TABLE cabinets ADD COLUMN switched_supply boolean NOT NULL DEFAULT false;

-- A fault names the device it is about: a cabinet, a controller, one luminaire of a
-- controller, or one sensor quantity of a controller.
ALTER TABLE faults ALTER COLUMN controller_id DROP NOT NULL;
ALTER TABLE faults ADD COLUMN cabinet_id ident REFERENCES cabinets ON DELETE CASCADE;
ALTER TABLE faults ADD COLUMN sensor smallint;
ALTER TABLE faults ADD COLUMN quantity smallint;
-- a sentence a technician understands, with the figures that raised it
ALTER TABLE faults ADD COLUMN cause text NOT NULL DEFAULT '';
-- the data time of the last evidence seen while the fault was open
ALTER TABLE faults ADD COLUMN last_evidence_at timestamptz;
ALTER TABLE faults ADD CONSTRAINT faults_device
    CHECK (controller_id IS NOT NULL OR cabinet_id IS NOT NULL);
DROP INDEX faults_one_open;
-- at most one open fault of a kind per device
CREATE UNIQUE INDEX faults_one_open ON faults (
    coalesce(cabinet_id::text, ''), coalesce(controller_id::text, ''),
    coalesce(luminaire_idx, -1), coalesce(sensor, -1), coalesce(quantity, -1), kind
) WHERE cleared_at IS NULL;
CREATE INDEX faults_open_kind ON faults (kind) WHERE cleared_at IS NULL;

-- One row per job: records with time <= position have been processed. A runner takes the row
-- FOR UPDATE SKIP LOCKED, so each pass of a job runs in one process at a time, and commits its
-- results, its state and the new position in one transaction.
CREATE TABLE job_cursors (
    job          text PRIMARY KEY,
    position     timestamptz NOT NULL,
    next_run_at  timestamptz NOT NULL DEFAULT now(),
    passes       bigint NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Per-luminaire state of the fault detectors, kept between passes.
CREATE TABLE detector_luminaire_state (
    controller_key  integer NOT NULL,
    luminaire       smallint NOT NULL,
    last_time       double precision NOT NULL,  -- epoch s of the last reading processed
    base_full_w     double precision NOT NULL,  -- learned input power at full-equivalent drive
    base_spread     double precision NOT NULL,  -- its robust spread (relative)
    base_samples    integer NOT NULL,           -- readings that taught the baseline
    full_ratio      double precision NOT NULL,  -- last power / baseline at full level (NaN: none)
    last_power_w    double precision NOT NULL,  -- power at the last reading
    lit             boolean NOT NULL,           -- lit at the last reading
    -- little-endian arrays, one element per fault kind of analytics.fault_types.LUMINAIRE_KINDS
    relights        bytea NOT NULL,             -- float64: epoch s of the last re-lightings
    bad             bytea NOT NULL,             -- int16: consecutive readings showing the kind
    good            bytea NOT NULL,             -- int16: ... and not showing it
    open            bytea NOT NULL,             -- bool: whether it is raised
    PRIMARY KEY (controller_key, luminaire)
);

-- Per-controller state: when each was last heard from.
CREATE TABLE detector_controller_state (
    controller_key  integer PRIMARY KEY,
    last_seen       double precision NOT NULL,  -- epoch s of its last luminaire reading
    comm_open       boolean NOT NULL            -- communicationFailure raised
);

-- Per-cabinet state: meter against the sum of its luminaires, and its open conditions.
CREATE TABLE detector_cabinet_state (
    cabinet_id     ident PRIMARY KEY REFERENCES cabinets ON DELETE CASCADE,
    -- learned cable losses: meter power = luminaires' power + loss_coefficient x its square (1/W)
    loss_coefficient  double precision NOT NULL,
    loss_samples      integer NOT NULL,
    bad            smallint[] NOT NULL,
    good           smallint[] NOT NULL,
    open           boolean[] NOT NULL
);

-- Per-sensor-quantity state: repeated values.
CREATE TABLE detector_sensor_state (
    controller_key  integer NOT NULL,
    sensor          smallint NOT NULL,
    quantity        smallint NOT NULL,
    last_value      real NOT NULL,
    repeats         integer NOT NULL,
    open            boolean NOT NULL,
    PRIMARY KEY (controller_key, sensor, quantity)
);
