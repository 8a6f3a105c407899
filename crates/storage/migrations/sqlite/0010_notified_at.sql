-- When a notification mail about the webhook was last sent (ms): at most one an hour.
ALTER TABLE webhooks ADD COLUMN notified_at INTEGER;
