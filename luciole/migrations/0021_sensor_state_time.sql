-- The stuck-sensor detector examines sensor readings stored after the pass that covered their
-- time (an agent's outbox drained after an outage), as it does for luminaires: it keeps, per
-- sensor series, the time of the last reading it examined. NULL: none examined since this ran.
ALTER TABLE detector_sensor_state ADD COLUMN last_time double precision;
