-- A queued delivery is kept in two B-trees instead of three: the table and the log index
-- deliveries_log_by_status (webhook_id, status, id). Pending deliveries are claimed through
-- that index in id (creation) order; only retries, whose due times are in no order, keep a
-- due-time index, partial, so a pending delivery has no entry there. Beside a dead endpoint
-- every event leaves one queued row; this is its cost. Measured with
-- `cargo run --release -p bench` (docs/performance.md). (PostgreSQL keeps deliveries_due: its
-- updates leave old index entries behind until vacuum, which a scan of the pending range
-- would have to pass over; see crates/storage/src/queue.rs.)
DROP INDEX IF EXISTS deliveries_due;
CREATE INDEX deliveries_retry_due ON deliveries (webhook_id, due_at) WHERE status = 'retrying';
