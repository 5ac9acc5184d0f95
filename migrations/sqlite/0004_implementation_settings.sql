-- What a project does when a merge conflicts, when its plan is all merged, and how
-- many attempts a session gets.
ALTER TABLE projects ADD COLUMN conflict_policy TEXT NOT NULL DEFAULT 'fix';
ALTER TABLE projects ADD COLUMN review_implementation INTEGER NOT NULL DEFAULT 1;
ALTER TABLE projects ADD COLUMN max_attempts INTEGER NOT NULL DEFAULT 2;
