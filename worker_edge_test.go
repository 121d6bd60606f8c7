package webhook_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/internal/faultstore"
	"github.com/analytics-webhooks/webhook/memstore"
)

// brokenClaims is a Storage whose first claim returns its claims without
// their payloads, plus a nil claim and one without a delivery, as a
// faulty Storage might.
type brokenClaims struct {
	*memstore.Store
	once sync.Once
}

func (s *brokenClaims) ClaimDeliveries(ctx context.Context, p webhook.ClaimParams) ([]*webhook.Claim, error) {
	cs, err := s.Store.ClaimDeliveries(ctx, p)
	first := false
	s.once.Do(func() { first = true })
	if err != nil || !first {
		return cs, err
	}
	for _, c := range cs {
		c.Payload = nil
	}
	return append(cs, nil, &webhook.Claim{Lease: webhook.Lease{Token: "t"}}), nil
}

func TestClaimsWithMissingPartsDoNotPanic(t *testing.T) {
	rc := newReceiver(t, nil)
	clock := newFakeClock()
	store := &brokenClaims{Store: memstore.New(nil)}
	svc, err := webhook.NewService(store, &webhook.Config{Now: clock.Now, Network: webhook.NetworkPolicy{AllowPrivate: true}})
	require.NoError(t, err)
	_, err = svc.Create(t.Context(), &webhook.Webhook{Name: "w", URL: rc.URL, Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}, Retry: webhook.RetryPolicy{MaxAttempts: 1}})
	require.NoError(t, err)
	ids, err := svc.TriggerEvent(t.Context(), "e", nil, "")
	require.NoError(t, err)
	w, err := webhook.NewWorker(svc, nil)
	require.NoError(t, err)

	n, err := w.RunOnce(t.Context())
	require.NoError(t, err)
	assert.Zero(t, n, "nothing can be sent without its payload")
	assert.Empty(t, rc.all())
	d, err := svc.Delivery(t.Context(), ids[0])
	require.NoError(t, err)
	assert.Equal(t, webhook.StatusPending, d.Status, "handed back without using its only attempt")

	clock.Advance(time.Minute) // past the hand-back's delay
	n, err = w.RunOnce(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	d, err = svc.Delivery(t.Context(), ids[0])
	require.NoError(t, err)
	assert.Equal(t, webhook.StatusDelivered, d.Status)
}

func TestResultWrittenDespiteALostAnswerRunsTheHooks(t *testing.T) {
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) })
	store := &faultstore.LoseAnswer{Backend: memstore.New(nil)}
	failed, disabled := make(chan string, 10), make(chan string, 10)
	svc, err := webhook.NewService(store, &webhook.Config{
		Network:           webhook.NetworkPolicy{AllowPrivate: true},
		OnDeliveryFailed:  func(_ context.Context, d *webhook.Delivery) { failed <- d.ID },
		OnWebhookDisabled: func(_ context.Context, w *webhook.Webhook) { disabled <- w.ID },
	})
	require.NoError(t, err)
	hook, err := svc.Create(t.Context(), &webhook.Webhook{Name: "w", URL: rc.URL, Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
	require.NoError(t, err)
	ids, err := svc.TriggerEvent(t.Context(), "e", nil, "")
	require.NoError(t, err)
	w, err := webhook.NewWorker(svc, nil)
	require.NoError(t, err)

	n, err := w.RunOnce(t.Context())
	require.NoError(t, err)
	assert.True(t, store.Lost(), "the first write's answer was lost")
	assert.Equal(t, 1, n, "the result was written: the delivery is settled")
	d, err := svc.Delivery(t.Context(), ids[0])
	require.NoError(t, err)
	assert.Equal(t, webhook.StatusFailed, d.Status)
	assert.Len(t, d.Attempts, 1)
	got, err := svc.Get(t.Context(), hook.ID)
	require.NoError(t, err)
	assert.True(t, got.Disabled, "410 disables the webhook")
	require.Len(t, failed, 1, "OnDeliveryFailed runs for the written result")
	assert.Equal(t, ids[0], <-failed)
	require.Len(t, disabled, 1, "OnWebhookDisabled runs once")
}

func TestShutdownHandsBackUnadmittedDeliveriesAtOnce(t *testing.T) {
	// Two webhooks on one host with a cap of one: the first delivery's
	// request hangs, the second waits for admission when Run's context
	// is canceled. Both are handed back due at once (the clock does not
	// move), so another worker sends both right away.
	release := make(chan struct{})
	first := make(chan struct{})
	var requests atomic.Int32
	rc := newReceiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 {
			close(first)
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	})
	t.Cleanup(func() { close(release) }) // before the receiver closes
	clock := newFakeClock()
	store := memstore.New(nil)
	cfg := &webhook.Config{Now: clock.Now, RequestTimeout: time.Minute, Network: webhook.NetworkPolicy{AllowPrivate: true}}
	svc, err := webhook.NewService(store, cfg)
	require.NoError(t, err)
	for _, name := range []string{"a", "b"} {
		_, err := svc.Create(t.Context(), &webhook.Webhook{Name: name, URL: rc.URL + "/" + name, Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}, Retry: webhook.RetryPolicy{MaxAttempts: 1}})
		require.NoError(t, err)
	}
	_, err = svc.TriggerEvent(t.Context(), "e", nil, "")
	require.NoError(t, err)

	w, err := webhook.NewWorker(svc, &webhook.WorkerConfig{Concurrency: 4, MaxPerHost: 1, ShutdownTimeout: 2 * time.Second})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(ctx) }()
	recv(t, first, "the first request")
	cancel()
	require.NoError(t, recv(t, stopped, "Run to return"))
	assert.Equal(t, int32(1), requests.Load(), "nothing starts once shutdown began")

	svc2, err := webhook.NewService(store, cfg)
	require.NoError(t, err)
	w2, err := webhook.NewWorker(svc2, nil)
	require.NoError(t, err)
	n, err := w2.RunOnce(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 2, n, "both deliveries were handed back due at once, with their attempts unused")
}

// bareDoer answers with what a hand-written test double often returns:
// a response without a body, or nothing at all.
type bareDoer struct{ resp *http.Response }

func (d bareDoer) Do(*http.Request) (*http.Response, error) { return d.resp, nil }

func TestDoerWithoutBodyOrResponseDoesNotPanic(t *testing.T) {
	for name, tc := range map[string]struct {
		resp   *http.Response
		status webhook.DeliveryStatus
	}{
		"no body":     {&http.Response{StatusCode: http.StatusOK}, webhook.StatusDelivered},
		"no response": {nil, webhook.StatusFailed},
	} {
		t.Run(name, func(t *testing.T) {
			svc, err := webhook.NewService(memstore.New(nil), &webhook.Config{Doer: bareDoer{tc.resp}})
			require.NoError(t, err)
			_, err = svc.Create(t.Context(), &webhook.Webhook{Name: "w", URL: "https://example.com/hook", Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}, Retry: webhook.RetryPolicy{MaxAttempts: 1}})
			require.NoError(t, err)
			ids, err := svc.TriggerEvent(t.Context(), "e", nil, "")
			require.NoError(t, err)
			w, err := webhook.NewWorker(svc, nil)
			require.NoError(t, err)
			n, err := w.RunOnce(t.Context())
			require.NoError(t, err)
			assert.Equal(t, 1, n)
			d, err := svc.Delivery(t.Context(), ids[0])
			require.NoError(t, err)
			assert.Equal(t, tc.status, d.Status)
		})
	}
}

func TestRunOnceReturnsWhenResultWritesKeepHanging(t *testing.T) {
	// Every result write hangs until its timeout. Retries stop in time
	// for the last one to end within the lease, so the delivery is not
	// claimed again by the same RunOnce, which returns after one send.
	rc := newReceiver(t, nil)
	store := &hangingWrites{Store: memstore.New(nil)}
	svc, err := webhook.NewService(store, &webhook.Config{RequestTimeout: time.Second, Network: webhook.NetworkPolicy{AllowPrivate: true}})
	require.NoError(t, err)
	_, err = svc.Create(t.Context(), &webhook.Webhook{Name: "w", URL: rc.URL, Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
	require.NoError(t, err)
	_, err = svc.TriggerEvent(t.Context(), "e", nil, "")
	require.NoError(t, err)
	w, err := webhook.NewWorker(svc, &webhook.WorkerConfig{LeaseDuration: time.Second + webhook.MinLeaseMargin, ShutdownTimeout: time.Second})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 3*(time.Second+webhook.MinLeaseMargin))
	defer cancel()
	n, err := w.RunOnce(ctx)
	require.NoError(t, err, "RunOnce returns on its own, before the test's deadline")
	assert.Zero(t, n, "no result could be written")
	assert.Len(t, rc.all(), 1, "sent once: not claimed again within one RunOnce")
}

// releases signals each delivery handed back.
type releases struct {
	*memstore.Store
	released chan struct{}
}

func (s *releases) note(ps ...webhook.RecordAttemptParams) {
	for _, p := range ps {
		if p.Released {
			s.released <- struct{}{}
		}
	}
}

func (s *releases) RecordAttempt(ctx context.Context, p webhook.RecordAttemptParams) error {
	err := s.Store.RecordAttempt(ctx, p)
	s.note(p)
	return err
}

func (s *releases) RecordAttempts(ctx context.Context, ps []webhook.RecordAttemptParams) ([]error, error) {
	errs, err := s.Store.RecordAttempts(ctx, ps)
	s.note(ps...)
	return errs, err
}

func TestRunOnceSendsWhatAHostCapHeldBack(t *testing.T) {
	// Two webhooks on one host with a cap of one: the second delivery
	// waits for admission while the first's request runs, and is handed
	// back. RunOnce still sends it once the host is free, although the
	// clock does not move.
	store := &releases{Store: memstore.New(nil), released: make(chan struct{}, 10)}
	var requests atomic.Int32
	rc := newReceiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 {
			select {
			case <-store.released:
			case <-r.Context().Done():
			case <-time.After(waitTimeout):
			}
		}
	})
	clock := newFakeClock()
	svc, err := webhook.NewService(store, &webhook.Config{Now: clock.Now, Network: webhook.NetworkPolicy{AllowPrivate: true}})
	require.NoError(t, err)
	for _, name := range []string{"a", "b"} {
		_, err := svc.Create(t.Context(), &webhook.Webhook{Name: name, URL: rc.URL + "/" + name, Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
		require.NoError(t, err)
	}
	_, err = svc.TriggerEvent(t.Context(), "e", nil, "")
	require.NoError(t, err)
	w, err := webhook.NewWorker(svc, &webhook.WorkerConfig{Concurrency: 4, MaxPerHost: 1})
	require.NoError(t, err)
	n, err := w.RunOnce(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 2, n, "both deliveries were due")
	assert.Equal(t, int32(2), requests.Load())
}

// refusedResults refuses every result (not hand-backs) as from a lost
// lease, without storing it: as if the worker had died before writing.
type refusedResults struct {
	*memstore.Store
}

func (s *refusedResults) RecordAttempt(ctx context.Context, p webhook.RecordAttemptParams) error {
	if !p.Released {
		return webhook.ErrLeaseLost
	}
	return s.Store.RecordAttempt(ctx, p)
}

func (s *refusedResults) RecordAttempts(ctx context.Context, ps []webhook.RecordAttemptParams) ([]error, error) {
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = s.RecordAttempt(ctx, p)
	}
	return errs, nil
}

func TestGoneDisablesTheWebhookEvenIfItsResultIsNotWritten(t *testing.T) {
	// The disable comes first: a worker that stops between the two
	// writes leaves a disabled webhook (whose delivery then fails
	// without being sent), not a result that claims a disable that
	// never happened.
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) })
	disabled := make(chan string, 4)
	svc, err := webhook.NewService(&refusedResults{Store: memstore.New(nil)}, &webhook.Config{
		Network:           webhook.NetworkPolicy{AllowPrivate: true},
		OnWebhookDisabled: func(_ context.Context, w *webhook.Webhook) { disabled <- w.ID },
	})
	require.NoError(t, err)
	hook, err := svc.Create(t.Context(), &webhook.Webhook{Name: "w", URL: rc.URL, Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
	require.NoError(t, err)
	_, err = svc.TriggerEvent(t.Context(), "e", nil, "")
	require.NoError(t, err)
	w, err := webhook.NewWorker(svc, nil)
	require.NoError(t, err)
	_, err = w.RunOnce(t.Context())
	require.NoError(t, err)
	require.Len(t, rc.all(), 1)
	got, err := svc.Get(t.Context(), hook.ID)
	require.NoError(t, err)
	assert.True(t, got.Disabled, "the endpoint answered 410 Gone")
	require.Len(t, disabled, 1)
	assert.Equal(t, hook.ID, <-disabled)
}

// A webhook whose timeout is longer than the worker's lease allows gets
// a shorter request, and the attempt says so rather than only "timed
// out after 2s" for a webhook configured with 30.
func TestTimeoutShortenedByTheLeaseSaysSo(t *testing.T) {
	release := make(chan struct{})
	rc := newReceiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	e := newEnv(t, &webhook.Config{RequestTimeout: time.Second, Now: time.Now}, &webhook.WorkerConfig{LeaseDuration: time.Second + webhook.MinLeaseMargin})
	e.hook(t, rc.URL, func(w *webhook.Webhook) { w.Timeout = 30 * time.Second; w.Retry.MaxAttempts = 1 })
	ids := e.trigger(t)
	e.runOnce(t)
	d := e.delivery(t, ids[0])
	require.Len(t, d.Attempts, 1)
	assert.Contains(t, d.Attempts[0].Error, "request timed out")
	assert.Contains(t, d.Attempts[0].Error, "the webhook's timeout of 30s was shortened to fit the worker's lease")
}
