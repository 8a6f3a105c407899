-- A webhook's custom request headers (names and values), sealed with the master key like its
-- secret; NULL when it has none.
ALTER TABLE webhooks ADD COLUMN headers_ciphertext BYTEA;
