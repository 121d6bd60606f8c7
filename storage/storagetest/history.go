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
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, errors.Is(err, webhook.ErrNotFound), "a canceled call must not report a missing row")
	_, err = s.ClaimDeliveries(ctx, webhook.ClaimParams{Limit: 1, LeaseDuration: time.Second, Now: t0})
	assert.ErrorIs(t, err, context.Canceled)
	w := simpleWebhook(t, "")
	assert.ErrorIs(t, s.CreateWebhook(ctx, w), context.Canceled)
	_, err = s.GetWebhook(t.Context(), w.ID)
	require.ErrorIs(t, err, webhook.ErrNotFound, "a canceled create stores nothing")
	pl, d := newDelivery(t, newID(t), t0)
	_, err = s.Enqueue(ctx, webhook.EnqueueParams{Payloads: []*webhook.Payload{pl}, Deliveries: []*webhook.Delivery{d}, Now: t0})
	assert.ErrorIs(t, err, context.Canceled)
	assertNothingStored(t, s, []*webhook.Payload{pl}, []*webhook.Delivery{d})

	// Reads and results as well.
	id := enqueue(t, s, newID(t), 1, t0)[0]
	c := claim(t, s, t0, 1)[0]
	_, err = s.GetDelivery(ctx, id)
	assert.ErrorIs(t, err, context.Canceled)
	_, err = s.ListDeliveries(ctx, webhook.ListDeliveriesParams{WebhookID: c.Delivery.WebhookID})
	assert.ErrorIs(t, err, context.Canceled)
	_, err = s.ListAttempts(ctx, id)
	assert.ErrorIs(t, err, context.Canceled)
	_, err = s.GetPayload(ctx, c.Payload.ID)
	assert.ErrorIs(t, err, context.Canceled)
	err = s.RecordAttempt(ctx, webhook.RecordAttemptParams{DeliveryID: id, Token: c.Lease.Token, Status: webhook.StatusDelivered, Now: t0})
	assert.ErrorIs(t, err, context.Canceled)
	got, err := s.GetDelivery(t.Context(), id)
	require.NoError(t, err)
	assert.Equal(t, webhook.StatusDelivering, got.Status, "a canceled result records nothing")
}

func testNonUTCTimes(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	east := time.FixedZone("UTC+05:30", 5*3600+1800)
	west := time.FixedZone("UTC-08:00", -8*3600)
	hook := newID(t)
	// Due at the same instant and an hour later, written in two zones.
	p1, d1 := newDelivery(t, hook, t0.In(east))
	p1.Timestamp = t0.In(west)
	d1.CreatedAt = t0.In(west)
	p2, d2 := newDelivery(t, hook, t0.Add(time.Hour).In(west))
	_, err := s.Enqueue(ctx, webhook.EnqueueParams{Payloads: []*webhook.Payload{p1, p2}, Deliveries: []*webhook.Delivery{d1, d2}, Now: t0.In(east)})
	require.NoError(t, err)
	sameInstant := func(want, got time.Time, what string) {
		t.Helper()
		assert.True(t, want.Equal(got), "%s: stored %v, returned %v", what, want, got)
	}
	gotP, err := s.GetPayload(ctx, p1.ID)
	require.NoError(t, err)
	sameInstant(p1.Timestamp, gotP.Timestamp, "payload timestamp")
	gotD, err := s.GetDelivery(ctx, d1.ID)
	require.NoError(t, err)
	sameInstant(d1.NextAttemptAt, gotD.NextAttemptAt, "next attempt")
	sameInstant(d1.CreatedAt, gotD.CreatedAt, "created")

	// "Now" in a third zone, 30 minutes after t0: only the first is due.
	tokyo := time.FixedZone("UTC+09:00", 9*3600)
	now := t0.Add(30 * time.Minute).In(tokyo)
	cs, err := s.ClaimDeliveries(ctx, webhook.ClaimParams{WorkerID: "w", Limit: 10, LeaseDuration: time.Minute, Now: now})
	require.NoError(t, err)
	require.Equal(t, []string{d1.ID}, claimIDs(cs), "due times compare as instants, whatever their zone")
	sameInstant(now.Add(time.Minute), cs[0].Lease.ExpiresAt, "lease expiry")
	sameInstant(d1.NextAttemptAt, cs[0].Delivery.NextAttemptAt, "claimed next attempt")

	started := now.In(west)
	next := now.Add(10 * time.Minute).In(east)
	require.NoError(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{
		DeliveryID: d1.ID, Token: cs[0].Lease.Token, Status: webhook.StatusRetrying, NextAttemptAt: next,
		Attempt: webhook.Attempt{StartedAt: started, StatusCode: 503}, Now: now,
	}))
	atts, err := s.ListAttempts(ctx, d1.ID)
	require.NoError(t, err)
	require.Len(t, atts, 1)
	sameInstant(started, atts[0].StartedAt, "attempt start")
	gotD, err = s.GetDelivery(ctx, d1.ID)
	require.NoError(t, err)
	sameInstant(next, gotD.NextAttemptAt, "retry time")
	require.Empty(t, claim(t, s, next.Add(-time.Microsecond).In(west), 10), "not due a microsecond early")
	cs = claim(t, s, next.In(tokyo), 1)
	require.Len(t, cs, 1)
	require.NoError(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{
		DeliveryID: d1.ID, Token: cs[0].Lease.Token, Status: webhook.StatusDelivered,
		Attempt: webhook.Attempt{StartedAt: next, StatusCode: 200}, Now: next.In(west),
	}))
	gotD, err = s.GetDelivery(ctx, d1.ID)
	require.NoError(t, err)
	sameInstant(next, gotD.CompletedAt, "completed")

	w := simpleWebhook(t, "")
	w.CreatedAt, w.UpdatedAt = t0.In(east), t0.Add(time.Second).In(west)
	require.NoError(t, s.CreateWebhook(ctx, w))
	gotW, err := s.GetWebhook(ctx, w.ID)
	require.NoError(t, err)
	sameInstant(w.CreatedAt, gotW.CreatedAt, "webhook created")
	sameInstant(w.UpdatedAt, gotW.UpdatedAt, "webhook updated")
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
