-- The sensor inventory: one row per sensor series (controller, sensor index, quantity) with its
-- newest reading and when it was first seen, kept by ingest in the transaction that stores the
-- readings (ingest/sensor_state.py), so the sensor routes read one row per series instead of
-- walking sensor_readings. "Newest" is the greatest (time, boot_id, seq): a merge that does not
-- depend on arrival order, so a late reading never overwrites a newer one and a replayed batch
-- changes nothing.
CREATE TABLE sensor_state (
    controller_key  integer NOT NULL,
    sensor          smallint NOT NULL,
    quantity        smallint NOT NULL,
    first_time      timestamptz NOT NULL,     -- the series' oldest reading stored
    time            timestamptz NOT NULL,     -- its newest reading
    boot_id         bigint NOT NULL,
    seq             bigint NOT NULL,
    value           real NOT NULL,
    PRIMARY KEY (controller_key, sensor, quantity)
) WITH (fillfactor = 50);  -- room on each page for the next version of its rows: HOT updates
                          -- (no column of the key changes), so a merge writes no index entry

-- The readings already stored.
INSERT INTO sensor_state (controller_key, sensor, quantity, first_time, time, boot_id, seq, value)
SELECT DISTINCT ON (controller_key, sensor, quantity)
       controller_key, sensor, quantity,
       min(time) OVER (PARTITION BY controller_key, sensor, quantity),
       time, boot_id, seq, value
FROM sensor_readings
ORDER BY controller_key, sensor, quantity, time DESC, boot_id DESC, seq DESC;

-- ingest keeps it; the API and the jobs read it (SELECT by the default privileges of 0007)
GRANT SELECT, INSERT, UPDATE ON sensor_state TO luciole_ingest;
