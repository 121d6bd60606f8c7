package storagetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
)

// together runs fn(i) for i in [0, n) on n goroutines released at once,
// and waits for them.
func together(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}

func testUpdateWebhookConcurrent(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	for round := range 5 {
		w := simpleWebhook(t, "")
		require.NoError(t, s.CreateWebhook(ctx, w))
		const writers = 8
		errs := make([]error, writers)
		together(writers, func(i int) {
			u := w.Clone()
			u.Name = fmt.Sprint("writer ", i)
			errs[i] = s.UpdateWebhook(ctx, u)
		})
		winner := -1
		for i, err := range errs {
			if err == nil {
				require.Equal(t, -1, winner, "round %d: two updates of version %d both won", round, w.Version)
				winner = i
				continue
			}
			require.ErrorIs(t, err, webhook.ErrConflict, "round %d: writer %d", round, i)
		}
		require.NotEqual(t, -1, winner, "round %d: one update must win", round)
		got, err := s.GetWebhook(ctx, w.ID)
		require.NoError(t, err)
		require.Equal(t, fmt.Sprint("writer ", winner), got.Name, "the winner's update is stored")
		require.Equal(t, w.Version+1, got.Version)
	}
}

func testRecordRacingReclaim(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	now := t0
	for round := range 10 {
		id := enqueue(t, s, newID(t), 1, now)[0]
		first := claim(t, s, now, 1)
		require.Len(t, first, 1)
		expired := first[0].Lease.ExpiresAt
		// The stale holder reports while another worker reclaims.
		var (
			recordErr error
			second    []*webhook.Claim
			claimErr  error
		)
		together(2, func(i int) {
			if i == 0 {
				recordErr = s.RecordAttempt(ctx, webhook.RecordAttemptParams{
					DeliveryID: id, Token: first[0].Lease.Token, Status: webhook.StatusDelivered,
					Attempt: webhook.Attempt{StartedAt: now, StatusCode: 200}, Now: expired,
				})
				return
			}
			second, claimErr = s.ClaimDeliveries(ctx, webhook.ClaimParams{WorkerID: "w2", Limit: 1, LeaseDuration: 30 * time.Second, Now: expired})
		})
		require.NoError(t, claimErr)
		atts := func() []webhook.Attempt {
			a, err := s.ListAttempts(ctx, id)
			require.NoError(t, err)
			return a
		}
		if len(second) == 0 {
			// The result came first: it stands, and nothing was due.
			require.NoError(t, recordErr, "round %d", round)
			d, err := s.GetDelivery(ctx, id)
			require.NoError(t, err)
			require.Equal(t, webhook.StatusDelivered, d.Status)
			require.Len(t, atts(), 1)
		} else {
			// The reclaim came first: the stale result is refused, and
			// the new holder's stands.
			require.ErrorIs(t, recordErr, webhook.ErrLeaseLost, "round %d", round)
			require.Equal(t, id, second[0].Delivery.ID)
			require.Equal(t, 2, second[0].Delivery.Attempt)
			require.NoError(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{
				DeliveryID: id, Token: second[0].Lease.Token, Status: webhook.StatusFailed,
				Attempt: webhook.Attempt{StartedAt: expired, StatusCode: 500}, Now: expired.Add(time.Second),
			}))
			err := s.RecordAttempt(ctx, webhook.RecordAttemptParams{
				DeliveryID: id, Token: first[0].Lease.Token, Status: webhook.StatusDelivered,
				Attempt: webhook.Attempt{StartedAt: now, StatusCode: 200}, Now: expired.Add(2 * time.Second),
			})
			require.ErrorIs(t, err, webhook.ErrLeaseLost)
			d, err := s.GetDelivery(ctx, id)
			require.NoError(t, err)
			require.Equal(t, webhook.StatusFailed, d.Status)
			require.Equal(t, 500, d.StatusCode)
			a := atts()
			require.Len(t, a, 2, "the lost attempt and the new holder's")
			require.Equal(t, 500, a[1].StatusCode)
		}
		now = expired.Add(time.Minute)
	}
}

func testClaimExpiredWithExcludeAndCap(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	a, b, c := newID(t), newID(t), newID(t)
	// Leases of a (taken at t0) expire at t0+30s, those of b and c
	// (taken at t0+5s) at t0+35s.
	aLeased := enqueue(t, s, a, 3, t0)
	require.Len(t, claim(t, s, t0, 10), 3)
	bLeased := enqueue(t, s, b, 2, t0.Add(5*time.Second))
	cLeased := enqueue(t, s, c, 1, t0.Add(5*time.Second))
	require.Len(t, claim(t, s, t0.Add(5*time.Second), 10), 3)
	aPending := enqueue(t, s, a, 1, t0.Add(40*time.Second))
	enqueue(t, s, c, 1, t0.Add(50*time.Second))

	at := t0.Add(time.Minute)
	cs, err := s.ClaimDeliveries(ctx, webhook.ClaimParams{WorkerID: "w2", Limit: 10, LeaseDuration: 30 * time.Second, Now: at, ExcludeWebhooks: []string{c}, MaxPerWebhook: 2})
	require.NoError(t, err)
	require.Len(t, cs, 4, "two of a's, both of b's; none of the excluded c's")
	for i, webhookID := range []string{a, a, b, b} {
		require.Equal(t, webhookID, cs[i].Delivery.WebhookID, "earliest due first: a's leases expired first")
	}
	require.Subset(t, aLeased, claimIDs(cs[:2]), "a's expired leases before its pending delivery")
	require.ElementsMatch(t, bLeased, claimIDs(cs[2:]))
	for _, cl := range cs {
		require.Equal(t, 2, cl.Delivery.Attempt, "a reclaim counts the lost attempt")
		atts, err := s.ListAttempts(ctx, cl.Delivery.ID)
		require.NoError(t, err)
		require.Len(t, atts, 1, "the lost attempt is recorded")
		require.Equal(t, 1, atts[0].Number)
	}

	// Next: a's last expired lease and its pending delivery; c still
	// excluded; b's are held.
	cs, err = s.ClaimDeliveries(ctx, webhook.ClaimParams{WorkerID: "w3", Limit: 10, LeaseDuration: 30 * time.Second, Now: at, ExcludeWebhooks: []string{c}, MaxPerWebhook: 2})
	require.NoError(t, err)
	require.Len(t, cs, 2)
	require.Contains(t, aLeased, cs[0].Delivery.ID)
	require.Equal(t, 2, cs[0].Delivery.Attempt)
	require.Equal(t, aPending[0], cs[1].Delivery.ID)
	require.Equal(t, 1, cs[1].Delivery.Attempt)

	// Without the exclusion, c's expired lease and its pending delivery.
	cs, err = s.ClaimDeliveries(ctx, webhook.ClaimParams{WorkerID: "w4", Limit: 10, LeaseDuration: 30 * time.Second, Now: at, MaxPerWebhook: 1})
	require.NoError(t, err)
	require.Len(t, cs, 1, "the cap of one: c's expired lease, due first")
	require.Equal(t, cLeased[0], cs[0].Delivery.ID)
}

func testAttemptBudget(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	pl, d := newDelivery(t, newID(t), t0)
	d.MaxAttempts = 1
	_, err := s.Enqueue(ctx, webhook.EnqueueParams{Payloads: []*webhook.Payload{pl}, Deliveries: []*webhook.Delivery{d}, Now: t0})
	require.NoError(t, err)
	got, err := s.GetDelivery(ctx, d.ID)
	require.NoError(t, err)
	require.Equal(t, 1, got.MaxAttempts)

	// The one attempt's worker dies: its lease is recorded as lost.
	first := claim(t, s, t0, 1)
	require.Len(t, first, 1)
	now := first[0].Lease.ExpiresAt
	// The next worker claims past the budget and dies too, before it
	// could fail the delivery (without sending).
	for range 3 {
		cs := claim(t, s, now, 1)
		require.Len(t, cs, 1)
		require.Equal(t, 2, cs[0].Delivery.Attempt, "a claim past the budget is not counted again")
		now = cs[0].Lease.ExpiresAt
		atts, err := s.ListAttempts(ctx, d.ID)
		require.NoError(t, err)
		require.Len(t, atts, 1, "only the real attempt is recorded as lost")
	}
	cs := claim(t, s, now, 1)
	require.Len(t, cs, 1)
	require.NoError(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{
		DeliveryID: d.ID, Token: cs[0].Lease.Token, Status: webhook.StatusFailed,
		Attempt: webhook.Attempt{StartedAt: now, Error: "not sent: all 1 attempts are used"}, Now: now,
	}))
	atts, err := s.ListAttempts(ctx, d.ID)
	require.NoError(t, err)
	require.Len(t, atts, 2)
	require.Equal(t, []int{1, 2}, []int{atts[0].Number, atts[1].Number}, "the history never passes MaxAttempts+1")

	// Without a budget, every lost lease counts.
	id := enqueue(t, s, newID(t), 1, now)[0]
	for want := 1; want <= 3; want++ {
		cs := claim(t, s, now, 1)
		require.Len(t, cs, 1)
		require.Equal(t, id, cs[0].Delivery.ID)
		require.Equal(t, want, cs[0].Delivery.Attempt)
		now = cs[0].Lease.ExpiresAt
	}
}

func testReplayMarks(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	hook := newID(t)
	ids := enqueue(t, s, hook, 3, t0)
	for _, c := range claim(t, s, t0, 10) {
		require.NoError(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{
			DeliveryID: c.Delivery.ID, Token: c.Lease.Token, Status: webhook.StatusFailed,
			Attempt: webhook.Attempt{StartedAt: t0, StatusCode: 500}, Now: t0,
		}))
	}
	redeliver := func(origID string) *webhook.Delivery {
		orig, err := s.GetDelivery(ctx, origID)
		require.NoError(t, err)
		return &webhook.Delivery{ID: newID(t), WebhookID: hook, PayloadID: orig.PayloadID, EventType: orig.EventType,
			Status: webhook.StatusPending, NextAttemptAt: t0, CreatedAt: t0, RedeliveryOf: origID}
	}
	open := func() []string {
		ds, err := s.ListDeliveries(ctx, webhook.ListDeliveriesParams{WebhookID: hook, Status: webhook.StatusFailed, NotRedelivered: true})
		require.NoError(t, err)
		return deliveryIDs(ds)
	}
	require.ElementsMatch(t, ids, open())

	// A replay marks its originals.
	r0, r1 := redeliver(ids[0]), redeliver(ids[1])
	_, err := s.Enqueue(ctx, webhook.EnqueueParams{Deliveries: []*webhook.Delivery{r0, r1}, Replay: true, Now: t0})
	require.NoError(t, err)
	got, err := s.GetDelivery(ctx, ids[0])
	require.NoError(t, err)
	require.Equal(t, r0.ID, got.RedeliveredBy)
	got, err = s.GetDelivery(ctx, r0.ID)
	require.NoError(t, err)
	require.Equal(t, ids[0], got.RedeliveryOf)
	require.Equal(t, []string{ids[2]}, open())

	// Replaying a replayed original again conflicts, storing nothing.
	again, fresh := redeliver(ids[1]), redeliver(ids[2])
	_, err = s.Enqueue(ctx, webhook.EnqueueParams{Deliveries: []*webhook.Delivery{fresh, again}, Replay: true, Now: t0})
	require.ErrorIs(t, err, webhook.ErrConflict)
	assertNothingStored(t, s, nil, []*webhook.Delivery{fresh, again})
	require.Equal(t, []string{ids[2]}, open())
	// So does naming one original twice.
	twice1, twice2 := redeliver(ids[2]), redeliver(ids[2])
	_, err = s.Enqueue(ctx, webhook.EnqueueParams{Deliveries: []*webhook.Delivery{twice1, twice2}, Replay: true, Now: t0})
	require.ErrorIs(t, err, webhook.ErrConflict)
	assertNothingStored(t, s, nil, []*webhook.Delivery{twice1, twice2})
	// A missing original is not found.
	missing := redeliver(ids[2])
	missing.RedeliveryOf = newID(t)
	_, err = s.Enqueue(ctx, webhook.EnqueueParams{Deliveries: []*webhook.Delivery{missing}, Replay: true, Now: t0})
	require.ErrorIs(t, err, webhook.ErrNotFound)
	assertNothingStored(t, s, nil, []*webhook.Delivery{missing})
	// A replay needs originals stored before.
	self := redeliver(ids[2])
	self.RedeliveryOf = self.ID
	_, err = s.Enqueue(ctx, webhook.EnqueueParams{Deliveries: []*webhook.Delivery{self}, Now: t0})
	require.ErrorIs(t, err, webhook.ErrInvalid)
	bare := redeliver(ids[2])
	bare.RedeliveryOf = ""
	_, err = s.Enqueue(ctx, webhook.EnqueueParams{Deliveries: []*webhook.Delivery{bare}, Replay: true, Now: t0})
	require.ErrorIs(t, err, webhook.ErrInvalid)

	// A plain redelivery may redeliver again; the latest is named.
	manual := redeliver(ids[1])
	_, err = s.Enqueue(ctx, webhook.EnqueueParams{Deliveries: []*webhook.Delivery{manual}, Now: t0})
	require.NoError(t, err)
	got, err = s.GetDelivery(ctx, ids[1])
	require.NoError(t, err)
	require.Equal(t, manual.ID, got.RedeliveredBy)

	// Concurrent replays of one original: one wins.
	const replayers = 6
	errs := make([]error, replayers)
	ds := make([]*webhook.Delivery, replayers)
	for i := range ds {
		ds[i] = redeliver(ids[2])
	}
	together(replayers, func(i int) {
		_, errs[i] = s.Enqueue(ctx, webhook.EnqueueParams{Deliveries: []*webhook.Delivery{ds[i]}, Replay: true, Now: t0})
	})
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
		} else if !errors.Is(err, webhook.ErrConflict) {
			t.Fatalf("a losing replay: %v, want ErrConflict", err)
		}
	}
	require.Equal(t, 1, won)
	require.Empty(t, open())
}
