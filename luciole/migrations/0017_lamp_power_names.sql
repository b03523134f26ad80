-- The fault kinds comparing a luminaire's power with its own learned baseline for the level in
-- force are TALQ's LampMonitorFunction.lampPowerTooHigh / lampPowerTooLow; they were stored as
-- currentTooHigh / currentTooLow, names TALQ gives to the supply current against the lamp type's
-- rated current (now a rule of its own). Stored faults of the old names are that power rule's.
UPDATE faults SET kind = 'lampPowerTooHigh' WHERE kind = 'currentTooHigh';
UPDATE faults SET kind = 'lampPowerTooLow' WHERE kind = 'currentTooLow';
