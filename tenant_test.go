package webhook_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// catchAll returns a webhook of the tenant that hears every event.
func catchAll(tenant, name string) *webhook.Webhook {
	return &webhook.Webhook{TenantID: tenant, Name: name, URL: "https://example.com/" + name,
		Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}, {Type: webhook.TriggerError},
			{Type: webhook.TriggerThreshold, Conditions: []webhook.Condition{{Metric: "m", Operator: "gt", Value: 1}}}}}
}

// hookIDs returns the webhook IDs of the deliveries, sorted.
func hookIDs(t *testing.T, s webhook.Storage, deliveryIDs []string) []string {
	t.Helper()
	var out []string
	for _, id := range deliveryIDs {
		d, err := s.GetDelivery(t.Context(), id)
		require.NoError(t, err)
		out = append(out, d.WebhookID)
	}
	slices.Sort(out)
	return out
}

func sorted(ids ...string) []string {
	slices.Sort(ids)
	return ids
}

func TestTriggerWithTenant(t *testing.T) {
	svc, store, _ := newService(t)
	ctx := t.Context()
	mk := func(w *webhook.Webhook) string {
		t.Helper()
		got, err := svc.Create(ctx, w)
		require.NoError(t, err)
		return got.ID
	}
	a := mk(catchAll("a", "a"))
	aPurchase := mk(&webhook.Webhook{TenantID: "a", Name: "ap", URL: "https://example.com/ap", Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent, Events: []string{"purchase"}}}})
	b := mk(catchAll("b", "b"))
	plain := mk(catchAll("", "plain"))

	event := func(opts ...webhook.TriggerOption) []string {
		t.Helper()
		ids, err := svc.TriggerEvent(ctx, "purchase", nil, "", opts...)
		require.NoError(t, err)
		return hookIDs(t, store, ids)
	}
	assert.Equal(t, sorted(a, aPurchase), event(webhook.WithTenant("a")))
	assert.Equal(t, []string{b}, event(webhook.WithTenant("b")))
	assert.Equal(t, []string{plain}, event(), "without a tenant, only webhooks without one match")
	assert.Equal(t, []string{plain}, event(webhook.WithTenant("")), "an empty tenant is no tenant")
	assert.Empty(t, event(webhook.WithTenant("c")))
	assert.Equal(t, []string{b}, event(webhook.WithTenant("a"), webhook.WithTenant("b")), "the last WithTenant wins")

	ids, err := svc.TriggerError(ctx, "timeout", "slow", nil, "", webhook.WithTenant("b"))
	require.NoError(t, err)
	assert.Equal(t, []string{b}, hookIDs(t, store, ids))
	ids, err = svc.TriggerThreshold(ctx, "m", 5, 1, "", webhook.WithTenant("a"))
	require.NoError(t, err)
	assert.Equal(t, []string{a}, hookIDs(t, store, ids))

	_, err = svc.TriggerEvent(ctx, "purchase", nil, "", webhook.WithTenant("a\x00"))
	var ve *webhook.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "tenant_id", ve.Fields[0].Field)
	assert.NotErrorIs(t, err, webhook.ErrTenantRequired)
	_, err = svc.TriggerEvent(ctx, "purchase", nil, "", webhook.WithTenant(strings.Repeat("t", webhook.MaxTenantIDLength+1)))
	require.ErrorIs(t, err, webhook.ErrInvalid)
}

func TestIdempotencyKeysAreScopedToTheTenant(t *testing.T) {
	svc, store, _ := newService(t)
	ctx := t.Context()
	a, err := svc.Create(ctx, catchAll("a", "a"))
	require.NoError(t, err)
	b, err := svc.Create(ctx, catchAll("b", "b"))
	require.NoError(t, err)
	key := webhook.WithIdempotencyKey("order-17")

	first, err := svc.TriggerEvent(ctx, "purchase", nil, "", webhook.WithTenant("a"), key)
	require.NoError(t, err)
	other, err := svc.TriggerEvent(ctx, "purchase", nil, "", webhook.WithTenant("b"), key)
	require.NoError(t, err)
	assert.Equal(t, []string{b.ID}, hookIDs(t, store, other), "tenant b's event with a's key is enqueued for b")
	again, err := svc.TriggerEvent(ctx, "purchase", nil, "", webhook.WithTenant("a"), key)
	require.NoError(t, err)
	assert.Equal(t, first, again, "within a tenant the key still deduplicates")
	assert.Equal(t, []string{a.ID}, hookIDs(t, store, first))
}

func TestRequireTenant(t *testing.T) {
	store := memstore.New(nil)
	svc, err := webhook.NewService(store, &webhook.Config{RequireTenant: true})
	require.NoError(t, err)
	ctx := t.Context()

	// A webhook without a tenant written earlier (or behind the service's back).
	legacy := catchAll("", "legacy")
	legacy.ID, legacy.Version = uuid.NewString(), 1
	require.NoError(t, store.CreateWebhook(ctx, legacy))

	isTenantRequired := func(t *testing.T, err error) {
		t.Helper()
		require.ErrorIs(t, err, webhook.ErrTenantRequired)
		require.ErrorIs(t, err, webhook.ErrInvalid)
		var ve *webhook.ValidationError
		require.ErrorAs(t, err, &ve)
		assert.Equal(t, "tenant_id", ve.Fields[0].Field)
		assert.Contains(t, err.Error(), "RequireTenant")
	}
	calls := map[string]func(opts ...webhook.TriggerOption) ([]string, error){
		"event": func(opts ...webhook.TriggerOption) ([]string, error) {
			return svc.TriggerEvent(ctx, "purchase", nil, "", opts...)
		},
		"error": func(opts ...webhook.TriggerOption) ([]string, error) {
			return svc.TriggerError(ctx, "timeout", "slow", nil, "", opts...)
		},
		"threshold": func(opts ...webhook.TriggerOption) ([]string, error) {
			return svc.TriggerThreshold(ctx, "m", 5, 1, "", opts...)
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			ids, err := call(webhook.WithIdempotencyKey("k-" + name))
			isTenantRequired(t, err)
			assert.Nil(t, ids)
			_, err = call(webhook.WithTenant(""))
			isTenantRequired(t, err)
			// The refused call used up neither the key nor anything else.
			ids, err = call(webhook.WithTenant("a"), webhook.WithIdempotencyKey("k-"+name))
			require.NoError(t, err)
			assert.Empty(t, ids)
		})
	}
	ds, err := store.ListDeliveries(ctx, webhook.ListDeliveriesParams{WebhookID: legacy.ID})
	require.NoError(t, err)
	assert.Empty(t, ds, "refused trigger calls enqueue nothing")

	// Create refuses a webhook without a tenant, listing every problem.
	_, err = svc.Create(ctx, catchAll("", "x"))
	isTenantRequired(t, err)
	bad := catchAll("", "")
	_, err = svc.Create(ctx, bad)
	isTenantRequired(t, err)
	var ve *webhook.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, []string{"tenant_id", "name"}, fieldNames(ve))
	_, err = svc.Create(ctx, catchAll("", "x\x00"))
	require.ErrorIs(t, err, webhook.ErrInvalid)
	_, err = svc.Create(ctx, catchAll("a", "a"))
	require.NoError(t, err)
	_, err = svc.Tenant("a").Create(ctx, catchAll("", "a2"))
	require.NoError(t, err, "the TenantService gives the tenant")

	// The legacy webhook can still be read and disabled.
	legacy.Disabled = true
	_, err = svc.Update(ctx, legacy)
	require.NoError(t, err)
}

func fieldNames(ve *webhook.ValidationError) []string {
	var out []string
	for _, f := range ve.Fields {
		out = append(out, f.Field)
	}
	return out
}

// finished claims every due delivery and records it as status.
func finished(t *testing.T, e *env, status webhook.DeliveryStatus) {
	t.Helper()
	cs, err := e.store.ClaimDeliveries(t.Context(), webhook.ClaimParams{Limit: 100, LeaseDuration: time.Minute, Now: e.clock.Now()})
	require.NoError(t, err)
	for _, c := range cs {
		require.NoError(t, e.store.RecordAttempt(t.Context(), webhook.RecordAttemptParams{
			DeliveryID: c.Delivery.ID, Token: c.Lease.Token, Status: status,
			Attempt: webhook.Attempt{StartedAt: e.clock.Now(), StatusCode: 500}, Now: e.clock.Now(),
		}))
	}
}

func TestTenantServiceIsolation(t *testing.T) {
	rc := newReceiver(t, nil)
	e := newEnv(t, nil, nil)
	ctx := t.Context()
	ta, tb := e.svc.Tenant("a"), e.svc.Tenant("b")
	assert.Equal(t, "a", ta.ID())

	in := catchAll("b", "a-hook")
	in.URL = rc.URL
	aHook, err := ta.Create(ctx, in)
	require.NoError(t, err)
	assert.Equal(t, "a", aHook.TenantID, "the TenantService forces its tenant on Create")
	bHook, err := tb.Create(ctx, catchAll("", "b-hook"))
	require.NoError(t, err)
	assert.Equal(t, "b", bHook.TenantID)

	// An event for a reaches a's webhook only.
	ids, err := ta.TriggerEvent(ctx, "purchase", nil, "", webhook.WithTenant("b"))
	require.NoError(t, err)
	assert.Equal(t, []string{aHook.ID}, hookIDs(t, e.store, ids), "a WithTenant in opts cannot leave the tenant")
	finished(t, e, webhook.StatusFailed)
	failed := ids[0]

	// b sees a's webhook and delivery exactly as if they did not exist.
	missing := uuid.NewString()
	notFound := func(t *testing.T, id string, err error, missingErr error) {
		t.Helper()
		require.ErrorIs(t, err, webhook.ErrNotFound)
		require.ErrorIs(t, missingErr, webhook.ErrNotFound)
		assert.Equal(t, strings.ReplaceAll(missingErr.Error(), missing, id), err.Error(), "another tenant's row reads as missing")
		assert.Equal(t, 1, strings.Count(err.Error(), id), "the error names the ID once")
	}
	webhookCalls := map[string]func(*webhook.TenantService, string) error{
		"Get": func(ts *webhook.TenantService, id string) error { _, err := ts.Get(ctx, id); return err },
		"Update": func(ts *webhook.TenantService, id string) error {
			c := aHook.Clone()
			c.ID, c.Name, c.Version = id, "taken", 0
			_, err := ts.Update(ctx, c)
			return err
		},
		"Delete":       func(ts *webhook.TenantService, id string) error { return ts.Delete(ctx, id) },
		"RotateSecret": func(ts *webhook.TenantService, id string) error { _, err := ts.RotateSecret(ctx, id); return err },
		"Test":         func(ts *webhook.TenantService, id string) error { _, err := ts.Test(ctx, id); return err },
		"Deliveries":   func(ts *webhook.TenantService, id string) error { _, err := ts.Deliveries(ctx, id, 10); return err },
		"ListDeliveries": func(ts *webhook.TenantService, id string) error {
			_, err := ts.ListDeliveries(ctx, webhook.ListDeliveriesParams{WebhookID: id, Status: webhook.StatusFailed})
			return err
		},
		"ReplayFailed": func(ts *webhook.TenantService, id string) error {
			_, err := ts.ReplayFailed(ctx, id, webhook.ReplayParams{})
			return err
		},
	}
	for name, call := range webhookCalls {
		t.Run(name, func(t *testing.T) { notFound(t, aHook.ID, call(tb, aHook.ID), call(tb, missing)) })
	}
	deliveryCalls := map[string]func(*webhook.TenantService, string) error{
		"Delivery":  func(ts *webhook.TenantService, id string) error { _, err := ts.Delivery(ctx, id); return err },
		"Redeliver": func(ts *webhook.TenantService, id string) error { _, err := ts.Redeliver(ctx, id); return err },
	}
	for name, call := range deliveryCalls {
		t.Run(name, func(t *testing.T) { notFound(t, failed, call(tb, failed), call(tb, missing)) })
	}

	// Nothing of a's changed, was sent or was queued.
	got, err := ta.Get(ctx, aHook.ID)
	require.NoError(t, err)
	assert.Equal(t, aHook, got)
	assert.Empty(t, rc.all(), "b's Test sent nothing to a's endpoint")
	ds, err := ta.Deliveries(ctx, aHook.ID, 10)
	require.NoError(t, err)
	require.Len(t, ds, 1, "b's Redeliver and ReplayFailed queued nothing")
	assert.Equal(t, webhook.StatusFailed, ds[0].Status)
	list, err := tb.List(ctx, webhook.ListWebhooksParams{TenantID: "a"})
	require.NoError(t, err)
	assert.Equal(t, []string{bHook.ID}, webhookIDs(list), "List shows the tenant's webhooks only, whatever p.TenantID says")

	// a itself can do everything, and cannot move its webhook to b.
	d, err := ta.Delivery(ctx, failed)
	require.NoError(t, err)
	assert.Len(t, d.Attempts, 1)
	replayed, err := ta.ReplayFailed(ctx, aHook.ID, webhook.ReplayParams{})
	require.NoError(t, err)
	assert.Equal(t, 1, replayed.Count)
	assert.Len(t, replayed.DeliveryIDs, 1)
	_, err = ta.Redeliver(ctx, failed)
	require.NoError(t, err)
	sent, err := ta.Test(ctx, aHook.ID)
	require.NoError(t, err)
	assert.Equal(t, webhook.StatusDelivered, sent.Status)
	move := aHook.Clone()
	move.TenantID, move.Version = "b", 0
	moved, err := ta.Update(ctx, move)
	require.NoError(t, err)
	assert.Equal(t, "a", moved.TenantID, "Update keeps the tenant")
	rotated, err := ta.RotateSecret(ctx, aHook.ID)
	require.NoError(t, err)
	assert.NotEqual(t, aHook.Secret, rotated.Secret)
	list, err = ta.List(ctx, webhook.ListWebhooksParams{})
	require.NoError(t, err)
	assert.Equal(t, []string{aHook.ID}, webhookIDs(list))

	// After a deletes its webhook, its history is out of every tenant's reach.
	require.NoError(t, ta.Delete(ctx, aHook.ID))
	_, err = ta.Delivery(ctx, failed)
	require.ErrorIs(t, err, webhook.ErrNotFound)
	_, err = e.svc.Delivery(ctx, failed)
	require.NoError(t, err, "the Service still reads it")
	_, err = tb.Get(ctx, bHook.ID)
	require.NoError(t, err, "b's webhook is untouched")
}

func TestTenantServiceWithoutTenant(t *testing.T) {
	svc, _, _ := newService(t)
	ctx := t.Context()
	w := create(t, svc, "plain", webhook.Trigger{Type: webhook.TriggerEvent})
	for _, tc := range []struct {
		id       string
		required bool
	}{{"", true}, {"a\x00", false}, {strings.Repeat("t", webhook.MaxTenantIDLength+1), false}} {
		ts := svc.Tenant(tc.id)
		errs := []error{}
		add := func(_ any, err error) { errs = append(errs, err) }
		add(ts.Create(ctx, catchAll("", "x")))
		add(ts.Get(ctx, w.ID))
		add(ts.Update(ctx, w))
		add(nil, ts.Delete(ctx, w.ID))
		add(ts.RotateSecret(ctx, w.ID))
		add(ts.List(ctx, webhook.ListWebhooksParams{}))
		add(ts.Test(ctx, w.ID))
		add(ts.Deliveries(ctx, w.ID, 1))
		add(ts.ReplayFailed(ctx, w.ID, webhook.ReplayParams{}))
		add(ts.Delivery(ctx, w.ID))
		add(ts.Redeliver(ctx, w.ID))
		add(ts.TriggerEvent(ctx, "e", nil, ""))
		add(ts.TriggerError(ctx, "e", "m", nil, ""))
		add(ts.TriggerThreshold(ctx, "m", 1, 0, ""))
		for i, err := range errs {
			require.ErrorIs(t, err, webhook.ErrInvalid, "tenant %q, call %d", tc.id, i)
			assert.Equal(t, tc.required, errors.Is(err, webhook.ErrTenantRequired), "tenant %q, call %d", tc.id, i)
		}
	}
	got, err := svc.Get(ctx, w.ID)
	require.NoError(t, err)
	assert.Equal(t, w, got, "nothing changed")
}

// A multi-tenant host raises each event for its tenant and manages each
// tenant's webhooks through that tenant's TenantService.
func ExampleService_Tenant() {
	ctx := context.Background()
	svc, err := webhook.NewService(memstore.New(nil), &webhook.Config{RequireTenant: true})
	if err != nil {
		panic(err)
	}
	acme, globex := svc.Tenant("acme"), svc.Tenant("globex")
	everything := []webhook.Trigger{{Type: webhook.TriggerEvent}}
	acmeHook, err := acme.Create(ctx, &webhook.Webhook{Name: "acme", URL: "https://acme.example/hooks", Triggers: everything})
	if err != nil {
		panic(err)
	}
	globexHook, err := globex.Create(ctx, &webhook.Webhook{Name: "globex", URL: "https://globex.example/hooks", Triggers: everything})
	if err != nil {
		panic(err)
	}

	ids, _ := acme.TriggerEvent(ctx, "purchase", map[string]any{"total": 250}, "production")
	fmt.Println("deliveries for acme's purchase:", len(ids))
	d, _ := acme.Delivery(ctx, ids[0])
	fmt.Println("sent to acme's webhook:", d.WebhookID == acmeHook.ID)
	globexDeliveries, _ := globex.Deliveries(ctx, globexHook.ID, 10)
	fmt.Println("deliveries to globex's webhook:", len(globexDeliveries))

	_, err = globex.Get(ctx, acmeHook.ID)
	fmt.Println("acme's webhook is not found by globex:", errors.Is(err, webhook.ErrNotFound))
	_, err = svc.TriggerEvent(ctx, "purchase", nil, "production")
	fmt.Println("an event without a tenant:", errors.Is(err, webhook.ErrTenantRequired))
	// Output:
	// deliveries for acme's purchase: 1
	// sent to acme's webhook: true
	// deliveries to globex's webhook: 0
	// acme's webhook is not found by globex: true
	// an event without a tenant: true
}

func webhookIDs(ws []*webhook.Webhook) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.ID
	}
	return out
}

// terseStore reports missing webhooks and deliveries in words of its own.
// It embeds the memstore itself, so that its optional interfaces
// (trigger state, metrics) are there too.
type terseStore struct{ *memstore.Store }

func (s terseStore) GetWebhook(ctx context.Context, id string) (*webhook.Webhook, error) {
	w, err := s.Store.GetWebhook(ctx, id)
	if errors.Is(err, webhook.ErrNotFound) {
		err = fmt.Errorf("no such row: %w", webhook.ErrNotFound)
	}
	return w, err
}

func (s terseStore) GetDelivery(ctx context.Context, id string) (*webhook.Delivery, error) {
	d, err := s.Store.GetDelivery(ctx, id)
	if errors.Is(err, webhook.ErrNotFound) {
		err = fmt.Errorf("no such row: %w", webhook.ErrNotFound)
	}
	return d, err
}

func TestOtherTenantReadsAsMissingWhateverTheStorageSays(t *testing.T) {
	svc, err := webhook.NewService(terseStore{memstore.New(nil)}, nil)
	require.NoError(t, err)
	ctx := t.Context()
	w, err := svc.Tenant("a").Create(ctx, catchAll("", "a"))
	require.NoError(t, err)
	ids, err := svc.Tenant("a").TriggerEvent(ctx, "e", nil, "")
	require.NoError(t, err)
	b, missing := svc.Tenant("b"), uuid.NewString()

	_, foreign := b.Get(ctx, w.ID)
	_, absent := b.Get(ctx, missing)
	require.ErrorIs(t, foreign, webhook.ErrNotFound)
	assert.Equal(t, strings.ReplaceAll(absent.Error(), missing, w.ID), foreign.Error())
	_, foreign = b.Delivery(ctx, ids[0])
	_, absent = b.Delivery(ctx, missing)
	require.ErrorIs(t, foreign, webhook.ErrNotFound)
	assert.Equal(t, strings.ReplaceAll(absent.Error(), missing, ids[0]), foreign.Error())
}
