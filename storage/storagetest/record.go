package storagetest

import (
	"testing"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/stretchr/testify/require"
)

func testRecordDelivered(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	id := enqueue(t, s, newID(t), 1, t0)[0]
	c := claim(t, s, t0, 1)[0]
	a := webhook.Attempt{StartedAt: t0.Add(time.Millisecond), Duration: 1234 * time.Millisecond, StatusCode: 202, ResponseBody: "accepted ✓"}
	done := t0.Add(2 * time.Second)
	require.NoError(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{DeliveryID: id, Token: c.Lease.Token, Status: webhook.StatusDelivered, Attempt: a, Now: done}))

	d, err := s.GetDelivery(ctx, id)
	require.NoError(t, err)
	require.Equal(t, webhook.StatusDelivered, d.Status)
	require.Equal(t, 1, d.Attempt)
	require.Equal(t, 202, d.StatusCode)
	require.Equal(t, "accepted ✓", d.ResponseBody)
	require.Equal(t, 1234*time.Millisecond, d.Duration)
	require.Empty(t, d.Error)
	require.True(t, d.CompletedAt.Equal(done), "CompletedAt %v", d.CompletedAt)

	atts, err := s.ListAttempts(ctx, id)
	require.NoError(t, err)
	a.DeliveryID, a.Number = id, 1
	require.Equal(t, []webhook.Attempt{a}, atts)

	err = s.RecordAttempt(ctx, webhook.RecordAttemptParams{DeliveryID: id, Token: c.Lease.Token, Status: webhook.StatusFailed, Now: done})
	require.ErrorIs(t, err, webhook.ErrLeaseLost, "a result is recorded once per claim")
	require.Empty(t, claim(t, s, t0.Add(24*time.Hour), 10), "delivered is final")
}

func testRecordRetrying(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	id := enqueue(t, s, newID(t), 1, t0)[0]
	c := claim(t, s, t0, 1)[0]
	next := t0.Add(5 * time.Second)
	require.NoError(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{
		DeliveryID: id, Token: c.Lease.Token, Status: webhook.StatusRetrying, NextAttemptAt: next,
		Attempt: webhook.Attempt{StartedAt: t0, Duration: time.Second, StatusCode: 503, ResponseBody: "busy", Error: "HTTP 503"},
		Now:     t0.Add(time.Second),
	}))
	d, err := s.GetDelivery(ctx, id)
	require.NoError(t, err)
	require.Equal(t, webhook.StatusRetrying, d.Status)
	require.True(t, d.NextAttemptAt.Equal(next))
	require.Equal(t, "HTTP 503", d.Error)
	require.True(t, d.CompletedAt.IsZero())

	require.Empty(t, claim(t, s, next.Add(-time.Microsecond), 1), "not due before NextAttemptAt")
	cs := claim(t, s, next, 1)
	require.Len(t, cs, 1)
	require.Equal(t, 2, cs[0].Delivery.Attempt)
}

func testRecordFailed(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	w := simpleWebhook(t, "")
	require.NoError(t, s.CreateWebhook(ctx, w))
	id := enqueue(t, s, w.ID, 1, t0)[0]
	c := claim(t, s, t0, 1)[0]
	require.NoError(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{
		DeliveryID: id, Token: c.Lease.Token, Status: webhook.StatusFailed,
		Attempt: webhook.Attempt{StartedAt: t0, StatusCode: 410, Error: "HTTP 410"},
		Now:     t0.Add(time.Second),
	}))
	d, err := s.GetDelivery(ctx, id)
	require.NoError(t, err)
	require.Equal(t, webhook.StatusFailed, d.Status)
	require.True(t, d.CompletedAt.Equal(t0.Add(time.Second)))
	require.Equal(t, "HTTP 410", d.Error)
	got, err := s.GetWebhook(ctx, w.ID)
	require.NoError(t, err)
	require.Equal(t, w.Version, got.Version, "recording leaves the webhook alone")
	require.Empty(t, claim(t, s, t0.Add(time.Hour), 10), "failed is final")
}

func testRecordErrors(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	err := s.RecordAttempt(ctx, webhook.RecordAttemptParams{DeliveryID: newID(t), Token: "x", Status: webhook.StatusDelivered, Now: t0})
	require.ErrorIs(t, err, webhook.ErrNotFound)

	id := enqueue(t, s, newID(t), 1, t0)[0]
	err = s.RecordAttempt(ctx, webhook.RecordAttemptParams{DeliveryID: id, Token: "not-a-lease", Status: webhook.StatusDelivered, Now: t0})
	require.ErrorIs(t, err, webhook.ErrLeaseLost, "an unclaimed delivery has no lease to hold")
	c := claim(t, s, t0, 1)[0]
	err = s.RecordAttempt(ctx, webhook.RecordAttemptParams{DeliveryID: id, Token: "", Status: webhook.StatusDelivered, Now: t0})
	require.ErrorIs(t, err, webhook.ErrLeaseLost)
	err = s.RecordAttempt(ctx, webhook.RecordAttemptParams{DeliveryID: id, Token: c.Lease.Token, Status: webhook.StatusPending, Now: t0})
	require.ErrorIs(t, err, webhook.ErrInvalid)
	err = s.RecordAttempt(ctx, webhook.RecordAttemptParams{DeliveryID: id, Token: c.Lease.Token, Status: "bogus", Now: t0})
	require.ErrorIs(t, err, webhook.ErrInvalid)
	d, err := s.GetDelivery(ctx, id)
	require.NoError(t, err)
	require.Equal(t, webhook.StatusDelivering, d.Status, "refused results change nothing")
	atts, err := s.ListAttempts(ctx, id)
	require.NoError(t, err)
	require.Empty(t, atts)
}

func testRecordAttemptsBatch(t *testing.T, s webhook.Storage) {
	br, ok := s.(webhook.BatchRecorder)
	if !ok {
		t.Skipf("%T does not implement webhook.BatchRecorder", s)
	}
	ctx := t.Context()
	w := simpleWebhook(t, "")
	require.NoError(t, s.CreateWebhook(ctx, w))
	ids := enqueue(t, s, w.ID, 5, t0)
	cs := claim(t, s, t0, 10)
	require.Len(t, cs, 5)
	byID := map[string]*webhook.Claim{}
	for _, c := range cs {
		byID[c.Delivery.ID] = c
	}
	next := t0.Add(time.Minute)
	ps := []webhook.RecordAttemptParams{
		{DeliveryID: ids[0], Token: byID[ids[0]].Lease.Token, Status: webhook.StatusDelivered, Attempt: webhook.Attempt{StartedAt: t0, StatusCode: 200, Duration: time.Millisecond}, Now: t0},
		{DeliveryID: ids[1], Token: byID[ids[1]].Lease.Token, Status: webhook.StatusRetrying, NextAttemptAt: next, Attempt: webhook.Attempt{StartedAt: t0, StatusCode: 500, Error: "HTTP 500"}, Now: t0},
		{DeliveryID: ids[2], Token: "stale", Status: webhook.StatusDelivered, Now: t0},
		{DeliveryID: newID(t), Token: "x", Status: webhook.StatusDelivered, Now: t0},
		{DeliveryID: ids[3], Token: byID[ids[3]].Lease.Token, Released: true, NextAttemptAt: next, Now: t0},
		{DeliveryID: ids[4], Token: byID[ids[4]].Lease.Token, Status: webhook.StatusFailed, Attempt: webhook.Attempt{StartedAt: t0, StatusCode: 410}, Now: t0},
	}
	errs, err := br.RecordAttempts(ctx, ps)
	require.NoError(t, err)
	require.Len(t, errs, len(ps))
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	require.ErrorIs(t, errs[2], webhook.ErrLeaseLost)
	require.ErrorIs(t, errs[3], webhook.ErrNotFound)
	require.NoError(t, errs[4])
	require.NoError(t, errs[5])

	want := map[string]webhook.DeliveryStatus{ids[0]: webhook.StatusDelivered, ids[1]: webhook.StatusRetrying, ids[2]: webhook.StatusDelivering, ids[3]: webhook.StatusPending, ids[4]: webhook.StatusFailed}
	for id, st := range want {
		d, err := s.GetDelivery(ctx, id)
		require.NoError(t, err)
		require.Equal(t, st, d.Status, id)
	}
	d, err := s.GetDelivery(ctx, ids[1])
	require.NoError(t, err)
	require.True(t, d.NextAttemptAt.Equal(next))
	require.Equal(t, "HTTP 500", d.Error)
	atts, err := s.ListAttempts(ctx, ids[0])
	require.NoError(t, err)
	require.Equal(t, []webhook.Attempt{{DeliveryID: ids[0], Number: 1, StartedAt: t0, StatusCode: 200, Duration: time.Millisecond}}, atts)
}
