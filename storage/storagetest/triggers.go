package storagetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
)

// triggerCases check webhook.TriggerStateStore; they are skipped for a
// Storage that does not implement it.
var triggerCases = []struct {
	name string
	fn   func(t *testing.T, s webhook.Storage, ts webhook.TriggerStateStore)
}{
	{"TriggerStateCompareAndSet", testTriggerStateCAS},
	{"TriggerStateInvalid", testTriggerStateInvalid},
	{"TriggerStatesFilterAndOrder", testTriggerStatesFilter},
	{"TriggerStateCopiesAreIndependent", testTriggerStateCopies},
	{"TriggerStateEnqueue", testTriggerStateEnqueue},
	{"TriggerStateEnqueueFails", testTriggerStateEnqueueFails},
	{"TriggerStateDeletedWithWebhook", testTriggerStateDeletedWithWebhook},
	{"TriggerStateCanceledContext", testTriggerStateCanceled},
	{"TriggerStateRace", testTriggerStateRace},
	{"TriggerStateRaceOneKey", testTriggerStateRaceOneKey},
}

// newState returns a state of a firing alert with a detector and a
// schedule, all fields set, for webhookID under key.
func newState(webhookID, key string) *webhook.TriggerState {
	return &webhook.TriggerState{
		Key: key, TenantID: "acme", WebhookID: webhookID, Environment: "production",
		Alert: webhook.AlertState{
			Status: webhook.AlertFiring, EpisodeID: "episode-1",
			StartedAt: t0, FiredAt: t0.Add(time.Minute), ResolvedAt: t0.Add(-time.Hour),
			LastValue: 0.125, LastNotifiedAt: t0.Add(time.Minute), NotificationCount: 2,
		},
		Detector: &webhook.DetectorState{Buckets: 31, S1: 1.5, S2: 2.75, LastBucket: t0.Truncate(time.Minute)},
		Schedule: &webhook.ScheduleState{LastPeriodEnd: t0.Truncate(time.Hour)},
	}
}

// saveState saves st (at its Version) and returns the stored copy.
func saveState(t *testing.T, ts webhook.TriggerStateStore, st *webhook.TriggerState, now time.Time) *webhook.TriggerState {
	t.Helper()
	res, err := ts.SaveTriggerState(t.Context(), webhook.SaveTriggerStateParams{State: st, Now: now})
	require.NoError(t, err)
	require.Equal(t, webhook.EnqueueResult{}, res, "no enqueue, no result")
	return storedState(t, ts, st.WebhookID, st.Key)
}

// storedState returns the stored state of webhookID under key, or nil.
func storedState(t *testing.T, ts webhook.TriggerStateStore, webhookID, key string) *webhook.TriggerState {
	t.Helper()
	all, err := ts.TriggerStates(t.Context(), []string{webhookID})
	require.NoError(t, err)
	for _, st := range all {
		if st.Key == key {
			return st
		}
	}
	return nil
}

// stateMessage returns an enqueue of one delivery to webhookID with the
// idempotency key key ("" for none).
func stateMessage(t *testing.T, webhookID, key string) (*webhook.EnqueueParams, *webhook.Payload, *webhook.Delivery) {
	pl, d := newDelivery(t, webhookID, t0)
	return &webhook.EnqueueParams{Payloads: []*webhook.Payload{pl}, Deliveries: []*webhook.Delivery{d}, IdempotencyKey: key, Now: t0}, pl, d
}

func testTriggerStateCAS(t *testing.T, _ webhook.Storage, ts webhook.TriggerStateStore) {
	ctx := t.Context()
	hook := newID(t)
	key := "threshold:" + hook + ":0:0-abc:production"
	st := newState(hook, key)
	given := st.Clone()

	got := saveState(t, ts, st, t0)
	require.Equal(t, given, st, "the given state is not modified")
	want := st.Clone()
	want.Version, want.UpdatedAt = 1, t0
	require.Equal(t, want, got, "version 0 creates the state at version 1, updated at Now")

	// A second creator lost the race: nothing changes.
	other := newState(hook, key)
	other.Alert.LastValue = 99
	_, err := ts.SaveTriggerState(ctx, webhook.SaveTriggerStateParams{State: other, Now: t0.Add(time.Second)})
	require.ErrorIs(t, err, webhook.ErrConflict)
	require.Equal(t, want, storedState(t, ts, hook, key))

	// The next version, with the detector and schedule dropped.
	next := got.Clone()
	next.Alert = webhook.AlertState{Status: webhook.AlertOK, EpisodeID: "episode-1", ResolvedAt: t0.Add(2 * time.Minute), LastValue: 0.01}
	next.Detector, next.Schedule = nil, nil
	got = saveState(t, ts, next, t0.Add(2*time.Minute))
	want = next.Clone()
	want.Version, want.UpdatedAt = 2, t0.Add(2*time.Minute)
	require.Equal(t, want, got, "the version increments and UpdatedAt follows Now")

	// Stale and future versions conflict, and change nothing.
	for _, v := range []int64{0, 1, 3, 7} {
		stale := got.Clone()
		stale.Version = v
		stale.Alert.LastValue = -1
		_, err := ts.SaveTriggerState(ctx, webhook.SaveTriggerStateParams{State: stale, Now: t0.Add(time.Hour)})
		require.ErrorIs(t, err, webhook.ErrConflict, "version %d", v)
	}
	require.Equal(t, want, storedState(t, ts, hook, key))

	// A version above 0 for a key never stored conflicts too.
	missing := newState(hook, key+"-other")
	missing.Version = 1
	_, err = ts.SaveTriggerState(ctx, webhook.SaveTriggerStateParams{State: missing, Now: t0})
	require.ErrorIs(t, err, webhook.ErrConflict)
	require.Nil(t, storedState(t, ts, hook, missing.Key))

	// Times come back as the same instants, whatever zone they were in.
	east := time.FixedZone("UTC+05:30", 5*3600+1800)
	zoned := newState(hook, key+"-zoned")
	zoned.Alert.StartedAt = t0.In(east)
	zoned.Detector.LastBucket = t0.In(east)
	got = saveState(t, ts, zoned, t0.Add(time.Minute).In(east))
	require.True(t, t0.Equal(got.Alert.StartedAt))
	require.True(t, t0.Equal(got.Detector.LastBucket))
	require.True(t, t0.Add(time.Minute).Equal(got.UpdatedAt))
}

func testTriggerStateInvalid(t *testing.T, s webhook.Storage, ts webhook.TriggerStateStore) {
	ctx := t.Context()
	hook := newID(t)
	for name, st := range map[string]*webhook.TriggerState{
		"nil state":        nil,
		"no key":           {WebhookID: hook},
		"no webhook":       {Key: "k"},
		"negative version": {Key: "k", WebhookID: hook, Version: -1},
	} {
		_, err := ts.SaveTriggerState(ctx, webhook.SaveTriggerStateParams{State: st, Now: t0})
		require.ErrorIs(t, err, webhook.ErrInvalid, name)
	}
	// An invalid enqueue stores the state no more than the delivery.
	enq, pl, d := stateMessage(t, hook, "")
	d.Status = webhook.StatusDelivered
	_, err := ts.SaveTriggerState(ctx, webhook.SaveTriggerStateParams{State: newState(hook, "k"), Enqueue: enq, Now: t0})
	require.ErrorIs(t, err, webhook.ErrInvalid)
	require.Nil(t, storedState(t, ts, hook, "k"))
	assertNothingStored(t, s, []*webhook.Payload{pl}, []*webhook.Delivery{d})
}

func testTriggerStatesFilter(t *testing.T, _ webhook.Storage, ts webhook.TriggerStateStore) {
	ctx := t.Context()
	a, b, c := newID(t), newID(t), newID(t)
	// Keys sort byte-wise: "B" < "a" < "é".
	for _, k := range []struct{ hook, key string }{{a, "é"}, {a, "a"}, {b, "x"}, {c, "B"}, {c, "a"}} {
		saveState(t, ts, newState(k.hook, k.key), t0)
	}
	type ident struct{ hook, key string }
	idents := func(ids ...string) []ident {
		t.Helper()
		all, err := ts.TriggerStates(ctx, ids)
		require.NoError(t, err)
		out := make([]ident, 0, len(all))
		for _, st := range all {
			out = append(out, ident{st.WebhookID, st.Key})
		}
		return out
	}
	require.Equal(t, []ident{{a, "a"}, {a, "é"}}, idents(a))
	got := idents(c, a)
	require.Len(t, got, 4)
	require.Equal(t, []ident{{c, "B"}}, got[:1], "ascending key order across webhooks")
	require.ElementsMatch(t, []ident{{a, "a"}, {c, "a"}}, got[1:3], "one key in two webhooks: both")
	require.Equal(t, ident{a, "é"}, got[3])
	require.Equal(t, []ident{{b, "x"}}, idents(b, b), "a webhook named twice")
	require.Empty(t, idents(), "no webhooks")
	require.Empty(t, idents(newID(t)), "a webhook without state")
	require.Empty(t, idents("not-a-webhook-id"))
}

func testTriggerStateCopies(t *testing.T, _ webhook.Storage, ts webhook.TriggerStateStore) {
	hook := newID(t)
	st := newState(hook, "k")
	want := saveState(t, ts, st, t0).Clone()
	// Changing what was given or returned changes nothing stored.
	st.Detector.S1, st.Schedule.LastPeriodEnd, st.Alert.Status = 100, t0, webhook.AlertOK
	got := storedState(t, ts, hook, "k")
	require.Equal(t, want, got)
	got.Detector.S1, got.Schedule.LastPeriodEnd, got.Alert.EpisodeID, got.Version = -5, time.Time{}, "changed", 42
	require.Equal(t, want, storedState(t, ts, hook, "k"))
}

func testTriggerStateEnqueue(t *testing.T, s webhook.Storage, ts webhook.TriggerStateStore) {
	ctx := t.Context()
	hook := newID(t)
	enq, pl, d := stateMessage(t, hook, "alert:k:episode-1:fired")
	res, err := ts.SaveTriggerState(ctx, webhook.SaveTriggerStateParams{State: newState(hook, "k"), Enqueue: enq, Now: t0})
	require.NoError(t, err)
	require.Equal(t, webhook.EnqueueResult{DeliveryIDs: []string{d.ID}}, res)
	gotP, err := s.GetPayload(ctx, pl.ID)
	require.NoError(t, err)
	require.Equal(t, pl, gotP)
	require.Equal(t, []string{d.ID}, claimIDs(claim(t, s, t0, 10)), "the delivery is queued")
	require.EqualValues(t, 1, storedState(t, ts, hook, "k").Version)

	// The key was used: the state is still saved, and nothing enqueued.
	next := storedState(t, ts, hook, "k")
	next.Alert.NotificationCount = 3
	again, pl2, d2 := stateMessage(t, hook, "alert:k:episode-1:fired")
	res, err = ts.SaveTriggerState(ctx, webhook.SaveTriggerStateParams{State: next, Enqueue: again, Now: t0.Add(time.Second)})
	require.NoError(t, err)
	require.Equal(t, webhook.EnqueueResult{DeliveryIDs: []string{d.ID}, Duplicate: true}, res, "the first enqueue's IDs")
	assertNothingStored(t, s, []*webhook.Payload{pl2}, []*webhook.Delivery{d2})
	got := storedState(t, ts, hook, "k")
	require.EqualValues(t, 2, got.Version)
	require.Equal(t, 3, got.Alert.NotificationCount)

	// An enqueue without deliveries only remembers its key.
	got.Alert.NotificationCount = 4
	res, err = ts.SaveTriggerState(ctx, webhook.SaveTriggerStateParams{State: got, Enqueue: &webhook.EnqueueParams{IdempotencyKey: "empty", Now: t0}, Now: t0})
	require.NoError(t, err)
	require.False(t, res.Duplicate)
	require.Empty(t, res.DeliveryIDs)
	require.EqualValues(t, 3, storedState(t, ts, hook, "k").Version)
}

func testTriggerStateEnqueueFails(t *testing.T, s webhook.Storage, ts webhook.TriggerStateStore) {
	ctx := t.Context()
	hook := newID(t)
	failing := func(st *webhook.TriggerState, key string, want error, spoil func(p *webhook.EnqueueParams)) {
		t.Helper()
		enq, pl, d := stateMessage(t, hook, key)
		id := d.ID
		spoil(enq)
		before := storedState(t, ts, hook, st.Key)
		_, err := ts.SaveTriggerState(ctx, webhook.SaveTriggerStateParams{State: st, Enqueue: enq, Now: t0.Add(time.Hour)})
		require.ErrorIs(t, err, want)
		require.Equal(t, before, storedState(t, ts, hook, st.Key), "a failed enqueue stores no state")
		var ds []*webhook.Delivery
		if d.ID == id { // not the clashing ID of a stored delivery
			ds = append(ds, d)
		}
		assertNothingStored(t, s, []*webhook.Payload{pl}, ds)
	}
	missingPayload := func(p *webhook.EnqueueParams) { p.Payloads = nil }

	// A new state whose delivery names a payload that exists nowhere.
	failing(newState(hook, "k"), "fired", webhook.ErrNotFound, missingPayload)
	require.Nil(t, storedState(t, ts, hook, "k"))
	// Its key was not used up, and version 0 is still free.
	enq, _, d := stateMessage(t, hook, "fired")
	res, err := ts.SaveTriggerState(ctx, webhook.SaveTriggerStateParams{State: newState(hook, "k"), Enqueue: enq, Now: t0})
	require.NoError(t, err)
	require.Equal(t, webhook.EnqueueResult{DeliveryIDs: []string{d.ID}}, res)

	// A stored state, and a delivery whose ID clashes.
	cur := storedState(t, ts, hook, "k")
	cur.Alert.NotificationCount = 9
	failing(cur, "renotify-1", webhook.ErrDuplicate, func(p *webhook.EnqueueParams) { p.Deliveries[0].ID = d.ID })
	failing(cur, "renotify-1", webhook.ErrNotFound, missingPayload)

	// A stale version enqueues nothing either.
	stale := cur.Clone()
	stale.Version = 0
	failing(stale, "renotify-1", webhook.ErrConflict, func(*webhook.EnqueueParams) {})
	require.Len(t, claim(t, s, t0, 10), 1, "only the successful save's delivery is queued")

	// None of the failures used up the key.
	enq, _, d = stateMessage(t, hook, "renotify-1")
	res, err = ts.SaveTriggerState(ctx, webhook.SaveTriggerStateParams{State: cur, Enqueue: enq, Now: t0})
	require.NoError(t, err)
	require.Equal(t, webhook.EnqueueResult{DeliveryIDs: []string{d.ID}}, res)
}

func testTriggerStateDeletedWithWebhook(t *testing.T, s webhook.Storage, ts webhook.TriggerStateStore) {
	ctx := t.Context()
	gone, kept := simpleWebhook(t, "acme"), simpleWebhook(t, "acme")
	for _, w := range []*webhook.Webhook{gone, kept} {
		require.NoError(t, s.CreateWebhook(ctx, w))
		saveState(t, ts, newState(w.ID, "threshold:"+w.ID+":0:0:"), t0)
		saveState(t, ts, newState(w.ID, "scheduled:"+w.ID+":1::"), t0)
	}
	require.NoError(t, s.DeleteWebhook(ctx, gone.ID))
	all, err := ts.TriggerStates(ctx, []string{gone.ID, kept.ID})
	require.NoError(t, err)
	require.Len(t, all, 2, "the deleted webhook's states are gone, the other's kept")
	for _, st := range all {
		require.Equal(t, kept.ID, st.WebhookID)
	}
}

func testTriggerStateCanceled(t *testing.T, s webhook.Storage, ts webhook.TriggerStateStore) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	hook := newID(t)
	_, err := ts.TriggerStates(ctx, []string{hook})
	require.ErrorIs(t, err, context.Canceled)
	enq, pl, d := stateMessage(t, hook, "k")
	_, err = ts.SaveTriggerState(ctx, webhook.SaveTriggerStateParams{State: newState(hook, "k"), Enqueue: enq, Now: t0})
	require.ErrorIs(t, err, context.Canceled)
	require.Nil(t, storedState(t, ts, hook, "k"))
	assertNothingStored(t, s, []*webhook.Payload{pl}, []*webhook.Delivery{d})
}

// Racing writers of one version: one wins, the others conflict, and
// only the winner's delivery is queued, at version 0 (creation) and
// above.
func testTriggerStateRace(t *testing.T, s webhook.Storage, ts webhook.TriggerStateStore) {
	ctx := t.Context()
	hook := newID(t)
	const writers, rounds = 8, 5
	var queued []string
	for round := range rounds {
		cur := storedState(t, ts, hook, "k")
		if cur == nil {
			cur = newState(hook, "k")
		}
		states := make([]*webhook.TriggerState, writers)
		enqs := make([]*webhook.EnqueueParams, writers)
		for i := range writers {
			states[i] = cur.Clone()
			states[i].Alert.LastValue = float64(i)
			// No idempotency key: only the compare-and-set can keep the
			// losers' deliveries out.
			enqs[i], _, _ = stateMessage(t, hook, "")
		}
		results := make([]webhook.EnqueueResult, writers)
		errs := make([]error, writers)
		together(writers, func(i int) {
			results[i], errs[i] = ts.SaveTriggerState(ctx, webhook.SaveTriggerStateParams{State: states[i], Enqueue: enqs[i], Now: t0})
		})
		winner := -1
		for i, err := range errs {
			if err == nil {
				require.Equal(t, -1, winner, "round %d: two writers of version %d both won", round, cur.Version)
				winner = i
				continue
			}
			require.ErrorIs(t, err, webhook.ErrConflict, "round %d: writer %d", round, i)
		}
		require.NotEqual(t, -1, winner, "round %d: one writer must win", round)
		require.Equal(t, []string{enqs[winner].Deliveries[0].ID}, results[winner].DeliveryIDs)
		queued = append(queued, enqs[winner].Deliveries[0].ID)
		got := storedState(t, ts, hook, "k")
		require.Equal(t, cur.Version+1, got.Version)
		require.Equal(t, float64(winner), got.Alert.LastValue, "the winner's state is stored")
	}
	require.ElementsMatch(t, queued, claimIDs(claim(t, s, t0, 100)), "one delivery per round: the winners'")
}

// Racing creators of one state that all send the same notification (one
// idempotency key), as Services racing one transition do: one state,
// one delivery, and every loser told to read again.
func testTriggerStateRaceOneKey(t *testing.T, s webhook.Storage, ts webhook.TriggerStateStore) {
	ctx := t.Context()
	const writers = 8
	hooks := []string{newID(t), newID(t)}
	errs := make([]error, writers)
	results := make([]webhook.EnqueueResult, writers)
	enqs := make([]*webhook.EnqueueParams, writers)
	for i := range enqs {
		enqs[i], _, _ = stateMessage(t, hooks[i%2], "alert:fired")
	}
	// Writers of two webhooks' states (two keys) share one idempotency
	// key: each webhook's state is created once, and the key enqueues
	// once.
	together(writers, func(i int) {
		results[i], errs[i] = ts.SaveTriggerState(ctx, webhook.SaveTriggerStateParams{State: newState(hooks[i%2], "k"), Enqueue: enqs[i], Now: t0})
	})
	won, dup := 0, 0
	var ids []string
	for i, err := range errs {
		if errors.Is(err, webhook.ErrConflict) {
			continue
		}
		require.NoError(t, err, "writer %d", i)
		won++
		if results[i].Duplicate {
			dup++
		} else {
			ids = results[i].DeliveryIDs
		}
	}
	require.Equal(t, 2, won, "one creator per state")
	require.Equal(t, 1, dup, "the second state's enqueue finds the key used")
	require.Equal(t, ids, claimIDs(claim(t, s, t0, 100)))
	for _, h := range hooks {
		require.EqualValues(t, 1, storedState(t, ts, h, "k").Version)
	}
}
