package pgstore_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
)

// tenantService returns a Service over store that requires a tenant.
func tenantService(t *testing.T, store webhook.Storage) *webhook.Service {
	t.Helper()
	svc, err := webhook.NewService(store, &webhook.Config{Network: testNetwork(), RequireTenant: true})
	require.NoError(t, err)
	return svc
}

// payloadIDs returns the payload IDs of the deliveries.
func payloadIDs(t *testing.T, store webhook.Storage, deliveryIDs []string) []string {
	t.Helper()
	var out []string
	for _, id := range deliveryIDs {
		d, err := store.GetDelivery(t.Context(), id)
		require.NoError(t, err)
		out = append(out, d.PayloadID)
	}
	return out
}

// drained returns what the receiver has got so far.
func drained(got <-chan string) []string {
	var out []string
	for {
		select {
		case id := <-got:
			out = append(out, id)
		default:
			return out
		}
	}
}

func TestTenantsShareOneDatabase(t *testing.T) {
	store := newStore(t)
	ctx := t.Context()
	// Two services over one schema stand for two processes of a
	// multi-tenant host.
	one, two := tenantService(t, store), tenantService(t, store)
	srvA, gotA := sink(t)
	srvB, gotB := sink(t)
	everything := []webhook.Trigger{{Type: webhook.TriggerEvent}}
	aHook, err := one.Tenant("a").Create(ctx, &webhook.Webhook{Name: "a", URL: srvA.URL, Triggers: everything})
	require.NoError(t, err)
	bHook, err := two.Tenant("b").Create(ctx, &webhook.Webhook{TenantID: "a", Name: "b", URL: srvB.URL, Triggers: everything})
	require.NoError(t, err)
	require.Equal(t, "b", bHook.TenantID)

	// Each process raises an event for the tenant whose webhook the
	// other created; each reaches its own tenant only.
	forA, err := two.Tenant("a").TriggerEvent(ctx, "purchase", nil, "")
	require.NoError(t, err)
	require.Len(t, forA, 1)
	forB, err := one.TriggerEvent(ctx, "purchase", nil, "", webhook.WithTenant("b"))
	require.NoError(t, err)
	require.Len(t, forB, 1)
	_, err = one.TriggerEvent(ctx, "purchase", nil, "")
	require.ErrorIs(t, err, webhook.ErrTenantRequired)

	// Idempotency keys of two tenants do not meet.
	key := webhook.WithIdempotencyKey("order-17")
	keyedA, err := one.Tenant("a").TriggerEvent(ctx, "purchase", nil, "", key)
	require.NoError(t, err)
	keyedB, err := two.Tenant("b").TriggerEvent(ctx, "purchase", nil, "", key)
	require.NoError(t, err)
	require.Len(t, keyedB, 1, "b's event with a's key is enqueued")
	again, err := two.Tenant("a").TriggerEvent(ctx, "purchase", nil, "", key)
	require.NoError(t, err)
	assert.Equal(t, keyedA, again)

	w, err := webhook.NewWorker(two, nil)
	require.NoError(t, err)
	n, err := w.RunOnce(ctx)
	require.NoError(t, err)
	require.Equal(t, 4, n)
	assert.ElementsMatch(t, payloadIDs(t, store, append(forA, keyedA...)), drained(gotA), "a's endpoint gets a's events only")
	assert.ElementsMatch(t, payloadIDs(t, store, append(forB, keyedB...)), drained(gotB), "b's endpoint gets b's events only")

	// b cannot see or change a's webhook or deliveries from either process.
	missing := uuid.NewString()
	for _, svc := range []*webhook.Service{one, two} {
		b := svc.Tenant("b")
		_, err := b.Get(ctx, aHook.ID)
		require.ErrorIs(t, err, webhook.ErrNotFound)
		_, errMissing := b.Get(ctx, missing)
		assert.Equal(t, strings.ReplaceAll(errMissing.Error(), missing, aHook.ID), err.Error())
		require.ErrorIs(t, b.Delete(ctx, aHook.ID), webhook.ErrNotFound)
		_, err = b.RotateSecret(ctx, aHook.ID)
		require.ErrorIs(t, err, webhook.ErrNotFound)
		_, err = b.Delivery(ctx, forA[0])
		require.ErrorIs(t, err, webhook.ErrNotFound)
		_, err = b.Redeliver(ctx, forA[0])
		require.ErrorIs(t, err, webhook.ErrNotFound)
		list, err := b.List(ctx, webhook.ListWebhooksParams{})
		require.NoError(t, err)
		require.Len(t, list, 1)
		assert.Equal(t, bHook.ID, list[0].ID)
	}
	got, err := one.Tenant("a").Get(ctx, aHook.ID)
	require.NoError(t, err)
	assert.Equal(t, aHook, got, "a's webhook is unchanged")
	d, err := two.Tenant("a").Delivery(ctx, forA[0])
	require.NoError(t, err)
	assert.Equal(t, webhook.StatusDelivered, d.Status)
}

func TestNotFoundErrorNamesTheIDOnce(t *testing.T) {
	svc := newService(t, newStore(t))
	for _, id := range []string{uuid.NewString(), "nope"} {
		_, err := svc.Get(t.Context(), id)
		require.ErrorIs(t, err, webhook.ErrNotFound)
		assert.Equal(t, "webhook: get: webhook "+id+": webhook: not found", err.Error())
	}
}

func TestUntenantedEventSkipsTenantWebhooks(t *testing.T) {
	store := newStore(t)
	svc := newService(t, store)
	plain := createHook(t, svc, "https://example.com/plain")
	_, err := svc.Create(t.Context(), &webhook.Webhook{TenantID: "b", Name: "b", URL: "https://example.com/b", Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
	require.NoError(t, err)
	ids, err := newService(t, store).TriggerEvent(t.Context(), "purchase", nil, "")
	require.NoError(t, err)
	require.Len(t, ids, 1, "an event without a tenant reaches only webhooks without one")
	d, err := store.GetDelivery(t.Context(), ids[0])
	require.NoError(t, err)
	assert.Equal(t, plain.ID, d.WebhookID)
}

// TestOtherTenantsUnreadableRowReadsAsMissing: a stored webhook that
// cannot be decoded is reported as such to its own tenant, but to any
// other tenant exactly as a missing one, so that its ID and its
// problems stay hidden there too.
func TestOtherTenantsUnreadableRowReadsAsMissing(t *testing.T) {
	ctx := t.Context()
	store := newStore(t)
	svc := tenantService(t, store)
	a, b := svc.Tenant("a"), svc.Tenant("b")
	w, err := a.Create(ctx, &webhook.Webhook{Name: "a", URL: "https://example.com/a", Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
	require.NoError(t, err)
	ids, err := a.TriggerEvent(ctx, "e", nil, "")
	require.NoError(t, err)
	require.Len(t, ids, 1)
	_, err = testPool(t).Exec(ctx, `UPDATE `+store.Schema()+`.webhooks SET config = '{"id": nope' WHERE id = $1`, w.ID)
	require.NoError(t, err)

	_, err = a.Get(ctx, w.ID)
	require.ErrorIs(t, err, webhook.ErrCorruptWebhook, "its own tenant learns what is wrong")
	var ce *webhook.CorruptWebhookError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "a", ce.TenantID)

	missingWebhook, missingDelivery := uuid.NewString(), uuid.NewString()
	_, foreign := b.Get(ctx, w.ID)
	_, absent := b.Get(ctx, missingWebhook)
	require.ErrorIs(t, foreign, webhook.ErrNotFound)
	assert.Equal(t, strings.ReplaceAll(absent.Error(), missingWebhook, w.ID), foreign.Error())
	_, foreign = b.Delivery(ctx, ids[0])
	_, absent = b.Delivery(ctx, missingDelivery)
	require.ErrorIs(t, foreign, webhook.ErrNotFound)
	assert.Equal(t, strings.ReplaceAll(absent.Error(), missingDelivery, ids[0]), foreign.Error())
	_, foreign = b.Update(ctx, &webhook.Webhook{ID: w.ID, Name: "b", URL: "https://example.com/b", Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
	require.ErrorIs(t, foreign, webhook.ErrNotFound)
	assert.NotErrorIs(t, foreign, webhook.ErrCorruptWebhook)
}
