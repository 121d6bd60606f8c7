-- Replays and attempt budgets. Independent of every other migration but
-- 001: it only adds columns and an index to deliveries.

-- The delivery this one sends again (Redeliver, ReplayFailed), and the
-- latest delivery that sends this one again: a replay skips deliveries
-- that have one, so replaying twice queues each failed message once.
ALTER TABLE {{schema}}.deliveries
    ADD COLUMN redelivery_of uuid,
    ADD COLUMN redelivered_by uuid,
    -- The attempt budget the delivery was enqueued with; 0 when unknown
    -- (deliveries enqueued before this migration).
    ADD COLUMN max_attempts integer NOT NULL DEFAULT 0;

-- Replays: a webhook's failed deliveries not yet replayed, newest first.
CREATE INDEX deliveries_replayable_idx ON {{schema}}.deliveries (webhook_id, id)
    WHERE status = 'failed' AND redelivered_by IS NULL;
