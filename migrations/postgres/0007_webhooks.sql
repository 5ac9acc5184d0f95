-- Webhooks: URLs spectask POSTs notifications to (signed with a per-webhook HMAC
-- secret), and one delivery row per notification per webhook, with its attempts.
CREATE TABLE webhooks (
    id BIGSERIAL PRIMARY KEY,
    -- NULL: every project's notifications.
    project_id BIGINT REFERENCES projects(id),
    url TEXT NOT NULL,
    -- A JSON array of notification kinds; empty: every kind.
    kinds TEXT NOT NULL,
    format TEXT NOT NULL,
    -- Kept as is: it signs what is sent, so it cannot be a hash.
    secret TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE TABLE webhook_deliveries (
    id BIGSERIAL PRIMARY KEY,
    webhook_id BIGINT NOT NULL REFERENCES webhooks(id),
    notification_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    spec_task_id BIGINT NOT NULL,
    -- The exact body sent on every attempt (what the signature covers).
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_status BIGINT,
    last_error TEXT,
    -- Pending: when the next attempt may start (a claimed attempt pushes it past
    -- its timeout, so an attempt a crash cut short is made again).
    next_attempt_at BIGINT,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT,
    UNIQUE (webhook_id, notification_key)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
