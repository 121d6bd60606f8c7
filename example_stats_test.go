package webhook_test

import (
	"context"
	"fmt"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
	"github.com/analytics-webhooks/webhook/webhooktest"
)

// An endpoint's recent deliveries, attempts and health. The test doubles
// of webhooktest stand in for the endpoint (a Doer that answers 500,
// then 200) and for time (a Clock that brings the retry due at once).
func ExampleService_Stats() {
	ctx := context.Background()
	clock := webhooktest.NewClock(time.Time{})
	doer := &webhooktest.Doer{}
	doer.Respond(webhooktest.Statuses(500, 200))
	svc, _ := webhook.NewService(memstore.New(nil), &webhook.Config{Now: clock.Now, Doer: doer})
	worker, _ := webhook.NewWorker(svc, nil)
	hook, _ := svc.Create(ctx, &webhook.Webhook{Name: "CRM", URL: "https://crm.example.com/hooks", Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
	since := clock.Now()

	_, _ = svc.TriggerEvent(ctx, "order.created", map[string]any{"id": 1}, "production")
	_, _ = worker.RunOnce(ctx) // 500: retried a few seconds later
	q, _ := svc.QueueStats(ctx, 1)
	fmt.Println("retrying:", q.Depth[webhook.StatusRetrying], "due later:", q.OldestDue.After(clock.Now()))
	clock.Set(q.OldestDue)
	_, _ = worker.RunOnce(ctx) // 200

	st, _ := svc.Stats(ctx, hook.ID, since)
	fmt.Println("delivered:", st.Deliveries[webhook.StatusDelivered], "success rate:", st.SuccessRate)
	fmt.Println("attempts:", st.Attempts[webhook.AttemptSuccess], "ok,", st.Attempts[webhook.AttemptHTTPError], "HTTP error")
	fmt.Println("last failure:", st.LastFailure.Error)
	// Output:
	// retrying: 1 due later: true
	// delivered: 1 success rate: 1
	// attempts: 1 ok, 1 HTTP error
	// last failure: HTTP 500 Internal Server Error
}
