-- An event's data stored once, however many webhooks it fans out to.
-- Independent of every other migration but 001.
--
-- The payloads of one trigger call differ only at their start (the
-- payload and webhook IDs); Enqueue stores the tail they share once, and
-- each payload's body column holds the rest. A payload's body is
-- body || tail.body, byte for byte what was enqueued.
CREATE TABLE {{schema}}.payload_tails (
    id    uuid PRIMARY KEY,
    body  bytea NOT NULL,
    -- How many payloads end with it: Prune deletes it with the last.
    refs  integer NOT NULL CHECK (refs >= 0)
);
-- NULL: the body column holds the whole body (and payloads stored
-- before this migration).
ALTER TABLE {{schema}}.payloads ADD COLUMN tail_id uuid;
