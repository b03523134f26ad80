-- Core schema: tenants and access, the installed base, commands, faults, telemetry hypertables,
-- the ingest ledger and dead letters, and the energy rollups. All times are UTC (timestamptz).

CREATE EXTENSION IF NOT EXISTS timescaledb;

-- Identifiers that also appear in MQTT topics follow wire.topics' rule.
CREATE DOMAIN ident AS text CHECK (VALUE ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$');

CREATE TABLE tenants (
    id          ident PRIMARY KEY,
    name        text NOT NULL,
    timezone    text NOT NULL DEFAULT 'Europe/Brussels',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id      ident NOT NULL REFERENCES tenants ON DELETE CASCADE,
    email          text NOT NULL UNIQUE CHECK (position('@' in email) > 1),
    role           text NOT NULL CHECK (role IN
                       ('viewer', 'operator', 'energy_manager', 'technician', 'grid_operator', 'admin')),
    password_hash  text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    disabled_at    timestamptz
);
CREATE INDEX users_tenant ON users (tenant_id);

-- API keys: only a hash of the secret is kept; the prefix finds the row.
CREATE TABLE api_keys (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    prefix      text NOT NULL UNIQUE,
    key_hash    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    revoked_at  timestamptz
);

-- A supply point is the grid connection the operator meters and bills (EAN-18).
CREATE TABLE supply_points (
    ean            text PRIMARY KEY CHECK (ean ~ '^[0-9]{18}$'),
    tenant_id      ident NOT NULL REFERENCES tenants ON DELETE CASCADE,
    name           text NOT NULL,
    contracted_kw  double precision CHECK (contracted_kw > 0)
);
CREATE INDEX supply_points_tenant ON supply_points (tenant_id);

CREATE TABLE cabinets (
    id                ident PRIMARY KEY,
    tenant_id         ident NOT NULL REFERENCES tenants ON DELETE CASCADE,
    supply_point_ean  text REFERENCES supply_points,
    name              text NOT NULL DEFAULT '',
    lat               double precision CHECK (lat BETWEEN -90 AND 90),
    lon               double precision CHECK (lon BETWEEN -180 AND 180)
);
CREATE INDEX cabinets_tenant ON cabinets (tenant_id);

-- key is the compact surrogate the telemetry hypertables carry instead of the text id.
CREATE TABLE controllers (
    key              integer GENERATED ALWAYS AS IDENTITY UNIQUE,
    id               ident PRIMARY KEY,
    tenant_id        ident NOT NULL REFERENCES tenants ON DELETE CASCADE,
    cabinet_id       ident REFERENCES cabinets,
    pole_id          text,
    lat              double precision CHECK (lat BETWEEN -90 AND 90),
    lon              double precision CHECK (lon BETWEEN -180 AND 180),
    firmware         text,
    status           text NOT NULL DEFAULT 'unprovisioned'
                         CHECK (status IN ('unprovisioned', 'active', 'retired')),
    claim_code_hash  text,
    online           boolean NOT NULL DEFAULT false,
    boot_id          bigint,
    last_seen        timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX controllers_tenant ON controllers (tenant_id);
CREATE INDEX controllers_cabinet ON controllers (cabinet_id);

CREATE TABLE luminaires (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       ident NOT NULL REFERENCES tenants ON DELETE CASCADE,
    controller_id   ident NOT NULL REFERENCES controllers ON DELETE CASCADE,
    idx             smallint NOT NULL CHECK (idx BETWEEN 0 AND 1023),
    model           text,
    gtin            text,
    serial          text,
    rated_power_w   real CHECK (rated_power_w >= 0),
    lat             double precision CHECK (lat BETWEEN -90 AND 90),
    lon             double precision CHECK (lon BETWEEN -180 AND 180),
    road_class      text,
    installed_at    timestamptz,
    UNIQUE (controller_id, idx)
);
CREATE INDEX luminaires_tenant ON luminaires (tenant_id);

CREATE TABLE groups (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  ident NOT NULL REFERENCES tenants ON DELETE CASCADE,
    name       text NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE TABLE group_members (
    group_id      bigint NOT NULL REFERENCES groups ON DELETE CASCADE,
    luminaire_id  bigint NOT NULL REFERENCES luminaires ON DELETE CASCADE,
    PRIMARY KEY (group_id, luminaire_id)
);

CREATE TABLE schedules (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   ident NOT NULL REFERENCES tenants ON DELETE CASCADE,
    name        text NOT NULL,
    version     integer NOT NULL CHECK (version > 0),
    body        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name, version)
);

CREATE TABLE commands (
    id             text PRIMARY KEY,
    tenant_id      ident NOT NULL REFERENCES tenants ON DELETE CASCADE,
    controller_id  ident NOT NULL REFERENCES controllers ON DELETE CASCADE,
    type           text NOT NULL,
    body           jsonb NOT NULL,
    issued_by      bigint REFERENCES users,
    issued_at      timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL CHECK (expires_at > issued_at),
    status         text NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'accepted', 'done', 'failed', 'refused', 'expired'))
);
CREATE INDEX commands_controller_time ON commands (controller_id, issued_at DESC);

CREATE TABLE command_acks (
    command_id  text NOT NULL REFERENCES commands ON DELETE CASCADE,
    status      text NOT NULL CHECK (status IN ('accepted', 'done', 'failed', 'refused')),
    reason      text,
    time        timestamptz NOT NULL,
    PRIMARY KEY (command_id, status)
);

-- A fault is raised, may be acknowledged by a person, and is cleared when it is gone.
CREATE TABLE faults (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id        ident NOT NULL REFERENCES tenants ON DELETE CASCADE,
    controller_id    ident NOT NULL REFERENCES controllers ON DELETE CASCADE,
    luminaire_idx    smallint,
    kind             text NOT NULL,
    severity         text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    raised_at        timestamptz NOT NULL,
    acknowledged_at  timestamptz,
    acknowledged_by  bigint REFERENCES users,
    cleared_at       timestamptz,
    detail           jsonb NOT NULL DEFAULT '{}',
    CHECK (cleared_at IS NULL OR cleared_at >= raised_at)
);
-- at most one open fault of a kind per luminaire (or per controller when luminaire_idx is null)
CREATE UNIQUE INDEX faults_one_open ON faults (controller_id, coalesce(luminaire_idx, -1), kind)
    WHERE cleared_at IS NULL;
CREATE INDEX faults_tenant_time ON faults (tenant_id, raised_at DESC);

-- ----------------------------------------------------------------- telemetry (hypertables)

CREATE TABLE luminaire_telemetry (
    time            timestamptz NOT NULL,
    controller_key  integer NOT NULL,
    luminaire       smallint NOT NULL,
    level           smallint NOT NULL,
    status          smallint NOT NULL,
    power_w         real NOT NULL,
    energy_wh       double precision NOT NULL,
    voltage_v       real NOT NULL,
    current_a       real NOT NULL,
    power_factor    real NOT NULL,
    driver_temp_c   real NOT NULL,
    ambient_lux     real NOT NULL,
    presence        integer NOT NULL,
    failure         integer NOT NULL,
    boot_id         bigint NOT NULL,
    seq             bigint NOT NULL
);
SELECT create_hypertable('luminaire_telemetry', by_range('time', INTERVAL '1 day'));
CREATE INDEX luminaire_telemetry_lum_time ON luminaire_telemetry (controller_key, luminaire, time DESC);

CREATE TABLE sensor_readings (
    time            timestamptz NOT NULL,
    controller_key  integer NOT NULL,
    sensor          smallint NOT NULL,
    quantity        smallint NOT NULL,
    value           real NOT NULL,
    boot_id         bigint NOT NULL,
    seq             bigint NOT NULL
);
SELECT create_hypertable('sensor_readings', by_range('time', INTERVAL '1 day'));
CREATE INDEX sensor_readings_sensor_time ON sensor_readings (controller_key, sensor, quantity, time DESC);

CREATE TABLE events (
    time            timestamptz NOT NULL,
    controller_key  integer NOT NULL,
    event_id        text NOT NULL,
    kind            text NOT NULL,
    severity        text NOT NULL,
    luminaire       smallint,
    detail          jsonb NOT NULL DEFAULT '{}',
    boot_id         bigint NOT NULL,
    seq             bigint NOT NULL
);
SELECT create_hypertable('events', by_range('time', INTERVAL '7 days'));
CREATE INDEX events_controller_time ON events (controller_key, time DESC);

-- Latest state per luminaire, upserted by ingest for live views.
CREATE TABLE luminaire_state (
    controller_key  integer NOT NULL,
    luminaire       smallint NOT NULL,
    time            timestamptz NOT NULL,
    level           smallint NOT NULL,
    status          smallint NOT NULL,
    power_w         real NOT NULL,
    energy_wh       double precision NOT NULL,
    voltage_v       real NOT NULL,
    power_factor    real NOT NULL,
    driver_temp_c   real NOT NULL,
    failure         integer NOT NULL,
    PRIMARY KEY (controller_key, luminaire)
);

-- ----------------------------------------------------------------- ingest bookkeeping

-- One row per accepted message, written in the same transaction as its records: a conflict
-- here means a redelivery or a replay, and the message's records are dropped.
CREATE TABLE message_ledger (
    controller_key  integer NOT NULL,
    boot_id         bigint NOT NULL,
    first_seq       bigint NOT NULL,
    record_count    integer NOT NULL CHECK (record_count >= 0),
    kind            smallint NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (controller_key, boot_id, first_seq, kind)
);
CREATE INDEX message_ledger_received ON message_ledger (received_at);

-- Highest sequence seen per controller boot: lag and gap reporting.
CREATE TABLE ingest_offsets (
    controller_key  integer NOT NULL,
    boot_id         bigint NOT NULL,
    max_seq         bigint NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (controller_key, boot_id)
);

-- Dead letters: what could not be stored, with the raw bytes and the reason.
CREATE TABLE ingest_rejects (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at   timestamptz NOT NULL DEFAULT now(),
    topic         text NOT NULL,
    reason        text NOT NULL,
    record_index  integer,
    payload       bytea NOT NULL
);
CREATE INDEX ingest_rejects_time ON ingest_rejects (received_at DESC);
CREATE INDEX ingest_rejects_reason ON ingest_rejects (reason, received_at DESC);

-- ----------------------------------------------------------------- energy rollups

-- Energy per luminaire per 15 minutes, from the cumulative counters; estimated when a gap was
-- filled by integrating power.
CREATE TABLE energy_15min (
    bucket          timestamptz NOT NULL CHECK (extract(epoch FROM bucket)::bigint % 900 = 0),
    controller_key  integer NOT NULL,
    luminaire       smallint NOT NULL,
    energy_wh       double precision NOT NULL,
    estimated       boolean NOT NULL DEFAULT false,
    samples         integer NOT NULL DEFAULT 0,
    PRIMARY KEY (controller_key, luminaire, bucket)
);
CREATE INDEX energy_15min_bucket ON energy_15min (bucket);

CREATE TABLE energy_15min_supply (
    bucket      timestamptz NOT NULL CHECK (extract(epoch FROM bucket)::bigint % 900 = 0),
    ean         text NOT NULL REFERENCES supply_points ON DELETE CASCADE,
    energy_wh   double precision NOT NULL,
    estimated   boolean NOT NULL DEFAULT false,
    PRIMARY KEY (ean, bucket)
);
