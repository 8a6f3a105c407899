-- Learnomy webhooks, initial schema (SQLite). Times are milliseconds since the Unix epoch.
-- Ids are prefixed ULIDs, so ordering by id is ordering by creation time.

CREATE TABLE webhooks (
    id                     TEXT PRIMARY KEY,
    url                    TEXT NOT NULL,
    secret_ciphertext      BLOB NOT NULL,       -- XChaCha20-Poly1305, bound to id
    status                 TEXT NOT NULL,       -- active | paused | disabled | failed
    status_reason          TEXT,                -- why Failed, shown in the console
    status_changed_at      INTEGER NOT NULL,
    failing_since          INTEGER,             -- first failed attempt since the last success
    failures_since_success INTEGER NOT NULL DEFAULT 0,
    next_probe_at          INTEGER,             -- while Failed: when the next ping probe runs
    last_triggered_at      INTEGER,             -- most recent delivery attempt
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL
);

-- Subscriptions, keyed for ingestion's lookup "who wants this event?".
CREATE TABLE webhook_events (
    event      TEXT NOT NULL,
    webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,                  -- order in which the admin's list is shown
    PRIMARY KEY (event, webhook_id)
);
CREATE INDEX webhook_events_by_webhook ON webhook_events (webhook_id);

-- Accepted events. payload holds the exact bytes POSTed on every attempt.
CREATE TABLE events (
    id              TEXT PRIMARY KEY,
    event           TEXT NOT NULL,
    payload         BLOB NOT NULL,
    idempotency_key TEXT,
    deliveries      INTEGER NOT NULL,           -- how many deliveries ingestion created
    created_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX events_idempotency ON events (idempotency_key) WHERE idempotency_key IS NOT NULL;

-- One event to one webhook. due_at is when a worker should next look at the row:
--   the next attempt's time, or a claim's lease expiry while a worker holds it;
--   NULL when the delivery is finished or held (webhook Paused or Failed).
CREATE TABLE deliveries (
    id               TEXT PRIMARY KEY,
    webhook_id       TEXT NOT NULL,
    event_id         TEXT NOT NULL,
    status           TEXT NOT NULL,             -- pending | retrying | delivered | failed
    attempts         INTEGER NOT NULL DEFAULT 0,
    series_start     INTEGER NOT NULL DEFAULT 0, -- attempts made before the current series (redeliver)
    due_at           INTEGER,
    claimed_by       TEXT,
    last_status_code INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (webhook_id, due_at) WHERE due_at IS NOT NULL;
CREATE INDEX deliveries_log ON deliveries (webhook_id, id);
CREATE INDEX deliveries_log_by_status ON deliveries (webhook_id, status, id);

-- Every attempt, for the delivery log.
CREATE TABLE attempts (
    delivery_id      TEXT NOT NULL,
    number           INTEGER NOT NULL,
    started_at       INTEGER NOT NULL,
    duration_ms      INTEGER NOT NULL,
    status_code      INTEGER,
    error_kind       TEXT,                      -- timeout | connect | dns | tls | blocked | http_status
    error            TEXT,
    response_excerpt TEXT,
    PRIMARY KEY (delivery_id, number)
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,                -- argon2id PHC string
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,                -- SHA-256 of the cookie value
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

-- One-time first-run setup links.
CREATE TABLE setup_tokens (
    token_hash TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,          -- SHA-256 of the token
    token_prefix TEXT NOT NULL,                 -- first characters, to recognise it in lists
    scope        TEXT NOT NULL,                 -- events:write | webhooks:manage
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
