package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
)

// An anomaly trigger watches a metric, one closed bucket at a time: it
// learns from 30 buckets, then fires once when the metric leaves the band
// it expects and once when it is back.
func Example_anomalyTrigger() {
	ctx := context.Background()
	store := memstore.New(nil)
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	svc, err := webhook.NewService(store, &webhook.Config{Now: func() time.Time { return now }})
	if err != nil {
		panic(err)
	}
	hook, err := svc.Create(ctx, &webhook.Webhook{
		Name: "Signup anomalies",
		URL:  "https://ops.example.com/hooks/anomalies",
		Triggers: []webhook.Trigger{{
			Type:          webhook.TriggerAnomaly,
			Metric:        "signups",
			Aggregation:   webhook.AggregateSum,
			BucketSeconds: 60,
		}},
	})
	if err != nil {
		panic(err)
	}

	// Signups per minute: a steady rhythm, and a burst at 09:45. These
	// are the buckets RecordMetric writes; Worker.Run evaluates every
	// few seconds.
	rhythm := []float64{100, 104, 97, 101, 99, 103, 96, 100}
	for i := range 60 {
		start := time.Date(2026, 12, 1, 9, i, 0, 0, time.UTC)
		v := rhythm[i%len(rhythm)]
		if i == 45 {
			v = 180
		}
		b := webhook.MetricBucket{Metric: "signups", Environment: "production", Start: start, Count: 1, Sum: v, Min: v, Max: v, Last: v, LastAt: start}
		if err := store.AddMetricBuckets(ctx, []webhook.MetricBucket{b}); err != nil {
			panic(err)
		}
		now = start.Add(time.Minute + 5*time.Second) // the bucket has closed
		if err := svc.Evaluate(ctx); err != nil {
			panic(err)
		}
	}

	ds, _ := svc.Deliveries(ctx, hook.ID, 10)
	slices.Reverse(ds) // oldest first
	for _, d := range ds {
		p, _ := store.GetPayload(ctx, d.PayloadID)
		var body struct {
			Data struct {
				Value       float64 `json:"value"`
				Expected    float64 `json:"expected"`
				Direction   string  `json:"direction"`
				BucketStart string  `json:"bucket_start"`
			} `json:"data"`
		}
		_ = json.Unmarshal(p.Body, &body)
		fmt.Printf("%s at %s: %.0f signups (expected about %.0f, %s)\n", d.EventType, body.Data.BucketStart, body.Data.Value, body.Data.Expected, body.Data.Direction)
	}
	// Output:
	// $anomaly at 2026-12-01T09:45:00Z: 180 signups (expected about 100, above)
	// $anomaly_resolved at 2026-12-01T09:47:00Z: 100 signups (expected about 107, above)
}

// The host's own models can raise anomalies too; an incident ID makes
// each incident notify once, and its resolution once.
func ExampleService_TriggerAnomaly() {
	ctx := context.Background()
	svc, err := webhook.NewService(memstore.New(nil), nil)
	if err != nil {
		panic(err)
	}
	if _, err := svc.Create(ctx, &webhook.Webhook{
		Name:     "Latency anomalies",
		URL:      "https://ops.example.com/hooks/latency",
		Triggers: []webhook.Trigger{{Type: webhook.TriggerAnomaly, Metric: "p99_latency_ms", Direction: webhook.AnomalyAbove}},
	}); err != nil {
		panic(err)
	}

	a := webhook.Anomaly{Metric: "p99_latency_ms", Value: 950, Expected: 210, Lower: 150, Upper: 270, Score: 7.4, IncidentID: "lat-2026-12-01-1"}
	first, _ := svc.TriggerAnomaly(ctx, a, "production")
	again, _ := svc.TriggerAnomaly(ctx, a, "production") // the model still sees it
	a.Resolved, a.Value, a.Direction = true, 230, webhook.AnomalyAbove
	resolved, _ := svc.TriggerAnomaly(ctx, a, "production")
	fmt.Println("first call:", len(first), "delivery")
	fmt.Println("same incident again, the same:", slices.Equal(first, again))
	fmt.Println("resolution:", len(resolved), "delivery")
	// Output:
	// first call: 1 delivery
	// same incident again, the same: true
	// resolution: 1 delivery
}
