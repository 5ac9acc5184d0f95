-- Agents over ACP: what an instance reported, its resource samples, the session
-- transcripts and the permission requests waiting for a person.

ALTER TABLE agent_instances ADD COLUMN agent_name TEXT;
ALTER TABLE agent_instances ADD COLUMN agent_version TEXT;
ALTER TABLE agent_instances ADD COLUMN restarts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE agent_instances ADD COLUMN cpu_percent DOUBLE PRECISION;
ALTER TABLE agent_instances ADD COLUMN rss_bytes BIGINT;
ALTER TABLE agent_instances ADD COLUMN sampled_at BIGINT;

CREATE TABLE transcript_entries (
    id BIGSERIAL PRIMARY KEY,
    spec_task_id BIGINT NOT NULL REFERENCES spec_tasks(id),
    work_session_id BIGINT NOT NULL REFERENCES work_sessions(id),
    kind TEXT NOT NULL,
    content TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX transcript_entries_by_session ON transcript_entries(work_session_id, id);

CREATE TABLE permission_requests (
    id BIGSERIAL PRIMARY KEY,
    spec_task_id BIGINT NOT NULL REFERENCES spec_tasks(id),
    work_session_id BIGINT NOT NULL REFERENCES work_sessions(id),
    title TEXT NOT NULL,
    tool_call TEXT NOT NULL,
    options TEXT NOT NULL,
    status TEXT NOT NULL,
    option_id TEXT,
    created_at BIGINT NOT NULL,
    resolved_at BIGINT
);
CREATE INDEX permission_requests_by_status ON permission_requests(status, id);

ALTER TABLE projects ADD COLUMN permission_policy TEXT NOT NULL DEFAULT 'auto';
