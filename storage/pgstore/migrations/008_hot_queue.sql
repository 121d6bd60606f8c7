-- The hot queue: unfinished deliveries (pending, retrying, delivering)
-- live in a table of their own, and move to deliveries, which keeps the
-- history, in the statement that records their final result. Needs every
-- earlier migration that adds columns to deliveries (001, 003).
--
-- Why: a claim and a result change due_at and status, which the indexes
-- of deliveries hold, so no update there is HOT and each rewrote an entry
-- in every index of the history (six of them). In the queue a claim
-- writes no index entry at all (see below) and a retry four; the queue
-- holds only the backlog, so it stays small and in memory; and a
-- finished delivery is written to the history once.
--
-- The queue has the columns of deliveries, in the same order (a later
-- migration that adds a column to one adds it to both), so that a row
-- moves with INSERT ... SELECT and both are read by one column list.
-- First take every table this migration alters, before it moves
-- anything: a process still running an older version that records a
-- result for a delivery being moved holds the history's table lock
-- while it waits for the row, so taking the lock to alter the history
-- only after the move would deadlock with it, and the deadlock could
-- abort the migration after the move's work. Taken here, older
-- statements wait for the migration instead (as they would for the
-- ALTER TABLEs below anyway, and the move keeps the backlog's rows
-- locked until the end).
LOCK TABLE {{schema}}.deliveries, {{schema}}.attempts, {{schema}}.payloads IN ACCESS EXCLUSIVE MODE;

CREATE TABLE {{schema}}.queue (LIKE {{schema}}.deliveries INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    -- Room on each page for the new version of a row a claim leases, so
    -- that the update is HOT (no index entry written).
    WITH (fillfactor = 50);
-- status is pending or retrying: a claim sets the lease and leaves the
-- status (and due_at) as they were, so that it changes no indexed
-- column; a leased delivery is delivering.
ALTER TABLE {{schema}}.queue
    ADD PRIMARY KEY (id),
    ALTER COLUMN due_at SET NOT NULL,
    ADD CONSTRAINT queue_unfinished CHECK (status IN ('pending', 'retrying'));
-- Claims: the earliest due first.
CREATE INDEX queue_due_idx ON {{schema}}.queue (due_at, id);
-- History pages of unfinished deliveries, a status at a time, newest
-- first; stats; and the claims' walk over the webhooks of the queue.
CREATE INDEX queue_webhook_idx ON {{schema}}.queue (webhook_id, status, id);
-- A webhook's earliest due deliveries: claims that skip webhooks at their
-- caps without reading their backlogs.
CREATE INDEX queue_webhook_due_idx ON {{schema}}.queue (webhook_id, due_at, id);

-- Move what is unfinished: the rows of deliveries_due_idx, which holds
-- exactly those (due_at is NULL once a delivery is final), so the move
-- reads the backlog, not the history. Leases keep their tokens and
-- expiries, so an attempt under way when this runs is recorded as
-- before, or claimed again once its lease expires (its due_at was the
-- lease's expiry).
WITH moved AS (
    DELETE FROM {{schema}}.deliveries WHERE due_at IS NOT NULL RETURNING *
)
INSERT INTO {{schema}}.queue
SELECT id, webhook_id, payload_id, event_type,
    CASE WHEN status <> 'delivering' THEN status WHEN attempt > 1 THEN 'retrying' ELSE 'pending' END,
    attempt, next_attempt_at, due_at, lease_token, lease_worker, lease_expires_at, status_code, response_body,
    duration_ns, error, created_at, completed_at, redelivery_of, redelivered_by, max_attempts
FROM moved;

-- The history holds finished deliveries only. A process still running an
-- older version fails to enqueue (this check refuses its rows) rather
-- than write deliveries no worker would claim. NOT VALID: the rows there
-- are final already, and validating would read the whole history while
-- the table is locked.
ALTER TABLE {{schema}}.deliveries
    ADD CONSTRAINT deliveries_finished CHECK (status IN ('delivered', 'failed')) NOT VALID;
DROP INDEX {{schema}}.deliveries_due_idx;

-- Attempts belong to queued deliveries as well as finished ones; Prune
-- deletes a finished delivery's attempts with it.
ALTER TABLE {{schema}}.attempts DROP CONSTRAINT IF EXISTS attempts_delivery_id_fkey;
-- A finished delivery's payload exists: its queued row's did, and Prune
-- deletes a payload only when neither table refers to it, reading both
-- in one snapshot (a delivery moves in one statement). The check the
-- foreign key made on every move (a lookup and a row lock, which is a
-- WAL record) bought nothing.
ALTER TABLE {{schema}}.deliveries DROP CONSTRAINT IF EXISTS deliveries_payload_id_fkey;
