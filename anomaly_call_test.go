package webhook_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
)

func TestAnomalyTriggerValidation(t *testing.T) {
	ok := []webhook.Trigger{
		{Type: webhook.TriggerAnomaly, Metric: "m"},
		{Type: webhook.TriggerAnomaly, Metric: "m", Aggregation: webhook.AggregateCount, BucketSeconds: 10, Sensitivity: 0.5, Direction: webhook.AnomalyBelow},
		{Type: webhook.TriggerAnomaly, Metric: "m", BucketSeconds: 86400, Sensitivity: 10, Direction: webhook.AnomalyBoth},
		{Type: webhook.TriggerAnomaly, Metric: "m", Filters: []webhook.Filter{{Property: "properties.region", Operator: webhook.FilterEquals, Value: "eu"}}},
	}
	for _, tr := range ok {
		w := validWebhook()
		w.Triggers = []webhook.Trigger{tr}
		require.NoError(t, w.Validate(), "%+v", tr)
	}
	bad := []struct {
		field string
		tr    webhook.Trigger
	}{
		{"metric", webhook.Trigger{}},
		{"metric", webhook.Trigger{Metric: "bad\x00name"}},
		{"aggregation", webhook.Trigger{Metric: "m", Aggregation: "median"}},
		{"bucket_seconds", webhook.Trigger{Metric: "m", BucketSeconds: -60}},
		{"bucket_seconds", webhook.Trigger{Metric: "m", BucketSeconds: 5}},
		{"bucket_seconds", webhook.Trigger{Metric: "m", BucketSeconds: 65}},
		{"bucket_seconds", webhook.Trigger{Metric: "m", BucketSeconds: 86410}},
		{"sensitivity", webhook.Trigger{Metric: "m", Sensitivity: -1}},
		{"sensitivity", webhook.Trigger{Metric: "m", Sensitivity: 10.5}},
		{"sensitivity", webhook.Trigger{Metric: "m", Sensitivity: math.NaN()}},
		{"sensitivity", webhook.Trigger{Metric: "m", Sensitivity: math.Inf(1)}},
		{"direction", webhook.Trigger{Metric: "m", Direction: "sideways"}},
		{"events", webhook.Trigger{Metric: "m", Events: []string{"purchase"}}},
		{"conditions", webhook.Trigger{Metric: "m", Conditions: []webhook.Condition{{Metric: "m", Operator: "gt"}}}},
	}
	svc := matchService(t)
	for _, c := range bad {
		c.tr.Type = webhook.TriggerAnomaly
		w := validWebhook()
		w.Triggers = []webhook.Trigger{c.tr}
		err := w.Validate()
		assert.Equal(t, []string{"triggers[0]." + c.field}, fields(t, err), "%+v", c.tr)
		_, err = svc.Create(t.Context(), w)
		require.ErrorIs(t, err, webhook.ErrInvalid)
	}
	// Detector fields belong to anomaly triggers only.
	w := validWebhook()
	w.Triggers[0].Sensitivity = 3
	assert.Equal(t, []string{"triggers[0].sensitivity"}, fields(t, w.Validate()))
}

// anomalyReceived returns the event types and data a webhook was sent, in
// order of its deliveries.
func anomalyReceived(t *testing.T, e *anomalyEnv, id string) []anomalyNotice {
	t.Helper()
	return notices(t, e.svc, e.store, id)
}

func TestTriggerAnomalyOncePerIncident(t *testing.T) {
	e := newAnomalyEnv(t)
	w := e.hook("host-models", webhook.Trigger{Type: webhook.TriggerAnomaly, Metric: "latency_ms"})
	other := e.hook("other-metric", webhook.Trigger{Type: webhook.TriggerAnomaly, Metric: "errors"})
	a := webhook.Anomaly{Metric: "latency_ms", Value: 950, Expected: 200, Lower: 120, Upper: 280, Score: 6.2, IncidentID: "inc-1"}

	ids, err := e.svc.TriggerAnomaly(t.Context(), a, "production")
	require.NoError(t, err)
	require.Len(t, ids, 1)
	for range 3 { // the host's model keeps seeing the incident
		a.Value += 10
		again, err := e.svc.TriggerAnomaly(t.Context(), a, "production")
		require.NoError(t, err)
		assert.Equal(t, ids, again, "the first call's deliveries")
	}
	resolved := a
	resolved.Resolved, resolved.Value, resolved.Direction = true, 210, webhook.AnomalyAbove
	rids, err := e.svc.TriggerAnomaly(t.Context(), resolved, "production")
	require.NoError(t, err)
	require.Len(t, rids, 1)
	again, err := e.svc.TriggerAnomaly(t.Context(), resolved, "production")
	require.NoError(t, err)
	assert.Equal(t, rids, again)

	got := anomalyReceived(t, e, w.ID)
	require.Len(t, got, 2)
	assert.Equal(t, webhook.EventTypeAnomaly, got[0].Type)
	assert.Equal(t, webhook.EventTypeAnomalyResolved, got[1].Type)
	assert.Equal(t, "production", got[0].Env)
	assert.Equal(t, map[string]any{
		"metric": "latency_ms", "value": 950.0, "expected": 200.0, "lower": 120.0, "upper": 280.0,
		"score": 6.2, "direction": "above", "status": "firing", "episode_id": "inc-1",
	}, got[0].Data)
	assert.Equal(t, "resolved", got[1].Data["status"])
	assert.Equal(t, "inc-1", got[1].Data["episode_id"])
	assert.Empty(t, anomalyReceived(t, e, other.ID), "another metric")

	// Without an incident ID, every call notifies.
	a.IncidentID = ""
	for range 2 {
		ids, err := e.svc.TriggerAnomaly(t.Context(), a, "production")
		require.NoError(t, err)
		require.Len(t, ids, 1)
	}
	assert.Len(t, anomalyReceived(t, e, w.ID), 4)
}

func TestTriggerAnomalyDirectionsAndFilters(t *testing.T) {
	e := newAnomalyEnv(t)
	above := e.hook("above", webhook.Trigger{Type: webhook.TriggerAnomaly, Metric: "m", Direction: webhook.AnomalyAbove})
	below := e.hook("below", webhook.Trigger{Type: webhook.TriggerAnomaly, Metric: "m", Direction: webhook.AnomalyBelow})
	eu := e.hook("eu", webhook.Trigger{Type: webhook.TriggerAnomaly, Metric: "m",
		Filters: []webhook.Filter{{Property: "properties.region", Operator: webhook.FilterEquals, Value: "eu"}}})
	onlyProd, err := e.svc.Create(t.Context(), &webhook.Webhook{Name: "prod", URL: "https://example.com/prod", Environments: []string{"production"},
		Triggers: []webhook.Trigger{{Type: webhook.TriggerAnomaly, Metric: "m"}}})
	require.NoError(t, err)

	count := func(id string) int { return len(anomalyReceived(t, e, id)) }
	raise := func(a webhook.Anomaly, env string) {
		t.Helper()
		_, err := e.svc.TriggerAnomaly(t.Context(), a, env)
		require.NoError(t, err)
	}
	raise(webhook.Anomaly{Metric: "m", Value: 10, Expected: 5, Properties: map[string]any{"region": "eu"}}, "production")
	assert.Equal(t, []int{1, 0, 1, 1}, []int{count(above.ID), count(below.ID), count(eu.ID), count(onlyProd.ID)})
	raise(webhook.Anomaly{Metric: "m", Value: 1, Expected: 5, Properties: map[string]any{"region": "us"}}, "staging")
	assert.Equal(t, []int{1, 1, 1, 1}, []int{count(above.ID), count(below.ID), count(eu.ID), count(onlyProd.ID)})
	// An explicit direction wins over the values.
	raise(webhook.Anomaly{Metric: "m", Value: 1, Expected: 5, Direction: webhook.AnomalyAbove}, "staging")
	assert.Equal(t, []int{2, 1, 1, 1}, []int{count(above.ID), count(below.ID), count(eu.ID), count(onlyProd.ID)})
	// A resolution of unknown side reaches every direction.
	raise(webhook.Anomaly{Metric: "m", Value: 5, Expected: 5, Resolved: true, Properties: map[string]any{"region": "eu"}}, "production")
	assert.Equal(t, []int{3, 2, 2, 2}, []int{count(above.ID), count(below.ID), count(eu.ID), count(onlyProd.ID)})
	got := anomalyReceived(t, e, eu.ID)
	assert.Equal(t, map[string]any{"region": "eu"}, got[0].Data["properties"])
}

func TestTriggerAnomalyTenants(t *testing.T) {
	e := newAnomalyEnv(t)
	tr := webhook.Trigger{Type: webhook.TriggerAnomaly, Metric: "m"}
	acme, err := e.svc.Tenant("acme").Create(t.Context(), &webhook.Webhook{Name: "a", URL: "https://example.com/a", Triggers: []webhook.Trigger{tr}})
	require.NoError(t, err)
	globex, err := e.svc.Tenant("globex").Create(t.Context(), &webhook.Webhook{Name: "g", URL: "https://example.com/g", Triggers: []webhook.Trigger{tr}})
	require.NoError(t, err)
	untenanted := e.hook("none", tr)

	a := webhook.Anomaly{Metric: "m", Value: 9, Expected: 1, IncidentID: "shared-id"}
	ids, err := e.svc.Tenant("acme").TriggerAnomaly(t.Context(), a, "")
	require.NoError(t, err)
	require.Len(t, ids, 1)
	// The same incident ID in another tenant is another incident.
	ids, err = e.svc.TriggerAnomaly(t.Context(), a, "", webhook.WithTenant("globex"))
	require.NoError(t, err)
	require.Len(t, ids, 1)
	// A TenantService's tenant wins over WithTenant.
	ids, err = e.svc.Tenant("acme").TriggerAnomaly(t.Context(), a, "", webhook.WithTenant("globex"))
	require.NoError(t, err)
	require.Len(t, ids, 1, "acme's incident again: its first deliveries")

	assert.Len(t, anomalyReceived(t, e, acme.ID), 1)
	assert.Len(t, anomalyReceived(t, e, globex.ID), 1)
	assert.Empty(t, anomalyReceived(t, e, untenanted.ID))

	_, err = e.svc.Tenant("").TriggerAnomaly(t.Context(), a, "")
	require.ErrorIs(t, err, webhook.ErrTenantRequired)
}

func TestTriggerAnomalyInvalid(t *testing.T) {
	e := newAnomalyEnv(t)
	e.hook("h", webhook.Trigger{Type: webhook.TriggerAnomaly, Metric: "m"})
	long := make([]byte, webhook.MaxIncidentIDLength+1)
	for i := range long {
		long[i] = 'x'
	}
	cases := []struct {
		field string
		a     webhook.Anomaly
	}{
		{"metric", webhook.Anomaly{}},
		{"value", webhook.Anomaly{Metric: "m", Value: math.NaN()}},
		{"expected", webhook.Anomaly{Metric: "m", Expected: math.Inf(1)}},
		{"lower", webhook.Anomaly{Metric: "m", Lower: math.Inf(-1)}},
		{"upper", webhook.Anomaly{Metric: "m", Upper: math.NaN()}},
		{"score", webhook.Anomaly{Metric: "m", Score: math.NaN()}},
		{"direction", webhook.Anomaly{Metric: "m", Direction: webhook.AnomalyBoth}},
		{"incident_id", webhook.Anomaly{Metric: "m", IncidentID: string(long)}},
		{"incident_id", webhook.Anomaly{Metric: "m", IncidentID: "a\nb"}},
	}
	for _, c := range cases {
		_, err := e.svc.TriggerAnomaly(t.Context(), c.a, "")
		assert.Equal(t, []string{c.field}, fields(t, err), "%+v", c.a)
	}
	_, err := e.svc.TriggerAnomaly(t.Context(), webhook.Anomaly{Metric: "m", Properties: map[string]any{"f": func() {}}}, "")
	require.ErrorIs(t, err, webhook.ErrInvalid)
}

// Trigger.Match on an anomaly trigger answers for TriggerAnomaly calls:
// it matches exactly the calls the Service delivers to the trigger.
func TestAnomalyTriggerMatchAgreesWithTriggerAnomaly(t *testing.T) {
	triggers := []webhook.Trigger{
		{Type: webhook.TriggerAnomaly, Metric: "m"},
		{Type: webhook.TriggerAnomaly, Metric: "m", Direction: webhook.AnomalyBelow},
		{Type: webhook.TriggerAnomaly, Metric: "m", Filters: []webhook.Filter{{Property: "properties.region", Operator: webhook.FilterEquals, Value: "eu"}}},
	}
	calls := []webhook.Anomaly{
		{Metric: "m", Value: 9, Expected: 1},
		{Metric: "m", Value: 0, Expected: 1, Properties: map[string]any{"region": "eu"}},
		{Metric: "m", Value: 1, Expected: 1, Resolved: true},
		{Metric: "other", Value: 9, Expected: 1, Properties: map[string]any{"region": "eu"}},
	}
	for i, tr := range triggers {
		for j, a := range calls {
			svc := matchService(t)
			_, err := svc.Create(t.Context(), &webhook.Webhook{Name: "n", URL: "https://example.com/hook", Triggers: []webhook.Trigger{tr}})
			require.NoError(t, err)
			ids, err := svc.TriggerAnomaly(t.Context(), a, "")
			require.NoError(t, err)

			event := webhook.EventTypeAnomaly
			data := map[string]any{"metric": a.Metric, "status": "firing", "properties": a.Properties}
			switch {
			case a.Resolved:
				event, data["status"] = webhook.EventTypeAnomalyResolved, "resolved"
			case a.Value > a.Expected:
				data["direction"] = "above"
			case a.Value < a.Expected:
				data["direction"] = "below"
			}
			got, err := tr.Match(event, data)
			require.NoError(t, err)
			assert.Equal(t, len(ids) == 1, got, "trigger %d, call %d", i, j)
		}
	}
	got, err := triggers[0].Match("purchase", map[string]any{"metric": "m"})
	require.NoError(t, err)
	assert.False(t, got, "an anomaly trigger hears only anomalies")
}
