-- The partial index of unfinished keyed deliveries, with its condition written as ORs of
-- equalities instead of `status IN ('pending', 'retrying', 'waiting')`. SQLite evaluates a
-- partial index's condition for the old and the new row of every insert and update of a
-- keyed delivery, and it evaluates an IN list of three or more values by building a temporary
-- B-tree of the list each time: ~5.8 of them per keyed event (`perf probe` on sqlite3BtreeOpen:
-- 57,706 in two runs of 5,000 keyed events, 2,058 unordered; about 5 % of the writer thread's
-- time by key, docs/performance.md). A list of two values, or ORs, is compared in place. Same
-- rows, same use: the statements that search the index repeat the condition in the same form
-- (crates/storage/src/ordering.rs), as SQLite requires.
DROP INDEX deliveries_by_key;
CREATE INDEX deliveries_by_key ON deliveries (webhook_id, ordering_key, ordering_seq)
    WHERE ordering_key IS NOT NULL
      AND (status = 'pending' OR status = 'retrying' OR status = 'waiting');
