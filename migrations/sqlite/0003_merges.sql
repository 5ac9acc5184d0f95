-- Implementation: where a session's work was merged (a merge is never done twice).

ALTER TABLE work_sessions ADD COLUMN merge_commit TEXT;
