-- When a notification mail about the webhook was last sent (ms): at most one an hour, whichever
-- process sends it.
ALTER TABLE webhooks ADD COLUMN notified_at BIGINT;
