package webhook_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/internal/faultstore"
	"github.com/analytics-webhooks/webhook/memstore"
)

// BenchmarkRecordMetric measures RecordMetric's calls per second over
// memstore, into one series and spread over 1,000, with one threshold
// webhook watching the metric; the writes (at least every second) and the
// evaluations after them are part of the cost. Run on one core:
//
//	go test -run '^$' -bench BenchmarkRecordMetric -cpu 1 .
func BenchmarkRecordMetric(b *testing.B) {
	for _, series := range []int{1, 1000} {
		b.Run(fmt.Sprintf("memstore/series=%d", series), func(b *testing.B) {
			BenchRecordMetric(b, memstore.New(nil), series)
		})
	}
}

// BenchRecordMetric records b.N samples over store, spread over the given
// number of series, and reports calls/s.
func BenchRecordMetric(b *testing.B, store webhook.Storage, series int) {
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
}

// refusing is a Storage whose metric writes fail until it is told to
// accept them (and drop them), so that what RecordMetric buffers stays in
// memory.
type refusing struct {
	*memstore.Store
	accept atomic.Bool
}

func (r *refusing) AddMetricBuckets(context.Context, []webhook.MetricBucket) error {
	if r.accept.Load() {
		return nil
	}
	return faultstore.ErrBlip
}

// BenchmarkRecordMetricMemory measures the memory RecordMetric holds at
// its default bound: 100,000 distinct series (one bucket each) buffered
// while Storage refuses to write them. It reports the heap in use for
// the buffer, in total and per bucket.
//
//	go test -run '^$' -bench BenchmarkRecordMetricMemory -benchtime 3x .
func BenchmarkRecordMetricMemory(b *testing.B) {
	const series = webhook.DefaultMaxBufferedMetricBuckets
	names := make([]string, series)
	for i := range names {
		names[i] = fmt.Sprintf("service-%06d.latency", i)
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var perBucket, total float64
	for b.Loop() {
		store := &refusing{Store: memstore.New(nil)}
		svc, err := webhook.NewService(store, nil)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i, name := range names {
			if err := svc.RecordMetric(context.Background(), name, float64(i), at, "prod"); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		total = float64(after.HeapInuse) - float64(before.HeapInuse)
		perBucket = total / series
		runtime.KeepAlive(svc)
		// Empty the buffer, so that no retry stays armed.
		store.accept.Store(true)
		if err := svc.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(total/(1<<20), "MiB-heap")
	b.ReportMetric(perBucket, "B/bucket")
}
