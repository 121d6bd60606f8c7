package pgstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/analytics-webhooks/webhook"
)

// BenchmarkAddMetricBuckets measures flushes of batches of buckets, as
// processes flush their pre-aggregated samples: each bucket of a batch
// is a series of its own, merged ten times into its bucket (ten flushes
// a bucket) before the next bucket starts. Reports buckets per second.
func BenchmarkAddMetricBuckets(b *testing.B) {
	for _, size := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s := newStore(b)
			ctx := context.Background()
			base := time.Now().UTC().Truncate(webhook.MetricResolution)
			batch := make([]webhook.MetricBucket, size)
			b.ResetTimer()
			for i := range b.N {
				start := base.Add(time.Duration(i/10) * webhook.MetricResolution)
				for j := range batch {
					batch[j] = webhook.MetricBucket{TenantID: "acme", Metric: fmt.Sprint("metric-", j%50), Environment: fmt.Sprint("env-", j/50),
						Start: start, Count: 3, Sum: 6, Min: 1, Max: 3, Last: 2, LastAt: start.Add(time.Second)}
				}
				if err := s.AddMetricBuckets(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "buckets/s")
		})
	}
}

// BenchmarkQueryMetric measures queries of a metric kept 31 days in two
// environments (535,680 buckets of 10 s, and as many of another metric):
// a 5-minute window (a condition's), of every environment and of one,
// and the whole 31 days, in one step and in hourly steps.
func BenchmarkQueryMetric(b *testing.B) {
	s := newStore(b)
	ctx := context.Background()
	const days = 31
	to := time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC)
	from := to.AddDate(0, 0, -days)
	// Filled by SQL: through AddMetricBuckets it would take a minute.
	_, err := testPool(b).Exec(ctx, `INSERT INTO `+s.Schema()+`.metric_buckets (tenant_id, metric, environment, start, count, sum, min, max, last, last_at)
		SELECT 'acme', m, e, t, 2, 3, 1, 2, 2, t + interval '1 second'
		FROM unnest(ARRAY['m', 'other']) m, unnest(ARRAY['production', 'staging']) e,
			generate_series($1::timestamptz, $2::timestamptz - interval '10 seconds', interval '10 seconds') t`, from, to)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := testPool(b).Exec(ctx, `VACUUM ANALYZE `+s.Schema()+`.metric_buckets`); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		q      webhook.MetricQuery
		result int
	}{
		{"window=300s/all", webhook.MetricQuery{From: to.Add(-300 * time.Second), To: to}, 2},
		{"window=300s/env=production", webhook.MetricQuery{From: to.Add(-300 * time.Second), To: to, Environments: []string{"production"}}, 1},
		{"window=300s/step=10s", webhook.MetricQuery{From: to.Add(-300 * time.Second), To: to, Step: webhook.MetricResolution}, 60},
		{"window=31d/all", webhook.MetricQuery{From: from, To: to}, 2},
		{"window=31d/step=1h", webhook.MetricQuery{From: from, To: to, Step: time.Hour}, 2 * 24 * days},
	} {
		b.Run(tc.name, func(b *testing.B) {
			q := tc.q
			q.TenantID, q.Metric = "acme", "m"
			for range b.N {
				got, err := s.QueryMetric(ctx, q)
				if err != nil {
					b.Fatal(err)
				}
				if len(got) != tc.result {
					b.Fatalf("%d results, want %d", len(got), tc.result)
				}
			}
		})
	}
}

// BenchmarkSaveTriggerState measures state changes of 100 series in
// turn, each a compare-and-set of the version read before, alone and
// with the enqueue of one delivery (with an idempotency key).
func BenchmarkSaveTriggerState(b *testing.B) {
	for _, withEnqueue := range []bool{false, true} {
		b.Run(fmt.Sprintf("enqueue=%t", withEnqueue), func(b *testing.B) {
			s := newStore(b)
			ctx := context.Background()
			hook := uuid.Must(uuid.NewV7()).String()
			states := make([]*webhook.TriggerState, 100)
			for i := range states {
				states[i] = &webhook.TriggerState{Key: fmt.Sprintf("threshold:%s:0:%d:production", hook, i), TenantID: "acme", WebhookID: hook, Environment: "production"}
			}
			now := time.Now().UTC()
			b.ResetTimer()
			for i := range b.N {
				st := states[i%len(states)]
				st.Alert.NotificationCount = i
				p := webhook.SaveTriggerStateParams{State: st, Now: now}
				if withEnqueue {
					_, p.Enqueue = stateEnqueue(b, hook, fmt.Sprint("alert:", i))
				}
				if _, err := s.SaveTriggerState(ctx, p); err != nil {
					b.Fatal(err)
				}
				st.Version++
			}
		})
	}
}
