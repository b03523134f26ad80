-- Energy accounting (analytics/energy_job.py): per luminaire and per supply point in 15-minute
-- intervals, split into measured, estimated and default with an uncertainty; per group,
-- municipality and supply point in local days, against a baseline, with the tariffs and emission
-- factors (each with its basis, year and source) that turn saved kWh into euros and CO2.

-- One row per luminaire and interval. source: 0 measured (cumulative counter steps), 1 estimated
-- (a gap spread by the expected power, closed by the counter where it can be), 2 default (rated
-- power x astronomical burning time). flags: analytics.energy_kernels STEP_* and
-- analytics.energy_intervals CELL_* bits.
CREATE TABLE energy_interval (
    bucket          timestamptz NOT NULL CHECK (extract(epoch FROM bucket)::bigint % 900 = 0),
    controller_key  integer NOT NULL,
    luminaire       smallint NOT NULL,
    energy_wh       double precision NOT NULL CHECK (energy_wh >= 0),
    measured_wh     double precision NOT NULL,
    estimated_wh    double precision NOT NULL,
    default_wh      double precision NOT NULL,
    uncertainty_wh  double precision NOT NULL CHECK (uncertainty_wh >= 0),
    source          smallint NOT NULL CHECK (source IN (0, 1, 2)),
    flags           integer NOT NULL,
    covered_s       real NOT NULL,   -- seconds spanned by measured counter steps
    powered_s       real NOT NULL,   -- seconds the supply was on
    burning_s       real NOT NULL,   -- seconds lit
    level_s         real NOT NULL,   -- level x seconds over the measured steps
    samples         integer NOT NULL,
    computed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (controller_key, luminaire, bucket)
);
SELECT create_hypertable('energy_interval', by_range('bucket', INTERVAL '7 days'));

-- A cabinet's meter per interval (the increase of its kWh counter), where its readings span the
-- whole interval.
CREATE TABLE energy_meter_interval (
    bucket      timestamptz NOT NULL CHECK (extract(epoch FROM bucket)::bigint % 900 = 0),
    cabinet_id  ident NOT NULL REFERENCES cabinets ON DELETE CASCADE,
    energy_wh   double precision NOT NULL,
    flags       integer NOT NULL,
    PRIMARY KEY (cabinet_id, bucket)
);

-- Per supply point and interval: the sum of its luminaires, what is known of them, and the
-- cabinet meters beside it (meter_wh NULL where a cabinet of the supply point has no meter
-- reading for the whole interval); difference_wh = meter - luminaires (cable losses, leakage).
CREATE TABLE energy_supply_interval (
    bucket                timestamptz NOT NULL CHECK (extract(epoch FROM bucket)::bigint % 900 = 0),
    ean                   text NOT NULL REFERENCES supply_points ON DELETE CASCADE,
    energy_wh             double precision NOT NULL,
    measured_wh           double precision NOT NULL,
    estimated_wh          double precision NOT NULL,
    default_wh            double precision NOT NULL,
    uncertainty_wh        double precision NOT NULL,
    luminaires_expected   integer NOT NULL,
    luminaires_reporting  integer NOT NULL,
    burning_s             double precision NOT NULL,
    mean_level            real,
    flags                 integer NOT NULL,
    meter_wh              double precision,
    difference_wh         double precision,
    computed_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ean, bucket)
);
CREATE INDEX energy_supply_interval_bucket ON energy_supply_interval (bucket);

-- Tariffs and emission factors per tenant, each valid from a date, with where it comes from:
-- e.g. ('emission', 167.49, 'g CO2e/kWh', 'residual mix', 2023, 'AIB European Residual Mixes 2023').
CREATE TABLE energy_factors (
    tenant_id   ident NOT NULL REFERENCES tenants ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('tariff', 'emission')),
    valid_from  date NOT NULL,
    value       double precision NOT NULL CHECK (value >= 0),
    unit        text NOT NULL CHECK ((kind = 'tariff' AND unit = 'EUR/kWh')
                                     OR (kind = 'emission' AND unit = 'g CO2e/kWh')),
    basis       text NOT NULL,
    year        smallint NOT NULL CHECK (year BETWEEN 1990 AND 2100),
    source      text NOT NULL,
    PRIMARY KEY (tenant_id, kind, valid_from)
);

-- What a tenant's savings are measured against: full power from dusk to dawn, or its previous
-- regime, given as the mean share of full power it drew over the night.
CREATE TABLE energy_baselines (
    tenant_id   ident PRIMARY KEY REFERENCES tenants ON DELETE CASCADE,
    regime      text NOT NULL CHECK (regime IN ('full_dusk_to_dawn', 'previous_regime')),
    share       double precision NOT NULL DEFAULT 1.0 CHECK (share > 0 AND share <= 1.5),
    basis       text NOT NULL DEFAULT '',
    source      text NOT NULL DEFAULT ''
);

-- Per group, municipality (tenant) or supply point and local day (92, 96 or 100 intervals):
-- totals by source, the meters, the baseline and the savings, with the factors used beside
-- each figure.
CREATE TABLE energy_day (
    scope             text NOT NULL CHECK (scope IN ('group', 'tenant', 'supply_point')),
    key               text NOT NULL,
    day               date NOT NULL,
    tenant_id         ident NOT NULL REFERENCES tenants ON DELETE CASCADE,
    intervals         smallint NOT NULL CHECK (intervals IN (92, 96, 100)),
    intervals_present smallint NOT NULL,
    energy_wh         double precision NOT NULL,
    measured_wh       double precision NOT NULL,
    estimated_wh      double precision NOT NULL,
    default_wh        double precision NOT NULL,
    uncertainty_wh    double precision NOT NULL,
    meter_wh          double precision,
    difference_wh     double precision,
    baseline_wh       double precision NOT NULL,
    baseline_regime   text NOT NULL,
    savings_wh        double precision NOT NULL,
    tariff_eur_kwh    double precision,
    tariff_basis      text,
    tariff_year       smallint,
    tariff_source     text,
    savings_eur       double precision,
    emission_g_kwh    double precision,
    emission_basis    text,
    emission_year     smallint,
    emission_source   text,
    savings_co2_kg    double precision,
    computed_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key, day)
);
CREATE INDEX energy_day_tenant ON energy_day (tenant_id, day);

-- The energy job's watermark in the message ledger: messages received after it may carry late
-- readings, whose intervals it recomputes.
CREATE TABLE energy_watermark (
    job          text PRIMARY KEY,
    received_at  timestamptz NOT NULL
);

-- The job runner writes what it computes and reads the ledger for late readings; the API reads
-- everything (default privileges of 0007) and configures factors and baselines.
GRANT SELECT, INSERT, UPDATE, DELETE ON energy_interval, energy_meter_interval,
    energy_supply_interval, energy_day, energy_watermark TO luciole_jobs;
GRANT SELECT ON message_ledger TO luciole_jobs;
GRANT INSERT, UPDATE, DELETE ON energy_factors, energy_baselines TO luciole_api;
