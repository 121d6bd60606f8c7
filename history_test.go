package webhook_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
)

// countingStore counts the history reads made through it. It hides its
// Storage's optional interfaces; withReader adds HistoryReader back.
type countingStore struct {
	webhook.Storage
	lists, attempts, batched atomic.Int64
}

func (s *countingStore) ListDeliveries(ctx context.Context, p webhook.ListDeliveriesParams) ([]*webhook.Delivery, error) {
	s.lists.Add(1)
	return s.Storage.ListDeliveries(ctx, p)
}

func (s *countingStore) ListAttempts(ctx context.Context, id string) ([]webhook.Attempt, error) {
	s.attempts.Add(1)
	return s.Storage.ListAttempts(ctx, id)
}

type withReader struct{ *countingStore }

func (s withReader) ListDeliveriesWithAttempts(ctx context.Context, p webhook.ListDeliveriesParams) ([]*webhook.Delivery, error) {
	s.batched.Add(1)
	return s.Storage.(webhook.HistoryReader).ListDeliveriesWithAttempts(ctx, p)
}

// historyEnv is a Service over memstore with a webhook that has five
// deliveries created a minute apart, of the event types a, b, a, b, c:
// the first delivered, the second retrying, the others pending.
func historyEnv(t *testing.T) (*memstore.Store, *fakeClock, string, []string, time.Time) {
	t.Helper()
	store := memstore.New(nil)
	clock := newFakeClock()
	svc, err := webhook.NewService(store, &webhook.Config{Now: clock.Now})
	require.NoError(t, err)
	w := create(t, svc, "w", webhook.Trigger{Type: webhook.TriggerEvent})
	start := clock.Now()
	var ids []string
	for _, et := range []string{"a", "b", "a", "b", "c"} {
		got, err := svc.TriggerEvent(t.Context(), et, nil, "")
		require.NoError(t, err)
		ids = append(ids, got...)
		clock.Advance(time.Minute)
	}
	result := func(id string, st webhook.DeliveryStatus, code int) {
		t.Helper()
		cs, err := store.ClaimDeliveries(t.Context(), webhook.ClaimParams{Limit: 1, LeaseDuration: time.Minute, Now: clock.Now()})
		require.NoError(t, err)
		require.Len(t, cs, 1)
		require.Equal(t, id, cs[0].Delivery.ID, "the earliest due")
		require.NoError(t, store.RecordAttempt(t.Context(), webhook.RecordAttemptParams{
			DeliveryID: id, Token: cs[0].Lease.Token, Status: st, NextAttemptAt: clock.Now().Add(24 * time.Hour),
			Attempt: webhook.Attempt{StartedAt: clock.Now(), StatusCode: code}, Now: clock.Now(),
		}))
	}
	result(ids[0], webhook.StatusDelivered, 200)
	result(ids[1], webhook.StatusRetrying, 503)
	return store, clock, w.ID, ids, start
}

func TestListDeliveriesFiltersWithAttempts(t *testing.T) {
	store, clock, hook, ids, start := historyEnv(t)
	svc, err := webhook.NewService(store, &webhook.Config{Now: clock.Now})
	require.NoError(t, err)
	ctx := t.Context()

	ds, err := svc.ListDeliveries(ctx, webhook.ListDeliveriesParams{WebhookID: hook, Statuses: []webhook.DeliveryStatus{webhook.StatusDelivered, webhook.StatusRetrying}})
	require.NoError(t, err)
	require.Len(t, ds, 2)
	assert.Equal(t, []string{ids[1], ids[0]}, []string{ds[0].ID, ds[1].ID})
	assert.Len(t, ds[0].Attempts, 1)
	assert.Equal(t, 503, ds[0].Attempts[0].StatusCode)
	assert.Equal(t, 200, ds[1].Attempts[0].StatusCode)

	ds, err = svc.ListDeliveries(ctx, webhook.ListDeliveriesParams{WebhookID: hook, EventTypes: []string{"b"}, Since: start.Add(time.Minute), Until: start.Add(3 * time.Minute)})
	require.NoError(t, err)
	require.Len(t, ds, 1, "since inclusive, until exclusive: the second delivery only")
	assert.Equal(t, ids[1], ds[0].ID)

	// Deliveries is ListDeliveries without filters.
	all, err := svc.Deliveries(ctx, hook, 3)
	require.NoError(t, err)
	page, err := svc.ListDeliveries(ctx, webhook.ListDeliveriesParams{WebhookID: hook, Limit: 3})
	require.NoError(t, err)
	assert.Equal(t, page, all)
	assert.Equal(t, []string{ids[4], ids[3], ids[2]}, []string{all[0].ID, all[1].ID, all[2].ID})
}

func TestListDeliveriesUsesHistoryReader(t *testing.T) {
	store, clock, hook, _, _ := historyEnv(t)
	plain := &countingStore{Storage: store}
	batched := withReader{&countingStore{Storage: store}}
	oldSvc, err := webhook.NewService(plain, &webhook.Config{Now: clock.Now})
	require.NoError(t, err)
	newSvc, err := webhook.NewService(batched, &webhook.Config{Now: clock.Now})
	require.NoError(t, err)

	p := webhook.ListDeliveriesParams{WebhookID: hook, Limit: 4}
	perDelivery, err := oldSvc.ListDeliveries(t.Context(), p)
	require.NoError(t, err)
	assert.EqualValues(t, 1, plain.lists.Load())
	assert.EqualValues(t, 4, plain.attempts.Load(), "without HistoryReader, one ListAttempts per delivery")

	once, err := newSvc.ListDeliveries(t.Context(), p)
	require.NoError(t, err)
	assert.EqualValues(t, 1, batched.batched.Load())
	assert.Zero(t, batched.lists.Load())
	assert.Zero(t, batched.attempts.Load(), "with HistoryReader, no ListAttempts")
	assert.Equal(t, perDelivery, once, "both paths give the same page")
}

func TestListDeliveriesInvalid(t *testing.T) {
	svc, _, _ := newService(t)
	hook := uuid.NewString()
	for name, tc := range map[string]struct {
		p     webhook.ListDeliveriesParams
		field string
	}{
		"no webhook":         {webhook.ListDeliveriesParams{}, "webhook_id"},
		"unknown status":     {webhook.ListDeliveriesParams{WebhookID: hook, Status: "done"}, "status"},
		"unknown in list":    {webhook.ListDeliveriesParams{WebhookID: hook, Statuses: []webhook.DeliveryStatus{"failed", "Failed"}}, "statuses[1]"},
		"empty event type":   {webhook.ListDeliveriesParams{WebhookID: hook, EventTypes: []string{""}}, "event_types[0]"},
		"too many types":     {webhook.ListDeliveriesParams{WebhookID: hook, EventTypes: make([]string, webhook.MaxListFilterValues+1)}, "event_types"},
		"too many statuses":  {webhook.ListDeliveriesParams{WebhookID: hook, Statuses: make([]webhook.DeliveryStatus, webhook.MaxListFilterValues+1)}, "statuses"},
		"until before since": {webhook.ListDeliveriesParams{WebhookID: hook, Since: time.Unix(10, 0), Until: time.Unix(9, 0)}, "until"},
	} {
		for _, list := range []func() error{
			func() error { _, err := svc.ListDeliveries(t.Context(), tc.p); return err },
			func() error { _, err := svc.Tenant("t").ListDeliveries(t.Context(), tc.p); return err },
			tc.p.Validate,
		} {
			assert.Equal(t, []string{tc.field}, fields(t, list()), name)
		}
	}
	assert.NoError(t, webhook.ListDeliveriesParams{WebhookID: hook, Since: time.Unix(10, 0), Until: time.Unix(10, 0)}.Validate(), "an empty window is valid")
}

func TestSelectedStatuses(t *testing.T) {
	assert.Nil(t, webhook.ListDeliveriesParams{}.SelectedStatuses())
	p := webhook.ListDeliveriesParams{Status: webhook.StatusFailed, Statuses: []webhook.DeliveryStatus{webhook.StatusPending, webhook.StatusFailed, webhook.StatusPending}}
	assert.Equal(t, []webhook.DeliveryStatus{webhook.StatusFailed, webhook.StatusPending}, p.SelectedStatuses())
	assert.Len(t, p.Statuses, 3, "p is not changed")
}

func TestTenantListDeliveries(t *testing.T) {
	e := newEnv(t, nil, nil)
	ctx := t.Context()
	ta, tb := e.svc.Tenant("a"), e.svc.Tenant("b")
	aHook, err := ta.Create(ctx, catchAll("", "a-hook"))
	require.NoError(t, err)
	_, err = ta.TriggerEvent(ctx, "purchase", nil, "")
	require.NoError(t, err)
	finished(t, e, webhook.StatusFailed)

	p := webhook.ListDeliveriesParams{WebhookID: aHook.ID, Status: webhook.StatusFailed}
	ds, err := ta.ListDeliveries(ctx, p)
	require.NoError(t, err)
	require.Len(t, ds, 1)
	assert.Len(t, ds[0].Attempts, 1)

	_, err = tb.ListDeliveries(ctx, p)
	require.ErrorIs(t, err, webhook.ErrNotFound, "another tenant's webhook")
	_, err = ta.ListDeliveries(ctx, webhook.ListDeliveriesParams{WebhookID: uuid.NewString()})
	require.ErrorIs(t, err, webhook.ErrNotFound, "an unknown webhook")
	_, err = e.svc.Tenant("").ListDeliveries(ctx, p)
	require.ErrorIs(t, err, webhook.ErrTenantRequired)

	require.NoError(t, ta.Delete(ctx, aHook.ID))
	_, err = ta.ListDeliveries(ctx, p)
	require.ErrorIs(t, err, webhook.ErrNotFound, "a deleted webhook's history is out of the tenant's reach")
	ds, err = e.svc.ListDeliveries(ctx, p)
	require.NoError(t, err)
	assert.Len(t, ds, 1, "the Service still lists it")
}
