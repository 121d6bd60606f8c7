package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/storage/pgstore"
)

// stateEnqueue returns a state at version 0 and an enqueue of one
// delivery to webhookID with the idempotency key key.
func stateEnqueue(t testing.TB, webhookID, key string) (*webhook.TriggerState, *webhook.EnqueueParams) {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	pid, did := uuid.Must(uuid.NewV7()).String(), uuid.Must(uuid.NewV7()).String()
	st := &webhook.TriggerState{Key: "threshold:" + webhookID + ":0:0:", WebhookID: webhookID, Alert: webhook.AlertState{Status: webhook.AlertFiring}}
	return st, &webhook.EnqueueParams{
		Payloads: []*webhook.Payload{{ID: pid, WebhookID: webhookID, EventType: webhook.EventTypeThresholdAlert, Timestamp: now, Body: []byte(`{}`)}},
		Deliveries: []*webhook.Delivery{{ID: did, WebhookID: webhookID, PayloadID: pid, EventType: webhook.EventTypeThresholdAlert,
			Status: webhook.StatusPending, NextAttemptAt: now, CreatedAt: now}},
		IdempotencyKey: key,
		Now:            now,
	}
}

// A state change whose COMMIT's answer is lost is an unknown outcome,
// and a retry (read again, decide again) finds it done: the state moved
// on, and the enqueue's key is used.
func TestSaveTriggerStateReportsUnknownCommit(t *testing.T) {
	direct := newStore(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	proxied, cutter := proxiedStore(t, ctx, direct, false)
	hook := uuid.Must(uuid.NewV7()).String()
	st, enq := stateEnqueue(t, hook, "alert:fired")
	cutter.armed.Store(true)
	_, err := proxied.SaveTriggerState(ctx, webhook.SaveTriggerStateParams{State: st, Enqueue: enq, Now: enq.Now})
	select {
	case <-cutter.cut:
	default:
		t.Fatalf("the proxy never saw the COMMIT; SaveTriggerState returned %v", err)
	}
	require.ErrorIs(t, err, webhook.ErrCommitUnknown)

	got, err := direct.TriggerStates(ctx, []string{hook})
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.EqualValues(t, 1, got[0].Version, "it did commit")
	_, err = direct.GetDelivery(ctx, enq.Deliveries[0].ID)
	require.NoError(t, err)
	_, err = direct.SaveTriggerState(ctx, webhook.SaveTriggerStateParams{State: st, Enqueue: enq, Now: enq.Now})
	require.ErrorIs(t, err, webhook.ErrConflict, "a blind retry of version 0 conflicts")
	_, again := stateEnqueue(t, hook, "alert:fired")
	res, err := direct.SaveTriggerState(ctx, webhook.SaveTriggerStateParams{State: got[0], Enqueue: again, Now: enq.Now})
	require.NoError(t, err)
	assert.Equal(t, webhook.EnqueueResult{DeliveryIDs: []string{enq.Deliveries[0].ID}, Duplicate: true}, res)
}

// Without an enqueue the change is one statement that commits on its
// own: a connection lost after the server ran it is an unknown outcome.
func TestSaveTriggerStateAloneReportsUnknownCommit(t *testing.T) {
	direct := newStore(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	proxied, cutter := proxiedStore(t, ctx, direct, true)
	cutter.match = []byte(`insert into "` + direct.Schema() + `".trigger_states`)
	hook := uuid.Must(uuid.NewV7()).String()
	st, _ := stateEnqueue(t, hook, "")
	cutter.armed.Store(true)
	_, err := proxied.SaveTriggerState(ctx, webhook.SaveTriggerStateParams{State: st, Now: time.Now()})
	select {
	case <-cutter.cut:
	default:
		t.Fatalf("the proxy never saw the INSERT; SaveTriggerState returned %v", err)
	}
	require.ErrorIs(t, err, webhook.ErrCommitUnknown)
	got, err := direct.TriggerStates(ctx, []string{hook})
	require.NoError(t, err)
	require.Len(t, got, 1, "it did commit")
}

func TestSaveTriggerStateRefusesWhatItCannotStore(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	hook := uuid.Must(uuid.NewV7()).String()
	for name, spoil := range map[string]func(st *webhook.TriggerState, p *webhook.EnqueueParams){
		"webhook ID not a UUID": func(st *webhook.TriggerState, _ *webhook.EnqueueParams) { st.WebhookID = "hook-1" },
		"NUL in the key":        func(st *webhook.TriggerState, _ *webhook.EnqueueParams) { st.Key += "\x00" },
		"bad UTF-8 in env":      func(st *webhook.TriggerState, _ *webhook.EnqueueParams) { st.Environment = "prod\xff" },
		"NUL in the tenant":     func(st *webhook.TriggerState, _ *webhook.EnqueueParams) { st.TenantID = "a\x00" },
		"infinite value":        func(st *webhook.TriggerState, _ *webhook.EnqueueParams) { st.Alert.LastValue = math.Inf(1) },
		"NaN in the detector": func(st *webhook.TriggerState, _ *webhook.EnqueueParams) {
			st.Detector = &webhook.DetectorState{S1: math.NaN()}
		},
		"delivery ID not a UUID": func(_ *webhook.TriggerState, p *webhook.EnqueueParams) { p.Deliveries[0].ID = "d-1" },
	} {
		st, enq := stateEnqueue(t, hook, "")
		spoil(st, enq)
		_, err := s.SaveTriggerState(ctx, webhook.SaveTriggerStateParams{State: st, Enqueue: enq, Now: enq.Now})
		require.ErrorIs(t, err, webhook.ErrInvalid, name)
	}
	got, err := s.TriggerStates(ctx, []string{hook})
	require.NoError(t, err)
	assert.Empty(t, got)
}

// A change that enqueues wakes the workers listening, when it commits.
func TestSaveTriggerStateNotifiesWorkers(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	woke := make(chan struct{}, 10)
	done := make(chan error, 1)
	go func() { done <- s.Listen(ctx, func() { woke <- struct{}{} }) }()
	select {
	case <-woke: // listening
	case <-ctx.Done():
		t.Fatal("the listener never started")
	}
	st, enq := stateEnqueue(t, uuid.Must(uuid.NewV7()).String(), "")
	_, err := s.SaveTriggerState(ctx, webhook.SaveTriggerStateParams{State: st, Enqueue: enq, Now: enq.Now})
	require.NoError(t, err)
	select {
	case <-woke:
	case <-ctx.Done():
		t.Fatal("no notification after a state change that enqueued")
	}
	cancel()
	require.NoError(t, <-done)
}

func TestTriggerStatesWithoutMigrateSaysRunMigrate(t *testing.T) {
	s, err := pgstore.New(testPool(t), &pgstore.Config{Schema: "never_migrated"})
	require.NoError(t, err)
	hook := uuid.Must(uuid.NewV7()).String()
	_, err = s.TriggerStates(t.Context(), []string{hook})
	require.ErrorIs(t, err, pgstore.ErrNotMigrated)
	st, _ := stateEnqueue(t, hook, "")
	_, err = s.SaveTriggerState(t.Context(), webhook.SaveTriggerStateParams{State: st, Now: time.Now()})
	require.ErrorIs(t, err, pgstore.ErrNotMigrated)
}

// Many writers of many keys at once, each key's writers racing one
// version: every key ends at its number of rounds, with no error but
// conflicts (no deadlock, no unique violation).
func TestSaveTriggerStateManyKeysConcurrently(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	hook := uuid.Must(uuid.NewV7()).String()
	const keys, writers, rounds = 4, 4, 5
	errs := make(chan error, keys*writers*rounds)
	done := make(chan struct{})
	for k := range keys {
		for range writers {
			go func() {
				defer func() { done <- struct{}{} }()
				key := fmt.Sprint("k", k)
				for range rounds * 4 {
					cur := &webhook.TriggerState{Key: key, WebhookID: hook}
					all, err := s.TriggerStates(ctx, []string{hook})
					if err != nil {
						errs <- err
						return
					}
					for _, st := range all {
						if st.Key == key {
							cur = st
						}
					}
					if cur.Version >= rounds {
						return
					}
					_, enq := stateEnqueue(t, hook, fmt.Sprintf("%s:%d", key, cur.Version))
					_, err = s.SaveTriggerState(ctx, webhook.SaveTriggerStateParams{State: cur, Enqueue: enq, Now: enq.Now})
					if err != nil && !errors.Is(err, webhook.ErrConflict) {
						errs <- err
						return
					}
				}
			}()
		}
	}
	for range keys * writers {
		<-done
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	all, err := s.TriggerStates(ctx, []string{hook})
	require.NoError(t, err)
	require.Len(t, all, keys)
	for _, st := range all {
		assert.EqualValues(t, rounds, st.Version, st.Key)
	}
	var n int
	require.NoError(t, testPool(t).QueryRow(ctx, `SELECT count(*) FROM `+s.Schema()+`.queue`).Scan(&n))
	assert.Equal(t, keys*rounds, n, "one delivery per key and version")
}
