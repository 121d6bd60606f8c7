package pgstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/analytics-webhooks/webhook"
)

// BenchmarkRecordMetric measures Service.RecordMetric's calls per second
// over PostgreSQL, into one series and spread over 1,000, with one
// threshold webhook watching the metric. Samples are written by upsert at
// least every second (and by the Flush at the end, which is timed too),
// so a call is not a database write. Run on one core:
//
//	WEBHOOK_TEST_DATABASE_URL=postgres://… go test -run '^$' -bench BenchmarkRecordMetric -cpu 1 ./storage/pgstore/
func BenchmarkRecordMetric(b *testing.B) {
	for _, series := range []int{1, 1000} {
		b.Run(fmt.Sprintf("series=%d", series), func(b *testing.B) {
			store := newStore(b)
			if _, ok := any(store).(webhook.MetricStore); !ok {
				b.Skip("pgstore does not keep metrics yet")
			}
			ctx := context.Background()
			svc, err := webhook.NewService(store, nil)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := svc.Create(ctx, &webhook.Webhook{Name: "w", URL: "https://example.com/w", Triggers: []webhook.Trigger{{
				Type: webhook.TriggerThreshold, Conditions: []webhook.Condition{{Metric: "m0", Operator: webhook.ConditionGT, Value: 1e9, WindowSeconds: 60, Aggregation: webhook.AggregateAvg}},
			}}}); err != nil {
				b.Fatal(err)
			}
			names := make([]string, series)
			for i := range names {
				names[i] = fmt.Sprintf("m%d", i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if err := svc.RecordMetric(ctx, names[i%series], float64(i%100), time.Time{}, "prod"); err != nil {
					b.Fatal(err)
				}
			}
			if err := svc.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
		})
	}
}
