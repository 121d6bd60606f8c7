package storagetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testListDeliveries(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	hook, other := newID(t), newID(t)
	var ids []string
	for range 7 {
		ids = append(ids, enqueue(t, s, hook, 1, t0)...)
		enqueue(t, s, other, 1, t0)
	}
	slices.Reverse(ids) // newest first

	var seen []string
	before := ""
	for range 10 {
		page, err := s.ListDeliveries(ctx, webhook.ListDeliveriesParams{WebhookID: hook, Before: before, Limit: 3})
		require.NoError(t, err)
		require.LessOrEqual(t, len(page), 3)
		for _, d := range page {
			require.Equal(t, hook, d.WebhookID)
			seen = append(seen, d.ID)
		}
		if len(page) < 3 {
			break
		}
		before = page[len(page)-1].ID
	}
	require.Equal(t, ids, seen, "pages list every delivery once, newest first")

	// Deliver the oldest two; filter by status.
	for _, c := range claim(t, s, t0, 100) {
		if c.Delivery.ID == ids[6] || c.Delivery.ID == ids[5] {
			require.NoError(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{DeliveryID: c.Delivery.ID, Token: c.Lease.Token, Status: webhook.StatusDelivered, Now: t0}))
		}
	}
	done, err := s.ListDeliveries(ctx, webhook.ListDeliveriesParams{WebhookID: hook, Status: webhook.StatusDelivered})
	require.NoError(t, err)
	require.Equal(t, []string{ids[5], ids[6]}, deliveryIDs(done))

	none, err := s.ListDeliveries(ctx, webhook.ListDeliveriesParams{WebhookID: newID(t)})
	require.NoError(t, err)
	require.Empty(t, none)
	_, err = s.ListDeliveries(ctx, webhook.ListDeliveriesParams{})
	require.ErrorIs(t, err, webhook.ErrInvalid)
}

func deliveryIDs(ds []*webhook.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

func testHistoryNotFound(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	_, err := s.GetDelivery(ctx, newID(t))
	require.ErrorIs(t, err, webhook.ErrNotFound)
	_, err = s.ListAttempts(ctx, newID(t))
	require.ErrorIs(t, err, webhook.ErrNotFound)
	_, err = s.GetPayload(ctx, newID(t))
	require.ErrorIs(t, err, webhook.ErrNotFound)
}

func testCanceledContext(t *testing.T, s webhook.Storage) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.GetWebhook(ctx, newID(t))
	require.Error(t, err)
	require.False(t, errors.Is(err, webhook.ErrNotFound), "a canceled call must not report a missing row")
	_, err = s.ClaimDeliveries(ctx, webhook.ClaimParams{Limit: 1, LeaseDuration: time.Second, Now: t0})
	assert.Error(t, err)
	w := simpleWebhook(t, "")
	assert.Error(t, s.CreateWebhook(ctx, w))
	_, err = s.GetWebhook(t.Context(), w.ID)
	require.ErrorIs(t, err, webhook.ErrNotFound, "a canceled create stores nothing")
	pl, d := newDelivery(t, newID(t), t0)
	_, err = s.Enqueue(ctx, webhook.EnqueueParams{Payloads: []*webhook.Payload{pl}, Deliveries: []*webhook.Delivery{d}, Now: t0})
	assert.Error(t, err)
	assertNothingStored(t, s, []*webhook.Payload{pl}, []*webhook.Delivery{d})
}

func testHistoryOutlivesWebhook(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	w := simpleWebhook(t, "")
	require.NoError(t, s.CreateWebhook(ctx, w))
	id := enqueue(t, s, w.ID, 1, t0)[0]
	c := claim(t, s, t0, 1)[0]
	require.NoError(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{DeliveryID: id, Token: c.Lease.Token, Status: webhook.StatusDelivered, Attempt: webhook.Attempt{StartedAt: t0, StatusCode: 200}, Now: t0}))
	require.NoError(t, s.DeleteWebhook(ctx, w.ID))
	ds, err := s.ListDeliveries(ctx, webhook.ListDeliveriesParams{WebhookID: w.ID})
	require.NoError(t, err)
	require.Equal(t, []string{id}, deliveryIDs(ds), "deleting a webhook keeps its deliveries")
	atts, err := s.ListAttempts(ctx, id)
	require.NoError(t, err)
	require.Len(t, atts, 1)
	_, err = s.GetPayload(ctx, ds[0].PayloadID)
	require.NoError(t, err)
}

func testDeliveryCopies(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	pl, d := newDelivery(t, newID(t), t0)
	_, err := s.Enqueue(ctx, webhook.EnqueueParams{Payloads: []*webhook.Payload{pl}, Deliveries: []*webhook.Delivery{d}, Now: t0})
	require.NoError(t, err)
	pl.Body[2] = 'X' // the caller's slice, changed after the call
	d.EventType = "changed"
	got, err := s.GetPayload(ctx, pl.ID)
	require.NoError(t, err)
	require.Equal(t, byte('i'), got.Body[2])
	got.Body[2] = 'Y'
	c := claim(t, s, t0, 1)[0]
	require.Equal(t, "purchase", c.Delivery.EventType)
	require.Equal(t, byte('i'), c.Payload.Body[2])
	c.Payload.Body[2] = 'Z'
	c.Delivery.Status = webhook.StatusFailed
	again, err := s.GetPayload(ctx, pl.ID)
	require.NoError(t, err)
	require.Equal(t, byte('i'), again.Body[2])
	dd, err := s.GetDelivery(ctx, d.ID)
	require.NoError(t, err)
	require.Equal(t, webhook.StatusDelivering, dd.Status)
}

func testPrune(t *testing.T, s webhook.Storage) {
	pr, ok := s.(webhook.Pruner)
	if !ok {
		t.Skipf("%T does not implement webhook.Pruner", s)
	}
	ctx := t.Context()
	hook := newID(t)
	old := enqueue(t, s, hook, 3, t0)
	// Finish the three: two long ago, one recently.
	for i, c := range claim(t, s, t0, 10) {
		done := t0.Add(time.Hour)
		if c.Delivery.ID == old[2] {
			done = t0.Add(48 * time.Hour)
		}
		st := webhook.StatusDelivered
		if i == 0 {
			st = webhook.StatusFailed
		}
		require.NoError(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{DeliveryID: c.Delivery.ID, Token: c.Lease.Token, Status: st, Attempt: webhook.Attempt{StartedAt: t0}, Now: done}))
	}
	// A redelivery shares the first payload and is still pending.
	first, err := s.GetDelivery(ctx, old[0])
	require.NoError(t, err)
	again := &webhook.Delivery{ID: newID(t), WebhookID: hook, PayloadID: first.PayloadID, EventType: "purchase", Status: webhook.StatusPending, NextAttemptAt: t0.Add(72 * time.Hour), CreatedAt: t0}
	_, err = s.Enqueue(ctx, webhook.EnqueueParams{Deliveries: []*webhook.Delivery{again}, Now: t0})
	require.NoError(t, err)
	pendingOld := enqueue(t, s, hook, 1, t0.Add(72*time.Hour))[0] // old but unfinished
	_, err = s.Enqueue(ctx, webhook.EnqueueParams{IdempotencyKey: "old-key", Now: t0})
	require.NoError(t, err)
	second, err := s.GetDelivery(ctx, old[1])
	require.NoError(t, err)

	n, err := pr.Prune(ctx, webhook.PruneParams{Before: t0.Add(24 * time.Hour), BatchSize: 1})
	require.NoError(t, err)
	require.Equal(t, 2, n, "the two deliveries finished before the cut-off")
	for _, id := range old[:2] {
		_, err := s.GetDelivery(ctx, id)
		require.ErrorIs(t, err, webhook.ErrNotFound)
		_, err = s.ListAttempts(ctx, id)
		require.ErrorIs(t, err, webhook.ErrNotFound)
	}
	_, err = s.GetPayload(ctx, second.PayloadID)
	require.ErrorIs(t, err, webhook.ErrNotFound, "a payload nobody refers to goes")
	_, err = s.GetPayload(ctx, first.PayloadID)
	require.NoError(t, err, "a payload a live delivery refers to stays")
	for _, id := range []string{old[2], again.ID, pendingOld} {
		_, err := s.GetDelivery(ctx, id)
		require.NoError(t, err)
	}
	res, err := s.Enqueue(ctx, webhook.EnqueueParams{IdempotencyKey: "old-key", Now: t0.Add(48 * time.Hour)})
	require.NoError(t, err)
	require.False(t, res.Duplicate, "old idempotency keys are forgotten")
}
