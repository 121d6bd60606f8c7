package webhook_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
)

// Create a webhook, trigger an event, and look at the stored delivery.
func Example() {
	ctx := context.Background()
	store := memstore.New(nil)
	svc, err := webhook.NewService(store, nil)
	if err != nil {
		panic(err)
	}

	hook, err := svc.Create(ctx, &webhook.Webhook{
		Name: "Big purchases",
		URL:  "https://crm.example.com/hooks/orders",
		Triggers: []webhook.Trigger{{
			Type:    webhook.TriggerEvent,
			Events:  []string{"checkout.*"},
			Filters: []webhook.Filter{{Property: "order.total", Operator: webhook.FilterGTE, Value: 100}},
		}},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("secret issued:", strings.HasPrefix(hook.Secret, "whsec_"))

	small, _ := svc.TriggerEvent(ctx, "checkout.completed", map[string]any{"order": map[string]any{"total": 20}}, "production")
	big, _ := svc.TriggerEvent(ctx, "checkout.completed", map[string]any{"order": map[string]any{"total": 250}}, "production")
	fmt.Println("deliveries for the small order:", len(small))
	fmt.Println("deliveries for the big order:", len(big))

	d, err := svc.Delivery(ctx, big[0])
	if err != nil {
		panic(err)
	}
	fmt.Println("status:", d.Status, "event:", d.EventType, "attempts so far:", len(d.Attempts))
	// Output:
	// secret issued: true
	// deliveries for the small order: 0
	// deliveries for the big order: 1
	// status: pending event: checkout.completed attempts so far: 0
}

// A receiver verifies a signed request with the endpoint's secret.
func ExampleVerify() {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	body := []byte(`{"id":"msg_1","event_type":"purchase"}`)
	now := time.Now()

	// What the sender puts on the request.
	sig, _ := webhook.Sign(secret, "msg_1", now, body)
	h := http.Header{}
	h.Set("webhook-id", "msg_1")
	h.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	h.Set("webhook-signature", sig)

	fmt.Println("genuine:", webhook.Verify(secret, h, body))
	fmt.Println("tampered:", webhook.Verify(secret, h, []byte(`{"id":"msg_1","event_type":"refund"}`)))
	// Output:
	// genuine: <nil>
	// tampered: webhook: no matching signature
}

// Middleware verifies every request before your handler sees it.
func ExampleVerifier_Middleware() {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	v := &webhook.Verifier{Secrets: []string{secret}}
	handler := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("handling", r.Header.Get("webhook-id"))
		w.WriteHeader(http.StatusNoContent)
	}))

	body := `{"event_type":"purchase"}`
	now := time.Now()
	sig, _ := webhook.Sign(secret, "msg_2", now, []byte(body))
	req := httptest.NewRequest(http.MethodPost, "/hooks", strings.NewReader(body))
	req.Header.Set("webhook-id", "msg_2")
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	fmt.Println("signed:", rec.Code)

	forged := httptest.NewRequest(http.MethodPost, "/hooks", strings.NewReader(body))
	forged.Header = req.Header.Clone()
	forged.Header.Set("webhook-signature", "v1,Zm9yZ2Vk")
	rec = httptest.NewRecorder()
	handler.ServeHTTP(rec, forged)
	fmt.Println("forged:", rec.Code)
	// Output:
	// handling msg_2
	// signed: 204
	// forged: 401
}

// Test a webhook's filters against sample data before saving it.
func ExampleMatchFilters() {
	filters := []webhook.Filter{
		{Property: "user.plan", Operator: webhook.FilterIn, Value: []any{"pro", "team"}},
		{Property: "email", Operator: webhook.FilterRegex, Value: `@example\.com$`},
	}
	ok, err := webhook.MatchFilters(filters, map[string]any{
		"user":  map[string]any{"plan": "team"},
		"email": "ann@example.com",
	})
	fmt.Println(ok, err)
	_, err = webhook.MatchFilters([]webhook.Filter{{Property: "plan", Operator: "like", Value: "pro"}}, nil)
	fmt.Println(err)
	// Output:
	// true <nil>
	// webhook: invalid filters: filters[0].operator: unknown filter operator "like"
}

// Which trigger calls a trigger hears: an event trigger by its patterns
// and filters, an anomaly trigger the TriggerAnomaly calls on its metric
// and side, a threshold trigger none (its alerts come from its state).
func ExampleTrigger_Match() {
	event := webhook.Trigger{Type: webhook.TriggerEvent, Events: []string{"checkout.*"},
		Filters: []webhook.Filter{{Property: "total", Operator: webhook.FilterGTE, Value: 100}}}
	ok, _ := event.Match("checkout.completed", map[string]any{"total": 120})
	fmt.Println("event:", ok)

	anomaly := webhook.Trigger{Type: webhook.TriggerAnomaly, Metric: "latency_ms", Direction: webhook.AnomalyAbove}
	above := map[string]any{"metric": "latency_ms", "direction": "above", "status": "firing"}
	below := map[string]any{"metric": "latency_ms", "direction": "below", "status": "firing"}
	okAbove, _ := anomaly.Match(webhook.EventTypeAnomaly, above)
	okBelow, _ := anomaly.Match(webhook.EventTypeAnomaly, below)
	fmt.Println("anomaly above:", okAbove, "below:", okBelow)

	threshold := webhook.Trigger{Type: webhook.TriggerThreshold,
		Conditions: []webhook.Condition{{Metric: "latency_ms", Operator: webhook.ConditionGT, Value: 500}}}
	ok, _ = threshold.Match(webhook.EventTypeThresholdAlert, map[string]any{"metric": "latency_ms", "value": 900})
	fmt.Println("threshold:", ok)
	// Output:
	// event: true
	// anomaly above: true below: false
	// threshold: false
}

// The default schedule: 5 attempts, waits doubling from 5 seconds.
func ExampleRetryPolicy_Delay() {
	p := webhook.DefaultRetryPolicy()
	for n := 1; n < p.MaxAttempts; n++ {
		fmt.Printf("after attempt %d: %v\n", n, p.Delay(n))
	}
	// Output:
	// after attempt 1: 5s
	// after attempt 2: 10s
	// after attempt 3: 20s
	// after attempt 4: 40s
}
