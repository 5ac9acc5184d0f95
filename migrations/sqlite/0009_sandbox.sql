-- Whether a project's agents run in the kernel sandbox (required | best_effort | off).
ALTER TABLE projects ADD COLUMN sandbox TEXT NOT NULL DEFAULT 'required';
