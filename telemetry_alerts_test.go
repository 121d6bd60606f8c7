package webhook_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
)

// TestAlertAndEvaluationCounters runs threshold alerts through their
// states and Evaluate rounds over every stateful kind, and reads
// webhook.alerts.transitions and webhook.triggers.evaluations from the
// SDK: each transition is counted once, by the Service that made it,
// and so is each notification in webhook.deliveries.enqueued.
func TestAlertAndEvaluationCounters(t *testing.T) {
	ctx := t.Context()
	store := memstore.New(nil)
	clock := newFakeClock()
	readers := []*sdkmetric.ManualReader{sdkmetric.NewManualReader(), sdkmetric.NewManualReader()}
	var svcs []*webhook.Service
	for _, r := range readers {
		svc, err := webhook.NewService(store, &webhook.Config{Now: clock.Now, MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))})
		require.NoError(t, err)
		svcs = append(svcs, svc)
	}
	a, b := svcs[0], svcs[1]
	create(t, a, "alerts", webhook.Trigger{Type: webhook.TriggerThreshold, Conditions: []webhook.Condition{
		{Metric: "load", Operator: webhook.ConditionGT, Value: 10, ForSeconds: 30},
		{Metric: "load", Operator: webhook.ConditionGT, Value: 100, ForSeconds: 60},
		{Metric: "depth", Operator: webhook.ConditionGT, Value: 0, WindowSeconds: 30, Aggregation: webhook.AggregateMax},
	}})
	create(t, a, "detector", webhook.Trigger{Type: webhook.TriggerAnomaly, Metric: "signups"})
	create(t, a, "summary", webhook.Trigger{Type: webhook.TriggerScheduled, IntervalSeconds: 3600})

	report := func(v float64) {
		t.Helper()
		_, err := a.TriggerThreshold(ctx, "load", v, 10, "")
		require.NoError(t, err)
	}
	report(20) // the first condition is pending
	clock.Advance(40 * time.Second)
	report(20)  // and fires
	report(150) // the second is pending
	clock.Advance(10 * time.Second)
	report(5) // the first resolves, the second clears

	// A windowed condition: a's flush fires it, and both Services'
	// rounds find it firing; once its window empties, b resolves it and
	// a finds it resolved.
	require.NoError(t, a.RecordMetric(ctx, "depth", 3, time.Time{}, ""))
	require.NoError(t, a.Flush(ctx))
	require.NoError(t, b.Evaluate(ctx))
	require.NoError(t, a.Evaluate(ctx))
	clock.Advance(2 * time.Minute)
	require.NoError(t, b.Evaluate(ctx))
	require.NoError(t, a.Evaluate(ctx))

	transition := func(svc int, kind, name string) int64 {
		m := (&scriptRun{metrics: readers[svc]}).collect(t)
		data, ok := m["webhook.alerts.transitions"]
		if !ok {
			return 0
		}
		return count(t, data, attribute.String("webhook.trigger.kind", kind), attribute.String("webhook.alert.transition", name))
	}
	assert.Equal(t, int64(2), transition(0, "threshold", "pending"))
	assert.Equal(t, int64(2), transition(0, "threshold", "firing"), "the reported value and the windowed condition")
	assert.Equal(t, int64(1), transition(0, "threshold", "resolved"))
	assert.Equal(t, int64(1), transition(0, "threshold", "cleared"))
	assert.Equal(t, int64(0), transition(1, "threshold", "firing"), "b found it firing")
	assert.Equal(t, int64(1), transition(1, "threshold", "resolved"), "b resolved the empty window, a found it resolved")

	ma := (&scriptRun{metrics: readers[0]}).collect(t)
	mb := (&scriptRun{metrics: readers[1]}).collect(t)
	enqueued := func(m map[string]metricdata.Aggregation) int64 {
		return count(t, m["webhook.deliveries.enqueued"], attribute.String("webhook.trigger.kind", "threshold"))
	}
	assert.Equal(t, int64(3), enqueued(ma), "a's alerts: fired, resolved, and the windowed one fired")
	assert.Equal(t, int64(1), enqueued(mb), "b's: the windowed one resolved")
	for _, kind := range []string{"threshold", "anomaly", "scheduled"} {
		assert.Equal(t, int64(2), count(t, ma["webhook.triggers.evaluations"], attribute.String("webhook.trigger.kind", kind),
			attribute.String("webhook.evaluation.result", "ok")), kind)
	}
	assert.Equal(t, int64(6), count(t, ma["webhook.triggers.evaluations"]), "one per round and kind")
}
