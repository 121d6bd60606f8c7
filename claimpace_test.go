package webhook_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
)

// While deliveries claimed ahead wait for a slot, a freed slot is not
// worth a claim of its own: the worker claims once half the line is
// gone, in one claim, and its slots never wait for it.
func TestWorkerRefillsTheLineInBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const conc, prefetch = 2, 4 // refilled 2 at a time
		e := newPrefetchEnv(t, 10, 2)
		w, err := webhook.NewWorker(e.svc, &webhook.WorkerConfig{Concurrency: conc, Prefetch: prefetch, BatchSize: 8, MaxPerHost: 1000, MaxPerWebhook: 8})
		require.NoError(t, err)
		stop := e.run(t, w)
		synctest.Wait()
		total := len(e.ids)
		for answered := 1; answered <= total; answered++ {
			e.doer.answer <- struct{}{}
			synctest.Wait()
			inflight, _, _ := e.doer.counts()
			require.Equal(t, min(conc, total-answered), inflight, "a freed slot goes at once to a delivery claimed ahead")
		}
		stop()
		e.store.mu.Lock()
		limits := e.store.limits
		e.store.mu.Unlock()
		require.NotEmpty(t, limits)
		assert.Equal(t, conc+prefetch, limits[0])
		for i, l := range limits {
			assert.GreaterOrEqual(t, l, prefetch/2, "claim %d of %v asked for less than half the line", i+1, limits)
		}
		assert.Equal(t, total, e.store.count())
		_, _, n := e.doer.counts()
		assert.Equal(t, total, n)
	})
}

// A claim that comes back empty right after one that found deliveries
// may have lost them to another worker's claim for a moment: the worker
// claims again at once, not after a PollInterval, and does not keep
// retrying once the queue is really empty.
func TestWorkerClaimsAgainSoonAfterALostClaim(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newPrefetchEnv(t, 3, 1)
		e.store.lose = func(n int) bool { return n == 2 }
		w, err := webhook.NewWorker(e.svc, &webhook.WorkerConfig{Concurrency: 1, Prefetch: -1, MaxPerHost: 1000, PollInterval: time.Hour})
		require.NoError(t, err)
		stop := e.run(t, w)
		synctest.Wait()
		e.doer.answer <- struct{}{} // the first delivery; the claim after it loses
		synctest.Wait()
		time.Sleep(10 * time.Millisecond)
		synctest.Wait()
		_, _, n := e.doer.counts()
		require.Equal(t, 2, n, "the second delivery is sent within 10ms of the lost claim, not after the hour-long poll")
		e.doer.answer <- struct{}{}
		synctest.Wait()
		e.doer.answer <- struct{}{}
		synctest.Wait()
		time.Sleep(time.Minute)
		synctest.Wait()
		stop()
		_, _, n = e.doer.counts()
		assert.Equal(t, 3, n)
		e.store.mu.Lock()
		claims := len(e.store.limits)
		e.store.mu.Unlock()
		// 3 that found a delivery, the lost one, and the empty ones
		// after each claim that found one: a worker that retried soon
		// after every empty claim would have made thousands.
		assert.LessOrEqual(t, claims, 8)
	})
}

// A worker claims one delivery of a webhook it does not know yet, and
// then, in one claim, as many as the webhook has room for under its
// cap, rather than one a claim.
func TestWorkerClaimsAKnownWebhooksRoomAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newPrefetchEnv(t, 1, 10)
		w, err := webhook.NewWorker(e.svc, &webhook.WorkerConfig{Concurrency: 8, Prefetch: -1, MaxPerHost: 1000, MaxPerWebhook: 4})
		require.NoError(t, err)
		stop := e.run(t, w)
		synctest.Wait()
		inflight, _, _ := e.doer.counts()
		assert.Equal(t, 4, inflight, "the webhook's cap")
		e.store.mu.Lock()
		claims := len(e.store.limits)
		e.store.mu.Unlock()
		assert.Equal(t, 2, claims, "one, then the three it has room for")
		for range 10 {
			e.doer.answer <- struct{}{}
			synctest.Wait()
		}
		stop()
		assert.Equal(t, 10, e.store.count())
		_, peak, n := e.doer.counts()
		assert.Equal(t, 10, n)
		assert.Equal(t, 4, peak)
	})
}

// Webhooks on one host share what is left of its cap: when it leaves
// room for more than one of each, the worker claims no more for the
// host than the cap, however much room each webhook has of its own.
func TestWorkerClaimsNoMoreForAHostThanItsCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const hostCap = 6
		e := newPrefetchEnv(t, 2, 8) // both on example.com, each with room for 4
		w, err := webhook.NewWorker(e.svc, &webhook.WorkerConfig{Concurrency: 16, Prefetch: -1, MaxPerHost: hostCap, MaxPerWebhook: 4})
		require.NoError(t, err)
		stop := e.run(t, w)
		synctest.Wait()
		assert.Equal(t, hostCap, e.store.count(), "claimed for the host")
		for answered := 1; answered <= 16; answered++ {
			e.doer.answer <- struct{}{}
			synctest.Wait()
			// With room left for fewer than one of each, a claim still
			// takes one of each webhook not at its own cap: past the
			// host's cap by at most one fewer than the webhooks.
			assert.LessOrEqual(t, e.store.count()-answered, hostCap+1, "claimed and not yet answered")
		}
		stop()
		_, _, n := e.doer.counts()
		assert.Equal(t, 16, n)
	})
}
