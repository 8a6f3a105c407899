-- Health at a glance: each webhook's attempts per hour, with a duration histogram, so the
-- stats endpoint and the console's charts read at most 168 rows per webhook instead of scanning
-- attempts. Written in the transaction that records the attempts (crate::attempts). `slot`
-- separates the rows of processes sharing the database, so their recorders never wait on each
-- other's row lock; readers sum the slots. d00..d27 count attempts per duration bucket, whose
-- upper bounds (ms) are lwh_domain::stats::DURATION_BOUNDS_MS:
-- 1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700, 1000, 1500, 2000, 3000, 5000, 7000, 10000, 15000, 20000, 30000, 60000.
CREATE TABLE webhook_stats (
    webhook_id TEXT NOT NULL,
    hour       BIGINT NOT NULL,                 -- start of the hour, ms since the epoch
    slot       BIGINT NOT NULL,
    attempts   BIGINT NOT NULL,
    failures   BIGINT NOT NULL,                 -- attempts without a 2xx response
    d00        BIGINT NOT NULL DEFAULT 0,
    d01        BIGINT NOT NULL DEFAULT 0,
    d02        BIGINT NOT NULL DEFAULT 0,
    d03        BIGINT NOT NULL DEFAULT 0,
    d04        BIGINT NOT NULL DEFAULT 0,
    d05        BIGINT NOT NULL DEFAULT 0,
    d06        BIGINT NOT NULL DEFAULT 0,
    d07        BIGINT NOT NULL DEFAULT 0,
    d08        BIGINT NOT NULL DEFAULT 0,
    d09        BIGINT NOT NULL DEFAULT 0,
    d10        BIGINT NOT NULL DEFAULT 0,
    d11        BIGINT NOT NULL DEFAULT 0,
    d12        BIGINT NOT NULL DEFAULT 0,
    d13        BIGINT NOT NULL DEFAULT 0,
    d14        BIGINT NOT NULL DEFAULT 0,
    d15        BIGINT NOT NULL DEFAULT 0,
    d16        BIGINT NOT NULL DEFAULT 0,
    d17        BIGINT NOT NULL DEFAULT 0,
    d18        BIGINT NOT NULL DEFAULT 0,
    d19        BIGINT NOT NULL DEFAULT 0,
    d20        BIGINT NOT NULL DEFAULT 0,
    d21        BIGINT NOT NULL DEFAULT 0,
    d22        BIGINT NOT NULL DEFAULT 0,
    d23        BIGINT NOT NULL DEFAULT 0,
    d24        BIGINT NOT NULL DEFAULT 0,
    d25        BIGINT NOT NULL DEFAULT 0,
    d26        BIGINT NOT NULL DEFAULT 0,
    d27        BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (webhook_id, hour, slot)
);

-- The last eight days of attempts already recorded, so charts are not empty after upgrading.
INSERT INTO webhook_stats (webhook_id, hour, slot, attempts, failures, d00, d01, d02, d03, d04, d05, d06, d07, d08, d09, d10, d11, d12, d13, d14, d15, d16, d17, d18, d19, d20, d21, d22, d23, d24, d25, d26, d27)
SELECT d.webhook_id, (a.started_at / 3600000) * 3600000, 0, COUNT(*),
    SUM(CASE WHEN a.error_kind IS NULL AND a.status_code BETWEEN 200 AND 299 THEN 0 ELSE 1 END),
    SUM(CASE WHEN a.duration_ms <= 1 THEN 1 ELSE 0 END),
    SUM(CASE WHEN a.duration_ms > 1 AND a.duration_ms <= 2 THEN 1 ELSE 0 END),
    SUM(CASE WHEN a.duration_ms > 2 AND a.duration_ms <= 3 THEN 1 ELSE 0 END),
    SUM(CASE WHEN a.duration_ms > 3 AND a.duration_ms <= 5 THEN 1 ELSE 0 END),
    SUM(CASE WHEN a.duration_ms > 5 AND a.duration_ms <= 7 THEN 1 ELSE 0 END),
    SUM(CASE WHEN a.duration_ms > 7 AND a.duration_ms <= 10 THEN 1 ELSE 0 END),
    SUM(CASE WHEN a.duration_ms > 10 AND a.duration_ms <= 15 THEN 1 ELSE 0 END),
    SUM(CASE WHEN a.duration_ms > 15 AND a.duration_ms <= 20 THEN 1 ELSE 0 END),
    SUM(CASE WHEN a.duration_ms > 20 AND a.duration_ms <= 30 THEN 1 ELSE 0 END),
    SUM(CASE WHEN a.duration_ms > 30 AND a.duration_ms <= 50 THEN 1 ELSE 0 END),
    SUM(CASE WHEN a.duration_ms > 50 AND a.duration_ms <= 70 THEN 1 ELSE 0 END),
    SUM(CASE WHEN a.duration_ms > 70 AND a.duration_ms <= 100 THEN 1 ELSE 0 END),
    SUM(CASE WHEN a.duration_ms > 100 AND a.duration_ms <= 150 THEN 1 ELSE 0 END),
    SUM(CASE WHEN a.duration_ms > 150 AND a.duration_ms <= 200 THEN 1 ELSE 0 END),
    SUM(CASE WHEN a.duration_ms > 200 AND a.duration_ms <= 300 THEN 1 ELSE 0 END),
    SUM(CASE WHEN a.duration_ms > 300 AND a.duration_ms <= 500 THEN 1 ELSE 0 END),
    SUM(CASE WHEN a.duration_ms > 500 AND a.duration_ms <= 700 THEN 1 ELSE 0 END),
    SUM(CASE WHEN a.duration_ms > 700 AND a.duration_ms <= 1000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN a.duration_ms > 1000 AND a.duration_ms <= 1500 THEN 1 ELSE 0 END),
    SUM(CASE WHEN a.duration_ms > 1500 AND a.duration_ms <= 2000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN a.duration_ms > 2000 AND a.duration_ms <= 3000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN a.duration_ms > 3000 AND a.duration_ms <= 5000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN a.duration_ms > 5000 AND a.duration_ms <= 7000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN a.duration_ms > 7000 AND a.duration_ms <= 10000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN a.duration_ms > 10000 AND a.duration_ms <= 15000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN a.duration_ms > 15000 AND a.duration_ms <= 20000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN a.duration_ms > 20000 AND a.duration_ms <= 30000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN a.duration_ms > 30000 THEN 1 ELSE 0 END)
FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
WHERE a.started_at >= (EXTRACT(EPOCH FROM now())::BIGINT - 8 * 86400) * 1000
GROUP BY d.webhook_id, a.started_at / 3600000;
