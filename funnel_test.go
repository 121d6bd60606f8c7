package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
)

var (
	funnelHook = webhook.Trigger{Type: webhook.TriggerFunnelComplete}
	cohortHook = webhook.Trigger{Type: webhook.TriggerCohortEntry}
)

func onboarding(at time.Time) webhook.FunnelCompletion {
	return webhook.FunnelCompletion{
		FunnelID: "f1", FunnelName: "Onboarding", DistinctID: "user-42", CompletedAt: at,
		Steps: []webhook.FunnelStep{
			{Name: "signup", CompletedAt: at.Add(-time.Hour)},
			{Name: "first_project", CompletedAt: at.Add(-10 * time.Minute)},
			{Name: "invite_teammate"},
		},
		Properties: map[string]any{"plan": "pro", "seats": 3},
	}
}

func TestTriggerFunnelCompletePayload(t *testing.T) {
	svc, store, clock := newService(t)
	w := create(t, svc, "funnels", funnelHook)
	at := time.Date(2026, 11, 27, 18, 30, 0, 0, time.FixedZone("CET", 3600))
	ids, err := svc.TriggerFunnelComplete(t.Context(), onboarding(at), "production")
	require.NoError(t, err)
	require.Len(t, ids, 1)
	d, m, body := payloadOf(t, store, ids[0])
	assert.Equal(t, w.ID, d.WebhookID)
	assert.Equal(t, webhook.EventTypeFunnelComplete, d.EventType)
	assert.Equal(t, []string{"id", "webhook_id", "event_type", "timestamp", "data", "environment"}, jsonKeys(t, body))
	assert.Equal(t, "2026-11-27T17:30:00Z", m["timestamp"], "the completion's time")
	assert.Equal(t, "production", m["environment"])
	assert.Equal(t, map[string]any{
		"funnel_id": "f1", "funnel_name": "Onboarding", "distinct_id": "user-42",
		"completed_at": "2026-11-27T17:30:00Z",
		"steps": []any{
			map[string]any{"name": "signup", "completed_at": "2026-11-27T16:30:00Z"},
			map[string]any{"name": "first_project", "completed_at": "2026-11-27T17:20:00Z"},
			map[string]any{"name": "invite_teammate"},
		},
		"properties": map[string]any{"plan": "pro", "seats": 3.0},
	}, m["data"])

	// Without a time, steps or properties: now, and empty lists.
	ids, err = svc.TriggerFunnelComplete(t.Context(), webhook.FunnelCompletion{FunnelID: "f2", DistinctID: "u"}, "")
	require.NoError(t, err)
	_, m, _ = payloadOf(t, store, ids[0])
	data := m["data"].(map[string]any)
	assert.Equal(t, clock.Now().UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano), data["completed_at"])
	assert.Equal(t, []any{}, data["steps"])
	assert.Equal(t, map[string]any{}, data["properties"])
	assert.Equal(t, "", data["funnel_name"])
}

func TestTriggerCohortEntryPayload(t *testing.T) {
	svc, store, _ := newService(t)
	create(t, svc, "cohorts", cohortHook)
	create(t, svc, "funnels only", funnelHook)
	at := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	ids, err := svc.TriggerCohortEntry(t.Context(), webhook.CohortEntry{CohortID: "power-users", CohortName: "Power users",
		DistinctID: "user-42", EnteredAt: at, Properties: map[string]any{"sessions_7d": 12}}, "production")
	require.NoError(t, err)
	require.Len(t, ids, 1, "funnel triggers do not hear cohort entries")
	d, m, _ := payloadOf(t, store, ids[0])
	assert.Equal(t, webhook.EventTypeCohortEntry, d.EventType)
	assert.Equal(t, "2026-11-27T08:00:00Z", m["timestamp"])
	assert.Equal(t, map[string]any{
		"cohort_id": "power-users", "cohort_name": "Power users", "distinct_id": "user-42",
		"entered_at": "2026-11-27T08:00:00Z", "properties": map[string]any{"sessions_7d": 12.0},
	}, m["data"])
}

func TestFunnelAndCohortFilters(t *testing.T) {
	svc, store, clock := newService(t)
	f1 := create(t, svc, "f1", webhook.Trigger{Type: webhook.TriggerFunnelComplete,
		Filters: []webhook.Filter{{Property: "funnel_id", Operator: webhook.FilterEquals, Value: "f1"}}})
	pro := create(t, svc, "pro", webhook.Trigger{Type: webhook.TriggerFunnelComplete,
		Filters: []webhook.Filter{{Property: "properties.plan", Operator: webhook.FilterEquals, Value: "pro"}}})
	deep := create(t, svc, "deep", webhook.Trigger{Type: webhook.TriggerFunnelComplete,
		Filters: []webhook.Filter{{Property: "steps.2.name", Operator: webhook.FilterEquals, Value: "invite_teammate"}}})
	power := create(t, svc, "power", webhook.Trigger{Type: webhook.TriggerCohortEntry,
		Filters: []webhook.Filter{{Property: "cohort_id", Operator: webhook.FilterStartsWith, Value: "power-"}}})

	c := onboarding(clock.Now())
	ids, err := svc.TriggerFunnelComplete(t.Context(), c, "")
	require.NoError(t, err)
	assert.Equal(t, sorted(f1.ID, pro.ID, deep.ID), hookIDs(t, store, ids))

	c.FunnelID, c.Properties, c.Steps = "f2", map[string]any{"plan": "free"}, nil
	ids, err = svc.TriggerFunnelComplete(t.Context(), c, "")
	require.NoError(t, err)
	assert.Empty(t, ids)

	ids, err = svc.TriggerCohortEntry(t.Context(), webhook.CohortEntry{CohortID: "power-users", DistinctID: "u"}, "")
	require.NoError(t, err)
	assert.Equal(t, []string{power.ID}, hookIDs(t, store, ids))
	ids, err = svc.TriggerCohortEntry(t.Context(), webhook.CohortEntry{CohortID: "churn-risk", DistinctID: "u"}, "")
	require.NoError(t, err)
	assert.Empty(t, ids)

	// Trigger.Match says the same.
	ok, err := f1.Triggers[0].Match(webhook.EventTypeFunnelComplete, map[string]any{"funnel_id": "f1"})
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = f1.Triggers[0].Match(webhook.EventTypeCohortEntry, map[string]any{"funnel_id": "f1"})
	require.NoError(t, err)
	assert.False(t, ok)
}

func TestFunnelDefaultIdempotencyKey(t *testing.T) {
	svc, _, clock := newService(t)
	create(t, svc, "funnels", funnelHook)
	at := clock.Now()
	first, err := svc.TriggerFunnelComplete(t.Context(), onboarding(at), "")
	require.NoError(t, err)
	require.Len(t, first, 1)

	// A replayed pipeline: the same completion, or the same funnel and
	// person later the same UTC day, notifies once.
	again, err := svc.TriggerFunnelComplete(t.Context(), onboarding(at), "")
	require.NoError(t, err)
	assert.Equal(t, first, again)
	later, err := svc.TriggerFunnelComplete(t.Context(), onboarding(at.Add(3*time.Hour)), "")
	require.NoError(t, err)
	assert.Equal(t, first, later)

	// Another person, another funnel, another day: notified.
	other := onboarding(at)
	other.DistinctID = "user-43"
	ids, err := svc.TriggerFunnelComplete(t.Context(), other, "")
	require.NoError(t, err)
	require.Len(t, ids, 1)
	assert.NotEqual(t, first, ids)
	other = onboarding(at)
	other.FunnelID = "f1x"
	ids, err = svc.TriggerFunnelComplete(t.Context(), other, "")
	require.NoError(t, err)
	assert.Len(t, ids, 1)
	next, err := svc.TriggerFunnelComplete(t.Context(), onboarding(at.Add(24*time.Hour)), "")
	require.NoError(t, err)
	require.Len(t, next, 1)
	assert.NotEqual(t, first, next)

	// IDs that would run together in a naive key stay apart.
	a := webhook.FunnelCompletion{FunnelID: "a:b", DistinctID: "c", CompletedAt: at}
	b := webhook.FunnelCompletion{FunnelID: "a", DistinctID: "b:c", CompletedAt: at}
	ia, err := svc.TriggerFunnelComplete(t.Context(), a, "")
	require.NoError(t, err)
	ib, err := svc.TriggerFunnelComplete(t.Context(), b, "")
	require.NoError(t, err)
	require.Len(t, ia, 1)
	require.Len(t, ib, 1)
	assert.NotEqual(t, ia, ib)

	// The caller's key replaces the default; an empty one turns it off.
	k1, err := svc.TriggerFunnelComplete(t.Context(), onboarding(at), "", webhook.WithIdempotencyKey("order-1"))
	require.NoError(t, err)
	require.Len(t, k1, 1)
	assert.NotEqual(t, first, k1)
	k1again, err := svc.TriggerFunnelComplete(t.Context(), onboarding(at.Add(time.Minute)), "", webhook.WithIdempotencyKey("order-1"))
	require.NoError(t, err)
	assert.Equal(t, k1, k1again)
	for range 2 {
		ids, err := svc.TriggerFunnelComplete(t.Context(), onboarding(at), "", webhook.WithIdempotencyKey(""))
		require.NoError(t, err)
		assert.Len(t, ids, 1, "every call enqueues")
	}
}

func TestCohortDefaultIdempotencyKey(t *testing.T) {
	svc, _, clock := newService(t)
	create(t, svc, "cohorts", cohortHook)
	e := webhook.CohortEntry{CohortID: "power-users", DistinctID: "user-42", EnteredAt: clock.Now()}
	first, err := svc.TriggerCohortEntry(t.Context(), e, "")
	require.NoError(t, err)
	require.Len(t, first, 1)
	again, err := svc.TriggerCohortEntry(t.Context(), e, "")
	require.NoError(t, err)
	assert.Equal(t, first, again)
	e.EnteredAt = e.EnteredAt.Add(24 * time.Hour)
	next, err := svc.TriggerCohortEntry(t.Context(), e, "")
	require.NoError(t, err)
	require.Len(t, next, 1)
	assert.NotEqual(t, first, next)
}

func TestFunnelDefaultKeyIsNotKeptWhenNothingMatches(t *testing.T) {
	svc, _, clock := newService(t)
	c := onboarding(clock.Now())
	ids, err := svc.TriggerFunnelComplete(t.Context(), c, "")
	require.NoError(t, err)
	assert.Empty(t, ids)
	// A webhook created since hears the replayed completion: nothing was
	// recorded for a completion no webhook heard.
	create(t, svc, "funnels", funnelHook)
	ids, err = svc.TriggerFunnelComplete(t.Context(), c, "")
	require.NoError(t, err)
	assert.Len(t, ids, 1)
}

func TestFunnelAndCohortTenantIsolation(t *testing.T) {
	svc, store, clock := newService(t)
	a, err := svc.Tenant("acme").Create(t.Context(), &webhook.Webhook{Name: "a", URL: "https://example.com/a", Triggers: []webhook.Trigger{funnelHook, cohortHook}})
	require.NoError(t, err)
	b, err := svc.Tenant("globex").Create(t.Context(), &webhook.Webhook{Name: "b", URL: "https://example.com/b", Triggers: []webhook.Trigger{funnelHook, cohortHook}})
	require.NoError(t, err)
	none := create(t, svc, "untenanted", funnelHook, cohortHook)

	c := onboarding(clock.Now())
	ids, err := svc.Tenant("acme").TriggerFunnelComplete(t.Context(), c, "", webhook.WithTenant("globex"))
	require.NoError(t, err)
	assert.Equal(t, []string{a.ID}, hookIDs(t, store, ids), "the TenantService's tenant wins")
	// The same completion in another tenant is another key.
	ids, err = svc.TriggerFunnelComplete(t.Context(), c, "", webhook.WithTenant("globex"))
	require.NoError(t, err)
	assert.Equal(t, []string{b.ID}, hookIDs(t, store, ids))
	ids, err = svc.TriggerFunnelComplete(t.Context(), c, "")
	require.NoError(t, err)
	assert.Equal(t, []string{none.ID}, hookIDs(t, store, ids), "no tenant: only webhooks without one")

	e := webhook.CohortEntry{CohortID: "power-users", DistinctID: "user-42"}
	ids, err = svc.Tenant("globex").TriggerCohortEntry(t.Context(), e, "")
	require.NoError(t, err)
	assert.Equal(t, []string{b.ID}, hookIDs(t, store, ids))
	ids, err = svc.TriggerCohortEntry(t.Context(), e, "", webhook.WithTenant("acme"))
	require.NoError(t, err)
	assert.Equal(t, []string{a.ID}, hookIDs(t, store, ids))

	_, err = svc.Tenant("").TriggerFunnelComplete(t.Context(), c, "")
	require.ErrorIs(t, err, webhook.ErrTenantRequired)
	_, err = svc.Tenant("").TriggerCohortEntry(t.Context(), e, "")
	require.ErrorIs(t, err, webhook.ErrTenantRequired)

	strict, err := webhook.NewService(memstore.New(nil), &webhook.Config{RequireTenant: true})
	require.NoError(t, err)
	_, err = strict.TriggerFunnelComplete(t.Context(), c, "")
	require.ErrorIs(t, err, webhook.ErrTenantRequired)
}

func TestFunnelAndCohortValidation(t *testing.T) {
	svc, _, clock := newService(t)
	create(t, svc, "funnels", funnelHook, cohortHook)
	now := clock.Now()
	steps := make([]webhook.FunnelStep, webhook.MaxFunnelSteps+1)
	for i := range steps {
		steps[i].Name = "s"
	}
	funnels := []struct {
		name   string
		c      webhook.FunnelCompletion
		fields []string
	}{
		{"no IDs", webhook.FunnelCompletion{}, []string{"funnel_id", "distinct_id"}},
		{"bad UTF-8", webhook.FunnelCompletion{FunnelID: "f\xff", DistinctID: "u", FunnelName: "n\xfe"}, []string{"funnel_id", "funnel_name"}},
		{"control character", webhook.FunnelCompletion{FunnelID: "f", DistinctID: "u\n"}, []string{"distinct_id"}},
		{"too long", webhook.FunnelCompletion{FunnelID: strings.Repeat("f", webhook.MaxEventNameLength+1), DistinctID: "u"}, []string{"funnel_id"}},
		{"unnamed step", webhook.FunnelCompletion{FunnelID: "f", DistinctID: "u", Steps: []webhook.FunnelStep{{Name: "a"}, {}}}, []string{"steps[1].name"}},
		{"too many steps", webhook.FunnelCompletion{FunnelID: "f", DistinctID: "u", Steps: steps}, []string{"steps"}},
		{"time JSON cannot hold", webhook.FunnelCompletion{FunnelID: "f", DistinctID: "u", CompletedAt: now.AddDate(9000, 0, 0),
			Steps: []webhook.FunnelStep{{Name: "a", CompletedAt: now.AddDate(9000, 0, 0)}}}, []string{"completed_at", "steps[0].completed_at"}},
	}
	for _, tc := range funnels {
		t.Run(tc.name, func(t *testing.T) {
			_, err := svc.TriggerFunnelComplete(t.Context(), tc.c, "")
			require.ErrorIs(t, err, webhook.ErrInvalid)
			var ve *webhook.ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, tc.fields, fieldNames(ve))
		})
	}
	_, err := svc.TriggerFunnelComplete(t.Context(), webhook.FunnelCompletion{FunnelID: "f", DistinctID: "u", Properties: map[string]any{"f": func() {}}}, "")
	require.ErrorIs(t, err, webhook.ErrInvalid, "properties that JSON cannot encode")
	_, err = svc.TriggerFunnelComplete(t.Context(), webhook.FunnelCompletion{FunnelID: "f", DistinctID: "u"}, "bad\nenv")
	require.ErrorIs(t, err, webhook.ErrInvalid)

	_, err = svc.TriggerCohortEntry(t.Context(), webhook.CohortEntry{CohortName: strings.Repeat("n", webhook.MaxNameLength+1)}, "")
	var ve *webhook.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, []string{"cohort_id", "cohort_name", "distinct_id"}, fieldNames(ve))
	_, err = svc.TriggerCohortEntry(t.Context(), webhook.CohortEntry{CohortID: "c", DistinctID: "u", EnteredAt: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}, "")
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, []string{"entered_at"}, fieldNames(ve))
}

// Notify a CRM when someone completes the onboarding funnel. A pipeline
// that replays its completions notifies once per person, funnel and day.
func ExampleService_TriggerFunnelComplete() {
	ctx := context.Background()
	svc, err := webhook.NewService(memstore.New(nil), nil)
	if err != nil {
		panic(err)
	}
	_, err = svc.Create(ctx, &webhook.Webhook{
		Name: "Onboarded",
		URL:  "https://crm.example.com/hooks/onboarded",
		Triggers: []webhook.Trigger{{
			Type:    webhook.TriggerFunnelComplete,
			Filters: []webhook.Filter{{Property: "funnel_id", Operator: webhook.FilterEquals, Value: "onboarding"}},
		}},
	})
	if err != nil {
		panic(err)
	}
	done := time.Date(2026, 11, 27, 17, 30, 0, 0, time.UTC)
	c := webhook.FunnelCompletion{
		FunnelID: "onboarding", FunnelName: "Onboarding", DistinctID: "user-42", CompletedAt: done,
		Steps: []webhook.FunnelStep{
			{Name: "signup", CompletedAt: done.Add(-2 * time.Hour)},
			{Name: "first_project", CompletedAt: done},
		},
		Properties: map[string]any{"plan": "pro"},
	}
	first, _ := svc.TriggerFunnelComplete(ctx, c, "production")
	replayed, _ := svc.TriggerFunnelComplete(ctx, c, "production")
	fmt.Println("deliveries:", len(first), "replayed:", len(replayed), "same:", first[0] == replayed[0])

	d, _ := svc.Delivery(ctx, first[0])
	p, _ := svc.Storage().GetPayload(ctx, d.PayloadID)
	var body struct{ Data map[string]any }
	_ = json.Unmarshal(p.Body, &body)
	fmt.Println(d.EventType, body.Data["funnel_id"], body.Data["distinct_id"], body.Data["completed_at"])

	other, _ := svc.TriggerFunnelComplete(ctx, webhook.FunnelCompletion{FunnelID: "checkout", DistinctID: "user-42"}, "production")
	fmt.Println("deliveries for another funnel:", len(other))
	// Output:
	// deliveries: 1 replayed: 1 same: true
	// $funnel_complete onboarding user-42 2026-11-27T17:30:00Z
	// deliveries for another funnel: 0
}
