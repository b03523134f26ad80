-- The cabinet meter's energy register across a day on a switched supply: the detector keeps,
-- per cabinet, the last energy reading it examined and its time (epoch s), so the first reading
-- after dusk can be compared with what the cabinet's luminaires counted over the same step.
-- NULL: none examined since this ran.
ALTER TABLE detector_cabinet_state
    ADD COLUMN meter_energy_kwh double precision,
    ADD COLUMN meter_time double precision;
