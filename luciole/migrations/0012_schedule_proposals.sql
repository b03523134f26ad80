-- The dimming optimiser: what the energy manager tells it about each group (its rated EN 13201
-- class, the design photometry at 100 %, the rules of its steps), and the calendars it proposes,
-- with their predicted energy, savings and an explanation per step.

-- One row per group the optimiser plans for; a group without a row is not planned.
CREATE TABLE group_lighting (
    group_id            bigint PRIMARY KEY REFERENCES groups ON DELETE CASCADE,
    rated_class         text NOT NULL CHECK (rated_class ~ '^(M[1-6]|C[0-5]|P[1-6])$'),
    design_at_full      double precision NOT NULL CHECK (design_at_full > 0),  -- cd/m² or lx
    maintenance_factor  double precision NOT NULL DEFAULT 0.8
                            CHECK (maintenance_factor > 0 AND maintenance_factor <= 1),
    lm_per_w            double precision NOT NULL DEFAULT 140 CHECK (lm_per_w > 0),
    clo                 boolean NOT NULL DEFAULT false,
    max_steps           smallint NOT NULL DEFAULT 4 CHECK (max_steps BETWEEN 0 AND 46),
    min_step_min        smallint NOT NULL DEFAULT 60 CHECK (min_step_min BETWEEN 15 AND 720),
    presence_hold_s     integer CHECK (presence_hold_s BETWEEN 1 AND 3600),
    presence_adaptive   boolean NOT NULL DEFAULT false,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- A proposal: the calendar (wire.messages.Calendar, what schedules.body stores once accepted)
-- for nights first_night..last_night of one group.
CREATE TABLE schedule_proposals (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id      ident NOT NULL REFERENCES tenants ON DELETE CASCADE,
    group_id       bigint NOT NULL REFERENCES groups ON DELETE CASCADE,
    first_night    date NOT NULL,
    last_night     date NOT NULL CHECK (last_night >= first_night),
    calendar       jsonb NOT NULL,
    predicted_kwh  double precision NOT NULL CHECK (predicted_kwh >= 0),
    baseline_kwh   double precision NOT NULL CHECK (baseline_kwh >= 0),
    savings_kwh    double precision GENERATED ALWAYS AS (baseline_kwh - predicted_kwh) STORED,
    nights         jsonb NOT NULL,  -- per night: energy, baseline, steps and why
    inputs         jsonb NOT NULL,  -- class, traffic readings, photometry the proposal used
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (group_id, first_night)
);
CREATE INDEX schedule_proposals_tenant ON schedule_proposals (tenant_id, created_at DESC);

-- the job runner writes proposals; the API reads them (SELECT for both comes from the default
-- privileges of 0007); the energy manager edits the groups' lighting through the API
GRANT INSERT ON schedule_proposals TO luciole_jobs;
GRANT USAGE ON SEQUENCE schedule_proposals_id_seq TO luciole_jobs;
GRANT INSERT, UPDATE, DELETE ON group_lighting TO luciole_api;
