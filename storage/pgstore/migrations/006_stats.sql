-- Stats. Independent of every other migration but 001: it only adds an
-- index to deliveries.

-- One webhook's stats (WebhookStats): its deliveries created since a
-- time, and through them their attempts (by the attempts' primary key).
-- The whole queue's view (QueueStats) needs no index of its own: it reads
-- deliveries_due_idx, which holds only unfinished deliveries.
CREATE INDEX deliveries_webhook_created_idx ON {{schema}}.deliveries (webhook_id, created_at);
