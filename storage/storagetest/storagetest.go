// Package storagetest is the conformance suite for webhook.Storage
// implementations. Every backend runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) webhook.Storage { return memstore.New() })
//	}
//
// The suite checks every method and every promise written on
// webhook.Storage, including those about concurrency: two claimers never
// hold the same delivery, an expired lease is reclaimed and its stale
// holder's result refused, an enqueue is all-or-nothing, and an
// idempotency key enqueues once however calls race.
package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
)

// NewStore returns an empty Storage for one test. Register cleanup on t.
type NewStore func(t *testing.T) webhook.Storage

// t0 is the suite's clock origin, at microsecond precision as every
// Storage must keep.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 891011000, time.UTC)

// Run runs the whole suite, each case as a subtest on a new store.
func Run(t *testing.T, newStore NewStore) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

var cases = []struct {
	name string
	fn   func(t *testing.T, s webhook.Storage)
}{
	{"WebhookRoundTrip", testWebhookRoundTrip},
	{"WebhookNotFound", testWebhookNotFound},
	{"WebhookDuplicate", testWebhookDuplicate},
	{"WebhookUpdateDelete", testWebhookUpdateDelete},
	{"WebhookCopiesAreIndependent", testWebhookCopies},
	{"ListWebhooksPages", testListWebhooksPages},
	{"EnqueueRoundTrip", testEnqueueRoundTrip},
	{"EnqueueAllOrNothing", testEnqueueAllOrNothing},
	{"EnqueueRedelivery", testEnqueueRedelivery},
	{"EnqueueInvalid", testEnqueueInvalid},
	{"IdempotencyKey", testIdempotencyKey},
	{"IdempotencyKeyConcurrent", testIdempotencyKeyConcurrent},
	{"ClaimDue", testClaimDue},
	{"ClaimLimitAndOrder", testClaimLimitAndOrder},
	{"ClaimInvalid", testClaimInvalid},
	{"ClaimExcludeAndPerWebhookCap", testClaimExcludeAndCap},
	{"ClaimConcurrentDisjoint", testClaimConcurrent},
	{"LeaseExpiryReclaims", testLeaseExpiry},
	{"LateResultBeforeReclaim", testLateResultBeforeReclaim},
	{"RecordDelivered", testRecordDelivered},
	{"RecordRetrying", testRecordRetrying},
	{"RecordFailedDisablesWebhook", testRecordFailedDisable},
	{"RecordErrors", testRecordErrors},
	{"EnqueueLeased", testEnqueueLeased},
	{"ListDeliveriesPages", testListDeliveries},
	{"HistoryNotFound", testHistoryNotFound},
	{"CanceledContext", testCanceledContext},
	{"ReleaseWithoutOutcome", testRelease},
	{"HistoryOutlivesWebhook", testHistoryOutlivesWebhook},
	{"DeliveryCopiesAreIndependent", testDeliveryCopies},
	{"Prune", testPrune},
	{"RecordAttemptsBatch", testRecordAttemptsBatch},
}

// newID returns a new time-ordered ID like the Service's.
func newID(t *testing.T) string {
	t.Helper()
	id, err := uuid.NewV7()
	require.NoError(t, err)
	return id.String()
}

func fullWebhook(t *testing.T) *webhook.Webhook {
	secret, err := webhook.NewSecret()
	require.NoError(t, err)
	old, err := webhook.NewSecret()
	require.NoError(t, err)
	return &webhook.Webhook{
		ID:              newID(t),
		TenantID:        "tenant-a",
		Name:            "Orders → CRM",
		URL:             "https://hooks.example.com/orders?x=1",
		Secret:          secret,
		PreviousSecrets: []webhook.RetiredSecret{{Secret: old, ExpiresAt: t0.Add(24 * time.Hour)}},
		Disabled:        true,
		DisabledReason:  "endpoint answered 410 Gone",
		Triggers: []webhook.Trigger{
			{
				Type:   webhook.TriggerEvent,
				Events: []string{"purchase", "checkout.*"},
				Filters: []webhook.Filter{
					{Property: "plan", Operator: webhook.FilterEquals, Value: "pro"},
					{Property: "amount", Operator: webhook.FilterGTE, Value: 10.5},
					{Property: "beta", Operator: webhook.FilterEquals, Value: true},
					{Property: "coupon", Operator: webhook.FilterIsSet, Value: nil},
					{Property: "country", Operator: webhook.FilterIn, Value: []any{"DE", "FR", 3.0, nil}},
					{Property: "user.meta", Operator: webhook.FilterEquals, Value: map[string]any{"a": []any{1.0, "x"}}},
				},
				Conditions: []webhook.Condition{},
			},
			{
				Type:       webhook.TriggerThreshold,
				Filters:    []webhook.Filter{},
				Conditions: []webhook.Condition{{Metric: "error_rate", Operator: webhook.ConditionGT, Value: 0.05, WindowSeconds: 300}},
			},
		},
		Headers:         map[string]string{"Authorization": "Bearer abc", "X-Team": "growth"},
		Retry:           webhook.RetryPolicy{MaxAttempts: 7, InitialDelay: 1500 * time.Millisecond, MaxDelay: 2 * time.Hour, Multiplier: 1.5, DisableJitter: true},
		Environments:    []string{"production", "staging"},
		SignatureScheme: webhook.SchemeHex,
		Timeout:         45 * time.Second,
		CreatedAt:       t0,
		UpdatedAt:       t0.Add(time.Second),
		Version:         1,
	}
}

// simpleWebhook returns a minimal valid webhook.
func simpleWebhook(t *testing.T, tenant string) *webhook.Webhook {
	secret, err := webhook.NewSecret()
	require.NoError(t, err)
	return &webhook.Webhook{
		ID: newID(t), TenantID: tenant, Name: "hook", URL: "https://example.com/hook",
		Secret:          secret,
		Triggers:        []webhook.Trigger{{Type: webhook.TriggerEvent, Filters: []webhook.Filter{}, Conditions: []webhook.Condition{}}},
		Headers:         map[string]string{},
		Retry:           webhook.DefaultRetryPolicy(),
		SignatureScheme: webhook.SchemeStandard,
		CreatedAt:       t0, UpdatedAt: t0,
		Version: 1,
	}
}

func testWebhookRoundTrip(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	w := fullWebhook(t)
	require.NoError(t, s.CreateWebhook(ctx, w))
	got, err := s.GetWebhook(ctx, w.ID)
	require.NoError(t, err)
	require.Equal(t, w, got, "GetWebhook must return every field as stored, times in UTC")
}

func testWebhookNotFound(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	missing := newID(t)
	_, err := s.GetWebhook(ctx, missing)
	require.ErrorIs(t, err, webhook.ErrNotFound)
	w := simpleWebhook(t, "")
	w.ID = missing
	require.ErrorIs(t, s.UpdateWebhook(ctx, w), webhook.ErrNotFound)
	require.ErrorIs(t, s.DeleteWebhook(ctx, missing), webhook.ErrNotFound)
}

func testWebhookDuplicate(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	w := simpleWebhook(t, "")
	require.NoError(t, s.CreateWebhook(ctx, w))
	w2 := simpleWebhook(t, "")
	w2.ID = w.ID
	w2.Name = "other"
	require.ErrorIs(t, s.CreateWebhook(ctx, w2), webhook.ErrDuplicate)
	got, err := s.GetWebhook(ctx, w.ID)
	require.NoError(t, err)
	require.Equal(t, "hook", got.Name, "a refused create must not overwrite")
}

func testWebhookUpdateDelete(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	w := simpleWebhook(t, "")
	require.NoError(t, s.CreateWebhook(ctx, w))
	u := fullWebhook(t)
	u.ID = w.ID
	require.NoError(t, s.UpdateWebhook(ctx, u))
	got, err := s.GetWebhook(ctx, w.ID)
	require.NoError(t, err)
	want := u.Clone()
	want.Version = 2
	require.Equal(t, want, got, "the update is stored as the next version")
	require.Equal(t, int64(1), u.Version, "UpdateWebhook does not modify its argument")

	// A writer holding an older version is refused and changes nothing.
	stale := u.Clone()
	stale.Name = "stale"
	require.ErrorIs(t, s.UpdateWebhook(ctx, stale), webhook.ErrConflict)
	got, err = s.GetWebhook(ctx, w.ID)
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.NoError(t, s.UpdateWebhook(ctx, got), "the current version updates")

	require.NoError(t, s.DeleteWebhook(ctx, w.ID))
	_, err = s.GetWebhook(ctx, w.ID)
	require.ErrorIs(t, err, webhook.ErrNotFound)
	require.ErrorIs(t, s.DeleteWebhook(ctx, w.ID), webhook.ErrNotFound)
}

func testWebhookCopies(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	w := fullWebhook(t)
	want := w.Clone()
	require.NoError(t, s.CreateWebhook(ctx, w))
	// Changing the value given to CreateWebhook must not reach the store.
	w.Name = "changed"
	w.Headers["X-Team"] = "changed"
	w.Triggers[0].Events[0] = "changed"
	w.Triggers[0].Filters[4].Value.([]any)[0] = "changed"
	got, err := s.GetWebhook(ctx, want.ID)
	require.NoError(t, err)
	require.Equal(t, want, got)
	// Nor may changing a returned value.
	got.Headers["X-Team"] = "changed"
	got.Triggers[0].Filters[5].Value.(map[string]any)["a"] = "changed"
	again, err := s.GetWebhook(ctx, want.ID)
	require.NoError(t, err)
	require.Equal(t, want, again)
}

func testListWebhooksPages(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	var ids, tenantB []string
	for i := range 7 {
		tenant := "a"
		if i%3 == 0 {
			tenant = "b"
		}
		w := simpleWebhook(t, tenant)
		require.NoError(t, s.CreateWebhook(ctx, w))
		ids = append(ids, w.ID)
		if tenant == "b" {
			tenantB = append(tenantB, w.ID)
		}
	}
	var seen []string
	after := ""
	for range 10 {
		page, err := s.ListWebhooks(ctx, webhook.ListWebhooksParams{After: after, Limit: 3})
		require.NoError(t, err)
		require.LessOrEqual(t, len(page), 3)
		for _, w := range page {
			seen = append(seen, w.ID)
		}
		if len(page) < 3 {
			break
		}
		after = page[len(page)-1].ID
	}
	require.Equal(t, ids, seen, "pages must list every webhook once, in ascending ID order")

	for range webhook.DefaultPageSize - 6 {
		require.NoError(t, s.CreateWebhook(ctx, simpleWebhook(t, "c")))
	}
	page, err := s.ListWebhooks(ctx, webhook.ListWebhooksParams{})
	require.NoError(t, err)
	require.Len(t, page, webhook.DefaultPageSize, "Limit 0 means the default page size")
	page, err = s.ListWebhooks(ctx, webhook.ListWebhooksParams{Limit: 5 * webhook.MaxPageSize})
	require.NoError(t, err)
	require.Len(t, page, webhook.DefaultPageSize+1, "a limit above the maximum returns at most the maximum")

	b, err := s.ListWebhooks(ctx, webhook.ListWebhooksParams{TenantID: "b"})
	require.NoError(t, err)
	require.Equal(t, tenantB, webhookIDs(b))
	none, err := s.ListWebhooks(ctx, webhook.ListWebhooksParams{TenantID: "nobody"})
	require.NoError(t, err)
	require.Empty(t, none)
}

func webhookIDs(ws []*webhook.Webhook) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.ID
	}
	return out
}

// newDelivery returns a payload and a pending delivery for webhookID,
// due at due.
func newDelivery(t *testing.T, webhookID string, due time.Time) (*webhook.Payload, *webhook.Delivery) {
	pid := newID(t)
	// Odd spacing and key order: a Storage must keep the bytes as given.
	body := fmt.Sprintf(`{"id":%q, "webhook_id":%q,"event_type":"purchase","timestamp":"2026-03-04T05:06:07Z","data":{"z":1,  "a":[2,1]},"environment":"production"}`, pid, webhookID)
	p := &webhook.Payload{ID: pid, WebhookID: webhookID, EventType: "purchase", Environment: "production", Timestamp: t0, Body: []byte(body)}
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

func claim(t *testing.T, s webhook.Storage, now time.Time, limit int) []*webhook.Claim {
	t.Helper()
	cs, err := s.ClaimDeliveries(t.Context(), webhook.ClaimParams{WorkerID: "w1", Limit: limit, LeaseDuration: 30 * time.Second, Now: now})
	require.NoError(t, err)
	return cs
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

func testRecordFailedDisable(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	w := simpleWebhook(t, "")
	require.NoError(t, s.CreateWebhook(ctx, w))
	id := enqueue(t, s, w.ID, 1, t0)[0]
	c := claim(t, s, t0, 1)[0]
	require.NoError(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{
		DeliveryID: id, Token: c.Lease.Token, Status: webhook.StatusFailed,
		Attempt:        webhook.Attempt{StartedAt: t0, StatusCode: 410, Error: "HTTP 410"},
		DisableWebhook: true, DisabledReason: "endpoint answered 410 Gone",
		Now: t0.Add(time.Second),
	}))
	d, err := s.GetDelivery(ctx, id)
	require.NoError(t, err)
	require.Equal(t, webhook.StatusFailed, d.Status)
	require.True(t, d.CompletedAt.Equal(t0.Add(time.Second)))
	got, err := s.GetWebhook(ctx, w.ID)
	require.NoError(t, err)
	require.True(t, got.Disabled)
	require.Equal(t, "endpoint answered 410 Gone", got.DisabledReason)
	require.Equal(t, w.Version+1, got.Version, "disabling makes a new version")
	require.True(t, got.UpdatedAt.Equal(t0.Add(time.Second)))
	require.Empty(t, claim(t, s, t0.Add(time.Hour), 10), "failed is final")

	// Disabling a deleted webhook is not an error.
	id2 := enqueue(t, s, newID(t), 1, t0)[0]
	c2 := claim(t, s, t0, 1)[0]
	require.NoError(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{
		DeliveryID: id2, Token: c2.Lease.Token, Status: webhook.StatusFailed,
		DisableWebhook: true, DisabledReason: "gone", Now: t0,
	}))
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

func testListDeliveries(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	hook, other := newID(t), newID(t)
	var ids []string
	for range 7 {
		ids = append(ids, enqueue(t, s, hook, 1, t0)...)
		enqueue(t, s, other, 1, t0)
	}
	slices.Reverse(ids) // newest first

	var seen []string
	before := ""
	for range 10 {
		page, err := s.ListDeliveries(ctx, webhook.ListDeliveriesParams{WebhookID: hook, Before: before, Limit: 3})
		require.NoError(t, err)
		require.LessOrEqual(t, len(page), 3)
		for _, d := range page {
			require.Equal(t, hook, d.WebhookID)
			seen = append(seen, d.ID)
		}
		if len(page) < 3 {
			break
		}
		before = page[len(page)-1].ID
	}
	require.Equal(t, ids, seen, "pages list every delivery once, newest first")

	// Deliver the oldest two; filter by status.
	for _, c := range claim(t, s, t0, 100) {
		if c.Delivery.ID == ids[6] || c.Delivery.ID == ids[5] {
			require.NoError(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{DeliveryID: c.Delivery.ID, Token: c.Lease.Token, Status: webhook.StatusDelivered, Now: t0}))
		}
	}
	done, err := s.ListDeliveries(ctx, webhook.ListDeliveriesParams{WebhookID: hook, Status: webhook.StatusDelivered})
	require.NoError(t, err)
	require.Equal(t, []string{ids[5], ids[6]}, deliveryIDs(done))

	none, err := s.ListDeliveries(ctx, webhook.ListDeliveriesParams{WebhookID: newID(t)})
	require.NoError(t, err)
	require.Empty(t, none)
	_, err = s.ListDeliveries(ctx, webhook.ListDeliveriesParams{})
	require.ErrorIs(t, err, webhook.ErrInvalid)
}

func deliveryIDs(ds []*webhook.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

func testHistoryNotFound(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	_, err := s.GetDelivery(ctx, newID(t))
	require.ErrorIs(t, err, webhook.ErrNotFound)
	_, err = s.ListAttempts(ctx, newID(t))
	require.ErrorIs(t, err, webhook.ErrNotFound)
	_, err = s.GetPayload(ctx, newID(t))
	require.ErrorIs(t, err, webhook.ErrNotFound)
}

func testCanceledContext(t *testing.T, s webhook.Storage) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.GetWebhook(ctx, newID(t))
	require.Error(t, err)
	require.False(t, errors.Is(err, webhook.ErrNotFound), "a canceled call must not report a missing row")
	_, err = s.ClaimDeliveries(ctx, webhook.ClaimParams{Limit: 1, LeaseDuration: time.Second, Now: t0})
	assert.Error(t, err)
	w := simpleWebhook(t, "")
	assert.Error(t, s.CreateWebhook(ctx, w))
	_, err = s.GetWebhook(t.Context(), w.ID)
	require.ErrorIs(t, err, webhook.ErrNotFound, "a canceled create stores nothing")
	pl, d := newDelivery(t, newID(t), t0)
	_, err = s.Enqueue(ctx, webhook.EnqueueParams{Payloads: []*webhook.Payload{pl}, Deliveries: []*webhook.Delivery{d}, Now: t0})
	assert.Error(t, err)
	assertNothingStored(t, s, []*webhook.Payload{pl}, []*webhook.Delivery{d})
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

func testHistoryOutlivesWebhook(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	w := simpleWebhook(t, "")
	require.NoError(t, s.CreateWebhook(ctx, w))
	id := enqueue(t, s, w.ID, 1, t0)[0]
	c := claim(t, s, t0, 1)[0]
	require.NoError(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{DeliveryID: id, Token: c.Lease.Token, Status: webhook.StatusDelivered, Attempt: webhook.Attempt{StartedAt: t0, StatusCode: 200}, Now: t0}))
	require.NoError(t, s.DeleteWebhook(ctx, w.ID))
	ds, err := s.ListDeliveries(ctx, webhook.ListDeliveriesParams{WebhookID: w.ID})
	require.NoError(t, err)
	require.Equal(t, []string{id}, deliveryIDs(ds), "deleting a webhook keeps its deliveries")
	atts, err := s.ListAttempts(ctx, id)
	require.NoError(t, err)
	require.Len(t, atts, 1)
	_, err = s.GetPayload(ctx, ds[0].PayloadID)
	require.NoError(t, err)
}

func testDeliveryCopies(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	pl, d := newDelivery(t, newID(t), t0)
	_, err := s.Enqueue(ctx, webhook.EnqueueParams{Payloads: []*webhook.Payload{pl}, Deliveries: []*webhook.Delivery{d}, Now: t0})
	require.NoError(t, err)
	pl.Body[2] = 'X' // the caller's slice, changed after the call
	d.EventType = "changed"
	got, err := s.GetPayload(ctx, pl.ID)
	require.NoError(t, err)
	require.Equal(t, byte('i'), got.Body[2])
	got.Body[2] = 'Y'
	c := claim(t, s, t0, 1)[0]
	require.Equal(t, "purchase", c.Delivery.EventType)
	require.Equal(t, byte('i'), c.Payload.Body[2])
	c.Payload.Body[2] = 'Z'
	c.Delivery.Status = webhook.StatusFailed
	again, err := s.GetPayload(ctx, pl.ID)
	require.NoError(t, err)
	require.Equal(t, byte('i'), again.Body[2])
	dd, err := s.GetDelivery(ctx, d.ID)
	require.NoError(t, err)
	require.Equal(t, webhook.StatusDelivering, dd.Status)
}

func testPrune(t *testing.T, s webhook.Storage) {
	pr, ok := s.(webhook.Pruner)
	if !ok {
		t.Skipf("%T does not implement webhook.Pruner", s)
	}
	ctx := t.Context()
	hook := newID(t)
	old := enqueue(t, s, hook, 3, t0)
	// Finish the three: two long ago, one recently.
	for i, c := range claim(t, s, t0, 10) {
		done := t0.Add(time.Hour)
		if c.Delivery.ID == old[2] {
			done = t0.Add(48 * time.Hour)
		}
		st := webhook.StatusDelivered
		if i == 0 {
			st = webhook.StatusFailed
		}
		require.NoError(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{DeliveryID: c.Delivery.ID, Token: c.Lease.Token, Status: st, Attempt: webhook.Attempt{StartedAt: t0}, Now: done}))
	}
	// A redelivery shares the first payload and is still pending.
	first, err := s.GetDelivery(ctx, old[0])
	require.NoError(t, err)
	again := &webhook.Delivery{ID: newID(t), WebhookID: hook, PayloadID: first.PayloadID, EventType: "purchase", Status: webhook.StatusPending, NextAttemptAt: t0.Add(72 * time.Hour), CreatedAt: t0}
	_, err = s.Enqueue(ctx, webhook.EnqueueParams{Deliveries: []*webhook.Delivery{again}, Now: t0})
	require.NoError(t, err)
	pendingOld := enqueue(t, s, hook, 1, t0.Add(72*time.Hour))[0] // old but unfinished
	_, err = s.Enqueue(ctx, webhook.EnqueueParams{IdempotencyKey: "old-key", Now: t0})
	require.NoError(t, err)
	second, err := s.GetDelivery(ctx, old[1])
	require.NoError(t, err)

	n, err := pr.Prune(ctx, webhook.PruneParams{Before: t0.Add(24 * time.Hour), BatchSize: 1})
	require.NoError(t, err)
	require.Equal(t, 2, n, "the two deliveries finished before the cut-off")
	for _, id := range old[:2] {
		_, err := s.GetDelivery(ctx, id)
		require.ErrorIs(t, err, webhook.ErrNotFound)
		_, err = s.ListAttempts(ctx, id)
		require.ErrorIs(t, err, webhook.ErrNotFound)
	}
	_, err = s.GetPayload(ctx, second.PayloadID)
	require.ErrorIs(t, err, webhook.ErrNotFound, "a payload nobody refers to goes")
	_, err = s.GetPayload(ctx, first.PayloadID)
	require.NoError(t, err, "a payload a live delivery refers to stays")
	for _, id := range []string{old[2], again.ID, pendingOld} {
		_, err := s.GetDelivery(ctx, id)
		require.NoError(t, err)
	}
	res, err := s.Enqueue(ctx, webhook.EnqueueParams{IdempotencyKey: "old-key", Now: t0.Add(48 * time.Hour)})
	require.NoError(t, err)
	require.False(t, res.Duplicate, "old idempotency keys are forgotten")
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
		{DeliveryID: ids[4], Token: byID[ids[4]].Lease.Token, Status: webhook.StatusFailed, DisableWebhook: true, DisabledReason: "gone", Attempt: webhook.Attempt{StartedAt: t0, StatusCode: 410}, Now: t0},
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
	got, err := s.GetWebhook(ctx, w.ID)
	require.NoError(t, err)
	require.True(t, got.Disabled)
}
