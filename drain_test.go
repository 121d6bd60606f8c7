package webhook_test

import (
	"context"
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

func TestClaimCutOffByShutdownIsHandedBack(t *testing.T) {
	rc := newReceiver(t, nil)
	store := memstore.New(nil)
	cut := faultstore.NewCutOffClaim(store)
	svc, err := webhook.NewService(cut, loopbackOK)
	require.NoError(t, err)
	_, err = svc.Create(t.Context(), &webhook.Webhook{Name: "w", URL: rc.URL, Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}, Retry: webhook.RetryPolicy{MaxAttempts: 1}})
	require.NoError(t, err)
	ids, err := svc.TriggerEvent(t.Context(), "e", nil, "")
	require.NoError(t, err)

	w1, err := webhook.NewWorker(svc, &webhook.WorkerConfig{ShutdownTimeout: 5 * time.Second})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan error, 1)
	go func() { stopped <- w1.Run(ctx) }()
	recv(t, cut.Entered, "the first claim")
	cancel() // shutdown begins while the claim is under way
	close(cut.Proceed)
	require.NoError(t, recv(t, stopped, "Run to return"))
	assert.Empty(t, rc.all(), "a worker shutting down sends nothing it claims")

	// Another worker, at once (no lease to wait for), sends the delivery
	// with its only attempt.
	svc2, err := webhook.NewService(store, loopbackOK)
	require.NoError(t, err)
	w2, err := webhook.NewWorker(svc2, nil)
	require.NoError(t, err)
	n, err := w2.RunOnce(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	d, err := svc2.Delivery(t.Context(), ids[0])
	require.NoError(t, err)
	assert.Equal(t, webhook.StatusDelivered, d.Status, "the claim was handed back, its attempt not used")
	require.Len(t, d.Attempts, 1)
	assert.Empty(t, d.Attempts[0].Error)
	assert.Len(t, rc.all(), 1)
}

// hangingWrites is a Storage whose result writes hang until their
// context ends.
type hangingWrites struct {
	*memstore.Store
	writes atomic.Int32
}

func (s *hangingWrites) RecordAttempt(ctx context.Context, p webhook.RecordAttemptParams) error {
	s.writes.Add(1)
	<-ctx.Done()
	return ctx.Err()
}

func (s *hangingWrites) RecordAttempts(ctx context.Context, ps []webhook.RecordAttemptParams) ([]error, error) {
	s.writes.Add(1)
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestShutdownIsBoundedWhenWritesHang(t *testing.T) {
	rc := newReceiver(t, nil)
	store := &hangingWrites{Store: memstore.New(nil)}
	svc, err := webhook.NewService(store, loopbackOK)
	require.NoError(t, err)
	_, err = svc.Create(t.Context(), &webhook.Webhook{Name: "w", URL: rc.URL, Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
	require.NoError(t, err)
	const n = 6
	for range n {
		_, err := svc.TriggerEvent(t.Context(), "e", nil, "")
		require.NoError(t, err)
	}
	const shutdown = time.Second
	w, err := webhook.NewWorker(svc, &webhook.WorkerConfig{MaxPerWebhook: n, ShutdownTimeout: shutdown})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(ctx) }()
	for range n {
		recv(t, rc.got, "a request")
	}
	cancel()
	select {
	case err := <-stopped:
		require.NoError(t, err)
	case <-time.After(3 * shutdown):
		t.Fatalf("Run did not return within 3 × ShutdownTimeout (%v) with storage writes hanging", shutdown)
	}
	assert.Positive(t, store.writes.Load())
}

func TestResultIsWrittenAfterADatabaseBlip(t *testing.T) {
	rc := newReceiver(t, nil)
	store := &faultstore.FailWrites{Backend: memstore.New(nil)}
	store.Fail.Store(3)
	svc, err := webhook.NewService(store, loopbackOK)
	require.NoError(t, err)
	_, err = svc.Create(t.Context(), &webhook.Webhook{Name: "w", URL: rc.URL, Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
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
	assert.Equal(t, webhook.StatusDelivered, d.Status, "the result was written once the storage was back")
	assert.Len(t, d.Attempts, 1)
	assert.Len(t, rc.all(), 1, "sent once")
	assert.GreaterOrEqual(t, store.Writes.Load(), int32(4), "three failed writes, then one that worked")
}

// failingClaims is a Storage whose claims fail while failing is set.
type failingClaims struct {
	*memstore.Store
	failing atomic.Bool
	claims  atomic.Int32
}

func (s *failingClaims) ClaimDeliveries(ctx context.Context, p webhook.ClaimParams) ([]*webhook.Claim, error) {
	s.claims.Add(1)
	if s.failing.Load() {
		return nil, faultstore.ErrBlip
	}
	return s.Store.ClaimDeliveries(ctx, p)
}

func TestClaimErrorsBackOff(t *testing.T) {
	rc := newReceiver(t, nil)
	store := &failingClaims{Store: memstore.New(nil)}
	store.failing.Store(true)
	svc, err := webhook.NewService(store, loopbackOK)
	require.NoError(t, err)
	_, err = svc.Create(t.Context(), &webhook.Webhook{Name: "w", URL: rc.URL, Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
	require.NoError(t, err)
	const poll = 10 * time.Millisecond
	w, err := webhook.NewWorker(svc, &webhook.WorkerConfig{PollInterval: poll})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(ctx) }()
	<-time.After(100 * poll) // a window to count claims in
	claims := store.claims.Load()
	// Every poll: 100 claims. Doubling from the poll interval, with
	// jitter that at most halves a wait: about a dozen.
	assert.LessOrEqual(t, claims, int32(20), "claims while the storage fails")
	assert.Positive(t, claims)

	// Once the storage is back, the worker delivers again.
	store.failing.Store(false)
	_, err = svc.TriggerEvent(t.Context(), "e", nil, "")
	require.NoError(t, err)
	recv(t, rc.got, "a request once claims work again")
	cancel()
	require.NoError(t, recv(t, stopped, "Run to return"))
}

// Compile-time check that the wrappers keep the batch interface.

// hangingClaims is a Storage whose claims hang until their context ends.
type hangingClaims struct {
	*memstore.Store
	entered chan struct{}
	once    sync.Once
}

func (s *hangingClaims) ClaimDeliveries(ctx context.Context, p webhook.ClaimParams) ([]*webhook.Claim, error) {
	s.once.Do(func() { close(s.entered) })
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestShutdownIsBoundedWhenAClaimHangs(t *testing.T) {
	// A claim is not canceled with Run's context (what it claims is
	// handed back), but the drain's deadline bounds it.
	store := &hangingClaims{Store: memstore.New(nil), entered: make(chan struct{})}
	svc, err := webhook.NewService(store, loopbackOK)
	require.NoError(t, err)
	const shutdown = time.Second
	w, err := webhook.NewWorker(svc, &webhook.WorkerConfig{ShutdownTimeout: shutdown})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(ctx) }()
	recv(t, store.entered, "a claim")
	cancel()
	select {
	case err := <-stopped:
		require.NoError(t, err)
	case <-time.After(3 * shutdown):
		t.Fatalf("Run did not return within 3 × ShutdownTimeout (%v) with a claim hanging", shutdown)
	}
}
