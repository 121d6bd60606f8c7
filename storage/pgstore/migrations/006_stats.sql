-- Stats. Independent of every other migration but 001: it only adds
-- indexes to deliveries.

-- The whole queue's view (QueueStats): depth by status, the earliest due
-- time and the backlog per webhook, read from the index alone. Partial,
-- like deliveries_due_idx: it holds only unfinished deliveries, so its
-- size follows the backlog, not the history.
CREATE INDEX deliveries_unfinished_idx ON {{schema}}.deliveries (status, due_at, webhook_id)
    WHERE due_at IS NOT NULL;

-- One webhook's stats (WebhookStats): its deliveries created since a
-- time, and through them their attempts (by the attempts' primary key).
CREATE INDEX deliveries_webhook_created_idx ON {{schema}}.deliveries (webhook_id, created_at);
