-- The schedules list's latest push per schedule (api/schedules.py, LIST) looks up a tenant's
-- command batches by the schedule they pushed; with only (tenant_id, issued_at) a schedule never
-- pushed scanned all its municipality's batches.
CREATE INDEX command_batches_schedule
    ON command_batches (tenant_id, (target->>'schedule_id'), issued_at DESC, id DESC);
