-- Cluster on PostgreSQL: the replicas that share the database, and which one runs
-- each spec task's work. (SQLite has one server; the tables exist so both backends
-- keep one schema.)
CREATE TABLE replicas (
    id TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    max_agents INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    stopped_at INTEGER
);
-- One row per spec task that has ever had an owner. `fence` grows by one on every
-- acquisition, so a write checked against the fence its writer holds is refused
-- once another replica has taken the task.
CREATE TABLE task_leases (
    spec_task_id INTEGER PRIMARY KEY REFERENCES spec_tasks(id),
    owner TEXT NOT NULL,
    fence INTEGER NOT NULL,
    acquired_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    -- Set when its owner handed it back (a clean stop, the phase ended), so the
    -- next acquisition is no takeover.
    released_at INTEGER
);
CREATE INDEX task_leases_owner ON task_leases(owner);
