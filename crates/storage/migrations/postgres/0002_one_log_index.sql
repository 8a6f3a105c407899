-- The delivery log is read through deliveries_log_by_status (webhook_id, status, id) alone:
-- a filtered page directly, an unfiltered one as a merge of the newest rows of each status.
-- Every delivery written then updates one index fewer (and a commit dirties one page fewer
-- per webhook). Measured with `cargo run --release -p bench` (docs/performance.md).
DROP INDEX IF EXISTS deliveries_log;
