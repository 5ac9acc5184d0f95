-- Agent tools over MCP. Each work session gets its own credential for spectask's MCP
-- server: valid only for its session's spec task, while the session runs. Only the
-- SHA-256 hash is stored; reopening the session's thread issues a new one and
-- revokes the old, and the session's end revokes it.
CREATE TABLE session_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    work_session_id INTEGER NOT NULL REFERENCES work_sessions(id),
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX session_tokens_session ON session_tokens(work_session_id);
-- How many sessions the agents of one spec task may spawn through their tools.
ALTER TABLE projects ADD COLUMN max_spawned_sessions INTEGER NOT NULL DEFAULT 10;
