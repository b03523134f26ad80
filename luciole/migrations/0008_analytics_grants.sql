-- The job runner's own tables (0006), created before the least-privilege defaults (0007):
-- the jobs role keeps its cursors and detector state, and reads the cabinet settings.
GRANT SELECT, INSERT, UPDATE ON job_cursors TO luciole_jobs;
GRANT SELECT, INSERT, UPDATE, DELETE ON detector_luminaire_state, detector_controller_state,
    detector_cabinet_state, detector_sensor_state TO luciole_jobs;
-- the API reads where the runner stands (lag, last pass) and the faults' causes
GRANT SELECT ON job_cursors TO luciole_api;
