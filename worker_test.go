package webhook_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
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

// waitTimeout bounds every wait in the tests, so that a broken worker
// fails a test instead of hanging it.
const waitTimeout = 30 * time.Second

// recv returns the next value from ch, failing the test if none comes
// within waitTimeout. It must run on the test goroutine.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
	}
	var zero T
	return zero
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
	e := &env{store: memstore.New(nil), clock: newFakeClock()}
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
			select { // until the worker aborts the request
			case <-r.Context().Done():
			case <-time.After(waitTimeout):
			}
		}
	})
	store := memstore.New(nil)
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

	w1, err := webhook.NewWorker(svc, &webhook.WorkerConfig{MaxPerWebhook: n, MaxPerHost: n, ShutdownTimeout: time.Second})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan error, 1)
	go func() { stopped <- w1.Run(ctx) }()
	for range n {
		recv(t, started, "a first attempt")
	}
	cancel()
	require.NoError(t, recv(t, stopped, "Run to return"), "Run returns after aborting its attempts")

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
	store := memstore.New(nil)
	svc, err := webhook.NewService(store, loopbackOK)
	require.NoError(t, err)
	_, err = svc.Create(t.Context(), &webhook.Webhook{Name: "w", URL: rc.URL, Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
	require.NoError(t, err)
	w, err := webhook.NewWorker(svc, &webhook.WorkerConfig{PollInterval: time.Hour})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(ctx) }()
	defer func() { cancel(); require.NoError(t, recv(t, stopped, "Run to return")) }()

	// The first poll happens at start; after that only a notification
	// can wake the worker within the hour.
	for i := range 3 {
		_, err := svc.TriggerEvent(t.Context(), "e", map[string]any{"i": i}, "")
		require.NoError(t, err)
		recv(t, rc.got, "a request")
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
	store := memstore.New(nil)
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
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(runCtx) }()
	recv(t, done, "every healthy delivery, while the slow endpoint hangs")
	assert.LessOrEqual(t, hanging.Load(), int32(4), "at most MaxPerWebhook attempts tie up the slow endpoint")
	close(release)
	cancel()
	require.NoError(t, recv(t, stopped, "Run to return"))
}

func TestWorkerConfigErrors(t *testing.T) {
	svc, err := webhook.NewService(memstore.New(nil), nil)
	require.NoError(t, err)
	_, err = webhook.NewWorker(nil, nil)
	require.ErrorIs(t, err, webhook.ErrInvalid)
	_, err = webhook.NewWorker(svc, &webhook.WorkerConfig{Concurrency: -1})
	require.ErrorIs(t, err, webhook.ErrInvalid)
	for _, c := range []webhook.WorkerConfig{{Concurrency: math.MaxInt}, {Prefetch: math.MaxInt}, {Concurrency: webhook.MaxConcurrency + 1}} {
		_, err = webhook.NewWorker(svc, &c)
		require.ErrorIs(t, err, webhook.ErrInvalid, "%+v: claim limits would overflow", c)
	}
	_, err = webhook.NewWorker(svc, &webhook.WorkerConfig{Concurrency: webhook.MaxConcurrency, Prefetch: webhook.MaxConcurrency})
	require.NoError(t, err)
	_, err = webhook.NewWorker(svc, &webhook.WorkerConfig{LeaseDuration: 30 * time.Second})
	require.ErrorIs(t, err, webhook.ErrInvalid, "a lease shorter than the request timeout is refused")
	w, err := webhook.NewWorker(svc, nil)
	require.NoError(t, err)
	assert.NotEmpty(t, w.ID())
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
	store := memstore.New(nil)
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
	assert.Equal(t, 0, n, "handed back, and not due again at once")
	assert.Empty(t, rc.all(), "nothing was sent on the nearly expired lease")
	d, err := svc.Delivery(t.Context(), ids[0])
	require.NoError(t, err)
	assert.Equal(t, webhook.StatusPending, d.Status)
	assert.Zero(t, d.Attempt, "the handed-back claim did not count")
	assert.True(t, d.NextAttemptAt.After(clock.Now()), "due again later, not at once")

	clock.Advance(d.NextAttemptAt.Sub(clock.Now()))
	n, err = w.RunOnce(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	d, err = svc.Delivery(t.Context(), ids[0])
	require.NoError(t, err)
	assert.Equal(t, webhook.StatusDelivered, d.Status, "handed back, claimed again, sent")
	assert.Equal(t, 1, d.Attempt, "the handed-back claim did not count")
	assert.Len(t, d.Attempts, 1)
	assert.Len(t, rc.all(), 1, "one request, on the fresh lease")
}

// instantDoer answers every request with 200 at once, without a network.
type instantDoer struct{ requests atomic.Int32 }

func (d *instantDoer) Do(r *http.Request) (*http.Response, error) {
	d.requests.Add(1)
	return &http.Response{StatusCode: 200, Status: "200 OK", Header: http.Header{}, Body: http.NoBody, Request: r}, nil
}

func TestRunOnceDrainsABacklogOfOneWebhook(t *testing.T) {
	// The only due webhook is at its in-flight cap when a claim comes
	// back empty; its attempts end at once. RunOnce must claim again
	// rather than take the empty claim for the end of the work.
	doer := &instantDoer{}
	e := newEnv(t, &webhook.Config{Doer: doer}, nil)
	e.hook(t, "https://example.com/hook")
	const n = 500
	for range n {
		e.trigger(t)
	}
	assert.Equal(t, n, e.runOnce(t))
	assert.Equal(t, int32(n), doer.requests.Load())
}

func TestAcceptedLeaseCanSend(t *testing.T) {
	// Whatever lease NewWorker accepts lets the worker send: the check
	// uses the margin the worker keeps at send time.
	rc := newReceiver(t, nil)
	accepted := 0
	for lease := 11 * time.Second; lease <= 20*time.Second; lease += time.Second {
		svc, err := webhook.NewService(memstore.New(nil), &webhook.Config{RequestTimeout: time.Second, Network: webhook.NetworkPolicy{AllowPrivate: true}})
		require.NoError(t, err)
		w, err := webhook.NewWorker(svc, &webhook.WorkerConfig{LeaseDuration: lease})
		if err != nil {
			require.ErrorIs(t, err, webhook.ErrInvalid, "lease %v", lease)
			continue
		}
		accepted++
		_, err = svc.Create(t.Context(), &webhook.Webhook{Name: "w", URL: rc.URL, Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
		require.NoError(t, err)
		ids, err := svc.TriggerEvent(t.Context(), "e", nil, "")
		require.NoError(t, err)
		_, err = w.RunOnce(t.Context())
		require.NoError(t, err)
		d, err := svc.Delivery(t.Context(), ids[0])
		require.NoError(t, err)
		assert.Equal(t, webhook.StatusDelivered, d.Status, "lease %v was accepted, so it must send", lease)
	}
	assert.Positive(t, accepted, "leases up to 20 s with a 1 s timeout include accepted ones")
}

func TestLogsWriteDurationsAsDurations(t *testing.T) {
	logs := newCaptureHandler()
	rc := newReceiver(t, nil)
	e := newEnv(t, &webhook.Config{Logger: slog.New(logs)}, nil)
	e.hook(t, rc.URL)
	e.trigger(t)
	require.Equal(t, 1, e.runOnce(t))
	var found bool
	for _, r := range logs.all() {
		if v, ok := r.attr("duration"); ok {
			found = true
			assert.Equal(t, slog.KindDuration, v.Kind(), "duration %v is logged as a %v, not a duration", v, v.Kind())
		}
	}
	assert.True(t, found, "the delivered line carries the request's duration")
}
