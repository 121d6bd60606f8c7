package pgstore_test

import (
	"context"
	"flag"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/storage/pgstore"
)

var (
	statsHistory = flag.Int("stats.history", 200_000, "finished deliveries (one attempt each) in the stats benchmarks' schema")
	statsBacklog = flag.Int("stats.backlog", 50_000, "unfinished deliveries in the stats benchmarks' schema")
)

// busyHook is the webhook with 10,000 deliveries (and 20,000 attempts)
// in the last day, on top of its share of the history.
const busyHook = "01900000-0000-7000-8000-000000000007"

// statsStore fills a schema with -stats.history finished deliveries of
// 1,000 webhooks spread over the last 100 days, -stats.backlog
// unfinished ones, and busyHook's day of 10,000.
func statsStore(b *testing.B) *pgstore.Store {
	b.Helper()
	store := newStore(b)
	ctx := context.Background()
	q := pgx.Identifier{store.Schema()}.Sanitize()
	hook := `('01900000-0000-7000-8000-' || lpad(to_hex(g % 1000), 12, '0'))::uuid`
	start := time.Now()
	for _, sql := range []string{
		`INSERT INTO {{q}}.payloads (id, webhook_id, event_type, environment, "timestamp", body)
			VALUES ('01900000-0000-7000-8000-000000000000', '01900000-0000-7000-8000-000000000000', 'e', 'p', now(), '\x7b7d')`,
		`INSERT INTO {{q}}.deliveries (id, webhook_id, payload_id, event_type, status, attempt, created_at, completed_at, status_code)
			SELECT gen_random_uuid(), ` + hook + `, '01900000-0000-7000-8000-000000000000', 'e',
				CASE WHEN g % 10 = 0 THEN 'failed' ELSE 'delivered' END, 1,
				now() - interval '1 day' - (g * 43 || ' seconds')::interval, now() - (g * 43 || ' seconds')::interval,
				CASE WHEN g % 10 = 0 THEN 500 ELSE 200 END
			FROM generate_series(1, {{history}}) g`,
		`INSERT INTO {{q}}.deliveries (id, webhook_id, payload_id, event_type, status, attempt, created_at, completed_at, status_code)
			SELECT gen_random_uuid(), '` + busyHook + `', '01900000-0000-7000-8000-000000000000', 'e',
				'delivered', 2, now() - (g * 8 || ' seconds')::interval, now() - (g * 8 || ' seconds')::interval, 200
			FROM generate_series(1, 10000) g`,
		`INSERT INTO {{q}}.attempts (delivery_id, number, started_at, duration_ns, status_code, response_body, error)
			SELECT d.id, n, d.created_at, 1000000 + abs(hashtext(d.id::text) % 1000000), CASE WHEN n < d.attempt THEN 503 ELSE d.status_code END, '',
				CASE WHEN d.status_code = 200 AND n = d.attempt THEN '' ELSE 'HTTP 503' END
			FROM {{q}}.deliveries d, generate_series(1, d.attempt) n`,
		`INSERT INTO {{q}}.queue (id, webhook_id, payload_id, event_type, status, attempt, next_attempt_at, due_at, created_at)
			SELECT gen_random_uuid(), ('01900000-0000-7000-8000-' || lpad(to_hex(((g::bigint * g) % 1000)::int), 12, '0'))::uuid,
				'01900000-0000-7000-8000-000000000000', 'e', CASE WHEN g % 3 = 0 THEN 'retrying' ELSE 'pending' END, 0,
				now() + (g || ' milliseconds')::interval, now() + (g || ' milliseconds')::interval, now()
			FROM generate_series(1, {{backlog}}) g`,
		`VACUUM ANALYZE {{q}}.deliveries`,
		`VACUUM ANALYZE {{q}}.attempts`,
		`VACUUM ANALYZE {{q}}.queue`,
	} {
		sql = strings.NewReplacer("{{q}}", q, "{{history}}", strconv.Itoa(*statsHistory), "{{backlog}}", strconv.Itoa(*statsBacklog)).Replace(sql)
		if _, err := testPool(b).Exec(ctx, sql); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("filled %d finished, %d unfinished and 10,000 busy deliveries in %v", *statsHistory, *statsBacklog, time.Since(start).Round(time.Second))
	return store
}

// BenchmarkStats measures the queue view and one webhook's day of stats
// over a filled schema (see statsStore).
func BenchmarkStats(b *testing.B) {
	store := statsStore(b)
	ctx := context.Background()
	b.Run("queue", func(b *testing.B) {
		for b.Loop() {
			q, err := store.QueueStats(ctx, webhook.QueueStatsParams{TopWebhooks: 10, Now: time.Now()})
			if err != nil {
				b.Fatal(err)
			}
			if q.Unfinished() != int64(*statsBacklog) {
				b.Fatalf("%d unfinished, want %d", q.Unfinished(), *statsBacklog)
			}
		}
	})
	b.Run("busy webhook's day", func(b *testing.B) {
		for b.Loop() {
			st, err := store.WebhookStats(ctx, webhook.StatsParams{WebhookID: busyHook, Since: time.Now().Add(-24 * time.Hour)})
			if err != nil {
				b.Fatal(err)
			}
			if n := st.Deliveries[webhook.StatusDelivered]; n < 9990 {
				b.Fatalf("%d delivered in the day", n)
			}
		}
	})
	b.Run("quiet webhook's day", func(b *testing.B) {
		for b.Loop() {
			if _, err := store.WebhookStats(ctx, webhook.StatsParams{WebhookID: "01900000-0000-7000-8000-000000000008", Since: time.Now().Add(-24 * time.Hour)}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
