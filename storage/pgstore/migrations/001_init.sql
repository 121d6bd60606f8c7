-- Schema of webhook's PostgreSQL store. {{schema}} is replaced with the
-- quoted schema name.

CREATE TABLE {{schema}}.webhooks (
    id          uuid PRIMARY KEY,
    tenant_id   text NOT NULL,
    enabled     boolean NOT NULL,
    version     bigint NOT NULL,
    -- The whole webhook as JSON text (webhook.Webhook's wire form; text,
    -- not jsonb, which refuses \u0000). New fields
    -- need no migration; the columns above exist for filtering.
    config      text NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
-- ListWebhooks by tenant, in ID order.
CREATE INDEX webhooks_tenant_idx ON {{schema}}.webhooks (tenant_id, id);

CREATE TABLE {{schema}}.payloads (
    id           uuid PRIMARY KEY,
    webhook_id   uuid NOT NULL,
    event_type   text NOT NULL,
    environment  text NOT NULL,
    "timestamp"  timestamptz NOT NULL,
    -- The exact request body: bytea, not jsonb, which would reorder keys.
    body         bytea NOT NULL
);

CREATE TABLE {{schema}}.deliveries (
    id                uuid PRIMARY KEY,
    webhook_id        uuid NOT NULL,
    payload_id        uuid NOT NULL REFERENCES {{schema}}.payloads (id),
    event_type        text NOT NULL,
    status            text NOT NULL CHECK (status IN ('pending', 'delivering', 'retrying', 'delivered', 'failed')),
    attempt           integer NOT NULL,
    next_attempt_at   timestamptz,
    -- When the delivery can next be claimed: next_attempt_at while
    -- pending or retrying, the lease's expiry while delivering, NULL once
    -- final. One column, so one partial index serves every claim.
    due_at            timestamptz,
    lease_token       text,
    lease_worker      text,
    lease_expires_at  timestamptz,
    status_code       integer NOT NULL DEFAULT 0,
    response_body     text NOT NULL DEFAULT '',
    duration_ns       bigint NOT NULL DEFAULT 0,
    error             text NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL,
    completed_at      timestamptz
);
-- Claims: only unfinished deliveries are in this index, so its size
-- follows the backlog, not the history; a claim reads its first rows.
CREATE INDEX deliveries_due_idx ON {{schema}}.deliveries (due_at, id) WHERE due_at IS NOT NULL;
-- History: a webhook's deliveries newest first, optionally by status.
CREATE INDEX deliveries_webhook_idx ON {{schema}}.deliveries (webhook_id, id);
CREATE INDEX deliveries_webhook_status_idx ON {{schema}}.deliveries (webhook_id, status, id);
-- Pruning: finished deliveries oldest first.
CREATE INDEX deliveries_completed_idx ON {{schema}}.deliveries (completed_at) WHERE completed_at IS NOT NULL;
-- The foreign key, and pruning's check for payloads still referred to.
CREATE INDEX deliveries_payload_idx ON {{schema}}.deliveries (payload_id);

CREATE TABLE {{schema}}.attempts (
    delivery_id    uuid NOT NULL REFERENCES {{schema}}.deliveries (id) ON DELETE CASCADE,
    number         integer NOT NULL,
    started_at     timestamptz NOT NULL,
    duration_ns    bigint NOT NULL,
    status_code    integer NOT NULL,
    response_body  text NOT NULL,
    error          text NOT NULL,
    PRIMARY KEY (delivery_id, number)
);

CREATE TABLE {{schema}}.idempotency_keys (
    key           text PRIMARY KEY,
    delivery_ids  uuid[] NOT NULL,
    created_at    timestamptz NOT NULL
);
CREATE INDEX idempotency_keys_created_idx ON {{schema}}.idempotency_keys (created_at);
