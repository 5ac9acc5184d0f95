-- Webhooks: URLs spectask POSTs notifications to (signed with a per-webhook HMAC
-- secret), and one delivery row per notification per webhook, with its attempts.
CREATE TABLE webhooks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- NULL: every project's notifications.
    project_id INTEGER REFERENCES projects(id),
    url TEXT NOT NULL,
    -- A JSON array of notification kinds; empty: every kind.
    kinds TEXT NOT NULL,
    format TEXT NOT NULL,
    -- Kept as is: it signs what is sent, so it cannot be a hash.
    secret TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id INTEGER NOT NULL REFERENCES webhooks(id),
    notification_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    spec_task_id INTEGER NOT NULL,
    -- The exact body sent on every attempt (what the signature covers).
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_status INTEGER,
    last_error TEXT,
    -- Pending: when the next attempt may start (a claimed attempt pushes it past
    -- its timeout, so an attempt a crash cut short is made again).
    next_attempt_at INTEGER,
    created_at INTEGER NOT NULL,
    delivered_at INTEGER,
    UNIQUE (webhook_id, notification_key)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
