package storagetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/analytics-webhooks/webhook"
)

// FillHistory stores n deliveries of the webhook webhookID (which need
// not exist), each with the given number of attempts: retrying, and
// failed the last time. It claims every due delivery of s at each round,
// so s should hold no other due deliveries. It is for tests and
// benchmarks of history reads.
func FillHistory(tb testing.TB, s webhook.Storage, webhookID string, n, attempts int) {
	tb.Helper()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	p := webhook.EnqueueParams{Now: now}
	for range n {
		pid, did := uuid.Must(uuid.NewV7()).String(), uuid.Must(uuid.NewV7()).String()
		p.Payloads = append(p.Payloads, &webhook.Payload{ID: pid, WebhookID: webhookID, EventType: "order.paid", Environment: "production", Timestamp: now, Body: []byte(`{"data":{}}`)})
		p.Deliveries = append(p.Deliveries, &webhook.Delivery{ID: did, WebhookID: webhookID, PayloadID: pid, EventType: "order.paid",
			Status: webhook.StatusPending, NextAttemptAt: now, CreatedAt: now})
	}
	if _, err := s.Enqueue(ctx, p); err != nil {
		tb.Fatal(err)
	}
	for a := range attempts {
		at := now.Add(time.Duration(a) * time.Hour)
		cs, err := s.ClaimDeliveries(ctx, webhook.ClaimParams{WorkerID: "fill", Limit: n, LeaseDuration: time.Minute, Now: at})
		if err != nil || len(cs) != n {
			tb.Fatalf("claim %d: %d of %d deliveries, %v", a, len(cs), n, err)
		}
		st := webhook.StatusRetrying
		if a == attempts-1 {
			st = webhook.StatusFailed
		}
		for _, c := range cs {
			if err := s.RecordAttempt(ctx, webhook.RecordAttemptParams{
				DeliveryID: c.Delivery.ID, Token: c.Lease.Token, Status: st, NextAttemptAt: at.Add(time.Hour),
				Attempt: webhook.Attempt{StartedAt: at, Duration: 120 * time.Millisecond, StatusCode: 503, ResponseBody: strings.Repeat("x", 64), Error: "503 Service Unavailable"},
				Now:     at,
			}); err != nil {
				tb.Fatal(err)
			}
		}
	}
}
