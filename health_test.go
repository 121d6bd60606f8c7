package webhook_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
)

func TestHealthPolicyDisablesDeadEndpoint(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	disabled := make(chan *webhook.Webhook, 10)
	e := newEnv(t, &webhook.Config{
		DisableAfterFailures: 3, DisableAfterFailingFor: time.Hour,
		OnWebhookDisabled: func(_ context.Context, w *webhook.Webhook) { disabled <- w },
	}, nil)
	w := e.hook(t, rc.URL, func(w *webhook.Webhook) { w.Retry.MaxAttempts = 1 })
	get := func() *webhook.Webhook {
		got, err := e.svc.Get(t.Context(), w.ID)
		require.NoError(t, err)
		return got
	}
	first := e.clock.Now().UTC().Truncate(time.Microsecond)
	for range 3 {
		e.trigger(t)
		e.runOnce(t)
	}
	got := get()
	assert.Equal(t, 3, got.ConsecutiveFailures)
	assert.Equal(t, first, got.FailingSince)
	assert.False(t, got.Disabled, "three failures within a minute are not yet an hour of failure")

	e.clock.Advance(time.Hour)
	e.trigger(t)
	e.runOnce(t)
	got = get()
	assert.True(t, got.Disabled)
	assert.Contains(t, got.DisabledReason, "4 deliveries in a row failed")
	hw := recv(t, disabled, "OnWebhookDisabled")
	assert.Equal(t, w.ID, hw.ID)
	ids, err := e.svc.TriggerEvent(t.Context(), "purchase", nil, "")
	require.NoError(t, err)
	assert.Empty(t, ids)

	// Enabling it again starts the count afresh.
	got.Disabled = false
	got, err = e.svc.Update(t.Context(), got)
	require.NoError(t, err)
	assert.Zero(t, got.ConsecutiveFailures)
	assert.True(t, got.FailingSince.IsZero())
	assert.Empty(t, got.DisabledReason)
}

func TestHealthSuccessResetsAndAbortDoesNotCount(t *testing.T) {
	var mode atomic.Int32 // 0 fail, 1 succeed, 2 abort
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		switch mode.Load() {
		case 0:
			w.WriteHeader(http.StatusBadGateway)
		case 2:
			w.Header().Set("webhook-delivery", "abort-message")
			w.WriteHeader(http.StatusBadRequest)
		}
	})
	e := newEnv(t, &webhook.Config{DisableAfterFailures: 2, DisableAfterFailingFor: time.Nanosecond}, nil)
	w := e.hook(t, rc.URL, func(w *webhook.Webhook) { w.Retry.MaxAttempts = 1 })
	count := func() int {
		got, err := e.svc.Get(t.Context(), w.ID)
		require.NoError(t, err)
		require.False(t, got.Disabled)
		return got.ConsecutiveFailures
	}
	e.trigger(t)
	e.runOnce(t)
	assert.Equal(t, 1, count())
	mode.Store(1)
	e.clock.Advance(10 * time.Second) // past the webhook cache, so the worker sees the count
	e.trigger(t)
	e.runOnce(t)
	assert.Equal(t, 0, count(), "a delivered delivery resets the count")
	mode.Store(2)
	for range 3 {
		e.trigger(t)
		e.runOnce(t)
	}
	assert.Equal(t, 0, count(), "a receiver's abort is not a sign of a dead endpoint")

	off := newEnv(t, &webhook.Config{DisableAfterFailures: -1}, nil)
	mode.Store(0)
	w2 := off.hook(t, rc.URL, func(w *webhook.Webhook) { w.Retry.MaxAttempts = 1 })
	for range 30 {
		off.trigger(t)
		off.runOnce(t)
		off.clock.Advance(time.Hour)
	}
	got, err := off.svc.Get(t.Context(), w2.ID)
	require.NoError(t, err)
	assert.False(t, got.Disabled, "a negative DisableAfterFailures turns the policy off")
}

// releaseCounter counts the claims a worker hands back.
type releaseCounter struct {
	*memstore.Store
	released atomic.Int32
}

func (r *releaseCounter) RecordAttempt(ctx context.Context, p webhook.RecordAttemptParams) error {
	if p.Released {
		r.released.Add(1)
	}
	return r.Store.RecordAttempt(ctx, p)
}

func (r *releaseCounter) RecordAttempts(ctx context.Context, ps []webhook.RecordAttemptParams) ([]error, error) {
	for _, p := range ps {
		if p.Released {
			r.released.Add(1)
		}
	}
	return r.Store.RecordAttempts(ctx, ps)
}

func TestRateLimitHoldsDeliveriesInStorage(t *testing.T) {
	rc := newReceiver(t, nil)
	store := &releaseCounter{Store: memstore.New(nil)}
	clock := newFakeClock()
	svc, err := webhook.NewService(store, &webhook.Config{Now: clock.Now, Network: webhook.NetworkPolicy{AllowPrivate: true}})
	require.NoError(t, err)
	wk, err := webhook.NewWorker(svc, nil)
	require.NoError(t, err)
	e := &env{svc: svc, store: store.Store, clock: clock, worker: wk}
	w := e.hook(t, rc.URL, func(w *webhook.Webhook) { w.RateLimit = 2 })
	for range 6 {
		e.trigger(t)
	}
	assert.Equal(t, 2, e.runOnce(t), "a burst of two, then the limit holds")
	assert.Len(t, rc.all(), 2)
	ds, err := e.store.ListDeliveries(t.Context(), webhook.ListDeliveriesParams{WebhookID: w.ID, Status: webhook.StatusPending})
	require.NoError(t, err)
	assert.Len(t, ds, 4, "the rest wait in storage")
	for _, d := range ds {
		assert.Zero(t, d.Attempt, "held-back deliveries have used no attempt")
	}
	e.clock.Advance(time.Second)
	assert.Equal(t, 2, e.runOnce(t), "two more tokens a second later")
	e.clock.Advance(time.Second)
	assert.Equal(t, 2, e.runOnce(t))
	assert.Len(t, rc.all(), 6)
	assert.LessOrEqual(t, store.released.Load(), int32(1), "the worker stops claiming a webhook out of tokens instead of claiming and handing back")
}

func TestMaxInFlightPerWebhook(t *testing.T) {
	var cur, peak atomic.Int32
	release := make(chan struct{})
	arrived := make(chan struct{}, 10)
	rc := newReceiver(t, func(_ int, _ http.ResponseWriter, _ *http.Request) {
		n := cur.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		arrived <- struct{}{}
		select {
		case <-release:
		case <-time.After(waitTimeout):
		}
		cur.Add(-1)
	})
	e := newEnv(t, nil, &webhook.WorkerConfig{MaxPerWebhook: 4})
	e.hook(t, rc.URL, func(w *webhook.Webhook) { w.MaxInFlight = 2 })
	for range 6 {
		e.trigger(t)
	}
	ran := make(chan error, 1)
	go func() {
		_, err := e.worker.RunOnce(t.Context())
		ran <- err
	}()
	recv(t, arrived, "a request")
	recv(t, arrived, "a second request")
	close(release)
	require.NoError(t, recv(t, ran, "RunOnce to return"))
	assert.Len(t, rc.all(), 6)
	assert.LessOrEqual(t, peak.Load(), int32(2), "the webhook's own cap is below the worker's")
}

func TestWebhookDisabledHookFiresOncePerDisable(t *testing.T) {
	// Four attempts to one webhook are in flight when its endpoint
	// answers each with 410 Gone: one disable, one call.
	const n = 4
	arrived, gate := make(chan struct{}, n), make(chan struct{})
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		arrived <- struct{}{}
		select {
		case <-gate:
		case <-time.After(waitTimeout):
		}
		w.WriteHeader(http.StatusGone)
	})
	var calls atomic.Int32
	e := newEnv(t, &webhook.Config{OnWebhookDisabled: func(context.Context, *webhook.Webhook) { calls.Add(1) }}, &webhook.WorkerConfig{MaxPerWebhook: n})
	w := e.hook(t, rc.URL)
	for range n {
		e.trigger(t)
	}
	ran := make(chan error, 1)
	go func() {
		_, err := e.worker.RunOnce(t.Context())
		ran <- err
	}()
	for range n {
		recv(t, arrived, "a request")
	}
	close(gate)
	require.NoError(t, recv(t, ran, "RunOnce to return"))
	assert.Equal(t, int32(1), calls.Load(), "OnWebhookDisabled calls for one disable")
	got, err := e.svc.Get(t.Context(), w.ID)
	require.NoError(t, err)
	assert.True(t, got.Disabled)
	assert.Contains(t, got.DisabledReason, "410")
	ds, err := e.store.ListDeliveries(t.Context(), webhook.ListDeliveriesParams{WebhookID: w.ID})
	require.NoError(t, err)
	for _, d := range ds {
		assert.Equal(t, webhook.StatusFailed, d.Status)
	}
}

// countingLists counts the reads of every webhook, which a reload of the
// matching index makes.
type countingLists struct {
	*memstore.Store
	lists atomic.Int32
}

func (s *countingLists) ListWebhooks(ctx context.Context, p webhook.ListWebhooksParams) ([]*webhook.Webhook, error) {
	s.lists.Add(1)
	return s.Store.ListWebhooks(ctx, p)
}

// Health counters do not change what matches, so a failing endpoint's
// counter writes do not make every trigger call reload the index.
func TestHealthWritesDoNotReloadTheIndex(t *testing.T) {
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	})
	store := &countingLists{Store: memstore.New(nil)}
	clock := newFakeClock()
	svc, err := webhook.NewService(store, &webhook.Config{Now: clock.Now, WebhookCacheTTL: time.Hour, Network: webhook.NetworkPolicy{AllowPrivate: true}})
	require.NoError(t, err)
	worker, err := webhook.NewWorker(svc, nil)
	require.NoError(t, err)
	hook, err := svc.Create(t.Context(), &webhook.Webhook{
		Name: "failing", URL: rc.URL, Retry: webhook.RetryPolicy{MaxAttempts: 1},
		Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}},
	})
	require.NoError(t, err)
	for range 5 {
		ids, err := svc.TriggerEvent(t.Context(), "e", nil, "")
		require.NoError(t, err)
		require.Len(t, ids, 1)
		_, err = worker.RunOnce(t.Context())
		require.NoError(t, err)
	}
	got, err := svc.Get(t.Context(), hook.ID)
	require.NoError(t, err)
	require.Equal(t, 5, got.ConsecutiveFailures)
	assert.Equal(t, int32(1), store.lists.Load(), "index loads for five trigger calls")
}
