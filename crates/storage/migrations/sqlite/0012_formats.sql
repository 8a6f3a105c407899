-- A webhook's body format (learnomy | slack | discord | teams | google_chat | template) and,
-- for `template`, its MiniJinja source. Existing webhooks keep the Learnomy payload.
ALTER TABLE webhooks ADD COLUMN format TEXT NOT NULL DEFAULT 'learnomy';
ALTER TABLE webhooks ADD COLUMN template TEXT;
