package webhooktest_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
	"github.com/analytics-webhooks/webhook/webhooktest"
)

// exampleT stands in for the *testing.T of a real test, which examples
// do not have: a failure panics, and done runs the cleanups.
type exampleT struct {
	testing.TB
	cleanups []func()
}

func (t *exampleT) Helper()                           {}
func (t *exampleT) Context() context.Context          { return context.Background() }
func (t *exampleT) Cleanup(f func())                  { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) Errorf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (t *exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (t *exampleT) Logf(format string, args ...any)   { fmt.Printf(format+"\n", args...) }
func (t *exampleT) done() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}

// signUp stands for the code under test: it creates a user and tells
// the webhooks.
func signUp(ctx context.Context, svc *webhook.Service, email string) error {
	_, err := svc.TriggerEvent(ctx, "user.signed_up", map[string]any{"email": email, "plan": "free"}, "production")
	return err
}

// A unit test of code that sends webhooks: no network, no waiting for
// retries, and an assertion on what was delivered.
func Example() {
	t := &exampleT{} // in a test: your *testing.T
	defer t.done()
	ctx := context.Background()

	clock := webhooktest.NewClock(time.Time{})
	doer := &webhooktest.Doer{}
	doer.Respond(webhooktest.Statuses(503, 200)) // the endpoint fails once
	svc, _ := webhook.NewService(memstore.New(nil), &webhook.Config{Now: clock.Now, Doer: doer})
	_, _ = svc.Create(ctx, &webhook.Webhook{
		Name: "CRM", URL: "https://crm.example.com/hooks",
		Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent, Events: []string{"user.*"}}},
	})

	_ = signUp(ctx, svc, "ada@example.com")

	webhooktest.Drain(t, svc, &webhooktest.DrainConfig{Clock: clock}) // the retry comes due at once
	m := webhooktest.RequireDelivered(t, svc, "user.signed_up", func(m *webhooktest.Message) bool {
		return m.Data["email"] == "ada@example.com"
	})
	fmt.Println("delivered:", m.EventType, m.Data["plan"], "after", m.Delivery.Attempt, "attempts")
	fmt.Println("requests sent:", len(doer.Requests()))
	// Output:
	// delivered: user.signed_up free after 2 attempts
	// requests sent: 2
}

// A recording Doer answers without a network, with scripted statuses;
// 0 stands for a network error.
func ExampleDoer() {
	t := &exampleT{}
	defer t.done()
	ctx := context.Background()

	doer := &webhooktest.Doer{}
	doer.Respond(func(r *webhooktest.Request) int {
		if r.Message.Data["kind"] == "bad" {
			return http.StatusBadRequest
		}
		return http.StatusNoContent
	})
	svc, _ := webhook.NewService(memstore.New(nil), &webhook.Config{Doer: doer})
	_, _ = svc.Create(ctx, &webhook.Webhook{Name: "n", URL: "https://example.com/hooks", Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
	_, _ = svc.TriggerEvent(ctx, "note", map[string]any{"kind": "good"}, "production")

	webhooktest.Drain(t, svc, nil)
	for _, r := range doer.Requests() {
		fmt.Println(r.Method, r.URL, r.EventType(), r.Message.Data["kind"], "signed:", r.Header.Get("webhook-signature") != "")
	}
	// Output:
	// POST https://example.com/hooks note good signed: true
}

// A Receiver is a real endpoint that checks every signature.
func ExampleNewReceiver() {
	t := &exampleT{}
	defer t.done()
	ctx := context.Background()

	secret := webhooktest.NewSecret(t)
	rc := webhooktest.NewReceiver(t, secret)
	// The receiver is on loopback, which the library refuses by default.
	svc, _ := webhook.NewService(memstore.New(nil), &webhook.Config{Network: webhook.NetworkPolicy{AllowPrivate: true}})
	_, _ = svc.Create(ctx, &webhook.Webhook{Name: "r", URL: rc.URL, Secret: secret, Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
	_, _ = svc.TriggerEvent(ctx, "order.paid", map[string]any{"total": 42}, "production")

	webhooktest.Drain(t, svc, nil)
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	reqs, err := rc.WaitFor(wait, 1)
	if err != nil {
		panic(err)
	}
	fmt.Println(reqs[0].EventType(), reqs[0].Message.Data["total"], "signature ok:", reqs[0].VerifyErr == nil)
	// Output:
	// order.paid 42 signature ok: true
}

// Drain with a Clock sends every attempt a delivery gets: here all three
// fail.
func ExampleDrain() {
	t := &exampleT{}
	defer t.done()
	ctx := context.Background()

	clock := webhooktest.NewClock(time.Time{})
	doer := &webhooktest.Doer{}
	doer.Respond(webhooktest.Statuses(500))
	svc, _ := webhook.NewService(memstore.New(nil), &webhook.Config{Now: clock.Now, Doer: doer})
	_, _ = svc.Create(ctx, &webhook.Webhook{
		Name: "down", URL: "https://example.com/hooks",
		Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}},
		Retry:    webhook.RetryPolicy{MaxAttempts: 3, InitialDelay: time.Hour, MaxDelay: 24 * time.Hour, Multiplier: 2, DisableJitter: true},
	})
	_, _ = svc.TriggerEvent(ctx, "e", nil, "production")

	webhooktest.Drain(t, svc, &webhooktest.DrainConfig{Clock: clock})
	m := webhooktest.RequireEnqueued(t, svc, "e", nil)
	fmt.Println(m.Delivery.Status, "after", m.Delivery.Attempt, "attempts; the clock moved", clock.Now().Sub(webhooktest.DefaultClockStart()))
	webhooktest.RequireNotDelivered(t, svc, "e", nil)
	// Output:
	// failed after 3 attempts; the clock moved 3h0m0s
}

// RequireEnqueued checks what a call would send, before anything is sent.
func ExampleRequireEnqueued() {
	t := &exampleT{}
	defer t.done()
	ctx := context.Background()

	svc, _ := webhook.NewService(memstore.New(nil), &webhook.Config{Doer: &webhooktest.Doer{}})
	hook, _ := svc.Create(ctx, &webhook.Webhook{Name: "n", URL: "https://example.com/hooks", Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
	_ = signUp(ctx, svc, "grace@example.com")

	m := webhooktest.RequireEnqueued(t, svc, "user.signed_up", func(m *webhooktest.Message) bool {
		return m.WebhookID == hook.ID && m.Data["email"] == "grace@example.com"
	})
	fmt.Println(m.Delivery.Status, m.Environment)
	webhooktest.RequireNotEnqueued(t, svc, "user.deleted", nil)
	// Output:
	// pending production
}

// Stateful triggers (threshold, anomaly, scheduled) send from
// svc.Evaluate, which a running Worker calls periodically: in a test,
// move the Clock and call it yourself before asserting.
func ExampleRequireEnqueued_thresholdAlert() {
	t := &exampleT{}
	defer t.done()
	ctx := context.Background()

	clock := webhooktest.NewClock(time.Time{})
	svc, _ := webhook.NewService(memstore.New(nil), &webhook.Config{Now: clock.Now, Doer: &webhooktest.Doer{}})
	_, _ = svc.Create(ctx, &webhook.Webhook{Name: "on-call", URL: "https://pager.example.com/hooks",
		Triggers: []webhook.Trigger{{Type: webhook.TriggerThreshold, Conditions: []webhook.Condition{
			{Metric: "latency_ms", Operator: webhook.ConditionGT, Value: 500, WindowSeconds: 60, Aggregation: webhook.AggregateAvg, ForSeconds: 30},
		}}}})

	for _, v := range []float64{700, 900, 800} { // the code under test records its latencies
		_ = svc.RecordMetric(ctx, "latency_ms", v, time.Time{}, "production")
	}
	_ = svc.Evaluate(ctx) // the breach starts: pending for 30 s
	webhooktest.RequireNotEnqueued(t, svc, webhook.EventTypeThresholdAlert, nil)
	clock.Advance(30 * time.Second)
	_ = svc.Evaluate(ctx) // held for 30 s: it fires
	m := webhooktest.RequireEnqueued(t, svc, webhook.EventTypeThresholdAlert, nil)
	fmt.Println(m.Data["reason"], m.Data["metric"], m.Data["value"], ">", m.Data["threshold"])
	// Output:
	// fired latency_ms 800 > 500
}

// NewSignedRequest tests your own receiver: here, one behind the
// library's Verifier middleware.
func ExampleNewSignedRequest() {
	t := &exampleT{}
	defer t.done()

	secret := webhooktest.NewSecret(t)
	handler := (&webhook.Verifier{Secrets: []string{secret}}).Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		m, _ := webhooktest.DecodeMessage(body)
		fmt.Println("handled", m.EventType)
	}))

	body := []byte(`{"id":"msg_1","webhook_id":"wh_1","event_type":"invoice.paid","timestamp":"2030-01-01T00:00:00Z","data":{"amount":10},"environment":"production"}`)
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, webhooktest.NewSignedRequest(t, secret, "https://example.com/hooks", body, time.Time{}))
	fmt.Println(rec.Code)

	rec = httptest.NewRecorder()
	handler.ServeHTTP(rec, webhooktest.NewSignedRequest(t, webhooktest.NewSecret(t), "https://example.com/hooks", body, time.Time{}))
	fmt.Println(rec.Code, "with another secret")
	// Output:
	// handled invoice.paid
	// 200
	// 401 with another secret
}

// SignedHeaders gives the headers of a valid delivery.
func ExampleSignedHeaders() {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	h, _ := webhooktest.SignedHeaders(secret, "msg_1", at, []byte(`{"id":"msg_1"}`))
	fmt.Println(h.Get("webhook-id"), h.Get("webhook-timestamp"))
	v := webhook.Verifier{Secrets: []string{secret}, Now: func() time.Time { return at }}
	fmt.Println("verifies:", v.Verify(h, []byte(`{"id":"msg_1"}`)) == nil)
	// Output:
	// msg_1 1893456000
	// verifies: true
}

// A Clock stands still until the test moves it; pass its Now as
// webhook.Config.Now.
func ExampleClock() {
	c := webhooktest.NewClock(time.Date(2030, 1, 1, 9, 0, 0, 0, time.UTC))
	c.Advance(90 * time.Minute)
	fmt.Println(c.Now().Format(time.Kitchen))
	// Output:
	// 10:30AM
}
