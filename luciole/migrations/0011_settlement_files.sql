-- Settlement files for the grid operator (analytics/settlement_job.py): per supply point, local
-- day and kind (inventory, events, profile, faults), each version kept. A re-run whose content
-- differs (late data, revised estimates) stores a new version and marks the one it supersedes.
CREATE TABLE settlement_files (
    ean            text NOT NULL REFERENCES supply_points ON DELETE CASCADE,
    day            date NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('inventory', 'events', 'profile', 'faults')),
    version        integer NOT NULL CHECK (version > 0),
    schema_id      text NOT NULL,   -- the JSON Schema $id its rows follow
    rows           integer NOT NULL CHECK (rows >= 0),
    sha256         text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    content        text NOT NULL,   -- the CSV (RFC 4180)
    created_at     timestamptz NOT NULL DEFAULT now(),
    superseded_at  timestamptz,
    PRIMARY KEY (ean, day, kind, version),
    CHECK (superseded_at IS NULL OR superseded_at >= created_at)
);
-- one current version per file
CREATE UNIQUE INDEX settlement_files_current ON settlement_files (ean, day, kind)
    WHERE superseded_at IS NULL;

-- The job runner produces them; the API (and the grid operator through it) reads them
-- (default privileges of 0007).
GRANT SELECT, INSERT, UPDATE ON settlement_files TO luciole_jobs;
