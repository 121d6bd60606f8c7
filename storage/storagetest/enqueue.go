package storagetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/stretchr/testify/require"
)

// newDelivery returns a payload and a pending delivery for webhookID,
// due at due.
func newDelivery(t *testing.T, webhookID string, due time.Time) (*webhook.Payload, *webhook.Delivery) {
	pid := newID(t)
	// Odd spacing and key order: a Storage must keep the bytes as given.
	body := fmt.Sprintf(`{"id":%q, "webhook_id":%q,"event_type":"purchase","timestamp":"2026-03-04T05:06:07Z","data":{"z":1,  "a":[2,1]},"environment":"production"}`, pid, webhookID)
	// Every payload carries a trace context, which GetPayload and claims
	// must return as stored.
	p := &webhook.Payload{ID: pid, WebhookID: webhookID, EventType: "purchase", Environment: "production", Timestamp: t0, Body: []byte(body),
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	d := &webhook.Delivery{
		ID: newID(t), WebhookID: webhookID, PayloadID: pid, EventType: "purchase",
		Status: webhook.StatusPending, NextAttemptAt: due, CreatedAt: t0,
	}
	return p, d
}

// enqueue stores n due deliveries for webhookID and returns their IDs.
func enqueue(t *testing.T, s webhook.Storage, webhookID string, n int, due time.Time) []string {
	t.Helper()
	var p webhook.EnqueueParams
	p.Now = t0
	for range n {
		pl, d := newDelivery(t, webhookID, due)
		p.Payloads = append(p.Payloads, pl)
		p.Deliveries = append(p.Deliveries, d)
	}
	res, err := s.Enqueue(t.Context(), p)
	require.NoError(t, err)
	require.False(t, res.Duplicate)
	require.Len(t, res.DeliveryIDs, n)
	return res.DeliveryIDs
}

func testEnqueueRoundTrip(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	pl, d := newDelivery(t, newID(t), t0)
	res, err := s.Enqueue(ctx, webhook.EnqueueParams{Payloads: []*webhook.Payload{pl}, Deliveries: []*webhook.Delivery{d}, Now: t0})
	require.NoError(t, err)
	require.Equal(t, webhook.EnqueueResult{DeliveryIDs: []string{d.ID}}, res)

	gotP, err := s.GetPayload(ctx, pl.ID)
	require.NoError(t, err)
	require.Equal(t, pl, gotP, "payload body must be stored byte for byte")
	gotD, err := s.GetDelivery(ctx, d.ID)
	require.NoError(t, err)
	require.Equal(t, d, gotD)
	atts, err := s.ListAttempts(ctx, d.ID)
	require.NoError(t, err)
	require.Empty(t, atts)
}

func testEnqueueAllOrNothing(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	hook := newID(t)
	existing := enqueue(t, s, hook, 1, t0)[0]

	// A batch whose second delivery clashes with a stored one.
	p1, d1 := newDelivery(t, hook, t0)
	p2, d2 := newDelivery(t, hook, t0)
	d2.ID = existing
	_, err := s.Enqueue(ctx, webhook.EnqueueParams{Payloads: []*webhook.Payload{p1, p2}, Deliveries: []*webhook.Delivery{d1, d2}, Now: t0})
	require.ErrorIs(t, err, webhook.ErrDuplicate)
	assertNothingStored(t, s, []*webhook.Payload{p1, p2}, []*webhook.Delivery{d1})

	// A batch whose delivery names a payload that exists nowhere.
	p3, d3 := newDelivery(t, hook, t0)
	_, d4 := newDelivery(t, hook, t0)
	_, err = s.Enqueue(ctx, webhook.EnqueueParams{Payloads: []*webhook.Payload{p3}, Deliveries: []*webhook.Delivery{d3, d4}, Now: t0})
	require.ErrorIs(t, err, webhook.ErrNotFound)
	assertNothingStored(t, s, []*webhook.Payload{p3}, []*webhook.Delivery{d3, d4})

	// A batch with a payload ID that exists already.
	p5, d5 := newDelivery(t, hook, t0)
	stored, err := s.GetDelivery(ctx, existing)
	require.NoError(t, err)
	p6, d6 := newDelivery(t, hook, t0)
	p6.ID = stored.PayloadID
	_, err = s.Enqueue(ctx, webhook.EnqueueParams{Payloads: []*webhook.Payload{p5, p6}, Deliveries: []*webhook.Delivery{d5, d6}, Now: t0})
	require.ErrorIs(t, err, webhook.ErrDuplicate)
	assertNothingStored(t, s, []*webhook.Payload{p5}, []*webhook.Delivery{d5, d6})

	// Only the first delivery is claimable.
	cs := claim(t, s, t0, 10)
	require.Len(t, cs, 1)
	require.Equal(t, existing, cs[0].Delivery.ID)
}

func assertNothingStored(t *testing.T, s webhook.Storage, ps []*webhook.Payload, ds []*webhook.Delivery) {
	t.Helper()
	for _, p := range ps {
		_, err := s.GetPayload(t.Context(), p.ID)
		require.ErrorIs(t, err, webhook.ErrNotFound, "payload %s of a failed enqueue was stored", p.ID)
	}
	for _, d := range ds {
		_, err := s.GetDelivery(t.Context(), d.ID)
		require.ErrorIs(t, err, webhook.ErrNotFound, "delivery %s of a failed enqueue was stored", d.ID)
	}
}

func testEnqueueRedelivery(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	hook := newID(t)
	first := enqueue(t, s, hook, 1, t0)[0]
	orig, err := s.GetDelivery(ctx, first)
	require.NoError(t, err)
	again := &webhook.Delivery{ID: newID(t), WebhookID: hook, PayloadID: orig.PayloadID, EventType: "purchase", Status: webhook.StatusPending, NextAttemptAt: t0, CreatedAt: t0}
	res, err := s.Enqueue(ctx, webhook.EnqueueParams{Deliveries: []*webhook.Delivery{again}, Now: t0})
	require.NoError(t, err)
	require.Equal(t, []string{again.ID}, res.DeliveryIDs)
	cs := claim(t, s, t0, 10)
	require.Len(t, cs, 2)
	for _, c := range cs {
		require.Equal(t, orig.PayloadID, c.Payload.ID, "both deliveries send the same payload")
	}
}

func testEnqueueInvalid(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	pl, d := newDelivery(t, newID(t), t0)
	d.Status = webhook.StatusDelivered
	_, err := s.Enqueue(ctx, webhook.EnqueueParams{Payloads: []*webhook.Payload{pl}, Deliveries: []*webhook.Delivery{d}, Now: t0})
	require.ErrorIs(t, err, webhook.ErrInvalid, "only pending deliveries may be enqueued without a lease")
	assertNothingStored(t, s, []*webhook.Payload{pl}, []*webhook.Delivery{d})

	// A lease must end after the enqueue's Now: its length is what a
	// Storage with its own lease clock keeps.
	d.Status, d.Attempt = webhook.StatusDelivering, 1
	_, err = s.Enqueue(ctx, webhook.EnqueueParams{Payloads: []*webhook.Payload{pl}, Deliveries: []*webhook.Delivery{d}, Now: t0,
		Lease: &webhook.Lease{Token: "t", WorkerID: "w", ExpiresAt: t0}})
	require.ErrorIs(t, err, webhook.ErrInvalid, "a lease that ends at Now")
	assertNothingStored(t, s, []*webhook.Payload{pl}, []*webhook.Delivery{d})
}

func testIdempotencyKey(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	hook := newID(t)
	p1, d1 := newDelivery(t, hook, t0)
	res, err := s.Enqueue(ctx, webhook.EnqueueParams{IdempotencyKey: "order-42", Payloads: []*webhook.Payload{p1}, Deliveries: []*webhook.Delivery{d1}, Now: t0})
	require.NoError(t, err)
	require.Equal(t, webhook.EnqueueResult{DeliveryIDs: []string{d1.ID}}, res)

	p2, d2 := newDelivery(t, hook, t0)
	res, err = s.Enqueue(ctx, webhook.EnqueueParams{IdempotencyKey: "order-42", Payloads: []*webhook.Payload{p2}, Deliveries: []*webhook.Delivery{d2}, Now: t0})
	require.NoError(t, err)
	require.Equal(t, webhook.EnqueueResult{DeliveryIDs: []string{d1.ID}, Duplicate: true}, res)
	assertNothingStored(t, s, []*webhook.Payload{p2}, []*webhook.Delivery{d2})

	// A key is remembered even when nothing matched.
	res, err = s.Enqueue(ctx, webhook.EnqueueParams{IdempotencyKey: "empty", Now: t0})
	require.NoError(t, err)
	require.False(t, res.Duplicate)
	require.Empty(t, res.DeliveryIDs)
	p3, d3 := newDelivery(t, hook, t0)
	res, err = s.Enqueue(ctx, webhook.EnqueueParams{IdempotencyKey: "empty", Payloads: []*webhook.Payload{p3}, Deliveries: []*webhook.Delivery{d3}, Now: t0})
	require.NoError(t, err)
	require.True(t, res.Duplicate)
	require.Empty(t, res.DeliveryIDs)
	assertNothingStored(t, s, []*webhook.Payload{p3}, []*webhook.Delivery{d3})

	// A failed enqueue does not use up its key.
	p4, d4 := newDelivery(t, hook, t0)
	d4.ID = d1.ID // clashes
	_, err = s.Enqueue(ctx, webhook.EnqueueParams{IdempotencyKey: "retry-me", Payloads: []*webhook.Payload{p4}, Deliveries: []*webhook.Delivery{d4}, Now: t0})
	require.ErrorIs(t, err, webhook.ErrDuplicate)
	p5, d5 := newDelivery(t, hook, t0)
	res, err = s.Enqueue(ctx, webhook.EnqueueParams{IdempotencyKey: "retry-me", Payloads: []*webhook.Payload{p5}, Deliveries: []*webhook.Delivery{d5}, Now: t0})
	require.NoError(t, err)
	require.Equal(t, webhook.EnqueueResult{DeliveryIDs: []string{d5.ID}}, res)
}

func testIdempotencyKeyConcurrent(t *testing.T, s webhook.Storage) {
	const n = 8
	hook := newID(t)
	params := make([]webhook.EnqueueParams, n)
	for i := range params {
		p, d := newDelivery(t, hook, t0)
		params[i] = webhook.EnqueueParams{IdempotencyKey: "race", Payloads: []*webhook.Payload{p}, Deliveries: []*webhook.Delivery{d}, Now: t0}
	}
	results := make([]webhook.EnqueueResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = s.Enqueue(context.Background(), params[i])
		})
	}
	close(start)
	wg.Wait()
	winners := 0
	var ids []string
	for i := range n {
		require.NoError(t, errs[i])
		if !results[i].Duplicate {
			winners++
			ids = results[i].DeliveryIDs
		}
	}
	require.Equal(t, 1, winners, "exactly one racing enqueue with a key must store its rows")
	for i := range n {
		require.Equal(t, ids, results[i].DeliveryIDs)
	}
	cs := claim(t, s, t0, 100)
	require.Len(t, cs, 1)
}

func testEnqueueLeased(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	pl, d := newDelivery(t, newID(t), t0)
	d.Status = webhook.StatusDelivering
	d.Attempt = 1
	lease := &webhook.Lease{Token: "test-send-token", WorkerID: "test", ExpiresAt: t0.Add(time.Minute)}
	_, err := s.Enqueue(ctx, webhook.EnqueueParams{Payloads: []*webhook.Payload{pl}, Deliveries: []*webhook.Delivery{d}, Lease: lease, Now: t0})
	require.NoError(t, err)
	require.Empty(t, claim(t, s, t0.Add(59*time.Second), 10), "a leased enqueue is not claimable while the lease lasts")
	require.NoError(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{
		DeliveryID: d.ID, Token: lease.Token, Status: webhook.StatusDelivered,
		Attempt: webhook.Attempt{StartedAt: t0, StatusCode: 200}, Now: t0.Add(time.Second),
	}))
	got, err := s.GetDelivery(ctx, d.ID)
	require.NoError(t, err)
	require.Equal(t, webhook.StatusDelivered, got.Status)
	require.Equal(t, 1, got.Attempt)

	// Abandoned, it is reclaimed like any other lease.
	pl2, d2 := newDelivery(t, newID(t), t0)
	d2.Status, d2.Attempt = webhook.StatusDelivering, 1
	lease2 := &webhook.Lease{Token: "abandoned", WorkerID: "test", ExpiresAt: t0.Add(time.Minute)}
	_, err = s.Enqueue(ctx, webhook.EnqueueParams{Payloads: []*webhook.Payload{pl2}, Deliveries: []*webhook.Delivery{d2}, Lease: lease2, Now: t0})
	require.NoError(t, err)
	cs := claim(t, s, t0.Add(time.Minute), 10)
	require.Equal(t, []string{d2.ID}, claimIDs(cs))
	require.Equal(t, 2, cs[0].Delivery.Attempt)
}

// testEnqueueDuplicateOfFinished checks that an ID clashes with a
// delivery whatever its status: a finished one too, so that an Enqueue
// retried after ErrCommitUnknown whose first try committed and was
// delivered meanwhile stores nothing (and sends nothing) again.
func testEnqueueDuplicateOfFinished(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	hook := newID(t)
	pl, d := newDelivery(t, hook, t0)
	_, err := s.Enqueue(ctx, webhook.EnqueueParams{Payloads: []*webhook.Payload{pl}, Deliveries: []*webhook.Delivery{d}, Now: t0})
	require.NoError(t, err)
	c := claim(t, s, t0, 1)
	require.Len(t, c, 1)
	require.NoError(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{DeliveryID: d.ID, Token: c[0].Lease.Token, Status: webhook.StatusDelivered,
		Attempt: webhook.Attempt{StartedAt: t0, StatusCode: 200}, Now: t0.Add(time.Second)}))

	// The same delivery again, on the stored payload.
	again := *d
	_, err = s.Enqueue(ctx, webhook.EnqueueParams{Deliveries: []*webhook.Delivery{&again}, Now: t0})
	require.ErrorIs(t, err, webhook.ErrDuplicate)
	// And in a batch with a new one, which is not stored either.
	p2, d2 := newDelivery(t, hook, t0)
	_, err = s.Enqueue(ctx, webhook.EnqueueParams{Payloads: []*webhook.Payload{p2}, Deliveries: []*webhook.Delivery{d2, &again}, Now: t0})
	require.ErrorIs(t, err, webhook.ErrDuplicate)
	assertNothingStored(t, s, []*webhook.Payload{p2}, []*webhook.Delivery{d2})

	got, err := s.GetDelivery(ctx, d.ID)
	require.NoError(t, err)
	require.Equal(t, webhook.StatusDelivered, got.Status)
	require.Empty(t, claim(t, s, t0.Add(time.Hour), 10), "nothing to send again")
	ds, err := s.ListDeliveries(ctx, webhook.ListDeliveriesParams{WebhookID: hook})
	require.NoError(t, err)
	require.Len(t, ds, 1)
}
