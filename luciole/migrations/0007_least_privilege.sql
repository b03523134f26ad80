-- Least privilege: what each service's login role may do, and retention through one narrow
-- function. The roles themselves (luciole, luciole_ingest, luciole_jobs, luciole_api) are cluster
-- objects the launcher creates (luciole/db_roles.py): none is a superuser, none has CREATEROLE,
-- CREATEDB or BYPASSRLS. This migration runs as the owner, `luciole`, which owns every table.
--
-- A table added later gets its grants in the migration that creates it; jobs and the API read
-- new tables by default (ALTER DEFAULT PRIVILEGES below), writes are always granted by name.

DO $$
BEGIN
    IF (SELECT count(*) FROM pg_roles
        WHERE rolname IN ('luciole_ingest', 'luciole_jobs', 'luciole_api')) <> 3 THEN
        RAISE EXCEPTION 'the service roles are missing: `luciole stack up` creates them (or a '
            'DBA does, see docs/database.md)';
    END IF;
END
$$;

-- Nobody but the owner by default, not even for functions.
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
ALTER DEFAULT PRIVILEGES FOR ROLE luciole REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO luciole_ingest, luciole_jobs, luciole_api;

-- ----------------------------------------------------------------- ingest
-- the registry of controllers and where their energy is billed
GRANT SELECT ON controllers, cabinets TO luciole_ingest;
-- readings, each message's ledger claim, dead letters
GRANT INSERT ON luminaire_telemetry, sensor_readings, events, ingest_rejects TO luciole_ingest;
GRANT SELECT, INSERT ON message_ledger TO luciole_ingest;
GRANT SELECT ON luminaire_telemetry, ingest_offsets TO luciole_ingest;
-- the fold: queue of recent readings, live state, energy rollups
GRANT SELECT, INSERT, DELETE ON ingest_recent TO luciole_ingest;
GRANT SELECT, INSERT, UPDATE ON luminaire_state, energy_15min, energy_cursor, energy_15min_supply
    TO luciole_ingest;

-- ----------------------------------------------------------------- jobs (analytics)
GRANT SELECT ON tenants, supply_points, cabinets, controllers, luminaires, groups, group_members,
    schedules, commands, command_acks, faults, luminaire_telemetry, sensor_readings, events,
    luminaire_state, energy_15min, energy_15min_supply, ingest_offsets
    TO luciole_jobs;
GRANT INSERT, UPDATE ON faults TO luciole_jobs;

-- ----------------------------------------------------------------- API
GRANT SELECT ON tenants, users, api_keys, supply_points, cabinets, controllers, luminaires, groups,
    group_members, schedules, commands, command_acks, faults, luminaire_telemetry,
    sensor_readings, events, luminaire_state, energy_15min, energy_15min_supply, ingest_rejects,
    ingest_offsets
    TO luciole_api;
GRANT INSERT, UPDATE, DELETE ON users, api_keys, supply_points, cabinets, controllers, luminaires,
    groups, group_members, schedules TO luciole_api;
GRANT INSERT, UPDATE ON tenants, commands TO luciole_api;
GRANT UPDATE (acknowledged_at, acknowledged_by) ON faults TO luciole_api;
GRANT USAGE ON SEQUENCE users_id_seq, api_keys_id_seq, luminaires_id_seq, groups_id_seq,
    schedules_id_seq TO luciole_api;

-- Tables created by later migrations: jobs and the API may read them; nobody writes them
-- unless that migration says so.
ALTER DEFAULT PRIVILEGES FOR ROLE luciole IN SCHEMA public
    GRANT SELECT ON TABLES TO luciole_jobs, luciole_api;

-- ----------------------------------------------------------------- retention
-- drop_chunks needs the hypertable's owner: this function runs as the owner, takes only
-- periods (never a table name or SQL), refuses periods below the floors that keep the analytics
-- and exactly-once intact, and only the jobs role may call it.
CREATE FUNCTION luciole_retention(
    telemetry_keep   interval,
    sensor_keep      interval,
    events_keep      interval,
    energy_keep      interval,
    ledger_keep      interval,
    rejects_keep     interval,
    rejects_max_bytes bigint
) RETURNS TABLE (target text, removed bigint)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
DECLARE
    n bigint;
    over bigint;
BEGIN
    IF telemetry_keep < interval '395 days' OR sensor_keep < interval '395 days'
       OR events_keep < interval '395 days' OR energy_keep < interval '395 days' THEN
        RAISE EXCEPTION 'readings, events and energy are kept at least 395 days (13 months)';
    END IF;
    IF ledger_keep < interval '14 days' THEN
        RAISE EXCEPTION 'the message ledger is kept at least 14 days (outbox age + session expiry)';
    END IF;
    IF rejects_keep < interval '1 day' OR rejects_max_bytes < 1048576 THEN
        RAISE EXCEPTION 'rejects are kept at least a day and 1 MiB';
    END IF;

    SELECT count(*) INTO n FROM drop_chunks('luminaire_telemetry', older_than => now() - telemetry_keep);
    target := 'luminaire_telemetry chunks'; removed := n; RETURN NEXT;
    SELECT count(*) INTO n FROM drop_chunks('sensor_readings', older_than => now() - sensor_keep);
    target := 'sensor_readings chunks'; removed := n; RETURN NEXT;
    SELECT count(*) INTO n FROM drop_chunks('events', older_than => now() - events_keep);
    target := 'events chunks'; removed := n; RETURN NEXT;

    DELETE FROM energy_15min WHERE bucket < now() - energy_keep;
    GET DIAGNOSTICS n = ROW_COUNT;
    target := 'energy_15min rows'; removed := n; RETURN NEXT;
    DELETE FROM energy_15min_supply WHERE bucket < now() - energy_keep;
    GET DIAGNOSTICS n = ROW_COUNT;
    target := 'energy_15min_supply rows'; removed := n; RETURN NEXT;

    DELETE FROM message_ledger WHERE received_at < now() - ledger_keep;
    GET DIAGNOSTICS n = ROW_COUNT;
    target := 'message_ledger rows'; removed := n; RETURN NEXT;

    DELETE FROM ingest_rejects WHERE received_at < now() - rejects_keep;
    GET DIAGNOSTICS n = ROW_COUNT;
    -- then the oldest beyond the size cap (payload bytes, newest kept first)
    WITH sized AS (
        SELECT id, sum(octet_length(payload)) OVER (ORDER BY received_at DESC, id DESC) AS upto
        FROM ingest_rejects
    )
    DELETE FROM ingest_rejects r USING sized s WHERE r.id = s.id AND s.upto > rejects_max_bytes;
    GET DIAGNOSTICS over = ROW_COUNT;
    target := 'ingest_rejects rows'; removed := n + over; RETURN NEXT;
END
$$;

REVOKE ALL ON FUNCTION luciole_retention(interval, interval, interval, interval, interval,
    interval, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION luciole_retention(interval, interval, interval, interval, interval,
    interval, bigint) TO luciole_jobs;
