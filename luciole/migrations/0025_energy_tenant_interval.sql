-- Per municipality (tenant) and 15-minute interval: the sums of every one of its luminaires'
-- intervals (energy_interval), written by the energy job in the same pass and transaction as the
-- supply points' (analytics/energy_job.py), so a municipality's sub-day report reads one row
-- per interval (api/energy.py) instead of summing every supply point's at the request.
-- energy_interval stays the one source: a pass recomputes the tenant rows of every interval it
-- recomputes, late corrections included. measured_cells / estimated_cells count the luminaire
-- intervals by source (0; 1 or 2), as in energy_supply_interval.
CREATE TABLE energy_tenant_interval (
    tenant_id        ident NOT NULL REFERENCES tenants ON DELETE CASCADE,
    bucket           timestamptz NOT NULL CHECK (extract(epoch FROM bucket)::bigint % 900 = 0),
    energy_wh        double precision NOT NULL,
    measured_wh      double precision NOT NULL,
    estimated_wh     double precision NOT NULL,
    default_wh       double precision NOT NULL,
    uncertainty_wh   double precision NOT NULL,
    measured_cells   integer NOT NULL CHECK (measured_cells >= 0),
    estimated_cells  integer NOT NULL CHECK (estimated_cells >= 0),
    computed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, bucket)
);

-- What the job booked before this migration.
INSERT INTO energy_tenant_interval (tenant_id, bucket, energy_wh, measured_wh, estimated_wh,
    default_wh, uncertainty_wh, measured_cells, estimated_cells)
SELECT c.tenant_id, e.bucket, sum(e.energy_wh), sum(e.measured_wh), sum(e.estimated_wh),
       sum(e.default_wh), sum(e.uncertainty_wh), count(*) FILTER (WHERE e.source = 0),
       count(*) FILTER (WHERE e.source > 0)
FROM energy_interval e JOIN controllers c ON c.key = e.controller_key
GROUP BY 1, 2;

-- The API reads it by the default privileges of 0007.
GRANT SELECT, INSERT, UPDATE, DELETE ON energy_tenant_interval TO luciole_jobs;
