-- Energy reports (api/energy.py) say how much of each bucket is measured and how much estimated:
-- the count of luminaire intervals (energy_interval rows) by source, kept beside the sums the
-- energy job already writes per supply point and interval and per scope and local day.
-- measured_cells: source 0; estimated_cells: source 1 (estimated) or 2 (default). NULL on rows
-- written before this migration, until the job recomputes them.
ALTER TABLE energy_supply_interval
    ADD COLUMN measured_cells integer CHECK (measured_cells >= 0),
    ADD COLUMN estimated_cells integer CHECK (estimated_cells >= 0);
ALTER TABLE energy_day
    ADD COLUMN measured_cells integer CHECK (measured_cells >= 0),
    ADD COLUMN estimated_cells integer CHECK (estimated_cells >= 0);
