package webhook_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
	"github.com/google/uuid"
)

// benchHook returns a valid webhook to store directly, listening to
// event "e" with the given filters.
func benchHook(id string, filters ...webhook.Filter) *webhook.Webhook {
	now := time.Now()
	return &webhook.Webhook{
		ID: id, Name: "w", URL: "https://example.com/", Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		Retry: webhook.DefaultRetryPolicy(), SignatureScheme: webhook.SchemeStandard, Headers: map[string]string{},
		Triggers:  []webhook.Trigger{{Type: webhook.TriggerEvent, Events: []string{"e"}, Filters: filters}},
		CreatedAt: now, UpdatedAt: now, Version: 1,
	}
}

// discard is an Enqueuer that stores nothing, so that a benchmark of
// matching does not measure a growing queue.
type discard struct{}

func (discard) Enqueue(_ context.Context, p webhook.EnqueueParams) (webhook.EnqueueResult, error) {
	ids := make([]string, len(p.Deliveries))
	for i, d := range p.Deliveries {
		ids[i] = d.ID
	}
	return webhook.EnqueueResult{DeliveryIDs: ids}, nil
}

// BenchmarkFanOut measures a trigger call whose event has n subscribers
// that each filter on equality of one property, 10 of which match. The
// matching index keeps the cost with the matches: compare the ns/op of
// the two sizes.
func BenchmarkFanOut(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprint("subscribers=", n), func(b *testing.B) {
			ctx := context.Background()
			store := memstore.New(nil)
			for i := range n {
				v := fmt.Sprint("u", i)
				if i%(n/10) == 0 {
					v = "match"
				}
				if err := store.CreateWebhook(ctx, benchHook(uuid.NewString(), webhook.Filter{Property: "user.id", Operator: webhook.FilterEquals, Value: v})); err != nil {
					b.Fatal(err)
				}
			}
			svc, err := webhook.NewService(store, &webhook.Config{WebhookCacheTTL: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			data := map[string]any{"user": map[string]any{"id": "match", "plan": "pro"}, "amount": 42}
			opt := webhook.WithEnqueuer(discard{})
			if ids, err := svc.TriggerEvent(ctx, "e", data, "", opt); err != nil || len(ids) != 10 { // loads the index
				b.Fatal(len(ids), err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if ids, err := svc.TriggerEvent(ctx, "e", data, "", opt); err != nil || len(ids) != 10 {
					b.Fatal(len(ids), err)
				}
			}
		})
	}
}

// BenchmarkIndexReloadDuringTriggers measures trigger calls while the
// matching index of 100,000 webhooks goes stale again and again: the
// clock advances 1 ms per call and the index lives 1 s, so reloads run
// during the calls. It reports the calls' p50, p99 and slowest latency
// and how many full reloads' worth of webhook pages were read during
// the calls. Run with -benchtime=3000x.
func BenchmarkIndexReloadDuringTriggers(b *testing.B) {
	ctx := context.Background()
	store := &countingLists{Store: memstore.New(nil)}
	const n = 100_000
	for i := range n {
		if err := store.CreateWebhook(ctx, benchHook(uuid.NewString(), webhook.Filter{Property: "user.id", Operator: webhook.FilterEquals, Value: fmt.Sprint("u", i%1000)})); err != nil {
			b.Fatal(err)
		}
	}
	clock := newFakeClock()
	svc, err := webhook.NewService(store, &webhook.Config{Now: clock.Now, WebhookCacheTTL: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	data := map[string]any{"user": map[string]any{"id": "u7"}}
	opt := webhook.WithEnqueuer(discard{})
	if got, err := svc.TriggerEvent(ctx, "e", data, "", opt); err != nil || len(got) != n/1000 { // the first load
		b.Fatal(len(got), err)
	}
	store.lists.Store(0)
	b.Cleanup(svc.AwaitIndexReload) // goleak: no reload may outlive the test
	var lat []time.Duration
	b.ResetTimer()
	for b.Loop() {
		clock.Advance(time.Millisecond)
		start := time.Now()
		got, err := svc.TriggerEvent(ctx, "e", data, "", opt)
		lat = append(lat, time.Since(start))
		if err != nil || len(got) != n/1000 {
			b.Fatal(len(got), err)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1])/float64(time.Millisecond), "max-ms")
	b.ReportMetric(float64(store.lists.Load())/float64(n/webhook.MaxPageSize+1), "reloads-read")
}

// BenchmarkMemstoreDrain enqueues a backlog of 20,000 deliveries to 50
// webhooks into memstore, then drains it as a worker would, claiming 32
// at a time and recording each as delivered. It reports deliveries/s for
// the enqueue and the drain together.
func BenchmarkMemstoreDrain(b *testing.B) {
	for _, perWebhook := range []int{0, 4} {
		b.Run(fmt.Sprint("maxPerWebhook=", perWebhook), func(b *testing.B) {
			const backlog, hooks = 20_000, 50
			ctx := context.Background()
			now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
			hookIDs := make([]string, hooks)
			for i := range hookIDs {
				hookIDs[i] = uuid.NewString()
			}
			body := []byte(`{"data":{"plan":"pro"}}`)
			var total time.Duration
			for b.Loop() {
				store := memstore.New(nil)
				start := time.Now()
				for i := range backlog {
					pid, did := uuid.NewString(), uuid.NewString()
					if _, err := store.Enqueue(ctx, webhook.EnqueueParams{
						Now:      now,
						Payloads: []*webhook.Payload{{ID: pid, WebhookID: hookIDs[i%hooks], EventType: "e", Timestamp: now, Body: body}},
						Deliveries: []*webhook.Delivery{{ID: did, WebhookID: hookIDs[i%hooks], PayloadID: pid, EventType: "e",
							Status: webhook.StatusPending, NextAttemptAt: now.Add(time.Duration(i%1000) * time.Microsecond), CreatedAt: now}},
					}); err != nil {
						b.Fatal(err)
					}
				}
				at := now.Add(time.Second)
				done := 0
				for done < backlog {
					cs, err := store.ClaimDeliveries(ctx, webhook.ClaimParams{WorkerID: "w", Limit: 32, LeaseDuration: time.Minute, Now: at, MaxPerWebhook: perWebhook})
					if err != nil || len(cs) == 0 {
						b.Fatal(len(cs), err)
					}
					for _, c := range cs {
						if err := store.RecordAttempt(ctx, webhook.RecordAttemptParams{
							DeliveryID: c.Delivery.ID, Token: c.Lease.Token, Status: webhook.StatusDelivered, Now: at,
							Attempt: webhook.Attempt{StartedAt: at, StatusCode: 204},
						}); err != nil {
							b.Fatal(err)
						}
					}
					done += len(cs)
				}
				total += time.Since(start)
			}
			b.ReportMetric(float64(backlog*b.N)/total.Seconds(), "deliveries/s")
		})
	}
}
