package storagetest

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/stretchr/testify/require"
)

func claim(t *testing.T, s webhook.Storage, now time.Time, limit int) []*webhook.Claim {
	t.Helper()
	cs, err := s.ClaimDeliveries(t.Context(), webhook.ClaimParams{WorkerID: "w1", Limit: limit, LeaseDuration: 30 * time.Second, Now: now})
	require.NoError(t, err)
	return cs
}

func testClaimDue(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	hook := newID(t)
	due := enqueue(t, s, hook, 3, t0)
	enqueue(t, s, hook, 1, t0.Add(10*time.Second)) // not due yet

	cs, err := s.ClaimDeliveries(ctx, webhook.ClaimParams{WorkerID: "worker-7", Limit: 10, LeaseDuration: 30 * time.Second, Now: t0})
	require.NoError(t, err)
	require.ElementsMatch(t, due, claimIDs(cs))
	tokens := map[string]bool{}
	for _, c := range cs {
		require.Equal(t, webhook.StatusDelivering, c.Delivery.Status)
		require.Equal(t, 1, c.Delivery.Attempt)
		require.NotEmpty(t, c.Lease.Token)
		require.False(t, tokens[c.Lease.Token], "every claim needs its own token")
		tokens[c.Lease.Token] = true
		require.Equal(t, "worker-7", c.Lease.WorkerID)
		require.True(t, c.Lease.ExpiresAt.Equal(t0.Add(30*time.Second)), "lease expires at %v", c.Lease.ExpiresAt)
		require.Equal(t, c.Delivery.PayloadID, c.Payload.ID)
		want, err := s.GetPayload(ctx, c.Payload.ID)
		require.NoError(t, err)
		require.Equal(t, want, c.Payload)
		stored, err := s.GetDelivery(ctx, c.Delivery.ID)
		require.NoError(t, err)
		require.Equal(t, webhook.StatusDelivering, stored.Status)
		require.Equal(t, 1, stored.Attempt)
	}
	require.Empty(t, claim(t, s, t0.Add(time.Second), 10), "leased deliveries are not claimable")
	later := claim(t, s, t0.Add(10*time.Second), 10)
	require.Len(t, later, 1, "the future delivery becomes due at its time")
}

func claimIDs(cs []*webhook.Claim) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Delivery.ID
	}
	return out
}

func testClaimLimitAndOrder(t *testing.T, s webhook.Storage) {
	hook := newID(t)
	late := enqueue(t, s, hook, 1, t0.Add(-time.Second))
	early := enqueue(t, s, hook, 1, t0.Add(-time.Hour))
	mid := enqueue(t, s, hook, 1, t0.Add(-time.Minute))
	cs := claim(t, s, t0, 2)
	require.Equal(t, []string{early[0], mid[0]}, claimIDs(cs), "earliest due first, at most Limit")
	cs = claim(t, s, t0, 2)
	require.Equal(t, late, claimIDs(cs))
}

func testClaimExcludeAndCap(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	busy, quiet, other := newID(t), newID(t), newID(t)
	enqueue(t, s, busy, 5, t0.Add(-time.Hour)) // the earliest due
	q := enqueue(t, s, quiet, 2, t0.Add(-time.Minute))
	o := enqueue(t, s, other, 1, t0)

	cs, err := s.ClaimDeliveries(ctx, webhook.ClaimParams{Limit: 10, LeaseDuration: time.Minute, Now: t0, ExcludeWebhooks: []string{busy}})
	require.NoError(t, err)
	require.ElementsMatch(t, append(q, o...), claimIDs(cs), "excluded webhooks' deliveries stay unclaimed")

	cs, err = s.ClaimDeliveries(ctx, webhook.ClaimParams{Limit: 10, LeaseDuration: time.Minute, Now: t0, MaxPerWebhook: 2})
	require.NoError(t, err)
	require.Len(t, cs, 2, "at most two of the busy webhook's five")
	for _, c := range cs {
		require.Equal(t, busy, c.Delivery.WebhookID)
	}

	// The cap leaves room for other webhooks within the limit: the busy
	// webhook still has three due, hookA four (due earlier), hookB one.
	hookA, hookB := newID(t), newID(t)
	enqueue(t, s, hookA, 4, t0.Add(-2*time.Hour))
	b := enqueue(t, s, hookB, 1, t0.Add(-time.Second))
	cs, err = s.ClaimDeliveries(ctx, webhook.ClaimParams{Limit: 3, LeaseDuration: time.Minute, Now: t0, MaxPerWebhook: 1})
	require.NoError(t, err)
	require.Len(t, cs, 3)
	require.Equal(t, hookA, cs[0].Delivery.WebhookID)
	require.Equal(t, busy, cs[1].Delivery.WebhookID)
	require.Equal(t, b[0], cs[2].Delivery.ID)
}

// MaxByWebhook caps the webhooks it names in place of MaxPerWebhook:
// above it, below it, or to none; the others keep MaxPerWebhook.
func testClaimCapsByWebhook(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	roomy, tight, none, other := newID(t), newID(t), newID(t), newID(t)
	r := enqueue(t, s, roomy, 4, t0.Add(-4*time.Hour))
	ti := enqueue(t, s, tight, 3, t0.Add(-3*time.Hour))
	enqueue(t, s, none, 3, t0.Add(-2*time.Hour))
	o := enqueue(t, s, other, 3, t0.Add(-time.Hour))
	caps := map[string]int{roomy: 3, tight: 1, none: 0}
	cs, err := s.ClaimDeliveries(ctx, webhook.ClaimParams{Limit: 20, LeaseDuration: time.Minute, Now: t0, MaxPerWebhook: 2, MaxByWebhook: caps})
	require.NoError(t, err)
	require.Equal(t, append(append(r[:3:3], ti[0]), o[:2]...), claimIDs(cs),
		"three of roomy's (above MaxPerWebhook), one of tight's, none of none's, two of the other's, earliest due first")
	require.Equal(t, map[string]int{roomy: 3, tight: 1, none: 0}, caps, "the caps are left as they were")

	// A cap counts within one claim only, and the limit still holds.
	cs, err = s.ClaimDeliveries(ctx, webhook.ClaimParams{Limit: 2, LeaseDuration: time.Minute, Now: t0, MaxByWebhook: map[string]int{tight: 5}})
	require.NoError(t, err)
	require.Equal(t, []string{r[3], ti[1]}, claimIDs(cs))
}

// A cap below 1 claims none of the webhook's deliveries, as
// ExcludeWebhooks does, also when a long backlog of them comes first.
func testClaimZeroCapBesideABacklog(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	none, other := newID(t), newID(t)
	enqueue(t, s, none, 100, t0.Add(-2*time.Hour))
	o := enqueue(t, s, other, 1, t0.Add(-time.Hour))
	for _, n := range []int{0, -1} {
		cs, err := s.ClaimDeliveries(ctx, webhook.ClaimParams{Limit: 2, LeaseDuration: time.Minute, Now: t0, MaxPerWebhook: 1, MaxByWebhook: map[string]int{none: n}})
		require.NoError(t, err)
		require.Equal(t, o, claimIDs(cs), "cap %d", n)
		require.NoError(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{DeliveryID: o[0], Token: cs[0].Lease.Token, Released: true, NextAttemptAt: t0, Now: t0}))
	}
}

// A limit or caps beyond 32 bits claim what is due, as any others do.
func testClaimHugeLimitAndCaps(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	excluded, capped, other := newID(t), newID(t), newID(t)
	enqueue(t, s, excluded, 2, t0.Add(-3*time.Hour))
	c := enqueue(t, s, capped, 3, t0.Add(-2*time.Hour))
	o := enqueue(t, s, other, 3, t0.Add(-time.Hour))
	cs, err := s.ClaimDeliveries(ctx, webhook.ClaimParams{Limit: math.MaxInt32 + 1, LeaseDuration: time.Minute, Now: t0,
		ExcludeWebhooks: []string{excluded}, MaxByWebhook: map[string]int{capped: math.MaxInt}})
	require.NoError(t, err)
	require.Equal(t, append(c, o...), claimIDs(cs))
}

func testClaimInvalid(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	_, err := s.ClaimDeliveries(ctx, webhook.ClaimParams{Limit: 0, LeaseDuration: time.Second, Now: t0})
	require.ErrorIs(t, err, webhook.ErrInvalid)
	_, err = s.ClaimDeliveries(ctx, webhook.ClaimParams{Limit: 1, LeaseDuration: 0, Now: t0})
	require.ErrorIs(t, err, webhook.ErrInvalid)
}

func testClaimConcurrent(t *testing.T, s webhook.Storage) {
	const total, workers = 300, 8
	hook := newID(t)
	want := enqueue(t, s, hook, total, t0)
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for {
				cs, err := s.ClaimDeliveries(context.Background(), webhook.ClaimParams{WorkerID: fmt.Sprint("w", w), Limit: 7, LeaseDuration: time.Minute, Now: t0})
				if err != nil {
					errs <- err
					return
				}
				if len(cs) == 0 {
					return
				}
				mu.Lock()
				for _, c := range cs {
					seen[c.Delivery.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for id, n := range seen {
		require.Equal(t, 1, n, "delivery %s was leased to %d claimers at once", id, n)
	}
	require.ElementsMatch(t, want, mapKeys(seen))
}

func mapKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func testLeaseExpiry(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	id := enqueue(t, s, newID(t), 1, t0)[0]
	first := claim(t, s, t0, 1)
	require.Len(t, first, 1)
	require.Empty(t, claim(t, s, t0.Add(29*time.Second), 1), "lease still held")

	second := claim(t, s, t0.Add(30*time.Second), 1)
	require.Len(t, second, 1, "an expired lease must be reclaimable")
	require.Equal(t, id, second[0].Delivery.ID)
	require.Equal(t, 2, second[0].Delivery.Attempt, "the attempt counter advances on reclaim")
	require.NotEqual(t, first[0].Lease.Token, second[0].Lease.Token)

	atts, err := s.ListAttempts(ctx, id)
	require.NoError(t, err)
	require.Len(t, atts, 1, "the abandoned attempt is recorded")
	require.Equal(t, 1, atts[0].Number)
	require.Equal(t, id, atts[0].DeliveryID)
	require.NotEmpty(t, atts[0].Error)

	// The stale holder's late result is refused and changes nothing.
	err = s.RecordAttempt(ctx, webhook.RecordAttemptParams{
		DeliveryID: id, Token: first[0].Lease.Token, Status: webhook.StatusDelivered,
		Attempt: webhook.Attempt{StartedAt: t0, StatusCode: 200}, Now: t0.Add(31 * time.Second),
	})
	require.ErrorIs(t, err, webhook.ErrLeaseLost)
	d, err := s.GetDelivery(ctx, id)
	require.NoError(t, err)
	require.Equal(t, webhook.StatusDelivering, d.Status)
	require.Equal(t, 2, d.Attempt)

	// The new holder's result is accepted.
	require.NoError(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{
		DeliveryID: id, Token: second[0].Lease.Token, Status: webhook.StatusDelivered,
		Attempt: webhook.Attempt{StartedAt: t0.Add(30 * time.Second), StatusCode: 204}, Now: t0.Add(32 * time.Second),
	}))
	atts, err = s.ListAttempts(ctx, id)
	require.NoError(t, err)
	require.Len(t, atts, 2)
	require.Equal(t, 2, atts[1].Number)
	require.Equal(t, 204, atts[1].StatusCode)

	// A crash-looping delivery keeps counting: claim and abandon again.
	id2 := enqueue(t, s, newID(t), 1, t0)[0]
	now := t0
	for want := 1; want <= 4; want++ {
		cs := claim(t, s, now, 10)
		require.Len(t, cs, 1)
		require.Equal(t, id2, cs[0].Delivery.ID)
		require.Equal(t, want, cs[0].Delivery.Attempt)
		now = cs[0].Lease.ExpiresAt
	}
}

func testLateResultBeforeReclaim(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	id := enqueue(t, s, newID(t), 1, t0)[0]
	c := claim(t, s, t0, 1)[0]
	// The lease expired but nobody reclaimed it: the holder's result stands.
	require.NoError(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{
		DeliveryID: id, Token: c.Lease.Token, Status: webhook.StatusDelivered,
		Attempt: webhook.Attempt{StartedAt: t0, StatusCode: 200}, Now: t0.Add(time.Hour),
	}))
	require.Empty(t, claim(t, s, t0.Add(2*time.Hour), 1))
}

func testRelease(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	id := enqueue(t, s, newID(t), 1, t0)[0]
	c := claim(t, s, t0, 1)[0]
	later := t0.Add(time.Minute)
	require.NoError(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{DeliveryID: id, Token: c.Lease.Token, Released: true, NextAttemptAt: later, Now: t0}))
	d, err := s.GetDelivery(ctx, id)
	require.NoError(t, err)
	require.Equal(t, webhook.StatusPending, d.Status, "a released first attempt leaves the delivery pending")
	require.Equal(t, 0, d.Attempt, "a released attempt does not count")
	require.True(t, d.NextAttemptAt.Equal(later))
	atts, err := s.ListAttempts(ctx, id)
	require.NoError(t, err)
	require.Empty(t, atts, "a released attempt leaves no record")
	require.ErrorIs(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{DeliveryID: id, Token: c.Lease.Token, Released: true, NextAttemptAt: later, Now: t0}),
		webhook.ErrLeaseLost, "the lease ended with the release")
	require.Empty(t, claim(t, s, later.Add(-time.Microsecond), 1))

	// After a real failed attempt, a released one leaves it retrying.
	c = claim(t, s, later, 1)[0]
	require.Equal(t, 1, c.Delivery.Attempt)
	require.NoError(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{DeliveryID: id, Token: c.Lease.Token, Status: webhook.StatusRetrying, NextAttemptAt: later, Attempt: webhook.Attempt{StartedAt: later, Error: "HTTP 500"}, Now: later}))
	c = claim(t, s, later, 1)[0]
	require.Equal(t, 2, c.Delivery.Attempt)
	require.NoError(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{DeliveryID: id, Token: c.Lease.Token, Released: true, NextAttemptAt: later, Now: later}))
	d, err = s.GetDelivery(ctx, id)
	require.NoError(t, err)
	require.Equal(t, webhook.StatusRetrying, d.Status)
	require.Equal(t, 1, d.Attempt)
	c = claim(t, s, later, 1)[0]
	require.Equal(t, 2, c.Delivery.Attempt, "the next claim makes attempt 2 again")
}

func testClaimWebhookVersion(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	w := simpleWebhook(t, "tenant-a")
	require.NoError(t, s.CreateWebhook(ctx, w))
	finish := func(c *webhook.Claim, at time.Time) {
		t.Helper()
		require.NoError(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{
			DeliveryID: c.Delivery.ID, Token: c.Lease.Token, Status: webhook.StatusDelivered,
			Attempt: webhook.Attempt{StartedAt: at, StatusCode: 200}, Now: at,
		}))
	}
	claimOne := func(at time.Time) *webhook.Claim {
		t.Helper()
		enqueue(t, s, w.ID, 1, at)
		cs := claim(t, s, at, 10)
		require.Len(t, cs, 1)
		return cs[0]
	}
	c := claimOne(t0)
	require.Equal(t, int64(1), c.WebhookVersion, "the claim carries the webhook's version")
	finish(c, t0)

	w.URL = "https://example.com/moved"
	require.NoError(t, s.UpdateWebhook(ctx, w)) // stored as version 2
	c = claimOne(t0.Add(time.Minute))
	require.Equal(t, int64(2), c.WebhookVersion, "an update is seen by the next claim")

	// Disabling it is an update too.
	finish(c, t0.Add(time.Minute))
	w.Version, w.Disabled, w.DisabledReason = 2, true, "gone"
	require.NoError(t, s.UpdateWebhook(ctx, w))
	c = claimOne(t0.Add(2 * time.Minute))
	got, err := s.GetWebhook(ctx, w.ID)
	require.NoError(t, err)
	require.Equal(t, int64(3), got.Version)
	require.Equal(t, got.Version, c.WebhookVersion, "disabling is seen by the next claim")
	finish(c, t0.Add(2*time.Minute))

	require.NoError(t, s.DeleteWebhook(ctx, w.ID))
	c = claimOne(t0.Add(3 * time.Minute))
	require.Zero(t, c.WebhookVersion, "a deleted webhook has no version")
	finish(c, t0.Add(3*time.Minute))

	// Deliveries whose webhook never existed: no version either, and the
	// webhooks of one claim are told apart.
	other := simpleWebhook(t, "tenant-b")
	require.NoError(t, s.CreateWebhook(ctx, other))
	enqueue(t, s, other.ID, 1, t0.Add(4*time.Minute))
	enqueue(t, s, newID(t), 1, t0.Add(4*time.Minute))
	cs := claim(t, s, t0.Add(4*time.Minute), 10)
	require.Len(t, cs, 2)
	for _, c := range cs {
		if c.Delivery.WebhookID == other.ID {
			require.Equal(t, int64(1), c.WebhookVersion)
		} else {
			require.Zero(t, c.WebhookVersion)
		}
	}
}
