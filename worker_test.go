package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
)

// received is one request a test receiver saw.
type received struct {
	header http.Header
	body   []byte
}

// receiver is a real HTTP endpoint that records requests and answers
// with respond (200 when nil).
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	requests []received
	got      chan received
	respond  func(n int, w http.ResponseWriter, r *http.Request)
}

func newReceiver(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	rc := &receiver{respond: respond, got: make(chan received, 10000)}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rq := received{header: r.Header.Clone(), body: body}
		rc.mu.Lock()
		rc.requests = append(rc.requests, rq)
		n := len(rc.requests)
		rc.mu.Unlock()
		rc.got <- rq
		if rc.respond != nil {
			rc.respond(n, w, r)
		}
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) all() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.requests...)
}

// loopbackOK is a service configuration that may reach test receivers.
var loopbackOK = &webhook.Config{Network: webhook.NetworkPolicy{AllowPrivate: true}}

type env struct {
	svc    *webhook.Service
	store  *memstore.Store
	clock  *fakeClock
	worker *webhook.Worker
}

func newEnv(t *testing.T, cfg *webhook.Config, wcfg *webhook.WorkerConfig) *env {
	t.Helper()
	e := &env{store: memstore.New(), clock: newFakeClock()}
	if cfg == nil {
		cfg = &webhook.Config{}
	}
	if cfg.Now == nil {
		cfg.Now = e.clock.Now
	}
	cfg.Network.AllowPrivate = true // the receivers are on loopback
	var err error
	e.svc, err = webhook.NewService(e.store, cfg)
	require.NoError(t, err)
	e.worker, err = webhook.NewWorker(e.svc, wcfg)
	require.NoError(t, err)
	return e
}

func (e *env) hook(t *testing.T, url string, mut ...func(*webhook.Webhook)) *webhook.Webhook {
	t.Helper()
	w := &webhook.Webhook{
		Name: "test", URL: url,
		Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}},
		Retry:    webhook.RetryPolicy{MaxAttempts: 3, InitialDelay: 5 * time.Second, MaxDelay: time.Hour, Multiplier: 2, DisableJitter: true},
	}
	for _, m := range mut {
		m(w)
	}
	w, err := e.svc.Create(t.Context(), w)
	require.NoError(t, err)
	return w
}

func (e *env) trigger(t *testing.T) []string {
	t.Helper()
	ids, err := e.svc.TriggerEvent(t.Context(), "purchase", map[string]any{"amount": 42}, "production")
	require.NoError(t, err)
	return ids
}

func (e *env) runOnce(t *testing.T) int {
	t.Helper()
	n, err := e.worker.RunOnce(t.Context())
	require.NoError(t, err)
	return n
}

func (e *env) delivery(t *testing.T, id string) *webhook.Delivery {
	t.Helper()
	d, err := e.svc.Delivery(t.Context(), id)
	require.NoError(t, err)
	return d
}

func TestDeliverSuccess(t *testing.T) {
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { io.WriteString(w, `{"ok":true}`) })
	e := newEnv(t, nil, nil)
	w := e.hook(t, rc.URL+"/hook?src=test", func(w *webhook.Webhook) { w.Headers = map[string]string{"Authorization": "Bearer t0k"} })
	ids := e.trigger(t)
	require.Len(t, ids, 1)
	require.Equal(t, 1, e.runOnce(t))

	reqs := rc.all()
	require.Len(t, reqs, 1)
	r := reqs[0]
	d := e.delivery(t, ids[0])
	pl, err := e.store.GetPayload(t.Context(), d.PayloadID)
	require.NoError(t, err)
	assert.Equal(t, string(pl.Body), string(r.body), "the stored body is sent byte for byte")
	assert.Equal(t, pl.ID, r.header.Get("webhook-id"))
	assert.Equal(t, w.ID, r.header.Get("X-Webhook-Id"))
	assert.Equal(t, d.ID, r.header.Get("X-Delivery-Id"))
	assert.Equal(t, "application/json", r.header.Get("Content-Type"))
	assert.Contains(t, r.header.Get("User-Agent"), "analytics-webhooks/")
	assert.Equal(t, "Bearer t0k", r.header.Get("Authorization"))
	assert.Empty(t, r.header.Get("X-Webhook-Signature"), "the hex scheme is opt-in")
	v := &webhook.Verifier{Secrets: []string{w.Secret}, Now: e.clock.Now}
	require.NoError(t, v.Verify(r.header, r.body), "a Standard Webhooks verifier accepts the request")
	assert.Equal(t, fmt.Sprint(e.clock.Now().Unix()), r.header.Get("webhook-timestamp"))

	assert.Equal(t, webhook.StatusDelivered, d.Status)
	assert.Equal(t, 1, d.Attempt)
	assert.Equal(t, 200, d.StatusCode)
	assert.Equal(t, `{"ok":true}`, d.ResponseBody)
	assert.False(t, d.CompletedAt.IsZero())
	require.Len(t, d.Attempts, 1)
	assert.Equal(t, 1, d.Attempts[0].Number)
	assert.Empty(t, d.Attempts[0].Error)
	assert.Equal(t, 0, e.runOnce(t), "nothing left to do")
}

func TestDeliverHexScheme(t *testing.T) {
	rc := newReceiver(t, nil)
	e := newEnv(t, nil, nil)
	w := e.hook(t, rc.URL, func(w *webhook.Webhook) { w.SignatureScheme = webhook.SchemeHex })
	e.trigger(t)
	e.runOnce(t)
	r := rc.all()[0]
	assert.Equal(t, webhook.SignHex(w.Secret, r.body), r.header.Get("X-Webhook-Signature"))
	require.NoError(t, (&webhook.Verifier{Secrets: []string{w.Secret}, Now: e.clock.Now}).Verify(r.header, r.body), "Standard Webhooks headers are sent too")
}

func TestRetryThenSuccess(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			http.Error(w, "db down", http.StatusInternalServerError)
		}
	})
	e := newEnv(t, nil, nil)
	e.hook(t, rc.URL)
	id := e.trigger(t)[0]
	start := e.clock.Now().UTC().Truncate(time.Microsecond)

	require.Equal(t, 1, e.runOnce(t))
	d := e.delivery(t, id)
	assert.Equal(t, webhook.StatusRetrying, d.Status)
	assert.Equal(t, 500, d.StatusCode)
	assert.Equal(t, "HTTP 500 Internal Server Error", d.Error)
	assert.Equal(t, start.Add(5*time.Second), d.NextAttemptAt, "the policy's first delay")

	e.clock.Advance(4 * time.Second)
	require.Equal(t, 0, e.runOnce(t), "not due before the delay")
	e.clock.Advance(time.Second)
	require.Equal(t, 1, e.runOnce(t))
	d = e.delivery(t, id)
	assert.Equal(t, webhook.StatusDelivered, d.Status)
	require.Len(t, d.Attempts, 2)
	assert.Equal(t, 500, d.Attempts[0].StatusCode)
	assert.Equal(t, "db down\n", d.Attempts[0].ResponseBody)
	assert.Equal(t, 200, d.Attempts[1].StatusCode)
	reqs := rc.all()
	assert.Equal(t, reqs[0].header.Get("webhook-id"), reqs[1].header.Get("webhook-id"), "the webhook-id is stable across retries")
	assert.NotEqual(t, reqs[0].header.Get("webhook-timestamp"), reqs[1].header.Get("webhook-timestamp"), "each attempt is signed anew")
}

func TestRetriesExhausted(t *testing.T) {
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	var failed []*webhook.Delivery
	var mu sync.Mutex
	e := newEnv(t, &webhook.Config{OnDeliveryFailed: func(_ context.Context, d *webhook.Delivery) {
		mu.Lock()
		defer mu.Unlock()
		failed = append(failed, d)
	}}, nil)
	e.hook(t, rc.URL)
	id := e.trigger(t)[0]
	var schedule []time.Duration
	prev := e.clock.Now().UTC().Truncate(time.Microsecond)
	for range 3 {
		require.Equal(t, 1, e.runOnce(t))
		d := e.delivery(t, id)
		if d.Status == webhook.StatusRetrying {
			schedule = append(schedule, d.NextAttemptAt.Sub(prev))
			e.clock.Advance(d.NextAttemptAt.Sub(e.clock.Now()))
			prev = d.NextAttemptAt
		}
	}
	assert.Equal(t, []time.Duration{5 * time.Second, 10 * time.Second}, schedule)
	d := e.delivery(t, id)
	assert.Equal(t, webhook.StatusFailed, d.Status, "failed for good after max_attempts")
	assert.Len(t, d.Attempts, 3)
	e.clock.Advance(24 * time.Hour)
	assert.Equal(t, 0, e.runOnce(t))
	require.Len(t, failed, 1)
	assert.Equal(t, id, failed[0].ID)
	assert.Equal(t, webhook.StatusFailed, failed[0].Status)
}

func TestGoneDisablesWebhook(t *testing.T) {
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) })
	disabled := make(chan *webhook.Webhook, 1)
	e := newEnv(t, &webhook.Config{OnWebhookDisabled: func(_ context.Context, w *webhook.Webhook) { disabled <- w }}, nil)
	w := e.hook(t, rc.URL)
	id := e.trigger(t)[0]
	e.runOnce(t)
	d := e.delivery(t, id)
	assert.Equal(t, webhook.StatusFailed, d.Status)
	assert.Len(t, d.Attempts, 1, "410 is not retried")
	got, err := e.svc.Get(t.Context(), w.ID)
	require.NoError(t, err)
	assert.True(t, got.Disabled)
	assert.Contains(t, got.DisabledReason, "410")
	hw := <-disabled
	assert.Equal(t, w.ID, hw.ID)
	assert.True(t, hw.Disabled)
	ids, err := e.svc.TriggerEvent(t.Context(), "purchase", nil, "")
	require.NoError(t, err)
	assert.Empty(t, ids, "a disabled webhook gets no new deliveries")
}

func TestAbortHeader(t *testing.T) {
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("webhook-delivery", "abort-message")
		w.WriteHeader(http.StatusUnprocessableEntity)
	})
	e := newEnv(t, nil, nil)
	w := e.hook(t, rc.URL)
	id := e.trigger(t)[0]
	e.runOnce(t)
	d := e.delivery(t, id)
	assert.Equal(t, webhook.StatusFailed, d.Status)
	assert.Contains(t, d.Error, "abort-message")
	got, err := e.svc.Get(t.Context(), w.ID)
	require.NoError(t, err)
	assert.False(t, got.Disabled, "abort stops one delivery, not the webhook")
}

func TestRedirectNotFollowed(t *testing.T) {
	target := newReceiver(t, nil)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusFound)
	})
	e := newEnv(t, nil, nil)
	e.hook(t, rc.URL)
	id := e.trigger(t)[0]
	e.runOnce(t)
	d := e.delivery(t, id)
	assert.Equal(t, webhook.StatusRetrying, d.Status)
	assert.Equal(t, 302, d.StatusCode)
	assert.Contains(t, d.Error, "redirects are not followed")
	assert.Empty(t, target.all(), "the redirect target is never contacted")
}

func TestHangingReceiverTimesOut(t *testing.T) {
	release := make(chan struct{})
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	e := newEnv(t, &webhook.Config{RequestTimeout: 200 * time.Millisecond}, nil)
	e.hook(t, rc.URL)
	id := e.trigger(t)[0]
	e.runOnce(t)
	d := e.delivery(t, id)
	assert.Equal(t, webhook.StatusRetrying, d.Status)
	assert.Equal(t, "request timed out after 200ms", d.Error)
	assert.Equal(t, 0, d.StatusCode)
}

func TestHugeResponseIsCapped(t *testing.T) {
	chunk := strings.Repeat("x", 64<<10)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		for range 160 { // 10 MiB
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
	})
	e := newEnv(t, &webhook.Config{MaxResponseBodyBytes: 1000}, nil)
	e.hook(t, rc.URL)
	id := e.trigger(t)[0]
	e.runOnce(t)
	d := e.delivery(t, id)
	assert.Equal(t, webhook.StatusDelivered, d.Status)
	assert.Len(t, d.ResponseBody, 1000, "only the configured prefix is kept")
	assert.Len(t, d.Attempts[0].ResponseBody, 1000)
}

func TestRetryAfterHonoured(t *testing.T) {
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	e := newEnv(t, nil, nil)
	e.hook(t, rc.URL)
	id := e.trigger(t)[0]
	start := e.clock.Now().UTC().Truncate(time.Microsecond)
	e.runOnce(t)
	d := e.delivery(t, id)
	assert.Equal(t, webhook.StatusRetrying, d.Status)
	assert.Equal(t, start.Add(120*time.Second), d.NextAttemptAt, "Retry-After beats the 5 s backoff")
}

func TestDeletedWebhookFailsWithoutHTTP(t *testing.T) {
	rc := newReceiver(t, nil)
	e := newEnv(t, nil, nil)
	w := e.hook(t, rc.URL)
	id := e.trigger(t)[0]
	require.NoError(t, e.svc.Delete(t.Context(), w.ID))
	e.runOnce(t)
	d := e.delivery(t, id)
	assert.Equal(t, webhook.StatusFailed, d.Status)
	assert.Contains(t, d.Error, "deleted")
	assert.Empty(t, rc.all())
}

func TestDisabledWebhookFailsWithoutHTTP(t *testing.T) {
	rc := newReceiver(t, nil)
	e := newEnv(t, nil, nil)
	w := e.hook(t, rc.URL)
	id := e.trigger(t)[0]
	w.Disabled = true
	_, err := e.svc.Update(t.Context(), w)
	require.NoError(t, err)
	e.runOnce(t)
	d := e.delivery(t, id)
	assert.Equal(t, webhook.StatusFailed, d.Status)
	assert.Contains(t, d.Error, "disabled")
	assert.Empty(t, rc.all())
}

func TestCrashedWorkerLeaseIsReclaimed(t *testing.T) {
	rc := newReceiver(t, nil)
	e := newEnv(t, nil, &webhook.WorkerConfig{LeaseDuration: time.Minute})
	e.hook(t, rc.URL)
	ids := append(e.trigger(t), e.trigger(t)...)

	// A worker claims both and dies without recording anything.
	cs, err := e.store.ClaimDeliveries(t.Context(), webhook.ClaimParams{WorkerID: "crashed", Limit: 10, LeaseDuration: time.Minute, Now: e.clock.Now()})
	require.NoError(t, err)
	require.Len(t, cs, 2)
	require.Equal(t, 0, e.runOnce(t), "leased deliveries wait for their lease")

	e.clock.Advance(time.Minute)
	require.Equal(t, 2, e.runOnce(t))
	for _, id := range ids {
		d := e.delivery(t, id)
		assert.Equal(t, webhook.StatusDelivered, d.Status)
		require.Len(t, d.Attempts, 2)
		assert.Contains(t, d.Attempts[0].Error, "lease")
		assert.Equal(t, 2, d.Attempts[1].Number)
	}
	// The crashed worker's late result is refused.
	err = e.store.RecordAttempt(t.Context(), webhook.RecordAttemptParams{DeliveryID: cs[0].Delivery.ID, Token: cs[0].Lease.Token, Status: webhook.StatusFailed, Now: e.clock.Now()})
	require.ErrorIs(t, err, webhook.ErrLeaseLost)
}

func TestCrashLoopStopsAtMaxAttempts(t *testing.T) {
	rc := newReceiver(t, nil)
	e := newEnv(t, nil, &webhook.WorkerConfig{LeaseDuration: time.Minute})
	e.hook(t, rc.URL) // MaxAttempts 3
	id := e.trigger(t)[0]
	for range 3 { // three workers die mid-attempt
		cs, err := e.store.ClaimDeliveries(t.Context(), webhook.ClaimParams{WorkerID: "dies", Limit: 1, LeaseDuration: time.Minute, Now: e.clock.Now()})
		require.NoError(t, err)
		require.Len(t, cs, 1)
		e.clock.Advance(time.Minute)
	}
	e.runOnce(t)
	d := e.delivery(t, id)
	assert.Equal(t, webhook.StatusFailed, d.Status)
	assert.Contains(t, d.Error, "all 3 attempts are used")
	assert.Empty(t, rc.all(), "a fourth attempt is never sent")
}

func TestStoppedWorkerHandsOver(t *testing.T) {
	// The first attempt of every delivery hangs until the worker is
	// stopped; its shutdown timeout aborts it, and a second worker
	// completes every delivery.
	var first sync.Map
	started := make(chan struct{}, 100)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if _, seen := first.LoadOrStore(r.Header.Get("webhook-id"), true); !seen {
			started <- struct{}{}
			<-r.Context().Done()
		}
	})
	store := memstore.New()
	svc, err := webhook.NewService(store, loopbackOK)
	require.NoError(t, err)
	// One attempt only: an aborted attempt must not use it up.
	_, err = svc.Create(t.Context(), &webhook.Webhook{Name: "w", URL: rc.URL, Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}, Retry: webhook.RetryPolicy{MaxAttempts: 1}})
	require.NoError(t, err)
	const n = 5
	var ids []string
	for range n {
		got, err := svc.TriggerEvent(t.Context(), "e", nil, "")
		require.NoError(t, err)
		ids = append(ids, got...)
	}

	w1, err := webhook.NewWorker(svc, &webhook.WorkerConfig{MaxPerWebhook: n, ShutdownTimeout: 50 * time.Millisecond})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan error)
	go func() { stopped <- w1.Run(ctx) }()
	for range n {
		<-started
	}
	cancel()
	require.NoError(t, <-stopped, "Run returns after aborting its attempts")

	w2, err := webhook.NewWorker(svc, nil)
	require.NoError(t, err)
	_, err = w2.RunOnce(t.Context())
	require.NoError(t, err)
	byID := map[string][]string{}
	for _, r := range rc.all() {
		byID[r.header.Get("webhook-id")] = append(byID[r.header.Get("webhook-id")], r.header.Get("X-Delivery-Id"))
	}
	assert.Len(t, byID, n)
	for _, id := range ids {
		d, err := svc.Delivery(t.Context(), id)
		require.NoError(t, err)
		assert.Equal(t, webhook.StatusDelivered, d.Status, "none lost")
		require.Len(t, d.Attempts, 1, "an attempt aborted by shutdown is handed back, not counted")
		assert.Equal(t, 1, d.Attempts[0].Number)
	}
	for wid, dids := range byID {
		assert.Len(t, dids, 2, "webhook-id %s: a duplicate carries the same webhook-id", wid)
		assert.Equal(t, dids[0], dids[1])
	}
}

func TestRunWakesOnEnqueue(t *testing.T) {
	rc := newReceiver(t, nil)
	store := memstore.New()
	svc, err := webhook.NewService(store, loopbackOK)
	require.NoError(t, err)
	_, err = svc.Create(t.Context(), &webhook.Webhook{Name: "w", URL: rc.URL, Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
	require.NoError(t, err)
	w, err := webhook.NewWorker(svc, &webhook.WorkerConfig{PollInterval: time.Hour})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan error)
	go func() { stopped <- w.Run(ctx) }()
	defer func() { cancel(); require.NoError(t, <-stopped) }()

	// The first poll happens at start; after that only a notification
	// can wake the worker within the hour.
	for i := range 3 {
		_, err := svc.TriggerEvent(t.Context(), "e", map[string]any{"i": i}, "")
		require.NoError(t, err)
		<-rc.got
	}
	_, err = webhook.NewWorker(svc, nil)
	require.NoError(t, err)
	require.ErrorIs(t, w.Run(t.Context()), webhook.ErrWorkerRunning)
	_, err = w.RunOnce(t.Context())
	require.ErrorIs(t, err, webhook.ErrWorkerRunning)
}

func TestHangingEndpointDoesNotStallOthers(t *testing.T) {
	release := make(chan struct{})
	var hanging atomic.Int32
	slow := newReceiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) {
		hanging.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	const healthyHooks, perHook = 10, 100
	var delivered atomic.Int32
	done := make(chan struct{})
	fast := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		if delivered.Add(1) == healthyHooks*perHook {
			close(done)
		}
	})
	store := memstore.New()
	svc, err := webhook.NewService(store, loopbackOK)
	require.NoError(t, err)
	ctx := t.Context()
	_, err = svc.Create(ctx, &webhook.Webhook{Name: "slow", URL: slow.URL, Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent, Events: []string{"slow"}}}})
	require.NoError(t, err)
	for i := range healthyHooks {
		_, err = svc.Create(ctx, &webhook.Webhook{Name: fmt.Sprint("fast", i), URL: fast.URL, Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent, Events: []string{"fast"}}}})
		require.NoError(t, err)
	}
	// The hanging endpoint's deliveries come first in the queue.
	for range 50 {
		_, err := svc.TriggerEvent(ctx, "slow", nil, "")
		require.NoError(t, err)
	}
	for range perHook {
		_, err := svc.TriggerEvent(ctx, "fast", nil, "")
		require.NoError(t, err)
	}

	w, err := webhook.NewWorker(svc, &webhook.WorkerConfig{Concurrency: 16, MaxPerWebhook: 4, ShutdownTimeout: time.Millisecond})
	require.NoError(t, err)
	runCtx, cancel := context.WithCancel(ctx)
	stopped := make(chan error)
	go func() { stopped <- w.Run(runCtx) }()
	<-done // every healthy delivery arrived while the slow endpoint hangs
	assert.LessOrEqual(t, hanging.Load(), int32(4), "at most MaxPerWebhook attempts tie up the slow endpoint")
	close(release)
	cancel()
	require.NoError(t, <-stopped)
}

func TestTestSend(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 2 {
			w.WriteHeader(http.StatusBadGateway)
		}
	})
	e := newEnv(t, nil, nil)
	w := e.hook(t, rc.URL)
	d, err := e.svc.Test(t.Context(), w.ID)
	require.NoError(t, err)
	assert.Equal(t, webhook.StatusDelivered, d.Status)
	assert.Equal(t, "$test", d.EventType)
	require.Len(t, d.Attempts, 1)
	r := rc.all()[0]
	var body map[string]any
	require.NoError(t, json.Unmarshal(r.body, &body))
	assert.Equal(t, "$test", body["event_type"])
	assert.Equal(t, "test", body["environment"])
	assert.Equal(t, map[string]any{"message": "This is a test webhook delivery", "webhook_name": "test"}, body["data"])
	require.NoError(t, (&webhook.Verifier{Secrets: []string{w.Secret}, Now: e.clock.Now}).Verify(r.header, r.body))

	d, err = e.svc.Test(t.Context(), w.ID)
	require.NoError(t, err, "a failing endpoint is a failed delivery, not an error")
	assert.Equal(t, webhook.StatusFailed, d.Status)
	assert.Equal(t, 502, d.StatusCode)
	e.clock.Advance(24 * time.Hour)
	assert.Equal(t, 0, e.runOnce(t), "a test send is never retried")
	assert.Len(t, rc.all(), 2)

	_, err = e.svc.Test(t.Context(), "00000000-0000-0000-0000-000000000000")
	require.ErrorIs(t, err, webhook.ErrNotFound)
}

func TestRedeliverAndReplay(t *testing.T) {
	fail := atomic.Bool{}
	fail.Store(true)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		if fail.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	e := newEnv(t, nil, nil)
	w := e.hook(t, rc.URL, func(w *webhook.Webhook) { w.Retry.MaxAttempts = 1 })
	var ids []string
	for range 3 {
		ids = append(ids, e.trigger(t)...)
	}
	pending := e.trigger(t)[0]
	_, err := e.svc.Redeliver(t.Context(), pending)
	require.ErrorIs(t, err, webhook.ErrInvalid, "an unfinished delivery cannot be redelivered")
	e.runOnce(t)
	for _, id := range ids {
		require.Equal(t, webhook.StatusFailed, e.delivery(t, id).Status)
	}

	fail.Store(false)
	again, err := e.svc.Redeliver(t.Context(), ids[0])
	require.NoError(t, err)
	require.NotEqual(t, ids[0], again)
	e.runOnce(t)
	assert.Equal(t, webhook.StatusDelivered, e.delivery(t, again).Status)
	var firstID string
	for _, r := range rc.all() {
		if r.header.Get("X-Delivery-Id") == ids[0] {
			firstID = r.header.Get("webhook-id")
		}
	}
	reqs := rc.all()
	assert.Equal(t, firstID, reqs[len(reqs)-1].header.Get("webhook-id"), "a redelivery keeps the webhook-id")
	assert.Equal(t, again, reqs[len(reqs)-1].header.Get("X-Delivery-Id"))

	e.clock.Advance(time.Second)
	replayed, err := e.svc.ReplayFailed(t.Context(), w.ID, time.Time{})
	require.NoError(t, err)
	assert.Len(t, replayed, 4, "every failed delivery is queued again")
	e.runOnce(t)
	for _, id := range replayed {
		assert.Equal(t, webhook.StatusDelivered, e.delivery(t, id).Status)
	}
	none, err := e.svc.ReplayFailed(t.Context(), w.ID, e.clock.Now().Add(time.Hour))
	require.NoError(t, err)
	assert.Empty(t, none)

	w, err = e.svc.Get(t.Context(), w.ID)
	require.NoError(t, err)
	w.Disabled = true
	_, err = e.svc.Update(t.Context(), w)
	require.NoError(t, err)
	_, err = e.svc.Redeliver(t.Context(), ids[1])
	require.ErrorIs(t, err, webhook.ErrInvalid)
}

func TestRotateSecret(t *testing.T) {
	rc := newReceiver(t, nil)
	e := newEnv(t, &webhook.Config{SecretRotationGrace: time.Hour}, nil)
	w := e.hook(t, rc.URL)
	old := w.Secret
	rotated, err := e.svc.RotateSecret(t.Context(), w.ID)
	require.NoError(t, err)
	require.NotEqual(t, old, rotated.Secret)
	require.Len(t, rotated.PreviousSecrets, 1)

	e.trigger(t)
	e.runOnce(t)
	r := rc.all()[0]
	assert.Len(t, strings.Fields(r.header.Get("webhook-signature")), 2, "one signature per active secret")
	for _, s := range []string{old, rotated.Secret} {
		require.NoError(t, (&webhook.Verifier{Secrets: []string{s}, Now: e.clock.Now}).Verify(r.header, r.body))
	}

	e.clock.Advance(time.Hour)
	e.trigger(t)
	e.runOnce(t)
	r = rc.all()[1]
	assert.Len(t, strings.Fields(r.header.Get("webhook-signature")), 1, "the old secret stops after the grace period")
	require.ErrorIs(t, (&webhook.Verifier{Secrets: []string{old}, Now: e.clock.Now}).Verify(r.header, r.body), webhook.ErrNoMatchingSignature)
	_, err = e.svc.RotateSecret(t.Context(), "00000000-0000-0000-0000-000000000000")
	require.ErrorIs(t, err, webhook.ErrNotFound)
}

func TestWorkerConfigErrors(t *testing.T) {
	svc, err := webhook.NewService(memstore.New(), nil)
	require.NoError(t, err)
	_, err = webhook.NewWorker(nil, nil)
	require.ErrorIs(t, err, webhook.ErrInvalid)
	_, err = webhook.NewWorker(svc, &webhook.WorkerConfig{Concurrency: -1})
	require.ErrorIs(t, err, webhook.ErrInvalid)
	_, err = webhook.NewWorker(svc, &webhook.WorkerConfig{LeaseDuration: 30 * time.Second})
	require.ErrorIs(t, err, webhook.ErrInvalid, "a lease shorter than the request timeout is refused")
	w, err := webhook.NewWorker(svc, nil)
	require.NoError(t, err)
	assert.NotEmpty(t, w.ID())
}

func TestInterruptedTestSendIsNotRetried(t *testing.T) {
	rc := newReceiver(t, nil)
	e := newEnv(t, nil, &webhook.WorkerConfig{LeaseDuration: time.Minute})
	w := e.hook(t, rc.URL)
	// What Test stores before it sends; then the process dies.
	now := e.clock.Now()
	pl := &webhook.Payload{ID: "00000000-0000-7000-8000-0000000000a1", WebhookID: w.ID, EventType: "$test", Environment: "test", Timestamp: now, Body: []byte(`{}`)}
	d := &webhook.Delivery{ID: "00000000-0000-7000-8000-0000000000a2", WebhookID: w.ID, PayloadID: pl.ID, EventType: "$test", Status: webhook.StatusDelivering, Attempt: 1, NextAttemptAt: now, CreatedAt: now}
	_, err := e.store.Enqueue(t.Context(), webhook.EnqueueParams{Payloads: []*webhook.Payload{pl}, Deliveries: []*webhook.Delivery{d}, Lease: &webhook.Lease{Token: "t", ExpiresAt: now.Add(time.Minute)}, Now: now})
	require.NoError(t, err)
	e.clock.Advance(time.Minute)
	e.runOnce(t)
	got := e.delivery(t, d.ID)
	assert.Equal(t, webhook.StatusFailed, got.Status)
	assert.Contains(t, got.Error, "never retried")
	assert.Empty(t, rc.all())
}

func TestRunOnceLeasesFromTheCurrentTime(t *testing.T) {
	// Each attempt takes (fake) minutes: later claims of the same run
	// must still get a full lease and be sent.
	var clock *fakeClock
	rc := newReceiver(t, func(int, http.ResponseWriter, *http.Request) { clock.Advance(2 * time.Minute) })
	e := newEnv(t, nil, &webhook.WorkerConfig{LeaseDuration: time.Minute, MaxPerWebhook: 1})
	clock = e.clock
	e.hook(t, rc.URL)
	var ids []string
	for range 3 {
		ids = append(ids, e.trigger(t)...)
	}
	assert.Equal(t, 3, e.runOnce(t))
	for _, id := range ids {
		d := e.delivery(t, id)
		assert.Equal(t, webhook.StatusDelivered, d.Status)
		assert.Len(t, d.Attempts, 1)
	}
	assert.Len(t, rc.all(), 3)
}

// slowClaimStore makes its first claim take (fake) time, so that the
// lease is nearly over when the worker gets it.
type slowClaimStore struct {
	webhook.Storage
	clock *fakeClock
	once  sync.Once
}

func (s *slowClaimStore) ClaimDeliveries(ctx context.Context, p webhook.ClaimParams) ([]*webhook.Claim, error) {
	cs, err := s.Storage.ClaimDeliveries(ctx, p)
	if len(cs) > 0 {
		s.once.Do(func() { s.clock.Advance(p.LeaseDuration - time.Second) })
	}
	return cs, err
}

func TestShortLeaseIsHandedBack(t *testing.T) {
	rc := newReceiver(t, nil)
	clock := newFakeClock()
	store := memstore.New()
	svc, err := webhook.NewService(&slowClaimStore{Storage: store, clock: clock}, &webhook.Config{Now: clock.Now, Network: webhook.NetworkPolicy{AllowPrivate: true}})
	require.NoError(t, err)
	w, err := webhook.NewWorker(svc, &webhook.WorkerConfig{LeaseDuration: time.Minute})
	require.NoError(t, err)
	_, err = svc.Create(t.Context(), &webhook.Webhook{Name: "w", URL: rc.URL, Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
	require.NoError(t, err)
	ids, err := svc.TriggerEvent(t.Context(), "e", nil, "")
	require.NoError(t, err)

	n, err := w.RunOnce(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	d, err := svc.Delivery(t.Context(), ids[0])
	require.NoError(t, err)
	assert.Equal(t, webhook.StatusDelivered, d.Status, "handed back, claimed again, sent")
	assert.Equal(t, 1, d.Attempt, "the handed-back claim did not count")
	assert.Len(t, d.Attempts, 1)
	assert.Len(t, rc.all(), 1, "nothing was sent on the nearly expired lease")
}

func TestCyclicFilterValueIsRefused(t *testing.T) {
	svc, _, _ := newService(t)
	m := map[string]any{}
	m["self"] = m
	_, err := svc.Create(t.Context(), &webhook.Webhook{Name: "n", URL: "https://example.com", Triggers: []webhook.Trigger{{
		Type: webhook.TriggerEvent, Filters: []webhook.Filter{{Property: "p", Operator: "equals", Value: m}},
	}}})
	require.ErrorIs(t, err, webhook.ErrInvalid)
	_, err = svc.TriggerEvent(t.Context(), "e", map[string]any{"m": m}, "")
	require.ErrorIs(t, err, webhook.ErrInvalid)
}
