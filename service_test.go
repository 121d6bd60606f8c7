package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
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
	store := memstore.New()
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
	_, err = webhook.NewService(memstore.New(), &webhook.Config{MaxPayloadBytes: -1})
	require.ErrorIs(t, err, webhook.ErrInvalid)
	svc, err := webhook.NewService(memstore.New(), nil)
	require.NoError(t, err)
	require.NotNil(t, svc.Storage())
}

func TestCreate(t *testing.T) {
	svc, store, clock := newService(t)
	in := &webhook.Webhook{
		ID:       "ignored",
		Name:     "orders",
		URL:      "https://example.com/hook",
		Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}},
		Retry:    webhook.RetryPolicy{MaxAttempts: 3},
	}
	snapshot := in.Clone()
	w, err := svc.Create(t.Context(), in)
	require.NoError(t, err)
	assert.Equal(t, snapshot, in, "Create must not modify its argument")

	_, err = uuid.Parse(w.ID)
	require.NoError(t, err, "the service assigns a UUID")
	assert.NotEqual(t, "ignored", w.ID)
	assert.True(t, strings.HasPrefix(w.Secret, "whsec_"))
	key, err := webhook.ParseSecret(w.Secret)
	require.NoError(t, err)
	assert.Len(t, key, 32)
	want := clock.Now().UTC().Truncate(time.Microsecond)
	assert.Equal(t, want, w.CreatedAt)
	assert.Equal(t, want, w.UpdatedAt)
	assert.Equal(t, webhook.RetryPolicy{MaxAttempts: 3, InitialDelay: 5 * time.Second, MaxDelay: time.Hour, Multiplier: 2}, w.Retry, "zero fields take defaults")
	assert.Equal(t, webhook.SchemeStandard, w.SignatureScheme)
	assert.NotNil(t, w.Headers)
	assert.NotNil(t, w.Triggers[0].Filters)
	assert.NotNil(t, w.Triggers[0].Conditions)

	stored, err := store.GetWebhook(t.Context(), w.ID)
	require.NoError(t, err)
	assert.Equal(t, w, stored)

	// Two webhooks get different secrets.
	w2 := create(t, svc, "other", webhook.Trigger{Type: webhook.TriggerEvent})
	assert.NotEqual(t, w.Secret, w2.Secret)

	// A supplied secret is kept.
	secret, err := webhook.NewSecret()
	require.NoError(t, err)
	w3, err := svc.Create(t.Context(), &webhook.Webhook{Name: "own", URL: "https://example.com", Secret: secret, Triggers: []webhook.Trigger{{Type: webhook.TriggerError}}})
	require.NoError(t, err)
	assert.Equal(t, secret, w3.Secret)
}

func TestCreateInvalidStoresNothing(t *testing.T) {
	svc, store, _ := newService(t)
	_, err := svc.Create(t.Context(), &webhook.Webhook{Name: "", URL: "file:///etc/passwd"})
	var ve *webhook.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.GreaterOrEqual(t, len(ve.Fields), 3)
	_, err = svc.Create(t.Context(), nil)
	require.ErrorIs(t, err, webhook.ErrInvalid)
	ws, err := store.ListWebhooks(t.Context(), webhook.ListWebhooksParams{})
	require.NoError(t, err)
	assert.Empty(t, ws)
}

func TestUpdate(t *testing.T) {
	svc, _, clock := newService(t)
	w := create(t, svc, "orders", webhook.Trigger{Type: webhook.TriggerEvent})
	clock.Advance(time.Minute)

	newSecret, err := webhook.NewSecret()
	require.NoError(t, err)
	change := w.Clone()
	change.Name = "renamed"
	change.Secret = newSecret
	change.TenantID = "other-tenant"
	change.CreatedAt = time.Time{}
	change.Retry = webhook.RetryPolicy{}
	got, err := svc.Update(t.Context(), change)
	require.NoError(t, err)
	assert.Equal(t, "renamed", got.Name)
	assert.Equal(t, w.Secret, got.Secret, "Update keeps the secret")
	assert.Equal(t, w.TenantID, got.TenantID, "Update keeps the tenant")
	assert.Equal(t, w.CreatedAt, got.CreatedAt, "Update keeps created_at")
	assert.Equal(t, w.CreatedAt.Add(time.Minute), got.UpdatedAt)
	assert.Equal(t, webhook.DefaultRetryPolicy(), got.Retry)

	again, err := svc.Get(t.Context(), w.ID)
	require.NoError(t, err)
	assert.Equal(t, got, again)

	bad := got.Clone()
	bad.URL = "not a url"
	_, err = svc.Update(t.Context(), bad)
	require.ErrorIs(t, err, webhook.ErrInvalid)
	unchanged, err := svc.Get(t.Context(), w.ID)
	require.NoError(t, err)
	assert.Equal(t, got, unchanged, "a refused update changes nothing")

	missing := got.Clone()
	missing.ID = uuid.NewString()
	_, err = svc.Update(t.Context(), missing)
	require.ErrorIs(t, err, webhook.ErrNotFound)
}

func TestUpdateReenableClearsReason(t *testing.T) {
	svc, store, _ := newService(t)
	w := create(t, svc, "orders", webhook.Trigger{Type: webhook.TriggerEvent})
	w.Disabled, w.DisabledReason = true, "endpoint answered 410 Gone"
	require.NoError(t, store.UpdateWebhook(t.Context(), w))
	w, err := svc.Get(t.Context(), w.ID)
	require.NoError(t, err)

	keep := w.Clone()
	keep.Name = "still disabled"
	keep.DisabledReason = ""
	got, err := svc.Update(t.Context(), keep)
	require.NoError(t, err)
	assert.Equal(t, "endpoint answered 410 Gone", got.DisabledReason, "an edit of a disabled webhook keeps the reason")

	got.Disabled = false
	got, err = svc.Update(t.Context(), got)
	require.NoError(t, err)
	assert.Empty(t, got.DisabledReason)
}

func TestUpdateVersions(t *testing.T) {
	svc, _, _ := newService(t)
	w := create(t, svc, "orders", webhook.Trigger{Type: webhook.TriggerEvent})
	require.Equal(t, int64(1), w.Version)

	// A client that read version 1 updates it to version 2.
	first := w.Clone()
	first.Name = "first"
	got, err := svc.Update(t.Context(), first)
	require.NoError(t, err)
	require.Equal(t, int64(2), got.Version)

	// A second client still holding version 1 is refused.
	second := w.Clone()
	second.Name = "second"
	_, err = svc.Update(t.Context(), second)
	require.ErrorIs(t, err, webhook.ErrConflict)
	cur, err := svc.Get(t.Context(), w.ID)
	require.NoError(t, err)
	require.Equal(t, "first", cur.Name)

	// Without a version, the update applies to the current one, and a
	// rotation in between is kept, never undone.
	rotated, err := svc.RotateSecret(t.Context(), w.ID)
	require.NoError(t, err)
	require.Equal(t, int64(3), rotated.Version)
	blind := w.Clone()
	blind.Version = 0
	blind.Name = "blind"
	got, err = svc.Update(t.Context(), blind)
	require.NoError(t, err)
	require.Equal(t, rotated.Secret, got.Secret)
	require.Equal(t, int64(4), got.Version)
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

func TestUpdateDoesNotUndoConcurrentRotation(t *testing.T) {
	base := memstore.New()
	plain, err := webhook.NewService(base, nil)
	require.NoError(t, err)
	w := create(t, plain, "orders", webhook.Trigger{Type: webhook.TriggerEvent})
	racy := &racyStore{Storage: base, svc: plain, rotated: false}
	svc, err := webhook.NewService(racy, nil)
	require.NoError(t, err)

	change := w.Clone()
	change.Version = 0
	change.Name = "renamed"
	got, err := svc.Update(t.Context(), change)
	require.NoError(t, err)
	stored, err := base.GetWebhook(t.Context(), w.ID)
	require.NoError(t, err)
	assert.NotEqual(t, w.Secret, stored.Secret, "the rotation that won the race is kept")
	assert.Equal(t, stored.Secret, got.Secret)
	assert.Equal(t, "renamed", stored.Name)
	assert.Equal(t, stored, got)
}

func TestDeleteAndList(t *testing.T) {
	svc, _, _ := newService(t)
	a := create(t, svc, "a", webhook.Trigger{Type: webhook.TriggerEvent})
	b := create(t, svc, "b", webhook.Trigger{Type: webhook.TriggerEvent})
	ws, err := svc.List(t.Context(), webhook.ListWebhooksParams{})
	require.NoError(t, err)
	require.Len(t, ws, 2)
	assert.Equal(t, []string{a.ID, b.ID}, []string{ws[0].ID, ws[1].ID}, "creation order")

	require.NoError(t, svc.Delete(t.Context(), a.ID))
	_, err = svc.Get(t.Context(), a.ID)
	require.ErrorIs(t, err, webhook.ErrNotFound)
	require.ErrorIs(t, svc.Delete(t.Context(), a.ID), webhook.ErrNotFound)
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

func TestTriggerEventPayload(t *testing.T) {
	svc, store, clock := newService(t)
	w := create(t, svc, "orders", webhook.Trigger{Type: webhook.TriggerEvent, Events: []string{"purchase"}})
	ids, err := svc.TriggerEvent(t.Context(), "purchase", map[string]any{"amount": 42, "user": map[string]any{"plan": "pro"}}, "production")
	require.NoError(t, err)
	require.Len(t, ids, 1)

	d, m, body := payloadOf(t, store, ids[0])
	assert.Equal(t, webhook.StatusPending, d.Status)
	assert.Equal(t, w.ID, d.WebhookID)
	assert.Equal(t, "purchase", d.EventType)
	assert.Equal(t, 0, d.Attempt)
	now := clock.Now().UTC().Truncate(time.Microsecond)
	assert.Equal(t, now, d.NextAttemptAt, "due at once")
	assert.Equal(t, now, d.CreatedAt)

	// Exactly the fields of the wire format, in its order.
	assert.Equal(t, []string{"id", "webhook_id", "event_type", "timestamp", "data", "environment"}, jsonKeys(t, body))
	assert.Equal(t, d.PayloadID, m["id"])
	assert.Equal(t, w.ID, m["webhook_id"])
	assert.Equal(t, "purchase", m["event_type"])
	assert.Equal(t, now.Format(time.RFC3339Nano), m["timestamp"])
	assert.Equal(t, map[string]any{"amount": 42.0, "user": map[string]any{"plan": "pro"}}, m["data"])
	assert.Equal(t, "production", m["environment"])

	// nil data is an empty object, not null.
	ids, err = svc.TriggerEvent(t.Context(), "purchase", nil, "")
	require.NoError(t, err)
	_, m, _ = payloadOf(t, store, ids[0])
	assert.Equal(t, map[string]any{}, m["data"])

	// A given timestamp is used.
	at := time.Date(2026, 1, 1, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	ids, err = svc.TriggerEvent(t.Context(), "purchase", nil, "", webhook.WithTimestamp(at))
	require.NoError(t, err)
	_, m, _ = payloadOf(t, store, ids[0])
	assert.Equal(t, "2026-01-01T11:00:00Z", m["timestamp"])
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

func TestTriggerEventMatching(t *testing.T) {
	svc, store, _ := newService(t)
	ctx := t.Context()
	all := create(t, svc, "all", webhook.Trigger{Type: webhook.TriggerEvent})
	star := create(t, svc, "star", webhook.Trigger{Type: webhook.TriggerEvent, Events: []string{"*"}})
	purchase := create(t, svc, "purchase", webhook.Trigger{Type: webhook.TriggerEvent, Events: []string{"purchase"}})
	checkout := create(t, svc, "checkout", webhook.Trigger{Type: webhook.TriggerEvent, Events: []string{"checkout.*"}})
	pro := create(t, svc, "pro", webhook.Trigger{Type: webhook.TriggerEvent, Filters: []webhook.Filter{{Property: "user.plan", Operator: "equals", Value: "pro"}}})
	both := create(t, svc, "both", // two matching triggers: still one delivery
		webhook.Trigger{Type: webhook.TriggerEvent, Events: []string{"purchase"}},
		webhook.Trigger{Type: webhook.TriggerEvent, Events: []string{"checkout.*", "purchase"}})
	errorsOnly := create(t, svc, "errors", webhook.Trigger{Type: webhook.TriggerError})
	staging, err := svc.Create(ctx, &webhook.Webhook{Name: "staging", URL: "https://example.com", Environments: []string{"staging"}, Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
	require.NoError(t, err)
	disabled, err := svc.Create(ctx, &webhook.Webhook{Name: "off", URL: "https://example.com", Disabled: true, Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
	require.NoError(t, err)
	_ = errorsOnly
	_ = disabled

	hooksFor := func(event string, data map[string]any, env string) []string {
		t.Helper()
		ids, err := svc.TriggerEvent(ctx, event, data, env)
		require.NoError(t, err)
		var out []string
		for _, id := range ids {
			d, err := store.GetDelivery(ctx, id)
			require.NoError(t, err)
			out = append(out, d.WebhookID)
		}
		return out
	}
	ids := func(ws ...*webhook.Webhook) []string {
		var out []string
		for _, w := range ws {
			out = append(out, w.ID)
		}
		return out
	}
	assert.Equal(t, ids(all, star, purchase, both), hooksFor("purchase", nil, "production"))
	assert.Equal(t, ids(all, star, checkout, both), hooksFor("checkout.paid", nil, "production"))
	assert.Equal(t, ids(all, star, pro), hooksFor("signup", map[string]any{"user": map[string]any{"plan": "pro"}}, "production"))
	assert.Equal(t, ids(all, star, staging), hooksFor("signup", nil, "staging"))
	assert.Equal(t, ids(all, star), hooksFor("checkout", nil, "production"))
}

func TestTriggerEventInvalid(t *testing.T) {
	svc, store, _ := newService(t)
	create(t, svc, "all", webhook.Trigger{Type: webhook.TriggerEvent})
	ctx := t.Context()
	cases := []struct {
		name  string
		event string
		data  map[string]any
		env   string
		opts  []webhook.TriggerOption
	}{
		{"empty event", "", nil, "", nil},
		{"reserved event", "$error", nil, "", nil},
		{"long event", strings.Repeat("e", 257), nil, "", nil},
		{"invalid UTF-8 event", "\xff", nil, "", nil},
		{"long environment", "x", nil, strings.Repeat("e", 65), nil},
		{"unencodable data", "x", map[string]any{"c": make(chan int)}, "", nil},
		{"NaN data", "x", map[string]any{"n": math.NaN()}, "", nil},
		{"long idempotency key", "x", nil, "", []webhook.TriggerOption{webhook.WithIdempotencyKey(strings.Repeat("k", 257))}},
		{"NUL in event", "a\x00b", nil, "", nil},
		{"control character in environment", "x", nil, "prod\n", nil},
		{"NUL in idempotency key", "x", nil, "", []webhook.TriggerOption{webhook.WithIdempotencyKey("k\x00")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ids, err := svc.TriggerEvent(ctx, c.event, c.data, c.env, c.opts...)
			require.ErrorIs(t, err, webhook.ErrInvalid)
			assert.Empty(t, ids)
		})
	}
	ds, err := store.ListDeliveries(ctx, webhook.ListDeliveriesParams{WebhookID: "x"})
	require.NoError(t, err)
	assert.Empty(t, ds)
}

func TestTriggerPayloadTooLarge(t *testing.T) {
	store := memstore.New()
	svc, err := webhook.NewService(store, &webhook.Config{MaxPayloadBytes: 1024})
	require.NoError(t, err)
	w := create(t, svc, "all", webhook.Trigger{Type: webhook.TriggerEvent})
	_, err = svc.TriggerEvent(t.Context(), "big", map[string]any{"blob": strings.Repeat("x", 2000)}, "")
	require.ErrorIs(t, err, webhook.ErrPayloadTooLarge)
	require.ErrorIs(t, err, webhook.ErrInvalid)
	// Data that fits alone but not inside the envelope is refused too.
	_, err = svc.TriggerEvent(t.Context(), "big", map[string]any{"blob": strings.Repeat("x", 1000)}, "")
	require.ErrorIs(t, err, webhook.ErrPayloadTooLarge)
	ds, err := store.ListDeliveries(t.Context(), webhook.ListDeliveriesParams{WebhookID: w.ID})
	require.NoError(t, err)
	assert.Empty(t, ds)
}

func TestTriggerError(t *testing.T) {
	svc, store, _ := newService(t)
	w := create(t, svc, "errors", webhook.Trigger{Type: webhook.TriggerError, Filters: []webhook.Filter{{Property: "error_type", Operator: "in", Value: []any{"TypeError", "RangeError"}}}})
	create(t, svc, "events", webhook.Trigger{Type: webhook.TriggerEvent})

	ids, err := svc.TriggerError(t.Context(), "TypeError", "x is undefined", map[string]any{"file": "app.js", "line": 12}, "production")
	require.NoError(t, err)
	require.Len(t, ids, 1)
	d, m, _ := payloadOf(t, store, ids[0])
	assert.Equal(t, w.ID, d.WebhookID)
	assert.Equal(t, "$error", m["event_type"])
	assert.Equal(t, map[string]any{"error_type": "TypeError", "error_message": "x is undefined", "details": map[string]any{"file": "app.js", "line": 12.0}}, m["data"])

	ids, err = svc.TriggerError(t.Context(), "SyntaxError", "bad", nil, "production")
	require.NoError(t, err)
	assert.Empty(t, ids, "filtered out")
	_, err = svc.TriggerError(t.Context(), "", "msg", nil, "")
	require.ErrorIs(t, err, webhook.ErrInvalid)
}

func TestTriggerThreshold(t *testing.T) {
	svc, store, _ := newService(t)
	hi := create(t, svc, "hi", webhook.Trigger{Type: webhook.TriggerThreshold, Conditions: []webhook.Condition{{Metric: "error_rate", Operator: "gt", Value: 0.05}}})
	lo := create(t, svc, "lo", webhook.Trigger{Type: webhook.TriggerThreshold, Conditions: []webhook.Condition{
		{Metric: "signups", Operator: "lt", Value: 10},
		{Metric: "error_rate", Operator: "gte", Value: 0.5},
	}})

	ids, err := svc.TriggerThreshold(t.Context(), "error_rate", 0.07, 0.05, "production")
	require.NoError(t, err)
	require.Len(t, ids, 1)
	d, m, _ := payloadOf(t, store, ids[0])
	assert.Equal(t, hi.ID, d.WebhookID)
	assert.Equal(t, "$threshold_alert", m["event_type"])
	assert.Equal(t, map[string]any{"metric": "error_rate", "value": 0.07, "threshold": 0.05, "exceeded": true}, m["data"])

	ids, err = svc.TriggerThreshold(t.Context(), "error_rate", 0.6, 0.05, "production")
	require.NoError(t, err)
	assert.Len(t, ids, 2, "conditions of a trigger are OR-ed")

	ids, err = svc.TriggerThreshold(t.Context(), "signups", 3, 10, "production")
	require.NoError(t, err)
	require.Len(t, ids, 1)
	d, m, _ = payloadOf(t, store, ids[0])
	assert.Equal(t, lo.ID, d.WebhookID)
	assert.Equal(t, false, m["data"].(map[string]any)["exceeded"])

	ids, err = svc.TriggerThreshold(t.Context(), "cpu", 99, 90, "production")
	require.NoError(t, err)
	assert.Empty(t, ids)

	for _, v := range []float64{math.NaN(), math.Inf(1)} {
		_, err = svc.TriggerThreshold(t.Context(), "error_rate", v, 0.05, "")
		require.ErrorIs(t, err, webhook.ErrInvalid)
		_, err = svc.TriggerThreshold(t.Context(), "error_rate", 1, v, "")
		require.ErrorIs(t, err, webhook.ErrInvalid)
	}
}

func TestTriggerIdempotencyKey(t *testing.T) {
	svc, store, _ := newService(t)
	w := create(t, svc, "all", webhook.Trigger{Type: webhook.TriggerEvent})
	first, err := svc.TriggerEvent(t.Context(), "purchase", nil, "", webhook.WithIdempotencyKey("order-1"))
	require.NoError(t, err)
	require.Len(t, first, 1)
	second, err := svc.TriggerEvent(t.Context(), "purchase", nil, "", webhook.WithIdempotencyKey("order-1"))
	require.NoError(t, err)
	assert.Equal(t, first, second, "the same key returns the first call's deliveries")
	other, err := svc.TriggerEvent(t.Context(), "purchase", nil, "", webhook.WithIdempotencyKey("order-2"))
	require.NoError(t, err)
	assert.NotEqual(t, first, other)
	ds, err := store.ListDeliveries(t.Context(), webhook.ListDeliveriesParams{WebhookID: w.ID})
	require.NoError(t, err)
	assert.Len(t, ds, 2)
}

// failingStore fails Enqueue, to show a failed trigger call reports it.
type failingStore struct {
	webhook.Storage
	err error
}

func (f failingStore) Enqueue(context.Context, webhook.EnqueueParams) (webhook.EnqueueResult, error) {
	return webhook.EnqueueResult{}, f.err
}

func TestTriggerStorageError(t *testing.T) {
	boom := errors.New("disk full")
	store := memstore.New()
	svc, err := webhook.NewService(failingStore{store, boom}, nil)
	require.NoError(t, err)
	create(t, svc, "all", webhook.Trigger{Type: webhook.TriggerEvent})
	ids, err := svc.TriggerEvent(t.Context(), "purchase", nil, "")
	require.ErrorIs(t, err, boom)
	assert.Nil(t, ids)
}

func TestWebhookCache(t *testing.T) {
	store := memstore.New()
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

func TestHistory(t *testing.T) {
	svc, store, clock := newService(t)
	w := create(t, svc, "w", webhook.Trigger{Type: webhook.TriggerEvent})
	var ids []string
	for i := range 3 {
		got, err := svc.TriggerEvent(t.Context(), fmt.Sprint("e", i), nil, "")
		require.NoError(t, err)
		ids = append(ids, got...)
	}
	cs, err := store.ClaimDeliveries(t.Context(), webhook.ClaimParams{Limit: 1, LeaseDuration: time.Minute, Now: clock.Now()})
	require.NoError(t, err)
	require.NoError(t, store.RecordAttempt(t.Context(), webhook.RecordAttemptParams{
		DeliveryID: cs[0].Delivery.ID, Token: cs[0].Lease.Token, Status: webhook.StatusDelivered,
		Attempt: webhook.Attempt{StartedAt: clock.Now(), StatusCode: 200}, Now: clock.Now(),
	}))

	ds, err := svc.Deliveries(t.Context(), w.ID, 2)
	require.NoError(t, err)
	require.Len(t, ds, 2)
	assert.Equal(t, ids[2], ds[0].ID, "newest first")
	assert.Equal(t, ids[1], ds[1].ID)

	d, err := svc.Delivery(t.Context(), cs[0].Delivery.ID)
	require.NoError(t, err)
	require.Len(t, d.Attempts, 1)
	assert.Equal(t, 200, d.Attempts[0].StatusCode)

	_, err = svc.Delivery(t.Context(), uuid.NewString())
	require.ErrorIs(t, err, webhook.ErrNotFound)
	none, err := svc.Deliveries(t.Context(), uuid.NewString(), 10)
	require.NoError(t, err)
	assert.Empty(t, none)
	require.NoError(t, svc.Delete(t.Context(), w.ID))
	kept, err := svc.Deliveries(t.Context(), w.ID, 10)
	require.NoError(t, err)
	assert.Len(t, kept, 3, "a deleted webhook's history stays")
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
