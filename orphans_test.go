package webhook_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
)

// An alert firing when its condition is edited resolves once, with
// reason "edited" and the old definition's data, to the webhook as
// updated; the edited condition starts a new episode. An edit that keeps
// the definition resolves nothing, and a disabled webhook is told
// nothing.
func TestUpdateResolvesAlertsItOrphans(t *testing.T) {
	svc, store, clock := newService(t)
	ctx := t.Context()
	w := thresholdHook(t, svc,
		webhook.Condition{Metric: "cpu", Operator: webhook.ConditionGT, Value: 90},
		webhook.Condition{Metric: "mem", Operator: webhook.ConditionGT, Value: 90},
		webhook.Condition{Metric: "disk", Operator: webhook.ConditionGT, Value: 90, NotifyResolved: ptr(false)})
	for _, m := range []string{"cpu", "mem", "disk"} {
		_, err := svc.TriggerThreshold(ctx, m, 95, 90, "prod")
		require.NoError(t, err)
	}
	require.Len(t, alertsOf(t, store, w.ID), 3)
	clock.Advance(time.Minute)

	// A new URL and name: the alerts are the same.
	w.URL, w.Name = "https://example.com/new", "renamed"
	w, err := svc.Update(ctx, w)
	require.NoError(t, err)
	require.Len(t, alertsOf(t, store, w.ID), 3, "nothing to resolve")

	// cpu's threshold changes, mem's condition goes, disk's changes
	// (without resolution notices).
	w.Triggers[0].Conditions = []webhook.Condition{
		{Metric: "cpu", Operator: webhook.ConditionGT, Value: 80},
		{Metric: "disk", Operator: webhook.ConditionGT, Value: 95, NotifyResolved: ptr(false)},
	}
	w, err = svc.Update(ctx, w)
	require.NoError(t, err)
	as := alertsOf(t, store, w.ID)
	require.Len(t, as, 5, "cpu and mem resolve")
	byMetric := map[string]alert{}
	for _, a := range as[3:] {
		assert.Equal(t, webhook.EventTypeThresholdResolved, a.event)
		assert.Equal(t, webhook.ReasonEdited, a.reason)
		byMetric[a.data["metric"].(string)] = a
	}
	require.Contains(t, byMetric, "cpu")
	require.Contains(t, byMetric, "mem")
	cpu := byMetric["cpu"].data
	assert.Equal(t, 90.0, cpu["threshold"], "the old definition's data")
	assert.Equal(t, 95.0, cpu["value"], "the last value seen")
	assert.Equal(t, as[0].data["episode_id"], cpu["episode_id"])
	assert.Equal(t, "resolved", cpu["status"])
	assert.Equal(t, 60.0, cpu["duration_seconds"])

	// Updating again resolves nothing more; the new cpu condition fires
	// a new episode.
	w, err = svc.Update(ctx, w)
	require.NoError(t, err)
	ids, err := svc.TriggerThreshold(ctx, "cpu", 85, 80, "prod")
	require.NoError(t, err)
	require.Len(t, ids, 1)
	as = alertsOf(t, store, w.ID)
	require.Len(t, as, 6)
	assert.Equal(t, "fired", as[5].reason)
	assert.NotEqual(t, cpu["episode_id"], as[5].data["episode_id"])

	// Disabled and edited at once: nothing reaches it.
	w.Disabled = true
	w.Triggers[0].Conditions[0].Value = 70
	w, err = svc.Update(ctx, w)
	require.NoError(t, err)
	assert.Len(t, alertsOf(t, store, w.ID), 6)

	// An environment the webhook stops hearing resolves its alert.
	w2 := thresholdHook(t, svc, webhook.Condition{Metric: "q", Operator: webhook.ConditionGT, Value: 1})
	_, err = svc.TriggerThreshold(ctx, "q", 5, 1, "staging")
	require.NoError(t, err)
	w2.Environments = []string{"prod"}
	_, err = svc.Update(ctx, w2)
	require.NoError(t, err)
	as = alertsOf(t, store, w2.ID)
	require.Len(t, as, 2)
	assert.Equal(t, webhook.ReasonEdited, as[1].reason)
}

// An anomaly trigger edited to watch another metric while it fires
// resolves its incident.
func TestUpdateResolvesAnAnomalyItOrphans(t *testing.T) {
	svc, store, clock := newService(t)
	ctx := t.Context()
	w := create(t, svc, "spikes", webhook.Trigger{Type: webhook.TriggerAnomaly, Metric: "signups"})
	for i := range 41 {
		v := 10.0
		if i == 40 {
			v = 1000
		}
		require.NoError(t, svc.RecordMetric(ctx, "signups", v, time.Time{}, ""))
		clock.Advance(time.Minute)
		require.NoError(t, svc.Evaluate(ctx))
	}
	clock.Advance(10 * time.Second) // the spike's bucket has settled
	require.NoError(t, svc.Evaluate(ctx))
	as := alertsOf(t, store, w.ID)
	require.Len(t, as, 1)
	require.Equal(t, webhook.EventTypeAnomaly, as[0].event)

	w.Triggers[0].Metric = "logins"
	w, err := svc.Update(ctx, w)
	require.NoError(t, err)
	as = alertsOf(t, store, w.ID)
	require.Len(t, as, 2)
	assert.Equal(t, webhook.EventTypeAnomalyResolved, as[1].event)
	assert.Equal(t, webhook.ReasonEdited, as[1].reason)
	assert.Equal(t, "signups", as[1].data["metric"])
	assert.Equal(t, as[0].data["episode_id"], as[1].data["episode_id"])
}
