package pgstore_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
)

// TestReplayOnceAcrossProcesses is the outage of the issue on
// PostgreSQL: three messages fail, are replayed during the outage and
// twice after it, two of those replays by two processes at once. Each
// message reaches the endpoint once.
func TestReplayOnceAcrossProcesses(t *testing.T) {
	store := newStore(t)
	var down atomic.Bool
	down.Store(true)
	var mu sync.Mutex
	ok := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		mu.Lock()
		ok[r.Header.Get("webhook-id")]++
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	a, b := newService(t, store), newService(t, store)
	hook, err := a.Create(t.Context(), &webhook.Webhook{Name: "sink", URL: srv.URL,
		Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}, Retry: webhook.RetryPolicy{MaxAttempts: 1}})
	require.NoError(t, err)
	worker, err := webhook.NewWorker(a, nil)
	require.NoError(t, err)
	run := func() {
		t.Helper()
		_, err := worker.RunOnce(t.Context())
		require.NoError(t, err)
	}
	var messages []string
	for range 3 {
		ids, err := a.TriggerEvent(t.Context(), "order.created", nil, "")
		require.NoError(t, err)
		d, err := a.Delivery(t.Context(), ids[0])
		require.NoError(t, err)
		messages = append(messages, d.PayloadID)
	}
	run()
	res, err := a.ReplayFailed(t.Context(), hook.ID, webhook.ReplayParams{})
	require.NoError(t, err)
	require.Equal(t, 3, res.Count)
	run()

	down.Store(false)
	dry, err := b.ReplayFailed(t.Context(), hook.ID, webhook.ReplayParams{DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, 3, dry.Count)
	var wg sync.WaitGroup
	counts := make([]int, 2)
	errs := make([]error, 2)
	for i, svc := range []*webhook.Service{a, b} {
		wg.Go(func() {
			r, err := svc.ReplayFailed(t.Context(), hook.ID, webhook.ReplayParams{})
			counts[i], errs[i] = r.Count, err
		})
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	assert.Equal(t, 3, counts[0]+counts[1], "two processes replaying at once queue each failure once")
	run()
	again, err := b.ReplayFailed(t.Context(), hook.ID, webhook.ReplayParams{})
	require.NoError(t, err)
	assert.Zero(t, again.Count)
	run()

	want := map[string]int{}
	for _, m := range messages {
		want[m] = 1
	}
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, want, ok, "each message delivered once")
}
