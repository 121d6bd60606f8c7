package webhook_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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

func TestTestSend(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 2 {
			w.WriteHeader(http.StatusBadGateway)
		}
	})
	e := newEnv(t, nil, nil)
	w := e.hook(t, rc.URL)
	d, err := e.svc.Test(t.Context(), w.ID)
	require.NoError(t, err)
	assert.Equal(t, webhook.StatusDelivered, d.Status)
	assert.Equal(t, "$test", d.EventType)
	require.Len(t, d.Attempts, 1)
	r := rc.all()[0]
	var body map[string]any
	require.NoError(t, json.Unmarshal(r.body, &body))
	assert.Equal(t, "$test", body["event_type"])
	assert.Equal(t, "test", body["environment"])
	assert.Equal(t, map[string]any{"message": "This is a test webhook delivery", "webhook_name": "test"}, body["data"])
	require.NoError(t, (&webhook.Verifier{Secrets: []string{w.Secret}, Now: e.clock.Now}).Verify(r.header, r.body))

	d, err = e.svc.Test(t.Context(), w.ID)
	require.NoError(t, err, "a failing endpoint is a failed delivery, not an error")
	assert.Equal(t, webhook.StatusFailed, d.Status)
	assert.Equal(t, 502, d.StatusCode)
	e.clock.Advance(24 * time.Hour)
	assert.Equal(t, 0, e.runOnce(t), "a test send is never retried")
	assert.Len(t, rc.all(), 2)

	_, err = e.svc.Test(t.Context(), "00000000-0000-0000-0000-000000000000")
	require.ErrorIs(t, err, webhook.ErrNotFound)
}

func TestRedeliverAndReplay(t *testing.T) {
	fail := atomic.Bool{}
	fail.Store(true)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		if fail.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	e := newEnv(t, nil, nil)
	w := e.hook(t, rc.URL, func(w *webhook.Webhook) { w.Retry.MaxAttempts = 1 })
	var ids []string
	for range 3 {
		ids = append(ids, e.trigger(t)...)
	}
	pending := e.trigger(t)[0]
	_, err := e.svc.Redeliver(t.Context(), pending)
	require.ErrorIs(t, err, webhook.ErrInvalid, "an unfinished delivery cannot be redelivered")
	e.runOnce(t)
	for _, id := range ids {
		require.Equal(t, webhook.StatusFailed, e.delivery(t, id).Status)
	}

	fail.Store(false)
	again, err := e.svc.Redeliver(t.Context(), ids[0])
	require.NoError(t, err)
	require.NotEqual(t, ids[0], again)
	e.runOnce(t)
	assert.Equal(t, webhook.StatusDelivered, e.delivery(t, again).Status)
	var firstID string
	for _, r := range rc.all() {
		if r.header.Get("X-Delivery-Id") == ids[0] {
			firstID = r.header.Get("webhook-id")
		}
	}
	reqs := rc.all()
	assert.Equal(t, firstID, reqs[len(reqs)-1].header.Get("webhook-id"), "a redelivery keeps the webhook-id")
	assert.Equal(t, again, reqs[len(reqs)-1].header.Get("X-Delivery-Id"))

	e.clock.Advance(time.Second)
	replayed, err := e.svc.ReplayFailed(t.Context(), w.ID, time.Time{})
	require.NoError(t, err)
	assert.Len(t, replayed, 4, "every failed delivery is queued again")
	e.runOnce(t)
	for _, id := range replayed {
		assert.Equal(t, webhook.StatusDelivered, e.delivery(t, id).Status)
	}
	none, err := e.svc.ReplayFailed(t.Context(), w.ID, e.clock.Now().Add(time.Hour))
	require.NoError(t, err)
	assert.Empty(t, none)

	w, err = e.svc.Get(t.Context(), w.ID)
	require.NoError(t, err)
	w.Disabled = true
	_, err = e.svc.Update(t.Context(), w)
	require.NoError(t, err)
	_, err = e.svc.Redeliver(t.Context(), ids[1])
	require.ErrorIs(t, err, webhook.ErrInvalid)
}

func TestInterruptedTestSendIsNotRetried(t *testing.T) {
	rc := newReceiver(t, nil)
	e := newEnv(t, nil, &webhook.WorkerConfig{LeaseDuration: time.Minute})
	w := e.hook(t, rc.URL)
	// What Test stores before it sends; then the process dies.
	now := e.clock.Now()
	pl := &webhook.Payload{ID: "00000000-0000-7000-8000-0000000000a1", WebhookID: w.ID, EventType: "$test", Environment: "test", Timestamp: now, Body: []byte(`{}`)}
	d := &webhook.Delivery{ID: "00000000-0000-7000-8000-0000000000a2", WebhookID: w.ID, PayloadID: pl.ID, EventType: "$test", Status: webhook.StatusDelivering, Attempt: 1, NextAttemptAt: now, CreatedAt: now}
	_, err := e.store.Enqueue(t.Context(), webhook.EnqueueParams{Payloads: []*webhook.Payload{pl}, Deliveries: []*webhook.Delivery{d}, Lease: &webhook.Lease{Token: "t", ExpiresAt: now.Add(time.Minute)}, Now: now})
	require.NoError(t, err)
	e.clock.Advance(time.Minute)
	e.runOnce(t)
	got := e.delivery(t, d.ID)
	assert.Equal(t, webhook.StatusFailed, got.Status)
	assert.Contains(t, got.Error, "never retried")
	assert.Empty(t, rc.all())
}
