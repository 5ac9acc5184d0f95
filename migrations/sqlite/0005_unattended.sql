-- What a session that changed nothing gets, and how long a turn and the verification
-- command may take (an agent that never answers, a command that hangs).
ALTER TABLE projects ADD COLUMN empty_session TEXT NOT NULL DEFAULT 'done';
ALTER TABLE projects ADD COLUMN turn_timeout_secs INTEGER NOT NULL DEFAULT 1800;
ALTER TABLE projects ADD COLUMN verify_timeout_secs INTEGER NOT NULL DEFAULT 600;
