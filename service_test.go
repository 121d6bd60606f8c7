package webhook_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
)

// fakeClock is a settable clock for tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 28, 9, 0, 0, 123456000, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newService(t *testing.T) (*webhook.Service, *memstore.Store, *fakeClock) {
	t.Helper()
	store := memstore.New(nil)
	clock := newFakeClock()
	svc, err := webhook.NewService(store, &webhook.Config{Now: clock.Now})
	require.NoError(t, err)
	return svc, store, clock
}

func create(t *testing.T, svc *webhook.Service, name string, triggers ...webhook.Trigger) *webhook.Webhook {
	t.Helper()
	w, err := svc.Create(t.Context(), &webhook.Webhook{Name: name, URL: "https://example.com/" + name, Triggers: triggers})
	require.NoError(t, err)
	return w
}

func TestNewServiceErrors(t *testing.T) {
	_, err := webhook.NewService(nil, nil)
	require.ErrorIs(t, err, webhook.ErrInvalid)
	_, err = webhook.NewService(memstore.New(nil), &webhook.Config{MaxPayloadBytes: -1})
	require.ErrorIs(t, err, webhook.ErrInvalid)
	svc, err := webhook.NewService(memstore.New(nil), nil)
	require.NoError(t, err)
	require.NotNil(t, svc.Storage())
}

// racyStore makes every first UpdateWebhook of a webhook lose a race
// against a secret rotation, as when RotateSecret runs between Update's
// read and write.
type racyStore struct {
	webhook.Storage
	svc     *webhook.Service
	mu      sync.Mutex
	rotated bool
}

func (r *racyStore) UpdateWebhook(ctx context.Context, w *webhook.Webhook) error {
	r.mu.Lock()
	first := !r.rotated
	r.rotated = true
	r.mu.Unlock()
	if first {
		if _, err := r.svc.RotateSecret(ctx, w.ID); err != nil {
			return err
		}
	}
	return r.Storage.UpdateWebhook(ctx, w)
}

// payloadOf returns the stored wire body of a delivery, decoded.
func payloadOf(t *testing.T, store webhook.Storage, deliveryID string) (*webhook.Delivery, map[string]any, []byte) {
	t.Helper()
	d, err := store.GetDelivery(t.Context(), deliveryID)
	require.NoError(t, err)
	p, err := store.GetPayload(t.Context(), d.PayloadID)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(p.Body, &m))
	return d, m, p.Body
}

// jsonKeys returns the top-level keys of a JSON object in order.
func jsonKeys(t *testing.T, b []byte) []string {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	_, err := dec.Token()
	require.NoError(t, err)
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		require.NoError(t, err)
		keys = append(keys, k.(string))
		var skip json.RawMessage
		require.NoError(t, dec.Decode(&skip))
	}
	return keys
}

// failingStore fails Enqueue, to show a failed trigger call reports it.
type failingStore struct {
	webhook.Storage
	err error
}

func (f failingStore) Enqueue(context.Context, webhook.EnqueueParams) (webhook.EnqueueResult, error) {
	return webhook.EnqueueResult{}, f.err
}
