package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"sync"
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
	assert.Equal(t, again, e.delivery(t, ids[0]).RedeliveredBy)
	assert.Equal(t, ids[0], e.delivery(t, again).RedeliveryOf)
	replayed, err := e.svc.ReplayFailed(t.Context(), w.ID, webhook.ReplayParams{})
	require.NoError(t, err)
	assert.Len(t, replayed.DeliveryIDs, 3, "every failed delivery but the redelivered one is queued again")
	assert.Equal(t, 3, replayed.Count)
	e.runOnce(t)
	for _, id := range replayed.DeliveryIDs {
		assert.Equal(t, webhook.StatusDelivered, e.delivery(t, id).Status)
	}
	none, err := e.svc.ReplayFailed(t.Context(), w.ID, webhook.ReplayParams{Since: e.clock.Now().Add(time.Hour)})
	require.NoError(t, err)
	assert.Empty(t, none.DeliveryIDs)

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

// outage is a receiver that fails while down is set, and counts the
// successful requests per webhook-id.
type outage struct {
	*receiver
	down atomic.Bool
	mu   sync.Mutex
	ok   map[string]int
}

func newOutage(t *testing.T) *outage {
	o := &outage{ok: map[string]int{}}
	o.down.Store(true)
	o.receiver = newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if o.down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		o.mu.Lock()
		o.ok[r.Header.Get("webhook-id")]++
		o.mu.Unlock()
	})
	return o
}

func (o *outage) delivered() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps.Clone(o.ok)
}

func TestReplayIsIdempotent(t *testing.T) {
	rc := newOutage(t)
	e := newEnv(t, nil, nil)
	w := e.hook(t, rc.URL, func(w *webhook.Webhook) { w.Retry.MaxAttempts = 1 })
	var messages []string
	for range 3 {
		id := e.trigger(t)[0]
		messages = append(messages, e.delivery(t, id).PayloadID)
	}
	e.runOnce(t)

	// During the outage: the replays fail too.
	res, err := e.svc.ReplayFailed(t.Context(), w.ID, webhook.ReplayParams{})
	require.NoError(t, err)
	require.Equal(t, 3, res.Count)
	e.runOnce(t)

	// After it: a dry run counts the three open failures and queues
	// nothing; then two replays send each message once.
	rc.down.Store(false)
	dry, err := e.svc.ReplayFailed(t.Context(), w.ID, webhook.ReplayParams{DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, 3, dry.Count, "the originals were replayed; only their failed replays are open")
	assert.Empty(t, dry.DeliveryIDs)
	assert.Equal(t, 0, e.runOnce(t), "a dry run queues nothing")
	for range 2 {
		_, err := e.svc.ReplayFailed(t.Context(), w.ID, webhook.ReplayParams{})
		require.NoError(t, err)
		e.runOnce(t)
	}
	want := map[string]int{}
	for _, m := range messages {
		want[m] = 1
	}
	assert.Equal(t, want, rc.delivered(), "each message delivered once")
	dry, err = e.svc.ReplayFailed(t.Context(), w.ID, webhook.ReplayParams{DryRun: true})
	require.NoError(t, err)
	assert.Zero(t, dry.Count)
}

func TestConcurrentReplaysQueueEachDeliveryOnce(t *testing.T) {
	rc := newOutage(t)
	e := newEnv(t, nil, nil)
	w := e.hook(t, rc.URL, func(w *webhook.Webhook) { w.Retry.MaxAttempts = 1 })
	for range 20 {
		e.trigger(t)
	}
	e.runOnce(t)
	var wg sync.WaitGroup
	counts := make([]int, 4)
	errs := make([]error, len(counts))
	for i := range counts {
		wg.Go(func() {
			res, err := e.svc.ReplayFailed(t.Context(), w.ID, webhook.ReplayParams{})
			counts[i], errs[i] = res.Count, err
		})
	}
	wg.Wait()
	total := 0
	for i := range counts {
		require.NoError(t, errs[i])
		total += counts[i]
	}
	assert.Equal(t, 20, total)
}

func TestReplayRefusesDisabledAndUnknownWebhooks(t *testing.T) {
	e := newEnv(t, nil, nil)
	_, err := e.svc.ReplayFailed(t.Context(), uuid.NewString(), webhook.ReplayParams{DryRun: true})
	require.ErrorIs(t, err, webhook.ErrNotFound)
	w := e.hook(t, "http://127.0.0.1:1/", func(w *webhook.Webhook) { w.Disabled = true })
	_, err = e.svc.ReplayFailed(t.Context(), w.ID, webhook.ReplayParams{DryRun: true})
	require.ErrorIs(t, err, webhook.ErrInvalid)
}

func TestTestSendsAreNotRedelivered(t *testing.T) {
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	e := newEnv(t, nil, nil)
	w := e.hook(t, rc.URL)
	d, err := e.svc.Test(t.Context(), w.ID)
	require.NoError(t, err)
	require.Equal(t, webhook.StatusFailed, d.Status)
	_, err = e.svc.Redeliver(t.Context(), d.ID)
	require.ErrorIs(t, err, webhook.ErrInvalid)
	assert.Contains(t, err.Error(), "call Test")
	res, err := e.svc.ReplayFailed(t.Context(), w.ID, webhook.ReplayParams{})
	require.NoError(t, err)
	assert.Zero(t, res.Count, "a failed test send is not replayed")
	assert.Equal(t, 0, e.runOnce(t))
	assert.Len(t, rc.all(), 1)
}

func TestTestWithCanceledContext(t *testing.T) {
	arrived := make(chan struct{}, 1)
	rc := newReceiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done() // never answers
	})
	e := newEnv(t, nil, nil)
	w := e.hook(t, rc.URL)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	d, err := e.svc.Test(ctx, w.ID)
	require.ErrorIs(t, err, context.Canceled)
	assert.Nil(t, d)
	ds, err := e.svc.Deliveries(t.Context(), w.ID, 10)
	require.NoError(t, err)
	assert.Empty(t, ds, "nothing is stored when ctx is done before the test starts")

	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	go func() {
		select {
		case <-arrived:
			cancel()
		case <-time.After(10 * time.Second):
			cancel()
		}
	}()
	d, err = e.svc.Test(ctx, w.ID)
	require.ErrorIs(t, err, context.Canceled)
	assert.Nil(t, d)
	ds, err = e.svc.Deliveries(t.Context(), w.ID, 10)
	require.NoError(t, err)
	require.Len(t, ds, 1)
	assert.Equal(t, webhook.StatusFailed, ds[0].Status)
	assert.Contains(t, ds[0].Error, "canceled before the endpoint answered")
	require.Len(t, ds[0].Attempts, 1)
	assert.Contains(t, ds[0].Attempts[0].Error, "canceled")
}

func TestLostLeasesPastTheBudgetAreNotCounted(t *testing.T) {
	rc := newReceiver(t, nil)
	e := newEnv(t, nil, &webhook.WorkerConfig{LeaseDuration: time.Minute})
	w := e.hook(t, rc.URL, func(w *webhook.Webhook) { w.Retry.MaxAttempts = 1 })
	id := e.trigger(t)[0]
	d, err := e.store.GetDelivery(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, w.Retry.MaxAttempts, d.MaxAttempts, "a delivery carries its webhook's budget")
	// Workers claim and die: the first during its one attempt, the
	// others after claiming past the budget.
	for range 3 {
		cs, err := e.store.ClaimDeliveries(t.Context(), webhook.ClaimParams{WorkerID: "dies", Limit: 1, LeaseDuration: time.Minute, Now: e.clock.Now()})
		require.NoError(t, err)
		require.Len(t, cs, 1)
		e.clock.Advance(time.Minute)
	}
	e.runOnce(t)
	got := e.delivery(t, id)
	assert.Equal(t, webhook.StatusFailed, got.Status)
	require.Len(t, got.Attempts, 2, "the lost attempt and the refusal to send; no lost leases of claims that sent nothing")
	assert.Contains(t, got.Attempts[0].Error, "lease")
	assert.Contains(t, got.Attempts[1].Error, "attempts are used")
	assert.LessOrEqual(t, got.Attempt, w.Retry.MaxAttempts+1)
	assert.Empty(t, rc.all())
}
