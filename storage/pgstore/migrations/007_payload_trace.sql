-- The trace context of the trigger call that enqueued a payload (a W3C
-- traceparent), so that the spans of its attempts link to it. Independent
-- of every other migration but 001: it only adds a column to payloads.
-- Payloads stored before it have none ('').
ALTER TABLE {{schema}}.payloads
    ADD COLUMN trace_parent text NOT NULL DEFAULT '';
