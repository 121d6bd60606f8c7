package webhook_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// heldBatchWrites holds every batch write until told to go on.
type heldBatchWrites struct {
	*memstore.Store
	writing chan int      // the size of each batch write begun
	proceed chan struct{} // one per batch write to let through
}

func (s *heldBatchWrites) RecordAttempts(ctx context.Context, ps []webhook.RecordAttemptParams) ([]error, error) {
	s.writing <- len(ps)
	select {
	case <-s.proceed:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.Store.RecordAttempts(ctx, ps)
}

// A result queued for the batch write frees its slot: with one slot, the
// next delivery is sent while the first one's result is still being
// written, and RunOnce still returns only once every result is written.
func TestQueuedResultFreesItsSlot(t *testing.T) {
	sent := make(chan struct{}, 10)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		sent <- struct{}{}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()
	ctx := t.Context()
	store := &heldBatchWrites{Store: memstore.New(nil), writing: make(chan int, 10), proceed: make(chan struct{})}
	svc, err := webhook.NewService(store, &webhook.Config{Network: webhook.NetworkPolicy{AllowPrivate: true}})
	require.NoError(t, err)
	_, err = svc.Create(ctx, &webhook.Webhook{Name: "h", URL: receiver.URL, Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
	require.NoError(t, err)
	for range 2 {
		_, err := svc.TriggerEvent(ctx, "e", nil, "")
		require.NoError(t, err)
	}
	w, err := webhook.NewWorker(svc, &webhook.WorkerConfig{Concurrency: 1})
	require.NoError(t, err)
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := w.RunOnce(ctx)
		done <- result{n, err}
	}()
	timeout := time.After(10 * time.Second)
	wait := func(what string, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
	wait("the first request", sent)
	select {
	case n := <-store.writing:
		assert.Equal(t, 1, n)
	case <-timeout:
		t.Fatal("timed out waiting for the first write")
	}
	// The first write is held; the second delivery goes out meanwhile.
	wait("the second request while the first result is being written", sent)
	select {
	case r := <-done:
		t.Fatalf("RunOnce returned %v before the results were written", r)
	default:
	}
	store.proceed <- struct{}{}
	select {
	case <-store.writing:
	case <-timeout:
		t.Fatal("timed out waiting for the second write")
	}
	store.proceed <- struct{}{}
	select {
	case r := <-done:
		require.NoError(t, r.err)
		assert.Equal(t, 2, r.n)
	case <-timeout:
		t.Fatal("timed out waiting for RunOnce")
	}
}

// A Worker keeps nothing of one run that a later run, in a
// testing/synctest bubble of its own, could not use: each bubble's
// deliveries are sent and the run returns.
func TestWorkerRunsInOneSynctestBubbleAfterAnother(t *testing.T) {
	doer := &instantDoer{}
	store := memstore.New(nil)
	svc, err := webhook.NewService(store, &webhook.Config{Doer: doer, Network: webhook.NetworkPolicy{AllowPrivate: true}})
	require.NoError(t, err)
	_, err = svc.Create(t.Context(), &webhook.Webhook{Name: "w", URL: "https://example.com/hook",
		Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
	require.NoError(t, err)
	worker, err := webhook.NewWorker(svc, nil)
	require.NoError(t, err)
	for round := 1; round <= 2; round++ {
		synctest.Test(t, func(t *testing.T) {
			for range 3 {
				_, err := svc.TriggerEvent(t.Context(), "e", map[string]any{"round": round}, "")
				require.NoError(t, err)
			}
			n, err := worker.RunOnce(t.Context())
			require.NoError(t, err)
			assert.Equal(t, 3, n)
		})
	}
	assert.Equal(t, int32(6), doer.requests.Load())
}

// Results waiting for their write do not hold slots, but a worker whose
// writes do not come back stops: it sends no more than about twice what
// it may claim, however much is due.
func TestUnwrittenResultsBoundTheSends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const conc, prefetch = 2, 2
		e := newPrefetchEnv(t, 50, 2)
		held := &heldBatchWrites{Store: e.store.Store, writing: make(chan int, 1000), proceed: make(chan struct{})}
		svc, err := webhook.NewService(held, &webhook.Config{Doer: e.doer, RequestTimeout: time.Minute, Network: webhook.NetworkPolicy{AllowPrivate: true}})
		require.NoError(t, err)
		w, err := webhook.NewWorker(svc, &webhook.WorkerConfig{Concurrency: conc, Prefetch: prefetch, MaxPerHost: 1000})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		close(e.doer.answer) // every request answered at once
		synctest.Wait()
		_, _, n := e.doer.counts()
		assert.LessOrEqual(t, n, 2*(conc+prefetch)+conc, "sent while no write came back")
		assert.GreaterOrEqual(t, n, conc+prefetch)
		close(held.proceed)
		cancel()
		require.NoError(t, <-done)
	})
}
