-- Detector state for late sensor readings and for the cabinet meter by day.

-- The stuck-sensor detector examines sensor readings stored after the pass that covered their
-- time (an agent's outbox drained after an outage), as it does for luminaires: it keeps, per
-- sensor series, the time of the last reading it examined. NULL: none examined since this ran.
ALTER TABLE detector_sensor_state ADD COLUMN last_time double precision;

-- The cabinet meter's last reading examined (time, energy register, power): the energy it
-- counts between the last reading before dawn and the first after dusk is what flowed while a
-- switched supply was off (nothing, unless there is a leak upstream of the contactor).
ALTER TABLE detector_cabinet_state ADD COLUMN meter_time double precision,
    ADD COLUMN meter_kwh double precision, ADD COLUMN meter_w double precision;
