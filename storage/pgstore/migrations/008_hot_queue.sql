-- The hot queue: unfinished deliveries (pending, retrying, delivering)
-- live in a table of their own, and move to deliveries, which keeps the
-- history, in the statement that records their final result. Needs every
-- earlier migration that adds columns to deliveries (001, 003).
--
-- Why: a claim and a result change due_at and status, which the indexes
-- of deliveries hold, so no update there is HOT and each rewrote an entry
-- in every index of the history (six of them). The queue has three
-- indexes and holds only the backlog, so it stays small and in memory;
-- a finished delivery is written to the history once.
--
-- The queue has the columns of deliveries, in the same order (a later
-- migration that adds a column to one adds it to both), so that a row
-- moves with INSERT ... SELECT and both are read by one column list.
CREATE TABLE {{schema}}.queue (LIKE {{schema}}.deliveries INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE {{schema}}.queue
    ADD PRIMARY KEY (id),
    ALTER COLUMN due_at SET NOT NULL,
    ADD CONSTRAINT queue_unfinished CHECK (status IN ('pending', 'retrying', 'delivering'));
-- Claims: the earliest due first.
CREATE INDEX queue_due_idx ON {{schema}}.queue (due_at, id);
-- History pages of unfinished deliveries, a status at a time, newest
-- first; the queue view's top backlogs.
CREATE INDEX queue_webhook_idx ON {{schema}}.queue (webhook_id, status, id);

-- Move what is unfinished. Leases keep their tokens and expiries, so an
-- attempt under way when this runs is recorded as before, or claimed
-- again once its lease expires.
WITH moved AS (
    DELETE FROM {{schema}}.deliveries WHERE status NOT IN ('delivered', 'failed') RETURNING *
)
INSERT INTO {{schema}}.queue SELECT * FROM moved;

-- The history holds finished deliveries only. A process still running an
-- older version fails to enqueue (this check refuses its rows) rather
-- than write deliveries no worker would claim.
ALTER TABLE {{schema}}.deliveries
    ADD CONSTRAINT deliveries_finished CHECK (status IN ('delivered', 'failed'));
DROP INDEX {{schema}}.deliveries_due_idx;

-- Attempts belong to queued deliveries as well as finished ones; Prune
-- deletes a finished delivery's attempts with it.
ALTER TABLE {{schema}}.attempts DROP CONSTRAINT IF EXISTS attempts_delivery_id_fkey;
