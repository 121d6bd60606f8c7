package pgstore_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/storage/pgstore"
)

// Two worker processes (two Stores and Services over one schema) drain
// one backlog: every delivery is sent once, and however many deliveries
// of a webhook a claim takes (each worker tells the claim how much room
// its webhooks have), no worker has more requests in flight to one
// webhook than its cap, so the two together never more than twice it.
func TestTwoWorkersShareABacklogUnderTheirCaps(t *testing.T) {
	const hooks, perHook, maxPerWebhook = 10, 30, 3
	first := newStore(t)
	second, err := pgstore.New(testPool(t), &pgstore.Config{Schema: first.Schema()})
	require.NoError(t, err)

	var mu sync.Mutex
	inflight, peak := map[string]int{}, map[string]int{}
	seen := map[string]int{}
	all := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		hook := r.Header.Get(webhook.HeaderXWebhookID)
		mu.Lock()
		inflight[hook]++
		peak[hook] = max(peak[hook], inflight[hook])
		seen[r.Header.Get("webhook-id")]++
		if len(seen) == hooks*perHook {
			close(all)
		}
		mu.Unlock()
		// Hold each request a moment, so that requests overlap.
		select {
		case <-time.After(2 * time.Millisecond):
		case <-r.Context().Done():
		}
		mu.Lock()
		inflight[hook]--
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)

	a := newService(t, first)
	for range hooks {
		createHook(t, a, srv.URL)
	}
	for range perHook {
		_, err := a.TriggerEvent(t.Context(), "e", nil, "")
		require.NoError(t, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for _, svc := range []*webhook.Service{a, newService(t, second)} {
		w, err := webhook.NewWorker(svc, &webhook.WorkerConfig{Concurrency: 16, MaxPerWebhook: maxPerWebhook, MaxPerHost: 16})
		require.NoError(t, err)
		wg.Go(func() { assert.NoError(t, w.Run(ctx)) })
	}
	select {
	case <-all:
	case <-time.After(60 * time.Second):
		t.Fatal("the backlog was not drained")
	}
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for id, n := range seen {
		assert.Equal(t, 1, n, "delivery %s sent %d times", id, n)
	}
	for hook, p := range peak {
		assert.LessOrEqual(t, p, 2*maxPerWebhook, "requests in flight to %s", hook)
	}
}
