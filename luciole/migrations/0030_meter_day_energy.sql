-- The cabinet meter's energy register across a day on a switched supply: the detector keeps,
-- per cabinet, the last energy reading it examined and its time (epoch s), and a step across a
-- gap waiting to be judged (its start, its end and the meter's energy over it) until the
-- luminaires' first reports after its end are stored. NULL: none.
ALTER TABLE detector_cabinet_state
    ADD COLUMN meter_energy_kwh double precision,
    ADD COLUMN meter_time double precision,
    ADD COLUMN gap_start double precision,
    ADD COLUMN gap_end double precision,
    ADD COLUMN gap_meter_wh double precision;
