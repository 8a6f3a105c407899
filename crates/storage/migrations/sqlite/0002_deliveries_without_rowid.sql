-- Deliveries become a WITHOUT ROWID table clustered on their id: inserting a delivery writes
-- one B-tree fewer (no separate primary-key index), and every update by id (claim, result)
-- finds the row in one descent instead of two. Ids are ULIDs, so new rows append at the
-- right edge. Measured with `cargo run --release -p bench` (docs/performance.md).
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
