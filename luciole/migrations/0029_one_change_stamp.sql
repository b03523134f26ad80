-- The live-change stamps of 0023 by one trigger function instead of two near-copies: what counts as
-- a change is each trigger's WHEN condition (evaluated by PostgreSQL itself, so an UPDATE that
-- repeats the same state calls no function at all), and `stamp_changed_at(column)` sets the
-- timestamptz column named by its argument to clock_timestamp(). Same behaviour as 0023: a
-- luminaire's level, status or failure stamps luminaire_state.changed_at, a controller's online
-- flag stamps controllers.online_changed_at, anything else leaves them alone, and an UPDATE that
-- sets them itself keeps its value when the state is unchanged.
CREATE FUNCTION stamp_changed_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_NARGS <> 1 OR NOT to_jsonb(NEW) ? TG_ARGV[0] THEN
        RAISE EXCEPTION 'trigger % on %: stamp_changed_at() takes the name of a column of the table',
            TG_NAME, TG_TABLE_NAME;
    END IF;
    NEW := jsonb_populate_record(NEW, jsonb_build_object(TG_ARGV[0], clock_timestamp()));
    RETURN NEW;
END $$;

DROP TRIGGER luminaire_state_changed ON luminaire_state;
CREATE TRIGGER luminaire_state_changed BEFORE UPDATE ON luminaire_state FOR EACH ROW
    WHEN ((NEW.level, NEW.status, NEW.failure) IS DISTINCT FROM (OLD.level, OLD.status, OLD.failure))
    EXECUTE FUNCTION stamp_changed_at('changed_at');

DROP TRIGGER controller_online_changed ON controllers;
CREATE TRIGGER controller_online_changed BEFORE UPDATE ON controllers FOR EACH ROW
    WHEN (NEW.online IS DISTINCT FROM OLD.online)
    EXECUTE FUNCTION stamp_changed_at('online_changed_at');

DROP FUNCTION luminaire_state_changed();
DROP FUNCTION controller_online_changed();
