package pgstore_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/internal/faultstore"
)

// awaitValue returns the next value from ch, failing the test after 30 s.
func awaitValue[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

func TestClaimCutOffByShutdownIsHandedBack(t *testing.T) {
	store := newStore(t)
	srv, got := sink(t)
	cut := faultstore.NewCutOffClaim(store)
	svc := newService(t, cut)
	_, err := svc.Create(t.Context(), &webhook.Webhook{Name: "w", URL: srv.URL, Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}, Retry: webhook.RetryPolicy{MaxAttempts: 1}})
	require.NoError(t, err)
	ids, err := svc.TriggerEvent(t.Context(), "e", nil, "")
	require.NoError(t, err)

	w1, err := webhook.NewWorker(svc, &webhook.WorkerConfig{ShutdownTimeout: 5 * time.Second})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan error, 1)
	go func() { stopped <- w1.Run(ctx) }()
	awaitValue(t, cut.Entered, "the first claim")
	cancel()
	close(cut.Proceed)
	require.NoError(t, awaitValue(t, stopped, "Run to return"))

	// Another process's worker sends it at once, with its only attempt.
	svc2 := newService(t, store)
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
	awaitValue(t, got, "the request")
}

func TestResultIsWrittenAfterADatabaseBlip(t *testing.T) {
	store := newStore(t)
	srv, got := sink(t)
	b := &faultstore.FailWrites{Backend: store}
	b.Fail.Store(3)
	svc := newService(t, b)
	createHook(t, svc, srv.URL)
	ids, err := svc.TriggerEvent(t.Context(), "e", nil, "")
	require.NoError(t, err)
	w, err := webhook.NewWorker(svc, nil)
	require.NoError(t, err)
	n, err := w.RunOnce(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	d, err := svc.Delivery(t.Context(), ids[0])
	require.NoError(t, err)
	assert.Equal(t, webhook.StatusDelivered, d.Status, "written once the database was back, within the lease")
	assert.Len(t, d.Attempts, 1)
	awaitValue(t, got, "the request")
	assert.GreaterOrEqual(t, b.Writes.Load(), int32(4))
	select {
	case id := <-got:
		t.Errorf("sent again (%s)", id)
	default:
	}
}

func TestWebhookDisabledOnceAcrossProcesses(t *testing.T) {
	// Two processes' workers each have an attempt in flight when the
	// endpoint answers both with 410 Gone: one disable, one hook call.
	store := newStore(t)
	arrived, gate := make(chan struct{}, 2), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		arrived <- struct{}{}
		select {
		case <-gate:
		case <-time.After(30 * time.Second):
		}
		w.WriteHeader(http.StatusGone)
	}))
	t.Cleanup(srv.Close)
	var calls atomic.Int32
	failed := make(chan struct{}, 2)
	cfg := &webhook.Config{
		Network:           testNetwork(),
		OnWebhookDisabled: func(context.Context, *webhook.Webhook) { calls.Add(1) },
		OnDeliveryFailed:  func(context.Context, *webhook.Delivery) { failed <- struct{}{} }, // after the disable
	}
	var workers []*webhook.Worker
	var svcs []*webhook.Service
	for range 2 {
		svc, err := webhook.NewService(store, cfg)
		require.NoError(t, err)
		w, err := webhook.NewWorker(svc, &webhook.WorkerConfig{MaxPerWebhook: 1, PollInterval: 50 * time.Millisecond})
		require.NoError(t, err)
		svcs, workers = append(svcs, svc), append(workers, w)
	}
	hook := createHook(t, svcs[0], srv.URL)
	for range 2 {
		_, err := svcs[0].TriggerEvent(t.Context(), "e", nil, "")
		require.NoError(t, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan error, 2)
	for _, w := range workers {
		go func() { stopped <- w.Run(ctx) }()
	}
	// Each worker holds at most one attempt to the webhook: both are
	// in flight at once, one in each process.
	awaitValue(t, arrived, "a request")
	awaitValue(t, arrived, "the other worker's request")
	close(gate)
	awaitValue(t, failed, "a failed delivery")
	awaitValue(t, failed, "the other failed delivery")
	cancel()
	require.NoError(t, awaitValue(t, stopped, "a Run to return"))
	require.NoError(t, awaitValue(t, stopped, "the other Run to return"))
	assert.Equal(t, int32(1), calls.Load(), "OnWebhookDisabled calls for one disable")
	got, err := svcs[1].Get(t.Context(), hook.ID)
	require.NoError(t, err)
	assert.True(t, got.Disabled)
}

// A worker whose clock runs ahead of the database's by more than the
// lease still retries a result write within its lease: it measures the
// lease on its own clock, not by the database's expiry.
func TestResultIsWrittenAfterABlipWhateverTheClockSkew(t *testing.T) {
	store := newStore(t)
	srv, got := sink(t)
	b := &faultstore.FailWrites{Backend: store}
	b.Fail.Store(2)
	svc := skewed(t, b, 10*time.Minute)
	createHook(t, svc, srv.URL)
	ids, err := svc.TriggerEvent(t.Context(), "e", nil, "")
	require.NoError(t, err)
	w, err := webhook.NewWorker(svc, nil)
	require.NoError(t, err)
	_, err = w.RunOnce(t.Context())
	require.NoError(t, err)
	awaitValue(t, got, "the request")
	d, err := svc.Delivery(t.Context(), ids[0])
	require.NoError(t, err)
	assert.Equal(t, webhook.StatusDelivered, d.Status, "written once the database was back, within the lease")
}
