-- Stateful triggers and recorded metrics. Independent of every other
-- migration but 001: it only adds tables.

-- The state of one stateful trigger series (a threshold condition or an
-- anomaly trigger in one environment, or a scheduled trigger), changed by
-- compare-and-set on version. DeleteWebhook deletes a webhook's states in
-- the statement that deletes the webhook.
CREATE TABLE {{schema}}.trigger_states (
    webhook_id   uuid NOT NULL,
    -- "C": keys sort byte-wise, as Go compares strings, whatever the
    -- database's collation.
    key          text COLLATE "C" NOT NULL,
    tenant_id    text NOT NULL,
    environment  text NOT NULL,
    version      bigint NOT NULL CHECK (version > 0),
    -- webhook.AlertState, DetectorState and ScheduleState as JSON (NULL
    -- for none): new fields need no migration.
    alert        jsonb NOT NULL,
    detector     jsonb,
    schedule     jsonb,
    updated_at   timestamptz NOT NULL,
    -- Reads by webhook, and the compare-and-set by (webhook, key).
    PRIMARY KEY (webhook_id, key)
);

-- Metric samples pre-aggregated into buckets of webhook.MetricResolution,
-- merged by upsert from every process.
CREATE TABLE {{schema}}.metric_buckets (
    tenant_id    text NOT NULL,
    metric       text NOT NULL,
    environment  text NOT NULL,
    start        timestamptz NOT NULL,
    count        bigint NOT NULL CHECK (count > 0),
    sum          double precision NOT NULL,
    min          double precision NOT NULL,
    max          double precision NOT NULL,
    last         double precision NOT NULL,
    last_at      timestamptz NOT NULL,
    -- Queries read one range of starts per environment of the metric
    -- (listing a metric's environments reads one entry per environment);
    -- the upsert finds its bucket here.
    PRIMARY KEY (tenant_id, metric, environment, start)
-- A bucket is merged into once per flush while it is recent: room left
-- in each page lets those updates be HOT (no new index entries).
) WITH (fillfactor = 70);
-- Pruning: the oldest buckets first.
CREATE INDEX metric_buckets_start_idx ON {{schema}}.metric_buckets (start);
