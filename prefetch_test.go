package webhook_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
)

// heldDoer holds every request until the test answers it, counting the
// requests in flight, in all and per host, and the peaks.
type heldDoer struct {
	answer chan struct{} // one receive answers one request 204

	mu                sync.Mutex
	inflight, peak, n int
	host, hostPeak    map[string]int
	sent              []string // the deliveries sent, by X-Delivery-ID
}

func newHeldDoer() *heldDoer {
	return &heldDoer{answer: make(chan struct{}), host: map[string]int{}, hostPeak: map[string]int{}}
}

func (d *heldDoer) Do(r *http.Request) (*http.Response, error) {
	h := r.URL.Host
	d.mu.Lock()
	d.inflight++
	d.n++
	d.peak = max(d.peak, d.inflight)
	d.host[h]++
	d.hostPeak[h] = max(d.hostPeak[h], d.host[h])
	d.sent = append(d.sent, r.Header.Get(webhook.HeaderXDeliveryID))
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.inflight--
		d.host[h]--
		d.mu.Unlock()
	}()
	select {
	case <-d.answer:
		return &http.Response{StatusCode: http.StatusNoContent, Status: "204 No Content", Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
}

// counts returns the requests in flight, their peak and the requests
// made.
func (d *heldDoer) counts() (inflight, peak, n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.inflight, d.peak, d.n
}

// aheadCounter counts the deliveries claimed.
type aheadCounter struct {
	*memstore.Store
	mu      sync.Mutex
	claimed int
	order   []string // the deliveries claimed, in claim order
	limits  []int    // each claim's Limit
	// lose, if set, is asked before each claim with its number (from
	// 1); when it says so, the claim returns nothing, as when another
	// worker's claim holds every due delivery for a moment.
	lose func(n int) bool
}

func (s *aheadCounter) ClaimDeliveries(ctx context.Context, p webhook.ClaimParams) ([]*webhook.Claim, error) {
	s.mu.Lock()
	s.limits = append(s.limits, p.Limit)
	lost := s.lose != nil && s.lose(len(s.limits))
	s.mu.Unlock()
	if lost {
		return nil, nil
	}
	cs, err := s.Store.ClaimDeliveries(ctx, p)
	s.mu.Lock()
	s.claimed += len(cs)
	for _, c := range cs {
		s.order = append(s.order, c.Delivery.ID)
	}
	s.mu.Unlock()
	return cs, err
}

func (s *aheadCounter) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.claimed
}

// prefetchEnv is a worker's Service on a aheadCounter and a heldDoer,
// with hooks webhooks on one host, each with perHook deliveries due.
type prefetchEnv struct {
	store *aheadCounter
	doer  *heldDoer
	svc   *webhook.Service
	ids   []string
}

func newPrefetchEnv(t *testing.T, hooks, perHook int) *prefetchEnv {
	t.Helper()
	e := &prefetchEnv{store: &aheadCounter{Store: memstore.New(nil)}, doer: newHeldDoer()}
	var err error
	e.svc, err = webhook.NewService(e.store, &webhook.Config{Doer: e.doer, RequestTimeout: time.Minute, Network: webhook.NetworkPolicy{AllowPrivate: true}})
	require.NoError(t, err)
	for i := range hooks {
		_, err := e.svc.Create(t.Context(), &webhook.Webhook{Name: fmt.Sprint("h", i), URL: fmt.Sprint("https://example.com/", i),
			Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}, Retry: webhook.RetryPolicy{MaxAttempts: 1}})
		require.NoError(t, err)
	}
	for range perHook {
		ids, err := e.svc.TriggerEvent(t.Context(), "e", nil, "")
		require.NoError(t, err)
		e.ids = append(e.ids, ids...)
	}
	return e
}

// run starts w.Run and returns the function that stops it and waits for
// it to return.
func (e *prefetchEnv) run(t *testing.T, w *webhook.Worker) (stop func()) {
	cancel, wait := e.start(t, w)
	return func() {
		cancel()
		wait()
	}
}

// start starts w.Run and returns the functions that cancel its context
// and wait for it to return.
func (e *prefetchEnv) start(t *testing.T, w *webhook.Worker) (cancel, wait func()) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	return cancel, func() {
		t.Helper()
		require.NoError(t, <-done)
	}
}

// With Prefetch, the worker claims Concurrency+Prefetch deliveries but
// sends at most Concurrency requests at once; a request that ends lets
// one claimed ahead start, and the claim that follows refills the line.
func TestPrefetchClaimsAheadButSendsAtMostConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const conc, prefetch, total = 4, 3, 20
		e := newPrefetchEnv(t, 5, 4)
		w, err := webhook.NewWorker(e.svc, &webhook.WorkerConfig{Concurrency: conc, Prefetch: prefetch, MaxPerHost: 1000, MaxPerWebhook: conc + prefetch})
		require.NoError(t, err)
		stop := e.run(t, w)
		synctest.Wait()
		inflight, _, _ := e.doer.counts()
		assert.Equal(t, conc, inflight)
		assert.Equal(t, conc+prefetch, e.store.count(), "claimed ahead")
		for answered := 1; answered <= total; answered++ {
			e.doer.answer <- struct{}{}
			synctest.Wait()
			inflight, peak, n := e.doer.counts()
			require.LessOrEqual(t, peak, conc, "never more than Concurrency requests at once")
			assert.Equal(t, min(conc, total-answered), inflight, "a slot that frees is used at once")
			assert.Equal(t, min(total, answered+conc), n)
			assert.Equal(t, min(total, answered+conc+prefetch), e.store.count(), "the line is refilled")
		}
		stop()
		for _, id := range e.ids {
			d, err := e.svc.Delivery(t.Context(), id)
			require.NoError(t, err)
			assert.Equal(t, webhook.StatusDelivered, d.Status)
		}
	})
}

// A negative Prefetch claims nothing ahead: the claims never exceed
// Concurrency.
func TestNegativePrefetchClaimsOnlyConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const conc, total = 4, 12
		e := newPrefetchEnv(t, 4, 3)
		w, err := webhook.NewWorker(e.svc, &webhook.WorkerConfig{Concurrency: conc, Prefetch: -1, MaxPerHost: 1000, MaxPerWebhook: conc})
		require.NoError(t, err)
		stop := e.run(t, w)
		synctest.Wait()
		for answered := 0; answered < total; answered++ {
			inflight, _, _ := e.doer.counts()
			assert.Equal(t, min(conc, total-answered), inflight)
			assert.Equal(t, min(total, answered+conc), e.store.count(), "claims never exceed Concurrency")
			e.doer.answer <- struct{}{}
			synctest.Wait()
		}
		stop()
		assert.Equal(t, total, e.store.count())
	})
}

// The default claims Concurrency ahead.
func TestPrefetchDefaultsToConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newPrefetchEnv(t, 40, 4)
		w, err := webhook.NewWorker(e.svc, &webhook.WorkerConfig{Concurrency: 16, MaxPerHost: 1000})
		require.NoError(t, err)
		stop := e.run(t, w)
		synctest.Wait()
		inflight, _, _ := e.doer.counts()
		assert.Equal(t, 16, inflight)
		assert.Equal(t, 32, e.store.count())
		close(e.doer.answer)
		stop()
	})
}

// Deliveries claimed ahead and still waiting for a slot when Run's
// context ends are handed back unattempted, due at once; the requests
// in flight finish during the drain.
func TestShutdownHandsBackDeliveriesClaimedAhead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const conc, prefetch = 2, 3
		e := newPrefetchEnv(t, 5, 1)
		w, err := webhook.NewWorker(e.svc, &webhook.WorkerConfig{Concurrency: conc, Prefetch: prefetch, MaxPerHost: 1000, ShutdownTimeout: time.Minute})
		require.NoError(t, err)
		cancel, wait := e.start(t, w)
		synctest.Wait()
		require.Equal(t, conc+prefetch, e.store.count())
		cancel()
		synctest.Wait() // those waiting are handed back; the requests in flight go on
		pending := 0
		for _, id := range e.ids {
			d, err := e.svc.Delivery(t.Context(), id)
			require.NoError(t, err)
			if d.Status == webhook.StatusPending {
				pending++
			}
		}
		assert.Equal(t, prefetch, pending, "handed back while the requests in flight still hold the slots")
		for range conc {
			e.doer.answer <- struct{}{}
		}
		wait()
		_, _, n := e.doer.counts()
		assert.Equal(t, conc, n, "nothing waiting starts once shutdown began")
		assert.Equal(t, conc+prefetch, e.store.count(), "nothing claimed during the drain")
		sent := map[string]bool{}
		for _, id := range e.doer.sent {
			sent[id] = true
		}
		for _, id := range e.ids {
			d, err := e.svc.Delivery(t.Context(), id)
			require.NoError(t, err)
			if sent[id] {
				assert.Equal(t, webhook.StatusDelivered, d.Status)
				continue
			}
			assert.Equal(t, webhook.StatusPending, d.Status, "handed back")
			assert.Zero(t, d.Attempt, "its attempt unused")
			assert.Empty(t, d.Attempts)
			assert.False(t, d.NextAttemptAt.After(time.Now()), "due at once")
		}
		// Another worker sends them at once.
		w2, err := webhook.NewWorker(e.svc, &webhook.WorkerConfig{Concurrency: 8, MaxPerHost: 8})
		require.NoError(t, err)
		close(e.doer.answer)
		n2, err := w2.RunOnce(t.Context())
		require.NoError(t, err)
		assert.Equal(t, prefetch, n2)
	})
}

// The per-webhook and per-host caps bound what a worker claims ahead as
// they bound what it sends.
func TestCapsHoldWithPrefetch(t *testing.T) {
	t.Run("per webhook", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newPrefetchEnv(t, 1, 10)
			w, err := webhook.NewWorker(e.svc, &webhook.WorkerConfig{Concurrency: 8, Prefetch: 8, MaxPerWebhook: 2, MaxPerHost: 8})
			require.NoError(t, err)
			stop := e.run(t, w)
			synctest.Wait()
			inflight, _, _ := e.doer.counts()
			assert.Equal(t, 2, inflight)
			assert.Equal(t, 2, e.store.count(), "a webhook at its cap is not claimed ahead")
			for range 10 {
				e.doer.answer <- struct{}{}
				synctest.Wait()
			}
			stop()
			_, peak, n := e.doer.counts()
			assert.Equal(t, 10, n)
			assert.LessOrEqual(t, peak, 2)
		})
	})
	t.Run("per host", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newPrefetchEnv(t, 6, 3)
			w, err := webhook.NewWorker(e.svc, &webhook.WorkerConfig{Concurrency: 8, Prefetch: 8, MaxPerHost: 3})
			require.NoError(t, err)
			stop := e.run(t, w)
			synctest.Wait()
			inflight, _, _ := e.doer.counts()
			assert.Equal(t, 3, inflight)
			for range 18 {
				e.doer.answer <- struct{}{}
				synctest.Wait()
			}
			stop()
			_, _, n := e.doer.counts()
			assert.Equal(t, 18, n)
			assert.LessOrEqual(t, e.doer.hostPeak["example.com"], 3)
		})
	})
}

// Deliveries claimed ahead start in claim order.
func TestPrefetchedDeliveriesStartInClaimOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newPrefetchEnv(t, 4, 3)
		w, err := webhook.NewWorker(e.svc, &webhook.WorkerConfig{Concurrency: 1, Prefetch: 3, BatchSize: 4, MaxPerHost: 1000})
		require.NoError(t, err)
		stop := e.run(t, w)
		synctest.Wait()
		for range len(e.ids) {
			e.doer.answer <- struct{}{}
			synctest.Wait()
		}
		stop()
		e.store.mu.Lock()
		defer e.store.mu.Unlock()
		e.doer.mu.Lock()
		defer e.doer.mu.Unlock()
		assert.Equal(t, e.store.order, e.doer.sent)
		assert.Len(t, e.doer.sent, len(e.ids))
	})
}
