package webhook_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// webhookReadCounter counts the webhooks read one by one.
type webhookReadCounter struct {
	*memstore.Store
	gets atomic.Int64
}

func (s *webhookReadCounter) GetWebhook(ctx context.Context, id string) (*webhook.Webhook, error) {
	s.gets.Add(1)
	return s.Store.GetWebhook(ctx, id)
}

// A process that only runs a worker (its Service never triggers, so it
// never loads the matching index) reads each webhook once, not once per
// attempt, and again once the webhook changes: an attempt never uses
// settings older than its claim.
func TestWorkerOnlyProcessReadsEachWebhookOncePerVersion(t *testing.T) {
	var hits, moved atomic.Int64
	first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer first.Close()
	second := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		moved.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer second.Close()
	ctx := t.Context()
	store := &webhookReadCounter{Store: memstore.New(nil)}
	cfg := &webhook.Config{Network: webhook.NetworkPolicy{AllowPrivate: true}}
	producer, err := webhook.NewService(store.Store, cfg)
	require.NoError(t, err)
	hook, err := producer.Create(ctx, &webhook.Webhook{Name: "h", URL: first.URL, Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
	require.NoError(t, err)
	for range 10 {
		_, err := producer.TriggerEvent(ctx, "e", nil, "")
		require.NoError(t, err)
	}

	consumer, err := webhook.NewService(store, cfg)
	require.NoError(t, err)
	w, err := webhook.NewWorker(consumer, nil)
	require.NoError(t, err)
	n, err := w.RunOnce(ctx)
	require.NoError(t, err)
	assert.Equal(t, 10, n)
	assert.Equal(t, int64(10), hits.Load())
	assert.Equal(t, int64(1), store.gets.Load(), "one read for ten attempts")

	hook.URL = second.URL
	_, err = producer.Update(ctx, hook)
	require.NoError(t, err)
	for range 5 {
		_, err := producer.TriggerEvent(ctx, "e", nil, "")
		require.NoError(t, err)
	}
	n, err = w.RunOnce(ctx)
	require.NoError(t, err)
	assert.Equal(t, 5, n)
	assert.Equal(t, int64(5), moved.Load(), "the new version's URL")
	assert.Equal(t, int64(10), hits.Load())
	assert.Equal(t, int64(2), store.gets.Load(), "one more read for the new version")
}
