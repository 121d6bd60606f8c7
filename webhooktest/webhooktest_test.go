package webhooktest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
	"github.com/analytics-webhooks/webhook/webhooktest"
)

// recordingT is a testing.TB whose failures are recorded instead of
// failing the test, to test that the helpers fail when they should.
type recordingT struct {
	testing.TB
	mu       sync.Mutex
	failures []string
}

func (r *recordingT) Helper() {}

func (r *recordingT) Fatalf(format string, args ...any) { r.Errorf(format, args...) }

func (r *recordingT) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

func (r *recordingT) failed() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.failures...)
}

// setup returns a Service over memstore that sends through doer (nil:
// a new Doer) on clock, and a webhook for every event.
func setup(t *testing.T, doer webhook.Doer) (*webhook.Service, *webhooktest.Clock, *webhook.Webhook) {
	t.Helper()
	clock := webhooktest.NewClock(time.Time{})
	if doer == nil {
		doer = &webhooktest.Doer{}
	}
	svc, err := webhook.NewService(memstore.New(nil), &webhook.Config{Now: clock.Now, Doer: doer, Network: webhook.NetworkPolicy{AllowPrivate: true}})
	if err != nil {
		t.Fatal(err)
	}
	w, err := svc.Create(t.Context(), &webhook.Webhook{
		Name: "orders", URL: "https://example.com/hooks",
		Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}},
		Retry:    webhook.RetryPolicy{MaxAttempts: 3, InitialDelay: time.Minute, MaxDelay: time.Hour, Multiplier: 2, DisableJitter: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc, clock, w
}

func trigger(t *testing.T, svc *webhook.Service, eventType string, data map[string]any) {
	t.Helper()
	if _, err := svc.TriggerEvent(t.Context(), eventType, data, "production"); err != nil {
		t.Fatal(err)
	}
}

func TestDoerRecordsAndScripts(t *testing.T) {
	doer := &webhooktest.Doer{}
	doer.Respond(webhooktest.Statuses(500, 0, 201))
	svc, clock, w := setup(t, doer)
	trigger(t, svc, "order.created", map[string]any{"order_id": "o_1"})

	if n := webhooktest.Drain(t, svc, nil); n != 1 {
		t.Fatalf("Drain without a clock settled %d, want the 1 attempt due now", n)
	}
	if got := len(doer.Requests()); got != 1 {
		t.Fatalf("%d requests after one drain, want 1", got)
	}
	webhooktest.Drain(t, svc, &webhooktest.DrainConfig{Clock: clock})
	reqs := doer.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3 (500, network error, 201)", len(reqs))
	}
	first := reqs[0]
	if first.Method != http.MethodPost || first.URL != w.URL || first.Message == nil {
		t.Fatalf("request %+v", first)
	}
	if first.Message.EventType != "order.created" || first.Message.Data["order_id"] != "o_1" || first.Message.WebhookID != w.ID {
		t.Fatalf("message %+v", first.Message)
	}
	signedAt := func() time.Time { return webhooktest.DefaultClockStart() }
	if err := (&webhook.Verifier{Secrets: []string{w.Secret}, Now: signedAt}).Verify(first.Header, first.Body); err != nil {
		t.Fatalf("the recorded request is not the signed one: %v", err)
	}
	if reqs[1].Message.ID != first.Message.ID {
		t.Fatal("a retry sends the same message")
	}
	m := webhooktest.RequireDelivered(t, svc, "order.created", nil)
	if m.Delivery.Attempt != 3 {
		t.Fatalf("delivered after %d attempts, want 3", m.Delivery.Attempt)
	}
	if clock.Now().Before(webhooktest.DefaultClockStart().Add(3 * time.Minute)) {
		t.Fatalf("the clock moved to %v only; the retries were 1 and 2 minutes apart", clock.Now())
	}
	doer.Reset()
	if len(doer.Requests()) != 0 {
		t.Fatal("Reset keeps requests")
	}
}

func TestDoerHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://example.com", nil)
	if _, err := (&webhooktest.Doer{}).Do(req); !errors.Is(err, context.Canceled) {
		t.Fatalf("Do with a canceled context: %v", err)
	}
}

func TestDrainGivesUpAfterMaxRounds(t *testing.T) {
	doer := &webhooktest.Doer{}
	doer.Respond(webhooktest.Statuses(500))
	svc, clock, w := setup(t, doer)
	w.Retry.MaxAttempts = 50
	if _, err := svc.Update(t.Context(), w); err != nil {
		t.Fatal(err)
	}
	trigger(t, svc, "e", nil)
	rt := &recordingT{TB: t}
	webhooktest.Drain(rt, svc, &webhooktest.DrainConfig{Clock: clock, MaxRounds: 3})
	if f := rt.failed(); len(f) != 1 || !strings.Contains(f[0], "still pending or retrying after moving the clock 3 times") {
		t.Fatalf("failures %q", f)
	}
	if n := len(doer.Requests()); n != 4 {
		t.Fatalf("%d attempts, want 4 (one, then one per round)", n)
	}

	rt = &recordingT{TB: t}
	if n := webhooktest.Drain(rt, svc, &webhooktest.DrainConfig{MaxRounds: -1}); n != 0 || len(rt.failed()) != 1 {
		t.Fatalf("a negative MaxRounds: settled %d, failures %q", n, rt.failed())
	}
}

// plainStore hides memstore's optional interfaces.
type plainStore struct{ webhook.Storage }

func TestDrainWithClockNeedsQueueStats(t *testing.T) {
	clock := webhooktest.NewClock(time.Time{})
	svc, err := webhook.NewService(plainStore{memstore.New(nil)}, &webhook.Config{Now: clock.Now, Doer: &webhooktest.Doer{}})
	if err != nil {
		t.Fatal(err)
	}
	rt := &recordingT{TB: t}
	webhooktest.Drain(rt, svc, &webhooktest.DrainConfig{Clock: clock})
	if f := rt.failed(); len(f) != 1 || !strings.Contains(f[0], "QueueStatsReader") {
		t.Fatalf("failures %q", f)
	}
}

func TestRequire(t *testing.T) {
	doer := &webhooktest.Doer{}
	svc, clock, _ := setup(t, doer)
	trigger(t, svc, "order.created", map[string]any{"order_id": "o_1"})
	trigger(t, svc, "order.created", map[string]any{"order_id": "o_2"})
	trigger(t, svc, "user.deleted", map[string]any{"user": "u_1"})
	isOrder := func(id string) func(*webhooktest.Message) bool {
		return func(m *webhooktest.Message) bool { return m.Data["order_id"] == id }
	}

	m := webhooktest.RequireEnqueued(t, svc, "order.created", nil)
	if m.Data["order_id"] != "o_2" || m.Delivery.Status != webhook.StatusPending {
		t.Fatalf("RequireEnqueued returned %+v (%s), want the latest, o_2", m.Data, m.Delivery.Status)
	}
	webhooktest.RequireEnqueued(t, svc, "order.created", isOrder("o_1"))
	webhooktest.RequireNotEnqueued(t, svc, "order.created", isOrder("o_3"))
	webhooktest.RequireNotDelivered(t, svc, "", nil)

	rt := &recordingT{TB: t}
	webhooktest.RequireDelivered(rt, svc, "order.created", isOrder("o_1"))
	if f := rt.failed(); len(f) != 1 || !strings.Contains(f[0], `no delivered message of event type "order.created" matched; found 2 × order.created (pending)`) {
		t.Fatalf("failures %q", f)
	}

	webhooktest.Drain(t, svc, &webhooktest.DrainConfig{Clock: clock})
	webhooktest.RequireDelivered(t, svc, "order.created", isOrder("o_1"))
	webhooktest.RequireDelivered(t, svc, "", func(m *webhooktest.Message) bool { return m.Data["user"] == "u_1" })

	rt = &recordingT{TB: t}
	webhooktest.RequireNotDelivered(rt, svc, "user.deleted", nil)
	webhooktest.RequireNotEnqueued(rt, svc, "order.created", isOrder("o_2"))
	webhooktest.RequireEnqueued(rt, svc, "order.shipped", nil)
	f := rt.failed()
	if len(f) != 3 || !strings.Contains(f[0], `want no delivered message of event type "user.deleted" that matches, found delivery`) ||
		!strings.Contains(f[1], "map[order_id:o_2]") || !strings.Contains(f[2], "there are none") {
		t.Fatalf("failures %q", f)
	}

	all := webhooktest.Messages(t, svc, "order.created")
	if len(all) != 2 || all[0].Data["order_id"] != "o_1" || all[1].Data["order_id"] != "o_2" {
		t.Fatalf("Messages: %d, want o_1 then o_2", len(all))
	}
	if n := len(webhooktest.Messages(t, svc, "")); n != 3 {
		t.Fatalf("Messages of every type: %d, want 3", n)
	}
}

func TestReceiverVerifies(t *testing.T) {
	clock := webhooktest.NewClock(time.Time{})
	secret := webhooktest.NewSecret(t)
	rt := &recordingT{TB: t}
	rc := webhooktest.NewReceiver(rt, secret)
	rc.SetNow(clock.Now)
	rc.Respond(webhooktest.Statuses(503, 204))
	svc, err := webhook.NewService(memstore.New(nil), &webhook.Config{Now: clock.Now, Network: webhook.NetworkPolicy{AllowPrivate: true}})
	if err != nil {
		t.Fatal(err)
	}
	good, err := svc.Create(t.Context(), &webhook.Webhook{Name: "good", URL: rc.URL + "/good", Secret: secret, Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent, Events: []string{"order.*"}}}})
	if err != nil {
		t.Fatal(err)
	}
	trigger(t, svc, "order.created", map[string]any{"order_id": "o_1"})
	webhooktest.Drain(t, svc, &webhooktest.DrainConfig{Clock: clock})

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	reqs, err := rc.WaitFor(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reqs {
		if r.VerifyErr != nil || r.Message.WebhookID != good.ID || r.EventType() != "order.created" {
			t.Fatalf("request %+v", r)
		}
	}
	webhooktest.RequireDelivered(t, svc, "order.created", nil)
	if f := rt.failed(); len(f) != 0 {
		t.Fatalf("failures %q", f)
	}

	// A webhook signing with another secret fails the test.
	if _, err := svc.Create(t.Context(), &webhook.Webhook{Name: "other", URL: rc.URL + "/other", Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent, Events: []string{"user.*"}}}}); err != nil {
		t.Fatal(err)
	}
	trigger(t, svc, "user.created", nil)
	webhooktest.Drain(t, svc, nil)
	reqs = rc.Requests()
	last := reqs[len(reqs)-1]
	if !errors.Is(last.VerifyErr, webhook.ErrNoMatchingSignature) {
		t.Fatalf("VerifyErr %v", last.VerifyErr)
	}
	if f := rt.failed(); len(f) != 1 || !strings.Contains(f[0], "failed signature verification") {
		t.Fatalf("failures %q", f)
	}
	webhooktest.RequireNotDelivered(t, svc, "user.created", nil)

	ctx, cancel = context.WithTimeout(t.Context(), time.Millisecond)
	defer cancel()
	if got, err := rc.WaitFor(ctx, 10); !errors.Is(err, context.DeadlineExceeded) || len(got) != 3 {
		t.Fatalf("WaitFor past its deadline: %d, %v", len(got), err)
	}
}

func TestReceiverWithoutSecret(t *testing.T) {
	rt := &recordingT{TB: t}
	rc := webhooktest.NewReceiver(rt, "")
	resp, err := http.Post(rc.URL, "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || len(rt.failed()) != 1 || !strings.Contains(rt.failed()[0], "no secret") {
		t.Fatalf("status %d, failures %q", resp.StatusCode, rt.failed())
	}
}

func TestSignedRequest(t *testing.T) {
	secret := webhooktest.NewSecret(t)
	var got []byte
	handler := (&webhook.Verifier{Secrets: []string{secret}}).Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m, err := webhooktest.DecodeMessage(mustRead(t, r))
		if err != nil {
			t.Error(err)
		}
		got = []byte(m.EventType)
		if r.Header.Get(webhook.HeaderMessageID) != m.ID {
			t.Errorf("webhook-id %q, message id %q", r.Header.Get(webhook.HeaderMessageID), m.ID)
		}
	}))
	body := []byte(`{"id":"msg_1","webhook_id":"w","event_type":"order.created","timestamp":"2030-01-01T00:00:00Z","data":{},"environment":"production"}`)
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, webhooktest.NewSignedRequest(t, secret, "https://example.com/hook", body, time.Time{}))
	if rec.Code != http.StatusOK || string(got) != "order.created" {
		t.Fatalf("status %d, event %q", rec.Code, got)
	}

	rec = httptest.NewRecorder()
	handler.ServeHTTP(rec, webhooktest.NewSignedRequest(t, webhooktest.NewSecret(t), "https://example.com/hook", body, time.Time{}))
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("another secret's signature: status %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	handler.ServeHTTP(rec, webhooktest.NewSignedRequest(t, secret, "https://example.com/hook", []byte("not json"), time.Now().Add(-time.Hour)))
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("an old signature: status %d", rec.Code)
	}

	if _, err := webhooktest.SignedHeaders("not a secret", "m", time.Now(), body); !errors.Is(err, webhook.ErrInvalid) {
		t.Fatalf("SignedHeaders with a bad secret: %v", err)
	}
	rt := &recordingT{TB: t}
	if r := webhooktest.NewSignedRequest(rt, "bad", "https://example.com", body, time.Time{}); r != nil || len(rt.failed()) != 1 {
		t.Fatalf("NewSignedRequest with a bad secret: %v, %q", r, rt.failed())
	}
}

func mustRead(t *testing.T, r *http.Request) []byte {
	t.Helper()
	var b strings.Builder
	buf := make([]byte, 512)
	for {
		n, err := r.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return []byte(b.String())
}

func TestClock(t *testing.T) {
	c := webhooktest.NewClock(time.Time{})
	if !c.Now().Equal(webhooktest.DefaultClockStart()) {
		t.Fatalf("zero start: %v", c.Now())
	}
	c.Advance(time.Hour)
	if !c.Now().Equal(webhooktest.DefaultClockStart().Add(time.Hour)) {
		t.Fatalf("after Advance: %v", c.Now())
	}
	at := time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)
	c.Set(at)
	if !c.Now().Equal(at) || !webhooktest.NewClock(at).Now().Equal(at) {
		t.Fatal("Set or a given start")
	}
}
