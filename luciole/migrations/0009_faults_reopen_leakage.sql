-- Faults: reopened within a hold-off, and the cabinet meter's excess under its TALQ name.

-- A fault cleared and showing again within its kind's hold-off (analytics.fault_types) is the
-- same fault reopened, not a new one: a flapping link or lamp is one fault for a technician.
-- `reopened` counts how often it came back.
ALTER TABLE faults ADD COLUMN reopened integer NOT NULL DEFAULT 0;
-- the hold-off's lookup: the latest cleared fault of a kind on a device
CREATE INDEX faults_recently_cleared ON faults (kind, controller_id, cleared_at DESC)
    WHERE cleared_at IS NOT NULL;

-- The cabinet meter reading more than its luminaires draw plus their cable losses is TALQ's
-- CabinetMonitorFunction.leakageDetected (it was named cabinetEnergyMismatch).
UPDATE faults SET kind = 'leakageDetected' WHERE kind = 'cabinetEnergyMismatch';
