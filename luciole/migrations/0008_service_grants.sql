-- Grants for the tables of 0005 (acks and states) and 0006 (the job runner), created before the
-- least-privilege defaults of 0007.

-- ingest stores acks (moving the command's status forward) and states (the online flag, history)
GRANT SELECT, INSERT ON command_acks, controller_states TO luciole_ingest;
GRANT SELECT, UPDATE (status) ON commands TO luciole_ingest;
GRANT UPDATE (online, boot_id, firmware, last_seen) ON controllers TO luciole_ingest;

-- the job runner keeps its cursors and detector state, and reads the controllers' history
GRANT SELECT, INSERT, UPDATE ON job_cursors TO luciole_jobs;
GRANT SELECT, INSERT, UPDATE, DELETE ON detector_luminaire_state, detector_controller_state,
    detector_cabinet_state, detector_sensor_state TO luciole_jobs;
GRANT SELECT ON controller_states TO luciole_jobs;

-- the API reads where the runner stands and the controllers' history
GRANT SELECT ON job_cursors, controller_states TO luciole_api;
