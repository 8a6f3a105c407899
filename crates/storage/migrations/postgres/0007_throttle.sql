-- A webhook's throttle: at most max_per_second attempts a second (NULL: unlimited), paced from
-- the shared clock next_send_us (microseconds since the epoch: the next free turn), which every
-- delivering process moves under the row's lock.
ALTER TABLE webhooks ADD COLUMN max_per_second INTEGER;
ALTER TABLE webhooks ADD COLUMN next_send_us BIGINT;
