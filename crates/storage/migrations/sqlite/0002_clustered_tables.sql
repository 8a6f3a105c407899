-- Events, deliveries and attempts become WITHOUT ROWID tables clustered on their primary key:
-- inserting a row writes one B-tree fewer (no separate primary-key index), and every lookup or
-- update by key (claim, result, payload read, the log) finds the row in one descent instead of
-- two. Ids are ULIDs, so new rows append at the right edge. Measured with
-- `cargo run --release -p bench` (docs/performance.md).
-- (Held deliveries: since 0001, a Paused or Failed webhook holds its deliveries by its status,
-- not by due_at = NULL; due_at is NULL only once a delivery is finished.)

CREATE TABLE deliveries_clustered (
    id               TEXT PRIMARY KEY,
    webhook_id       TEXT NOT NULL,
    event_id         TEXT NOT NULL,
    status           TEXT NOT NULL,             -- pending | retrying | delivered | failed
    attempts         INTEGER NOT NULL DEFAULT 0,
    series_start     INTEGER NOT NULL DEFAULT 0, -- attempts made before the current series (redeliver)
    due_at           INTEGER,                   -- NULL once finished
    claimed_by       TEXT,
    last_status_code INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO deliveries_clustered (id, webhook_id, event_id, status, attempts, series_start,
    due_at, claimed_by, last_status_code, last_error, created_at, updated_at)
SELECT id, webhook_id, event_id, status, attempts, series_start,
    due_at, claimed_by, last_status_code, last_error, created_at, updated_at
FROM deliveries;

DROP TABLE deliveries;
ALTER TABLE deliveries_clustered RENAME TO deliveries;

CREATE INDEX deliveries_due ON deliveries (webhook_id, due_at) WHERE due_at IS NOT NULL;
CREATE INDEX deliveries_log ON deliveries (webhook_id, id);
CREATE INDEX deliveries_log_by_status ON deliveries (webhook_id, status, id);

CREATE TABLE events_clustered (
    id              TEXT PRIMARY KEY,
    event           TEXT NOT NULL,
    payload         BLOB NOT NULL,
    idempotency_key TEXT,
    deliveries      INTEGER NOT NULL,           -- how many deliveries ingestion created
    created_at      INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO events_clustered (id, event, payload, idempotency_key, deliveries, created_at)
SELECT id, event, payload, idempotency_key, deliveries, created_at FROM events;

DROP TABLE events;
ALTER TABLE events_clustered RENAME TO events;

CREATE UNIQUE INDEX events_idempotency ON events (idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE attempts_clustered (
    delivery_id      TEXT NOT NULL,
    number           INTEGER NOT NULL,
    started_at       INTEGER NOT NULL,
    duration_ms      INTEGER NOT NULL,
    status_code      INTEGER,
    error_kind       TEXT,                      -- timeout | connect | dns | tls | blocked | http_status
    error            TEXT,
    response_excerpt TEXT,
    PRIMARY KEY (delivery_id, number)
) WITHOUT ROWID;

INSERT INTO attempts_clustered (delivery_id, number, started_at, duration_ms, status_code,
    error_kind, error, response_excerpt)
SELECT delivery_id, number, started_at, duration_ms, status_code,
    error_kind, error, response_excerpt FROM attempts;

DROP TABLE attempts;
ALTER TABLE attempts_clustered RENAME TO attempts;
