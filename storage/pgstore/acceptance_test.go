package pgstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
)

// The acceptance scenarios of the stateful triggers, run on memstore and
// on PostgreSQL through the public API only.

// backend is a Storage with trigger state and metrics.
type backend interface {
	webhook.Storage
	webhook.TriggerStateStore
	webhook.MetricStore
}

// onBoth runs f on memstore and on a fresh pgstore.
func onBoth(t *testing.T, f func(t *testing.T, store backend)) {
	t.Run("memstore", func(t *testing.T) { f(t, memstore.New(nil)) })
	t.Run("pgstore", func(t *testing.T) { f(t, newStore(t)) })
}

// notice is one enqueued notification.
type notice struct {
	event string
	data  map[string]any
}

// noticesOf returns the notifications enqueued for a webhook, oldest first.
func noticesOf(t *testing.T, store webhook.Storage, webhookID string) []notice {
	t.Helper()
	ds, err := store.ListDeliveries(t.Context(), webhook.ListDeliveriesParams{WebhookID: webhookID, Limit: webhook.MaxPageSize})
	require.NoError(t, err)
	slices.Reverse(ds)
	out := make([]notice, 0, len(ds))
	for _, d := range ds {
		p, err := store.GetPayload(t.Context(), d.PayloadID)
		require.NoError(t, err)
		var m struct {
			Data map[string]any `json:"data"`
		}
		require.NoError(t, json.Unmarshal(p.Body, &m))
		out = append(out, notice{event: d.EventType, data: m.Data})
	}
	return out
}

// flakyBackend fails every trigger-state and metric call while down.
type flakyBackend struct {
	backend
	down atomic.Bool
}

var errDown = errors.New("connection refused")

func (f *flakyBackend) TriggerStates(ctx context.Context, ids []string) ([]*webhook.TriggerState, error) {
	if f.down.Load() {
		return nil, errDown
	}
	return f.backend.TriggerStates(ctx, ids)
}

func (f *flakyBackend) SaveTriggerState(ctx context.Context, p webhook.SaveTriggerStateParams) (webhook.EnqueueResult, error) {
	if f.down.Load() {
		return webhook.EnqueueResult{}, errDown
	}
	return f.backend.SaveTriggerState(ctx, p)
}

func (f *flakyBackend) AddMetricBuckets(ctx context.Context, bs []webhook.MetricBucket) error {
	if f.down.Load() {
		return errDown
	}
	return f.backend.AddMetricBuckets(ctx, bs)
}

func (f *flakyBackend) QueryMetric(ctx context.Context, q webhook.MetricQuery) ([]webhook.MetricBucket, error) {
	if f.down.Load() {
		return nil, errDown
	}
	return f.backend.QueryMetric(ctx, q)
}

// A threshold alert over a window of samples of two Services: one alert
// for 100 samples above, nothing in the band, one resolution, a new
// episode, and one renotify per interval; the times in the data are
// RFC 3339 UTC whatever the clock's zone.
func TestAcceptanceThresholdWindowTwoServices(t *testing.T) {
	onBoth(t, func(t *testing.T, store backend) {
		ctx := t.Context()
		ny, err := time.LoadLocation("America/New_York")
		require.NoError(t, err)
		clock := &alertClock{now: time.Date(2026, 11, 28, 9, 0, 0, 0, ny)}
		var svcs [2]*webhook.Service
		for i := range svcs {
			svcs[i], err = webhook.NewService(store, &webhook.Config{Now: clock.Now, WebhookCacheTTL: -1, EvaluationInterval: -1})
			require.NoError(t, err)
		}
		w, err := svcs[0].Create(ctx, &webhook.Webhook{Name: "w", URL: "https://example.com/w", Triggers: []webhook.Trigger{{
			Type: webhook.TriggerThreshold, Conditions: []webhook.Condition{{
				Metric: "err", Operator: webhook.ConditionGT, Value: 100, RecoveryValue: func() *float64 { v := 80.0; return &v }(),
				WindowSeconds: 30, Aggregation: webhook.AggregateMax, RepeatIntervalSeconds: 600,
			}},
		}}})
		require.NoError(t, err)
		feed := func(v float64, n int) {
			t.Helper()
			for i := range n {
				require.NoError(t, svcs[i%2].RecordMetric(ctx, "err", v, time.Time{}, "prod"))
				clock.Advance(time.Second)
				if i%5 == 0 {
					require.NoError(t, svcs[(i+1)%2].Evaluate(ctx))
				}
			}
			require.NoError(t, svcs[0].Evaluate(ctx))
			require.NoError(t, svcs[1].Evaluate(ctx))
		}
		feed(150, 100)
		require.Len(t, noticesOf(t, store, w.ID), 1)
		feed(90, 100) // the window's max is in the band once 150 left it
		require.Len(t, noticesOf(t, store, w.ID), 1)
		feed(70, 100)
		feed(130, 10)
		ns := noticesOf(t, store, w.ID)
		require.Len(t, ns, 3)
		assert.Equal(t, "fired", ns[0].data["reason"])
		assert.Equal(t, "recovered", ns[1].data["reason"])
		assert.Equal(t, "fired", ns[2].data["reason"])
		assert.NotEqual(t, ns[0].data["episode_id"], ns[2].data["episode_id"])
		for _, n := range ns {
			for _, k := range []string{"started_at", "fired_at", "resolved_at"} {
				if v, ok := n.data[k]; ok {
					s, _ := v.(string)
					at, err := time.Parse(time.RFC3339Nano, s)
					require.NoError(t, err, "%s: %v", k, v)
					_, off := at.Zone()
					assert.Zero(t, off, "%s is UTC: %s", k, s)
				}
			}
		}
		// Renotify every 600 s while it stays high.
		for range 180 {
			clock.Advance(10 * time.Second)
			require.NoError(t, svcs[0].RecordMetric(ctx, "err", 130, time.Time{}, "prod"))
			require.NoError(t, svcs[1].Evaluate(ctx))
			require.NoError(t, svcs[0].Evaluate(ctx))
		}
		ns = noticesOf(t, store, w.ID)
		require.Len(t, ns, 6, "three renotifies in 30 minutes")
		for _, n := range ns[3:] {
			assert.Equal(t, "renotify", n.data["reason"])
		}
	})
}

// Metrics, alert state, anomalies and summaries of one tenant never
// reach another's webhooks.
func TestAcceptanceTenantIsolation(t *testing.T) {
	onBoth(t, func(t *testing.T, store backend) {
		ctx := t.Context()
		clock := &alertClock{now: time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)}
		svc, err := webhook.NewService(store, &webhook.Config{Now: clock.Now, WebhookCacheTTL: -1, EvaluationInterval: -1,
			Summary: func(_ context.Context, w *webhook.Webhook, _ webhook.Period) (map[string]any, error) {
				return map[string]any{"tenant": w.TenantID}, nil
			}})
		require.NoError(t, err)
		triggers := []webhook.Trigger{
			{Type: webhook.TriggerThreshold, Conditions: []webhook.Condition{
				{Metric: "m", Operator: webhook.ConditionGT, Value: 1},
				{Metric: "m", Operator: webhook.ConditionGT, Value: 1, WindowSeconds: 60, Aggregation: webhook.AggregateSum},
			}},
			{Type: webhook.TriggerAnomaly, Metric: "m", BucketSeconds: 60},
			{Type: webhook.TriggerScheduled, IntervalSeconds: 3600},
			{Type: webhook.TriggerFunnelComplete},
			{Type: webhook.TriggerCohortEntry},
		}
		hooks := map[string]*webhook.Webhook{}
		for _, tenant := range []string{"a", "b", ""} {
			hook := &webhook.Webhook{Name: "w" + tenant, URL: "https://example.com/" + tenant, TenantID: tenant, Triggers: triggers}
			w, err := svc.Create(ctx, hook)
			require.NoError(t, err)
			hooks[tenant] = w
		}
		a := webhook.WithTenant("a")
		// 40 minutes of a flat series for tenant a, then a spike.
		for range 40 {
			require.NoError(t, svc.RecordMetric(ctx, "m", 0.5, time.Time{}, "prod", a))
			clock.Advance(time.Minute)
			require.NoError(t, svc.Evaluate(ctx))
		}
		require.NoError(t, svc.RecordMetric(ctx, "m", 50, time.Time{}, "prod", a))
		clock.Advance(5 * time.Second)
		require.NoError(t, svc.Evaluate(ctx))
		clock.Advance(55 * time.Second)
		require.NoError(t, svc.Evaluate(ctx))
		_, err = svc.TriggerThreshold(ctx, "m", 5, 1, "prod", a)
		require.NoError(t, err)
		_, err = svc.TriggerFunnelComplete(ctx, webhook.FunnelCompletion{FunnelID: "f", DistinctID: "u"}, "prod", a)
		require.NoError(t, err)
		_, err = svc.TriggerCohortEntry(ctx, webhook.CohortEntry{CohortID: "c", DistinctID: "u"}, "prod", a)
		require.NoError(t, err)
		clock.Advance(time.Hour)
		require.NoError(t, svc.Evaluate(ctx))

		events := func(tenant string) []string {
			var out []string
			for _, n := range noticesOf(t, store, hooks[tenant].ID) {
				out = append(out, n.event)
			}
			slices.Sort(out)
			return slices.Compact(out)
		}
		assert.Equal(t, []string{"$anomaly", "$cohort_entry", "$funnel_complete", "$scheduled_summary", "$threshold_alert", "$threshold_resolved"}, events("a"))
		assert.Equal(t, []string{"$scheduled_summary"}, events("b"), "only b's own summaries")
		assert.Equal(t, []string{"$scheduled_summary"}, events(""))
		for _, n := range noticesOf(t, store, hooks["b"].ID) {
			assert.Equal(t, "b", n.data["summary"].(map[string]any)["tenant"])
		}
		// Alert state is per tenant: b's webhook has no alert state.
		states, err := store.TriggerStates(ctx, []string{hooks["b"].ID})
		require.NoError(t, err)
		for _, st := range states {
			assert.Equal(t, "b", st.TenantID)
			assert.NotEqual(t, webhook.AlertFiring, st.Alert.Status, st.Key)
		}
	})
}

// While Storage is down, Evaluate and Flush say so, RecordMetric keeps
// the samples, and once it is back nothing was lost and the alert fires
// once.
func TestAcceptanceStorageDown(t *testing.T) {
	onBoth(t, func(t *testing.T, inner backend) {
		ctx := t.Context()
		store := &flakyBackend{backend: inner}
		clock := &alertClock{now: time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)}
		svc, err := webhook.NewService(store, &webhook.Config{Now: clock.Now, WebhookCacheTTL: -1, EvaluationInterval: -1})
		require.NoError(t, err)
		w, err := svc.Create(ctx, &webhook.Webhook{Name: "w", URL: "https://example.com/w", Triggers: []webhook.Trigger{{
			Type: webhook.TriggerThreshold, Conditions: []webhook.Condition{{Metric: "m", Operator: webhook.ConditionGT, Value: 10, WindowSeconds: 60, Aggregation: webhook.AggregateSum}},
		}}})
		require.NoError(t, err)
		store.down.Store(true)
		for range 5 {
			require.NoError(t, svc.RecordMetric(ctx, "m", 3, time.Time{}, "prod"))
		}
		err = svc.Evaluate(ctx)
		require.Error(t, err)
		assert.ErrorIs(t, err, errDown)
		assert.Contains(t, err.Error(), "write metrics")
		assert.Contains(t, err.Error(), "threshold triggers: ", "the failed evaluation is named")
		err = svc.Flush(ctx)
		assert.ErrorIs(t, err, errDown)
		_, err = svc.TriggerThreshold(ctx, "m", 50, 10, "prod")
		assert.NoError(t, err, "no condition without a window on m: nothing to do")
		store.down.Store(false)
		require.NoError(t, svc.Evaluate(ctx))
		ns := noticesOf(t, store, w.ID)
		require.Len(t, ns, 1)
		assert.Equal(t, 15.0, ns[0].data["value"], "no sample was lost")
	})
}

// A webhook disabled while its alert fires is told nothing while
// disabled; a deleted one never again, and its state goes with it.
func TestAcceptanceWebhookChangedWhileFiring(t *testing.T) {
	onBoth(t, func(t *testing.T, store backend) {
		ctx := t.Context()
		clock := &alertClock{now: time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)}
		svc, err := webhook.NewService(store, &webhook.Config{Now: clock.Now, WebhookCacheTTL: -1, EvaluationInterval: -1})
		require.NoError(t, err)
		cond := webhook.Condition{Metric: "m", Operator: webhook.ConditionGT, Value: 1}
		w, err := svc.Create(ctx, &webhook.Webhook{Name: "w", URL: "https://example.com/w", Triggers: []webhook.Trigger{{
			Type: webhook.TriggerThreshold, Conditions: []webhook.Condition{cond},
		}}})
		require.NoError(t, err)
		_, err = svc.TriggerThreshold(ctx, "m", 5, 1, "")
		require.NoError(t, err)
		// Edited URL: the alert state is kept, the resolution goes to the new URL.
		w.URL = "https://example.com/new"
		w, err = svc.Update(ctx, w)
		require.NoError(t, err)
		ids, err := svc.TriggerThreshold(ctx, "m", 0, 1, "")
		require.NoError(t, err)
		require.Len(t, ids, 1, "resolved after the edit")

		// The condition edited while firing: resolved once, "edited".
		_, err = svc.TriggerThreshold(ctx, "m", 5, 1, "")
		require.NoError(t, err)
		before := len(noticesOf(t, store, w.ID))
		w.Triggers[0].Conditions[0].Value = 2
		w, err = svc.Update(ctx, w)
		require.NoError(t, err)
		ns := noticesOf(t, store, w.ID)
		require.Len(t, ns, before+1)
		assert.Equal(t, webhook.ReasonEdited, ns[before].data["reason"])
		ids, err = svc.TriggerThreshold(ctx, "m", 0, 1, "")
		require.NoError(t, err)
		require.Empty(t, ids, "the new condition was never firing")

		_, err = svc.TriggerThreshold(ctx, "m", 5, 1, "")
		require.NoError(t, err)
		w.Disabled = true
		w, err = svc.Update(ctx, w)
		require.NoError(t, err)
		ids, err = svc.TriggerThreshold(ctx, "m", 0, 1, "")
		require.NoError(t, err)
		assert.Empty(t, ids, "a disabled webhook is told nothing")
		w.Disabled = false
		_, err = svc.Update(ctx, w)
		require.NoError(t, err)
		ids, err = svc.TriggerThreshold(ctx, "m", 0, 1, "")
		require.NoError(t, err)
		assert.Len(t, ids, 1, "re-enabled: the stale alert resolves")

		_, err = svc.TriggerThreshold(ctx, "m", 5, 1, "")
		require.NoError(t, err)
		require.NoError(t, svc.Delete(ctx, w.ID))
		states, err := store.TriggerStates(ctx, []string{w.ID})
		require.NoError(t, err)
		assert.Empty(t, states)
		ids, err = svc.TriggerThreshold(ctx, "m", 0, 1, "")
		require.NoError(t, err)
		assert.Empty(t, ids)
	})
}
