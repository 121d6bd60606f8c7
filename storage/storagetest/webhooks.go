package storagetest

import (
	"testing"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/stretchr/testify/require"
)

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
				Conditions: []webhook.Condition{{Metric: "error_rate", Operator: webhook.ConditionGT, Value: 0.05}},
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
