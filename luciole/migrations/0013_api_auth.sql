-- The API: people and machines (grid operator identity, lockout, key scope), the audit log,
-- claim codes found by their hash, command batches and their delivery, fault follow-up, and
-- schedules assigned to groups.

-- The grid operator is an identity of its own: a user with no tenant, and only that role has none.
ALTER TABLE users ALTER COLUMN tenant_id DROP NOT NULL;
ALTER TABLE users ADD CONSTRAINT users_grid_operator_has_no_tenant
    CHECK ((role = 'grid_operator') = (tenant_id IS NULL));
ALTER TABLE users ADD COLUMN name text NOT NULL DEFAULT '';
-- consecutive failed logins, and the lockout they led to
ALTER TABLE users ADD COLUMN failed_logins integer NOT NULL DEFAULT 0 CHECK (failed_logins >= 0);
ALTER TABLE users ADD COLUMN locked_until timestamptz;

-- A key acts with one role of its owner's tenant (never more than the owner may), and says
-- what it is for.
ALTER TABLE api_keys ADD COLUMN role text NOT NULL DEFAULT 'viewer' CHECK (role IN
    ('viewer', 'operator', 'energy_manager', 'technician', 'grid_operator', 'admin'));
ALTER TABLE api_keys ADD COLUMN name text NOT NULL DEFAULT '';
CREATE INDEX api_keys_user ON api_keys (user_id);

-- Every login attempt, for the per-address rate limit and the record.
CREATE TABLE login_attempts (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    email    text NOT NULL,
    remote   text NOT NULL,
    ok       boolean NOT NULL
);
CREATE INDEX login_attempts_remote_at ON login_attempts (remote, at DESC);
CREATE INDEX login_attempts_at ON login_attempts (at);

-- Every command, change and login, readable by the tenant's admin (tenant null: the grid
-- operator's own logins).
CREATE TABLE audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    tenant_id  ident REFERENCES tenants ON DELETE CASCADE,
    user_id    bigint REFERENCES users ON DELETE SET NULL,
    key_id     bigint REFERENCES api_keys ON DELETE SET NULL,
    action     text NOT NULL,
    target     text NOT NULL DEFAULT '',
    detail     jsonb NOT NULL DEFAULT '{}',
    remote     text NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_tenant_id ON audit_log (tenant_id, id DESC);

-- A controller registered but not provisioned carries the hash of its claim code (SHA-256 of a
-- random code): provisioning finds it by that hash.
CREATE UNIQUE INDEX controllers_claim_code ON controllers (claim_code_hash)
    WHERE claim_code_hash IS NOT NULL;

-- A command to a luminaire, a group or a whole tenant is one batch of per-controller commands.
CREATE TABLE command_batches (
    id          text PRIMARY KEY,
    tenant_id   ident NOT NULL REFERENCES tenants ON DELETE CASCADE,
    target      jsonb NOT NULL,
    body        jsonb NOT NULL,
    issued_by   bigint REFERENCES users ON DELETE SET NULL,
    issued_at   timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL CHECK (expires_at > issued_at),
    devices     integer NOT NULL CHECK (devices >= 0)
);
CREATE INDEX command_batches_tenant ON command_batches (tenant_id, issued_at DESC);
ALTER TABLE commands ADD COLUMN batch_id text REFERENCES command_batches ON DELETE CASCADE;
-- the luminaire a per-luminaire command is for (null: the whole controller)
ALTER TABLE commands ADD COLUMN luminaire_id bigint REFERENCES luminaires ON DELETE SET NULL;
-- when the broker took it (PUBACK): created -> sent; acks move it on from there
ALTER TABLE commands ADD COLUMN sent_at timestamptz;
CREATE INDEX commands_batch ON commands (batch_id);

-- Fault follow-up: who it is assigned to, and its history of notes.
ALTER TABLE faults ADD COLUMN assigned_to bigint REFERENCES users ON DELETE SET NULL;
CREATE TABLE fault_notes (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    fault_id  bigint NOT NULL REFERENCES faults ON DELETE CASCADE,
    at        timestamptz NOT NULL DEFAULT now(),
    user_id   bigint REFERENCES users ON DELETE SET NULL,
    action    text NOT NULL CHECK (action IN ('acknowledged', 'assigned', 'comment')),
    text      text NOT NULL DEFAULT '',
    assignee  bigint REFERENCES users ON DELETE SET NULL
);
CREATE INDEX fault_notes_fault ON fault_notes (fault_id, at);

-- The schedule a group follows.
CREATE TABLE group_schedules (
    group_id     bigint PRIMARY KEY REFERENCES groups ON DELETE CASCADE,
    schedule_id  bigint NOT NULL REFERENCES schedules ON DELETE CASCADE,
    assigned_at  timestamptz NOT NULL DEFAULT now(),
    assigned_by  bigint REFERENCES users ON DELETE SET NULL
);
CREATE INDEX group_schedules_schedule ON group_schedules (schedule_id);

-- ----------------------------------------------------------------- grants
-- The API alone reads and writes authentication and its audit trail: the jobs role's default
-- read is taken back from them.
REVOKE ALL ON login_attempts, audit_log FROM luciole_jobs;
GRANT SELECT, INSERT, DELETE ON login_attempts TO luciole_api;
GRANT SELECT, INSERT ON audit_log TO luciole_api;
GRANT SELECT, INSERT ON command_batches TO luciole_api;
GRANT SELECT, INSERT, UPDATE ON fault_notes TO luciole_api;
GRANT SELECT, INSERT, UPDATE, DELETE ON group_schedules TO luciole_api;
GRANT UPDATE (assigned_to) ON faults TO luciole_api;
GRANT USAGE ON SEQUENCE login_attempts_id_seq, audit_log_id_seq, fault_notes_id_seq
    TO luciole_api;
-- (jobs read the other new tables through 0007's default privileges and write none of them)
