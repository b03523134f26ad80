-- When a luminaire's shown state last changed, for GET /api/v1/live?changed_since=: its level,
-- status or failure (luminaire_state.changed_at) or its controller's link (controllers.
-- online_changed_at). Set by triggers, so every writer (ingest's rollup, the state tracker, an
-- operator's SQL) keeps them true; a reading that repeats the same state leaves them alone.
-- (An UPDATE that sets them itself keeps its value when the state is unchanged.)
ALTER TABLE luminaire_state ADD COLUMN changed_at timestamptz NOT NULL DEFAULT clock_timestamp();
ALTER TABLE controllers ADD COLUMN online_changed_at timestamptz NOT NULL DEFAULT clock_timestamp();

CREATE FUNCTION luminaire_state_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.level, NEW.status, NEW.failure) IS DISTINCT FROM (OLD.level, OLD.status, OLD.failure) THEN
        NEW.changed_at := clock_timestamp();
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER luminaire_state_changed BEFORE UPDATE ON luminaire_state
    FOR EACH ROW EXECUTE FUNCTION luminaire_state_changed();

CREATE FUNCTION controller_online_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.online IS DISTINCT FROM OLD.online THEN
        NEW.online_changed_at := clock_timestamp();
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER controller_online_changed BEFORE UPDATE ON controllers
    FOR EACH ROW EXECUTE FUNCTION controller_online_changed();

CREATE INDEX luminaire_state_changed_at ON luminaire_state (changed_at);
CREATE INDEX controllers_online_changed_at ON controllers (tenant_id, online_changed_at);
