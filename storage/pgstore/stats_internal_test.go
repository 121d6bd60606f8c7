package pgstore

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The queue view reads the queue, which holds only unfinished
// deliveries, and never the history, whose size follows the retention.
func TestQueueStatsReadsOnlyTheQueue(t *testing.T) {
	s, pool := unmigratedStore(t)
	require.NoError(t, s.Migrate(t.Context()))
	fillStatsHistory(t, s, pool)
	for name, q := range map[string]struct {
		sql  string
		args []any
	}{
		"depth": {queueDepthSQL, []any{"2026-03-04T05:06:07Z"}},
		"top":   {queueTopSQL, []any{10}},
	} {
		text := explainGeneric(t, pool, s.stmt(q.sql), q.args...)
		assert.Regexp(t, ` on queue`, text, "%s:\n%s", name, text)
		assert.NotRegexp(t, ` on deliveries`, text, "%s:\n%s", name, text)
	}
}

// One webhook's stats read its finished deliveries in the window through
// the (webhook_id, created_at) index, its unfinished ones through the
// queue's webhook index, and their attempts through their primary key:
// never the history of other webhooks, nor that before the window.
func TestWebhookStatsReadsTheWindowByIndex(t *testing.T) {
	s, pool := unmigratedStore(t)
	require.NoError(t, s.Migrate(t.Context()))
	fillStatsHistory(t, s, pool)
	args := []any{"01900000-0000-7000-8000-000000000001", "2026-03-04T05:06:07Z"}
	for name, sql := range map[string]string{
		"deliveries": statsDeliveriesSQL,
		"attempts":   statsAttemptsSQL,
	} {
		text := explainGeneric(t, pool, s.stmt(sql), args...)
		assert.Regexp(t, `Index (Only )?Scan using deliveries_webhook_created_idx|Bitmap Index Scan on deliveries_webhook_created_idx`, text, "%s:\n%s", name, text)
		assert.Regexp(t, `Index Cond: \(\(webhook_id = \(\$1\)::uuid\) AND \(created_at >= \(\$2\)::timestamp with time zone\)\)`, text, "%s:\n%s", name, text)
		assert.Regexp(t, `Index (Only )?Scan using queue_webhook_(due_)?idx|Bitmap Index Scan on queue_webhook_(due_)?idx`, text, "%s:\n%s", name, text)
		assert.NotContains(t, text, "Seq Scan", "%s:\n%s", name, text)
		if name != "deliveries" {
			assert.Contains(t, text, "attempts_pkey", "%s:\n%s", name, text)
		}
	}
}

// fillStatsHistory stores a history of 20,000 finished deliveries of 20
// webhooks over 20,000 minutes, each with an attempt, and 200 pending
// ones, with statistics, so that the planner knows what each index is
// worth (on empty tables every index looks alike).
func fillStatsHistory(t *testing.T, s *Store, pool *pgxpool.Pool) {
	t.Helper()
	ctx := t.Context()
	for _, sql := range []string{
		`INSERT INTO {{schema}}.payloads (id, webhook_id, event_type, environment, "timestamp", body)
			VALUES ('01900000-0000-7000-8000-000000000000', '01900000-0000-7000-8000-000000000000', 'e', 'p', now(), '\x7b7d')`,
		`INSERT INTO {{schema}}.deliveries (id, webhook_id, payload_id, event_type, status, attempt, created_at, completed_at, status_code)
			SELECT gen_random_uuid(), ('01900000-0000-7000-8000-' || lpad(to_hex(g % 20), 12, '0'))::uuid,
				'01900000-0000-7000-8000-000000000000', 'e', 'delivered', 1,
				now() - (g || ' minutes')::interval, now() - (g || ' minutes')::interval, 200
			FROM generate_series(1, 20000) g`,
		`INSERT INTO {{schema}}.attempts (delivery_id, number, started_at, duration_ns, status_code, response_body, error)
			SELECT id, 1, created_at, 1000000, 200, '', '' FROM {{schema}}.deliveries`,
		`INSERT INTO {{schema}}.queue (id, webhook_id, payload_id, event_type, status, attempt, next_attempt_at, due_at, created_at)
			SELECT gen_random_uuid(), ('01900000-0000-7000-8000-' || lpad(to_hex(g % 20), 12, '0'))::uuid,
				'01900000-0000-7000-8000-000000000000', 'e', 'pending', 0, now(), now(), now()
			FROM generate_series(1, 200) g`,
		`ANALYZE {{schema}}.deliveries`,
		`ANALYZE {{schema}}.queue`,
		`ANALYZE {{schema}}.attempts`,
	} {
		_, err := pool.Exec(ctx, s.stmt(sql))
		require.NoError(t, err)
	}
}
