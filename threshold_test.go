package webhook_test

import (
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
)

// alert is one notification a webhook was sent.
type alert struct {
	event, reason string
	data          map[string]any
}

// alertsOf returns the notifications enqueued for a webhook, oldest first.
func alertsOf(t *testing.T, store webhook.Storage, webhookID string) []alert {
	t.Helper()
	ds, err := store.ListDeliveries(t.Context(), webhook.ListDeliveriesParams{WebhookID: webhookID, Limit: webhook.MaxPageSize})
	require.NoError(t, err)
	slices.Reverse(ds)
	out := make([]alert, 0, len(ds))
	for _, d := range ds {
		_, m, _ := payloadOf(t, store, d.ID)
		data := m["data"].(map[string]any)
		reason, _ := data["reason"].(string)
		out = append(out, alert{event: d.EventType, reason: reason, data: data})
	}
	return out
}

// reasons returns "fired", "renotify", "recovered"… for each alert.
func reasons(as []alert) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.reason
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func thresholdHook(t *testing.T, svc *webhook.Service, conds ...webhook.Condition) *webhook.Webhook {
	t.Helper()
	return create(t, svc, "alerts", webhook.Trigger{Type: webhook.TriggerThreshold, Conditions: conds})
}

func TestThresholdAlertsOncePerEpisode(t *testing.T) {
	svc, store, clock := newService(t)
	ctx := t.Context()
	w := thresholdHook(t, svc, webhook.Condition{Metric: "cpu", Operator: webhook.ConditionGT, Value: 100, RecoveryValue: ptr(80.0)})
	feed := func(v float64, n int) int {
		t.Helper()
		total := 0
		for range n {
			ids, err := svc.TriggerThreshold(ctx, "cpu", v, 0, "prod")
			require.NoError(t, err)
			total += len(ids)
			clock.Advance(time.Second)
		}
		return total
	}
	assert.Equal(t, 1, feed(150, 100), "held above the threshold for 100 values: one alert")
	assert.Equal(t, 0, feed(90, 100), "in the hysteresis band (80, 100]: nothing")
	assert.Equal(t, 0, feed(100, 10), "gt: at the threshold is not a breach, and not a recovery either")
	assert.Equal(t, 1, feed(80, 100), "at or below the recovery value: one resolved")
	assert.Equal(t, 0, feed(95, 10), "back in the band from ok: nothing")
	assert.Equal(t, 1, feed(101, 5), "above again: a new episode")

	as := alertsOf(t, store, w.ID)
	require.Equal(t, []string{"fired", "recovered", "fired"}, reasons(as))
	assert.Equal(t, webhook.EventTypeThresholdAlert, as[0].event)
	assert.Equal(t, webhook.EventTypeThresholdResolved, as[1].event)
	assert.Equal(t, webhook.EventTypeThresholdAlert, as[2].event)
	fired, resolved, again := as[0].data, as[1].data, as[2].data
	assert.Equal(t, fired["episode_id"], resolved["episode_id"])
	assert.NotEqual(t, fired["episode_id"], again["episode_id"], "a new episode has a new ID")
	assert.Equal(t, "2026-11-28T09:00:00.123456Z", fired["started_at"])
	assert.Equal(t, fired["started_at"], fired["fired_at"])
	assert.Equal(t, 80.0, fired["recovery_value"])
	for k, v := range map[string]any{"status": "resolved", "value": 80.0, "exceeded": false, "threshold": 100.0,
		"resolved_at": "2026-11-28T09:03:30.123456Z", "duration_seconds": 210.0, "notification_count": 1.0} {
		assert.Equal(t, v, resolved[k], k)
	}
	assert.Equal(t, 101.0, again["value"])
}

func TestThresholdRepeatInterval(t *testing.T) {
	svc, store, clock := newService(t)
	ctx := t.Context()
	w := thresholdHook(t, svc, webhook.Condition{Metric: "queue", Operator: webhook.ConditionGTE, Value: 10, RepeatIntervalSeconds: 60})
	for range 300 { // ten minutes, a value every two seconds
		_, err := svc.TriggerThreshold(ctx, "queue", 12, 10, "")
		require.NoError(t, err)
		clock.Advance(2 * time.Second)
	}
	as := alertsOf(t, store, w.ID)
	require.Len(t, as, 10, "fired at 0 s, renotified at 60, 120, … 540 s")
	assert.Equal(t, "fired", as[0].reason)
	for i, a := range as[1:] {
		assert.Equal(t, "renotify", a.reason)
		assert.Equal(t, float64(i+2), a.data["notification_count"])
	}

	// Without new values, the tick renotifies.
	clock.Advance(time.Minute)
	require.NoError(t, svc.Evaluate(ctx))
	require.NoError(t, svc.Evaluate(ctx))
	as = alertsOf(t, store, w.ID)
	require.Len(t, as, 11)
	assert.Equal(t, "renotify", as[10].reason)
	assert.Equal(t, 12.0, as[10].data["value"], "the tick judges the last value seen")
}

func TestThresholdForSeconds(t *testing.T) {
	svc, store, clock := newService(t)
	ctx := t.Context()
	w := thresholdHook(t, svc, webhook.Condition{Metric: "lag", Operator: webhook.ConditionGT, Value: 5, ForSeconds: 30})
	call := func(v float64) int {
		t.Helper()
		ids, err := svc.TriggerThreshold(ctx, "lag", v, 5, "")
		require.NoError(t, err)
		return len(ids)
	}
	// Pending, then cleared before it fired: nobody hears of it.
	assert.Zero(t, call(9))
	clock.Advance(20 * time.Second)
	assert.Zero(t, call(9))
	assert.Zero(t, call(3))
	clock.Advance(time.Minute)
	require.NoError(t, svc.Evaluate(ctx))
	assert.Empty(t, alertsOf(t, store, w.ID), "a pending alert that cleared sends nothing")

	// Pending, then firing on the tick once the breach has held 30 s.
	assert.Zero(t, call(7))
	clock.Advance(29 * time.Second)
	assert.Zero(t, call(8))
	require.NoError(t, svc.Evaluate(ctx))
	assert.Empty(t, alertsOf(t, store, w.ID))
	clock.Advance(time.Second)
	require.NoError(t, svc.Evaluate(ctx))
	as := alertsOf(t, store, w.ID)
	require.Equal(t, []string{"fired"}, reasons(as))
	assert.Equal(t, 7.0, as[0].data["value"], "the value that started the breach; the ones that kept it pending changed nothing")
	assert.Equal(t, "2026-11-28T09:01:20.123456Z", as[0].data["started_at"])
	assert.Equal(t, "2026-11-28T09:01:50.123456Z", as[0].data["fired_at"])
	assert.Zero(t, call(9), "firing already")
}

func TestThresholdNotifyResolvedOff(t *testing.T) {
	svc, store, _ := newService(t)
	ctx := t.Context()
	w := thresholdHook(t, svc, webhook.Condition{Metric: "m", Operator: webhook.ConditionLT, Value: 1, NotifyResolved: ptr(false)})
	for _, v := range []float64{0, 2, 0, 2} {
		_, err := svc.TriggerThreshold(ctx, "m", v, 1, "")
		require.NoError(t, err)
	}
	assert.Equal(t, []string{"fired", "fired"}, reasons(alertsOf(t, store, w.ID)), "resolving is silent, and the next breach is a new alert")
}

func TestThresholdTenantsAndEnvironments(t *testing.T) {
	svc, store, _ := newService(t)
	ctx := t.Context()
	cond := webhook.Condition{Metric: "m", Operator: webhook.ConditionGT, Value: 1}
	mk := func(tenant string, envs ...string) *webhook.Webhook {
		w, err := svc.Create(ctx, &webhook.Webhook{TenantID: tenant, Name: "t" + tenant, URL: "https://example.com/a", Environments: envs,
			Triggers: []webhook.Trigger{{Type: webhook.TriggerThreshold, Conditions: []webhook.Condition{cond}}}})
		require.NoError(t, err)
		return w
	}
	a, b, prodOnly := mk("a"), mk("b"), mk("a", "prod")
	ids, err := svc.TriggerThreshold(ctx, "m", 5, 1, "dev", webhook.WithTenant("a"))
	require.NoError(t, err)
	assert.Equal(t, []string{a.ID}, hookIDs(t, store, ids))
	ids, err = svc.Tenant("a").TriggerThreshold(ctx, "m", 5, 1, "prod")
	require.NoError(t, err)
	assert.Equal(t, sorted(a.ID, prodOnly.ID), hookIDs(t, store, ids), "prod is an alert of its own for a")
	ids, err = svc.TriggerThreshold(ctx, "m", 5, 1, "prod")
	require.NoError(t, err)
	assert.Empty(t, ids, "no tenant: no tenant's webhook")
	assert.Empty(t, alertsOf(t, store, b.ID))
}

// noStateStore hides the memstore's optional interfaces.
type noStateStore struct{ webhook.Storage }

// statesOnly keeps the memstore's trigger states, but no metrics.
type statesOnly struct {
	webhook.Storage
	webhook.TriggerStateStore
}

func TestThresholdNeedsStateAndMetricStores(t *testing.T) {
	ctx := t.Context()
	plain := webhook.Condition{Metric: "m", Operator: webhook.ConditionGT, Value: 1}
	windowed := webhook.Condition{Metric: "m", Operator: webhook.ConditionGT, Value: 1, WindowSeconds: 60}
	hook := func(c webhook.Condition) *webhook.Webhook {
		return &webhook.Webhook{Name: "a", URL: "https://example.com/a", Triggers: []webhook.Trigger{{Type: webhook.TriggerThreshold, Conditions: []webhook.Condition{c}}}}
	}
	svc, err := webhook.NewService(noStateStore{memstore.New(nil)}, nil)
	require.NoError(t, err)
	_, err = svc.Create(ctx, hook(plain))
	assert.Equal(t, []string{"triggers[0].trigger_type"}, fields(t, err))
	assert.Contains(t, err.Error(), "TriggerStateStore")
	require.ErrorIs(t, svc.RecordMetric(ctx, "m", 1, time.Time{}, ""), webhook.ErrInvalid)

	ms := memstore.New(nil)
	svc, err = webhook.NewService(statesOnly{ms, ms}, nil)
	require.NoError(t, err)
	_, err = svc.Create(ctx, hook(plain))
	require.NoError(t, err, "without a window, trigger state is enough")
	_, err = svc.Create(ctx, hook(windowed))
	assert.Equal(t, []string{"triggers[0].conditions[0].window_seconds"}, fields(t, err))
	assert.Contains(t, err.Error(), "MetricStore")
}

func TestConditionValidation(t *testing.T) {
	svc, _, _ := newService(t)
	for _, c := range []struct {
		name  string
		cond  webhook.Condition
		field string // "" when valid
	}{
		{"plain", webhook.Condition{Operator: "gt", Value: 1}, ""},
		{"every field", webhook.Condition{Operator: "gt", Value: 1, WindowSeconds: webhook.MaxWindow, Aggregation: webhook.AggregateAvg,
			ForSeconds: webhook.MaxForSeconds, RecoveryValue: ptr(0.5), RepeatIntervalSeconds: 3600, NotifyResolved: ptr(false)}, ""},
		{"last without a window", webhook.Condition{Operator: "gt", Value: 1, Aggregation: webhook.AggregateLast}, ""},
		{"a window that is not whole buckets", webhook.Condition{Operator: "gt", Value: 1, WindowSeconds: 45, Aggregation: webhook.AggregateSum}, ""},
		{"recovery at the value", webhook.Condition{Operator: "gte", Value: 1, RecoveryValue: ptr(1.0)}, ""},
		{"lt recovery above", webhook.Condition{Operator: "lt", Value: 1, RecoveryValue: ptr(2.0)}, ""},
		{"unknown aggregation", webhook.Condition{Operator: "gt", Value: 1, WindowSeconds: 60, Aggregation: "median"}, "aggregation"},
		{"sum without a window", webhook.Condition{Operator: "gt", Value: 1, Aggregation: webhook.AggregateSum}, "aggregation"},
		{"negative window", webhook.Condition{Operator: "gt", Value: 1, WindowSeconds: -1}, "window_seconds"},
		{"absurd window", webhook.Condition{Operator: "gt", Value: 1, WindowSeconds: webhook.MaxWindow + 1}, "window_seconds"},
		{"negative for", webhook.Condition{Operator: "gt", Value: 1, ForSeconds: -1}, "for_seconds"},
		{"for over a day", webhook.Condition{Operator: "gt", Value: 1, ForSeconds: webhook.MaxForSeconds + 1}, "for_seconds"},
		{"negative repeat", webhook.Condition{Operator: "gt", Value: 1, RepeatIntervalSeconds: -60}, "repeat_interval_seconds"},
		{"repeat every second", webhook.Condition{Operator: "gt", Value: 1, RepeatIntervalSeconds: 1}, "repeat_interval_seconds"},
		{"gt recovery above", webhook.Condition{Operator: "gt", Value: 100, RecoveryValue: ptr(120.0)}, "recovery_value"},
		{"lte recovery below", webhook.Condition{Operator: "lte", Value: 100, RecoveryValue: ptr(80.0)}, "recovery_value"},
		{"eq recovery", webhook.Condition{Operator: "eq", Value: 1, RecoveryValue: ptr(1.0)}, "recovery_value"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.cond.Metric = "m"
			w := &webhook.Webhook{Name: "a", URL: "https://example.com/a", Triggers: []webhook.Trigger{{Type: webhook.TriggerThreshold, Conditions: []webhook.Condition{c.cond}}}}
			_, err := svc.Create(t.Context(), w)
			if c.field == "" {
				require.NoError(t, err)
				return
			}
			assert.Equal(t, []string{"triggers[0].conditions[0]." + c.field}, fields(t, err))
		})
	}
	w := &webhook.Webhook{Name: "a", URL: "https://example.com/a", Triggers: []webhook.Trigger{{Type: webhook.TriggerThreshold, Conditions: []webhook.Condition{
		{Metric: "m", Operator: "gt", Value: 1, ForSeconds: 90000}}}}}
	assert.Contains(t, w.Validate().Error(), "at most 86400 (one day)")
}

// TestThresholdRaceOnOneStorage has two Services race every transition:
// each is sent exactly once.
func TestThresholdRaceOnOneStorage(t *testing.T) {
	store := memstore.New(nil)
	raceTransitions(t, store, func(t *testing.T, st webhook.Storage, webhookID string) []string {
		return reasons(alertsOf(t, st, webhookID))
	})
}

// raceTransitions makes two Services over store race the same transition
// 100 times, alternating a breach and a recovery; alerts lists what a
// webhook was sent.
func raceTransitions(t *testing.T, store webhook.Storage, alerts func(t *testing.T, store webhook.Storage, webhookID string) []string) {
	t.Helper()
	ctx := t.Context()
	clock := newFakeClock()
	var svcs [2]*webhook.Service
	for i := range svcs {
		var err error
		svcs[i], err = webhook.NewService(store, &webhook.Config{Now: clock.Now, WebhookCacheTTL: -1})
		require.NoError(t, err)
	}
	w := thresholdHook(t, svcs[0], webhook.Condition{Metric: "m", Operator: webhook.ConditionGT, Value: 1})
	const rounds = 100
	var want []string
	for i := range rounds {
		v, reason := 5.0, "fired"
		if i%2 == 1 {
			v, reason = 0, "recovered"
		}
		want = append(want, reason)
		var wg sync.WaitGroup
		var got [2][]string
		start := make(chan struct{})
		for j, svc := range svcs {
			wg.Go(func() {
				<-start
				ids, err := svc.TriggerThreshold(ctx, "m", v, 1, "")
				assert.NoError(t, err)
				got[j] = ids
			})
		}
		close(start)
		wg.Wait()
		require.Equal(t, 1, len(got[0])+len(got[1]), "round %d: one of the two sends it", i)
		clock.Advance(time.Second)
	}
	assert.Equal(t, want, alerts(t, store, w.ID))
}

func TestRecordMetricArguments(t *testing.T) {
	svc, _, _ := newService(t)
	ctx := t.Context()
	for _, err := range []error{
		svc.RecordMetric(ctx, "", 1, time.Time{}, ""),
		svc.RecordMetric(ctx, "m", math.NaN(), time.Time{}, ""),
		svc.RecordMetric(ctx, "m", math.Inf(-1), time.Time{}, ""),
		svc.RecordMetric(ctx, "m", 1, time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Second), ""),
		svc.RecordMetric(ctx, "m", 1, time.Time{}, "bad\x00env"),
		svc.RecordMetric(ctx, "m", 1, time.Time{}, "", webhook.WithIdempotencyKey("k")),
		svc.RecordMetric(ctx, "m", 1, time.Time{}, "", webhook.WithTenant("a\x00")),
		svc.Tenant("").RecordMetric(ctx, "m", 1, time.Time{}, ""),
	} {
		require.ErrorIs(t, err, webhook.ErrInvalid)
	}
	_, err := webhook.NewService(memstore.New(nil), &webhook.Config{MaxBufferedMetricBuckets: -1})
	require.ErrorIs(t, err, webhook.ErrInvalid)
	strict, err := webhook.NewService(memstore.New(nil), &webhook.Config{RequireTenant: true})
	require.NoError(t, err)
	require.ErrorIs(t, strict.RecordMetric(ctx, "m", 1, time.Time{}, ""), webhook.ErrTenantRequired)
}
