-- Citizens' reports (Open311 GeoReport v2 requests): what was reported where, the streetlight and
-- the detected fault it was matched to, and, apart, the reporter's contact details.
--
-- A report's status is not stored: it is read from the fault it is linked to (closed once that
-- fault has cleared). The contact details are personal data: the API may write them and never
-- read them back (no SELECT), so no public route can leak them; nothing else may touch them.

CREATE TABLE citizen_reports (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id          ident NOT NULL REFERENCES tenants ON DELETE CASCADE,
    service_code       text NOT NULL CHECK (service_code ~ '^[a-z][a-z0-9_]{0,39}$'),
    description        text NOT NULL DEFAULT '' CHECK (length(description) <= 4000),
    lat                double precision CHECK (lat BETWEEN -90 AND 90),
    lon                double precision CHECK (lon BETWEEN -180 AND 180),
    address_string     text CHECK (length(address_string) <= 500),
    pole_id            text CHECK (length(pole_id) <= 100),
    media_url          text CHECK (length(media_url) <= 2048),
    -- SHA-256 of the app's device id, or of the client's address: folds a device's duplicates
    reporter_key       text NOT NULL CHECK (reporter_key ~ '^[0-9a-f]{64}$'),
    -- the streetlight matched (nearest within the radius, or on the reported pole)
    controller_id      ident REFERENCES controllers ON DELETE SET NULL,
    luminaire_idx      smallint,
    distance_m         real CHECK (distance_m >= 0),
    -- the fault open when the report came that explains it
    fault_id           bigint REFERENCES faults ON DELETE SET NULL,
    -- the fault kinds (of the luminaire and its controller) that explain this service: a fault
    -- detected after the report is linked when the report is read
    fault_kinds        text[] NOT NULL DEFAULT '{}',
    requested_at       timestamptz NOT NULL DEFAULT now(),
    duplicates         integer NOT NULL DEFAULT 0 CHECK (duplicates >= 0),
    last_duplicate_at  timestamptz,
    CHECK ((lat IS NULL) = (lon IS NULL)),
    CHECK (lat IS NOT NULL OR address_string IS NOT NULL OR pole_id IS NOT NULL)
);
CREATE INDEX citizen_reports_tenant_time ON citizen_reports (tenant_id, requested_at DESC);
CREATE INDEX citizen_reports_reporter_time ON citizen_reports (reporter_key, requested_at DESC);

CREATE TABLE citizen_report_contacts (
    report_id   bigint PRIMARY KEY REFERENCES citizen_reports ON DELETE CASCADE,
    email       text CHECK (length(email) <= 254),
    first_name  text CHECK (length(first_name) <= 100),
    last_name   text CHECK (length(last_name) <= 100),
    phone       text CHECK (length(phone) <= 40),
    CHECK (coalesce(email, first_name, last_name, phone) IS NOT NULL)
);

-- Matching a report: streetlights near a position, the faults open on them.
CREATE INDEX IF NOT EXISTS luminaires_tenant_position ON luminaires (tenant_id, lat, lon);
CREATE INDEX IF NOT EXISTS controllers_tenant_position ON controllers (tenant_id, lat, lon);
CREATE INDEX IF NOT EXISTS controllers_tenant_pole ON controllers (tenant_id, pole_id);
CREATE INDEX IF NOT EXISTS faults_controller_raised ON faults (controller_id, raised_at);
CREATE INDEX IF NOT EXISTS faults_open_cabinet ON faults (cabinet_id) WHERE cleared_at IS NULL;

-- 0007's default privileges let jobs and the API read every new table: not these.
REVOKE ALL ON citizen_reports, citizen_report_contacts FROM luciole_jobs, luciole_api;
GRANT SELECT, INSERT ON citizen_reports TO luciole_api;
GRANT UPDATE (duplicates, last_duplicate_at) ON citizen_reports TO luciole_api;
GRANT USAGE ON SEQUENCE citizen_reports_id_seq TO luciole_api;
GRANT INSERT ON citizen_report_contacts TO luciole_api;
