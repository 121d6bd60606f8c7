package webhook_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWebhookCache(t *testing.T) {
	store := memstore.New(nil)
	clock := newFakeClock()
	a, err := webhook.NewService(store, &webhook.Config{Now: clock.Now, WebhookCacheTTL: 10 * time.Second})
	require.NoError(t, err)
	b, err := webhook.NewService(store, &webhook.Config{Now: clock.Now, WebhookCacheTTL: 10 * time.Second})
	require.NoError(t, err)
	ctx := t.Context()

	count := func(svc *webhook.Service) int {
		ids, err := svc.TriggerEvent(ctx, "e", nil, "")
		require.NoError(t, err)
		return len(ids)
	}
	require.Equal(t, 0, count(b)) // b loads its (empty) cache

	w := create(t, a, "w", webhook.Trigger{Type: webhook.TriggerEvent})
	assert.Equal(t, 1, count(a), "the creating service matches at once")
	assert.Equal(t, 0, count(b), "another instance matches after its cache TTL")
	clock.Advance(10 * time.Second)
	assert.Equal(t, 1, count(b))

	w.Disabled = true
	_, err = a.Update(ctx, w)
	require.NoError(t, err)
	assert.Equal(t, 0, count(a), "a local update applies at once")
	require.NoError(t, a.Delete(ctx, w.ID))
	assert.Equal(t, 0, count(a))

	// A negative TTL reads Storage on every call.
	c, err := webhook.NewService(store, &webhook.Config{Now: clock.Now, WebhookCacheTTL: -1})
	require.NoError(t, err)
	require.Equal(t, 0, count(c))
	create(t, a, "w2", webhook.Trigger{Type: webhook.TriggerEvent})
	assert.Equal(t, 1, count(c))
}

func TestStoredInvalidWebhookIsSkipped(t *testing.T) {
	svc, store, _ := newService(t)
	good := create(t, svc, "good", webhook.Trigger{Type: webhook.TriggerEvent})
	bad := good.Clone()
	bad.ID = uuid.NewString()
	bad.Triggers = []webhook.Trigger{{Type: webhook.TriggerEvent, Filters: []webhook.Filter{{Property: "x", Operator: "bogus"}}}}
	require.NoError(t, store.CreateWebhook(t.Context(), bad)) // written behind the service's back
	svc2, err := webhook.NewService(store, nil)
	require.NoError(t, err)
	ids, err := svc2.TriggerEvent(t.Context(), "e", map[string]any{"x": 1}, "")
	require.NoError(t, err)
	assert.Len(t, ids, 1, "the invalid row is skipped, the valid one still matches")
}

func TestConcurrentTriggersAndChanges(t *testing.T) {
	svc, store, _ := newService(t)
	ctx := t.Context()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var all []string
	for i := range 4 {
		wg.Go(func() {
			for j := range 25 {
				ids, err := svc.TriggerEvent(ctx, "e", map[string]any{"i": i, "j": j}, "")
				assert.NoError(t, err)
				mu.Lock()
				all = append(all, ids...)
				mu.Unlock()
			}
		})
	}
	wg.Go(func() {
		for i := range 10 {
			_, err := svc.Create(ctx, &webhook.Webhook{Name: fmt.Sprint("w", i), URL: "https://example.com", Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
			assert.NoError(t, err)
		}
	})
	wg.Wait()
	seen := map[string]bool{}
	for _, id := range all {
		require.False(t, seen[id])
		seen[id] = true
		_, err := store.GetDelivery(ctx, id)
		require.NoError(t, err)
	}
}
