package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
)

// exampleClock is a clock the example moves by hand.
type exampleClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *exampleClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *exampleClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// A threshold alert fires once while the metric stays high, and resolves
// once when it falls back below its recovery value.
func ExampleService_RecordMetric() {
	ctx := context.Background()
	store := memstore.New(nil)
	clock := &exampleClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	svc, err := webhook.NewService(store, &webhook.Config{Now: clock.Now})
	if err != nil {
		panic(err)
	}
	recovery := 0.02
	hook, err := svc.Create(ctx, &webhook.Webhook{
		Name: "Error rate",
		URL:  "https://ops.example.com/hooks/alerts",
		Triggers: []webhook.Trigger{{
			Type: webhook.TriggerThreshold,
			Conditions: []webhook.Condition{{
				Metric: "error_rate", Operator: webhook.ConditionGT, Value: 0.05, RecoveryValue: &recovery,
				WindowSeconds: 60, Aggregation: webhook.AggregateAvg,
			}},
		}},
	})
	if err != nil {
		panic(err)
	}

	// One sample every ten seconds; Evaluate (which Worker.Run calls
	// periodically) writes the samples and judges the window.
	for _, v := range []float64{0.01, 0.09, 0.12, 0.10, 0.08, 0.03, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01} {
		if err := svc.RecordMetric(ctx, "error_rate", v, time.Time{}, "production"); err != nil {
			panic(err)
		}
		if err := svc.Evaluate(ctx); err != nil {
			panic(err)
		}
		clock.Advance(10 * time.Second)
	}

	ds, err := store.ListDeliveries(ctx, webhook.ListDeliveriesParams{WebhookID: hook.ID})
	if err != nil {
		panic(err)
	}
	slices.Reverse(ds) // oldest first
	for _, d := range ds {
		p, err := store.GetPayload(ctx, d.PayloadID)
		if err != nil {
			panic(err)
		}
		var body struct {
			Data struct {
				Reason string  `json:"reason"`
				Value  float64 `json:"value"`
			} `json:"data"`
		}
		if err := json.Unmarshal(p.Body, &body); err != nil {
			panic(err)
		}
		fmt.Printf("%s at %s: %s, average %.4f\n", d.EventType, d.CreatedAt.Format("15:04:05"), body.Data.Reason, body.Data.Value)
	}
	// Output:
	// $threshold_alert at 12:00:20: fired, average 0.0733
	// $threshold_resolved at 12:01:40: recovered, average 0.0133
}
