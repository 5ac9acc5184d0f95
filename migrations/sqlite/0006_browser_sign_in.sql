-- Signing in from a browser. A sign-in link carries a one-time code; exchanging it
-- (or a pasted API token) opens a browser session, whose secret is the HttpOnly
-- cookie. Only SHA-256 hashes are stored. Both act as the API token they came from,
-- so revoking that token ends them too.
CREATE TABLE browser_credentials (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- 'link': a one-time sign-in code; 'session': a signed-in browser.
    kind TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    token_id INTEGER NOT NULL REFERENCES api_tokens(id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    -- A link: when it was used. A session: when it was signed out.
    ended_at INTEGER
);
