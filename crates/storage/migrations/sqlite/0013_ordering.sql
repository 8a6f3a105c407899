-- Ordered delivery per key (§15). A webhook's `ordering` is none (default) or by_key; a
-- delivery to a by_key webhook copies its event's ordering_key and is numbered within its key
-- (ordering_seq). One waiting behind an earlier delivery of its key is stored with the status
-- 'waiting' and no due time, so claims never see it (nor scan past it: SQLite reads pending
-- deliveries in id order); the transaction that finishes the earlier one makes it 'pending'
-- and due. The API shows it as pending with "waiting": true. The partial index holds only
-- unfinished keyed deliveries: unkeyed inserts and updates never touch it.
ALTER TABLE webhooks ADD COLUMN ordering TEXT NOT NULL DEFAULT 'none';
ALTER TABLE deliveries ADD COLUMN ordering_key TEXT;
ALTER TABLE deliveries ADD COLUMN ordering_seq INTEGER;
CREATE INDEX deliveries_by_key ON deliveries (webhook_id, ordering_key, ordering_seq)
    WHERE ordering_key IS NOT NULL AND status IN ('pending', 'retrying', 'waiting');
