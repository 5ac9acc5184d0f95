-- The agent instance panel: CPU and memory over time (the newest samples of each
-- instance; older ones are dropped as new ones come), and a hold: an agent a person
-- stopped is not started again by the orchestrator until a person restarts it.
CREATE TABLE agent_samples (
    id BIGSERIAL PRIMARY KEY,
    agent_instance_id BIGINT NOT NULL REFERENCES agent_instances(id),
    cpu_percent DOUBLE PRECISION NOT NULL,
    rss_bytes BIGINT NOT NULL,
    sampled_at BIGINT NOT NULL
);
CREATE INDEX agent_samples_by_instance ON agent_samples (agent_instance_id, id);
ALTER TABLE agent_instances ADD COLUMN held_at BIGINT;
