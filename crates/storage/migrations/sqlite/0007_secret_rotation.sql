-- Secret rotation: during the overlap the previous secret (sealed like the current one) still
-- signs beside it; when the overlap ends the column is emptied, destroying it.
ALTER TABLE webhooks ADD COLUMN previous_secret_ciphertext BLOB;
ALTER TABLE webhooks ADD COLUMN rotation_ends_at INTEGER;
