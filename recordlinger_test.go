package webhook_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
)

// A worker stops claiming while about twice what it may claim waits for
// its write (see TestUnwrittenResultsBoundTheSends); a batch of results
// left to fill must not wait for more than that, or a worker with few
// slots sits idle for the whole linger at every batch while deliveries
// are due.
func TestAFillingBatchDoesNotIdleASmallWorker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const total = 400
		e := newPrefetchEnv(t, 20, total/20)
		close(e.doer.answer) // every request answered at once
		w, err := webhook.NewWorker(e.svc, &webhook.WorkerConfig{Concurrency: 4, MaxPerHost: 1000, MaxPerWebhook: 8})
		require.NoError(t, err)
		start := time.Now()
		n, err := w.RunOnce(t.Context())
		require.NoError(t, err)
		assert.Equal(t, total, n)
		// Requests and writes take no time here: only the batches'
		// lingers do. One at the end is fair; one a batch (16 results
		// wait at most) would be 25.
		assert.LessOrEqual(t, time.Since(start), 10*time.Millisecond, "time spent waiting for batches to fill")
	})
}
