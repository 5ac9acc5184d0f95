-- The per-session lease columns are dead: task leases (`task_leases`, 0011) replaced
-- them. No index names them.
ALTER TABLE work_sessions DROP COLUMN lease_owner, DROP COLUMN lease_heartbeat_at;
