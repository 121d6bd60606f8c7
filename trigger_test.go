package webhook_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
	store := memstore.New(nil)
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

	// The caller's threshold (here 0.9) decides nothing: the condition's
	// own value (0.05) does; the caller's is reported.
	ids, err := svc.TriggerThreshold(t.Context(), "error_rate", 0.07, 0.9, "production")
	require.NoError(t, err)
	require.Len(t, ids, 1)
	d, m, _ := payloadOf(t, store, ids[0])
	assert.Equal(t, hi.ID, d.WebhookID)
	assert.Equal(t, "$threshold_alert", m["event_type"])
	data := m["data"].(map[string]any)
	for k, v := range map[string]any{"metric": "error_rate", "value": 0.07, "threshold": 0.05, "reported_threshold": 0.9,
		"exceeded": true, "status": "firing", "reason": "fired", "operator": "gt", "aggregation": "last",
		"window_seconds": 0.0, "notification_count": 1.0} {
		assert.Equal(t, v, data[k], k)
	}

	ids, err = svc.TriggerThreshold(t.Context(), "error_rate", 0.6, 0.05, "production")
	require.NoError(t, err)
	require.Len(t, ids, 1, "hi is firing already; lo's second condition fires")
	d, _, _ = payloadOf(t, store, ids[0])
	assert.Equal(t, lo.ID, d.WebhookID)

	ids, err = svc.TriggerThreshold(t.Context(), "signups", 3, 10, "production")
	require.NoError(t, err)
	require.Len(t, ids, 1, "each condition of a trigger is an alert of its own")
	d, m, _ = payloadOf(t, store, ids[0])
	assert.Equal(t, lo.ID, d.WebhookID)
	assert.Equal(t, true, m["data"].(map[string]any)["exceeded"], "exceeded says the condition holds: 3 < 10")

	ids, err = svc.TriggerThreshold(t.Context(), "error_rate", 0.07, 0.05, "staging")
	require.NoError(t, err)
	assert.Len(t, ids, 1, "environments are alerts of their own")

	ids, err = svc.TriggerThreshold(t.Context(), "cpu", 99, 90, "production")
	require.NoError(t, err)
	assert.Empty(t, ids)

	for _, v := range []float64{math.NaN(), math.Inf(1)} {
		_, err = svc.TriggerThreshold(t.Context(), "error_rate", v, 0.05, "")
		require.ErrorIs(t, err, webhook.ErrInvalid)
		_, err = svc.TriggerThreshold(t.Context(), "error_rate", 1, v, "")
		require.ErrorIs(t, err, webhook.ErrInvalid)
	}
	_, err = svc.TriggerThreshold(t.Context(), "error_rate", 1, 0, "", webhook.WithEnqueuer(store))
	require.ErrorIs(t, err, webhook.ErrInvalid, "an alert is enqueued with its state, not through another Enqueuer")
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

func TestTriggerStorageError(t *testing.T) {
	boom := errors.New("disk full")
	store := memstore.New(nil)
	svc, err := webhook.NewService(failingStore{store, boom}, nil)
	require.NoError(t, err)
	create(t, svc, "all", webhook.Trigger{Type: webhook.TriggerEvent})
	ids, err := svc.TriggerEvent(t.Context(), "purchase", nil, "")
	require.ErrorIs(t, err, boom)
	assert.Nil(t, ids)
}

func TestUntenantedTriggerSkipsTenantWebhooks(t *testing.T) {
	svc, store, _ := newService(t)
	ctx := t.Context()
	plain := create(t, svc, "plain", webhook.Trigger{Type: webhook.TriggerEvent})
	_, err := svc.Create(ctx, &webhook.Webhook{TenantID: "b", Name: "b", URL: "https://example.com/b", Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
	require.NoError(t, err)

	ids, err := svc.TriggerEvent(ctx, "purchase", nil, "")
	require.NoError(t, err)
	require.Len(t, ids, 1, "an event without a tenant reaches only webhooks without one")
	d, err := store.GetDelivery(ctx, ids[0])
	require.NoError(t, err)
	assert.Equal(t, plain.ID, d.WebhookID)
}
