-- spectask schema, SQLite. Migrations are append-only: never edit a released one.
-- Timestamps are milliseconds since the Unix epoch (UTC); JSON is stored as TEXT.

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE TABLE projects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    path TEXT NOT NULL UNIQUE,
    base_branch TEXT NOT NULL,
    spec_folder TEXT NOT NULL,
    verification_command TEXT,
    planning_wip_limit INTEGER,
    implementation_wip_limit INTEGER,
    max_parallel_sessions INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE spec_tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    prompt TEXT NOT NULL,
    priority TEXT NOT NULL,
    task_type TEXT NOT NULL,
    status TEXT NOT NULL,
    failed_phase TEXT,
    failure_reason TEXT,
    slug TEXT NOT NULL,
    max_parallel_sessions INTEGER,
    agent_profile TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX spec_tasks_by_project_status ON spec_tasks(project_id, status, id);
CREATE INDEX spec_tasks_by_status ON spec_tasks(status, id);

CREATE TABLE spec_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    spec_task_id INTEGER NOT NULL REFERENCES spec_tasks(id),
    number INTEGER NOT NULL,
    commit_sha TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (spec_task_id, number)
);

CREATE TABLE reviews (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    spec_version_id INTEGER NOT NULL REFERENCES spec_versions(id),
    reviewer TEXT NOT NULL,
    verdict TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE review_comments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    spec_version_id INTEGER NOT NULL REFERENCES spec_versions(id),
    author TEXT NOT NULL,
    document TEXT NOT NULL,
    line_start INTEGER,
    line_end INTEGER,
    quote TEXT,
    body TEXT NOT NULL,
    resolved_at INTEGER,
    created_at INTEGER NOT NULL
);

CREATE TABLE implementation_tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    spec_task_id INTEGER NOT NULL REFERENCES spec_tasks(id),
    task_key TEXT NOT NULL,
    title TEXT NOT NULL,
    details TEXT NOT NULL,
    status TEXT NOT NULL,
    depends_on TEXT NOT NULL,
    requirements TEXT NOT NULL,
    optional INTEGER NOT NULL,
    parallel INTEGER NOT NULL,
    position INTEGER NOT NULL,
    UNIQUE (spec_task_id, task_key)
);

CREATE TABLE agent_instances (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    spec_task_id INTEGER NOT NULL UNIQUE REFERENCES spec_tasks(id),
    profile TEXT NOT NULL,
    status TEXT NOT NULL,
    pid INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE work_sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    spec_task_id INTEGER NOT NULL REFERENCES spec_tasks(id),
    parent_id INTEGER REFERENCES work_sessions(id),
    implementation_task_id INTEGER REFERENCES implementation_tasks(id),
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    prompt TEXT NOT NULL,
    status TEXT NOT NULL,
    failure_reason TEXT,
    attempt INTEGER NOT NULL,
    branch TEXT,
    worktree_path TEXT,
    lease_owner TEXT,
    lease_heartbeat_at INTEGER,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX work_sessions_by_task ON work_sessions(spec_task_id, id);

CREATE TABLE agent_threads (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_instance_id INTEGER NOT NULL REFERENCES agent_instances(id),
    work_session_id INTEGER NOT NULL UNIQUE REFERENCES work_sessions(id),
    acp_session_id TEXT,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE coordination_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    spec_task_id INTEGER NOT NULL REFERENCES spec_tasks(id),
    kind TEXT NOT NULL,
    from_session_id INTEGER REFERENCES work_sessions(id),
    to_session_id INTEGER REFERENCES work_sessions(id),
    message TEXT NOT NULL,
    payload TEXT NOT NULL,
    acknowledged_at INTEGER,
    acknowledged_by INTEGER REFERENCES work_sessions(id),
    created_at INTEGER NOT NULL
);
CREATE INDEX coordination_events_by_task ON coordination_events(spec_task_id, id);

CREATE TABLE shared_state (
    spec_task_id INTEGER NOT NULL REFERENCES spec_tasks(id),
    state_key TEXT NOT NULL,
    value TEXT NOT NULL,
    version INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (spec_task_id, state_key)
);

-- AUTOINCREMENT: ids are never reused, even after the newest row is deleted, so an
-- event id is a safe cursor.
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER,
    spec_task_id INTEGER,
    entity TEXT NOT NULL,
    entity_id INTEGER,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    actor TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX events_by_task ON events(spec_task_id, id);
