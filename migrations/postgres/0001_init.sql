-- spectask schema, PostgreSQL. Migrations are append-only: never edit a released one.
-- Timestamps are milliseconds since the Unix epoch (UTC); JSON is stored as TEXT.

CREATE TABLE api_tokens (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE projects (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    path TEXT NOT NULL UNIQUE,
    base_branch TEXT NOT NULL,
    spec_folder TEXT NOT NULL,
    verification_command TEXT,
    planning_wip_limit BIGINT,
    implementation_wip_limit BIGINT,
    max_parallel_sessions BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE spec_tasks (
    id BIGSERIAL PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects(id),
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    prompt TEXT NOT NULL,
    priority TEXT NOT NULL,
    task_type TEXT NOT NULL,
    status TEXT NOT NULL,
    failed_phase TEXT,
    failure_reason TEXT,
    slug TEXT NOT NULL,
    max_parallel_sessions BIGINT,
    agent_profile TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX spec_tasks_by_project_status ON spec_tasks(project_id, status, id);
CREATE INDEX spec_tasks_by_status ON spec_tasks(status, id);

CREATE TABLE spec_versions (
    id BIGSERIAL PRIMARY KEY,
    spec_task_id BIGINT NOT NULL REFERENCES spec_tasks(id),
    number BIGINT NOT NULL,
    commit_sha TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (spec_task_id, number)
);

CREATE TABLE reviews (
    id BIGSERIAL PRIMARY KEY,
    spec_version_id BIGINT NOT NULL REFERENCES spec_versions(id),
    reviewer TEXT NOT NULL,
    verdict TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE review_comments (
    id BIGSERIAL PRIMARY KEY,
    spec_version_id BIGINT NOT NULL REFERENCES spec_versions(id),
    author TEXT NOT NULL,
    document TEXT NOT NULL,
    line_start BIGINT,
    line_end BIGINT,
    quote TEXT,
    body TEXT NOT NULL,
    resolved_at BIGINT,
    created_at BIGINT NOT NULL
);

CREATE TABLE implementation_tasks (
    id BIGSERIAL PRIMARY KEY,
    spec_task_id BIGINT NOT NULL REFERENCES spec_tasks(id),
    task_key TEXT NOT NULL,
    title TEXT NOT NULL,
    details TEXT NOT NULL,
    status TEXT NOT NULL,
    depends_on TEXT NOT NULL,
    requirements TEXT NOT NULL,
    optional BIGINT NOT NULL,
    parallel BIGINT NOT NULL,
    position BIGINT NOT NULL,
    UNIQUE (spec_task_id, task_key)
);

CREATE TABLE agent_instances (
    id BIGSERIAL PRIMARY KEY,
    spec_task_id BIGINT NOT NULL UNIQUE REFERENCES spec_tasks(id),
    profile TEXT NOT NULL,
    status TEXT NOT NULL,
    pid BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE work_sessions (
    id BIGSERIAL PRIMARY KEY,
    spec_task_id BIGINT NOT NULL REFERENCES spec_tasks(id),
    parent_id BIGINT REFERENCES work_sessions(id),
    implementation_task_id BIGINT REFERENCES implementation_tasks(id),
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    prompt TEXT NOT NULL,
    status TEXT NOT NULL,
    failure_reason TEXT,
    attempt BIGINT NOT NULL,
    branch TEXT,
    worktree_path TEXT,
    lease_owner TEXT,
    lease_heartbeat_at BIGINT,
    input_tokens BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX work_sessions_by_task ON work_sessions(spec_task_id, id);

CREATE TABLE agent_threads (
    id BIGSERIAL PRIMARY KEY,
    agent_instance_id BIGINT NOT NULL REFERENCES agent_instances(id),
    work_session_id BIGINT NOT NULL UNIQUE REFERENCES work_sessions(id),
    acp_session_id TEXT,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE coordination_events (
    id BIGSERIAL PRIMARY KEY,
    spec_task_id BIGINT NOT NULL REFERENCES spec_tasks(id),
    kind TEXT NOT NULL,
    from_session_id BIGINT REFERENCES work_sessions(id),
    to_session_id BIGINT REFERENCES work_sessions(id),
    message TEXT NOT NULL,
    payload TEXT NOT NULL,
    acknowledged_at BIGINT,
    acknowledged_by BIGINT REFERENCES work_sessions(id),
    created_at BIGINT NOT NULL
);
CREATE INDEX coordination_events_by_task ON coordination_events(spec_task_id, id);

CREATE TABLE shared_state (
    spec_task_id BIGINT NOT NULL REFERENCES spec_tasks(id),
    state_key TEXT NOT NULL,
    value TEXT NOT NULL,
    version BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (spec_task_id, state_key)
);

-- A sequence alone hands out ids in call order, not commit order. Every writer takes
-- pg_advisory_xact_lock(EVENTS_LOCK) just before inserting its event and holds it to
-- commit, so ids become visible in increasing order and an event id is a safe cursor.
CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY,
    project_id BIGINT,
    spec_task_id BIGINT,
    entity TEXT NOT NULL,
    entity_id BIGINT,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    actor TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX events_by_task ON events(spec_task_id, id);
