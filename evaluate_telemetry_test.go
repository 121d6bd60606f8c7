package webhook_test

import (
	"context"
	"errors"
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

// collectMetrics reads the Service's metrics from the SDK's reader, by name.
func collectMetrics(t *testing.T, reader *sdkmetric.ManualReader) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(t.Context(), &rm))
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

// Evaluate counts the evaluations of each stateful kind the webhooks have,
// with their result, and the alert state machine counts its transitions.
func TestEvaluationAndTransitionMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	clock := newFakeClock()
	failSummary := false
	svc, err := webhook.NewService(memstore.New(nil), &webhook.Config{
		Now: clock.Now, MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
		Summary: func(context.Context, *webhook.Webhook, webhook.Period) (map[string]any, error) {
			if failSummary {
				return nil, errors.New("analytics down")
			}
			return map[string]any{}, nil
		},
	})
	require.NoError(t, err)
	ctx := t.Context()
	create(t, svc, "alerts", webhook.Trigger{Type: webhook.TriggerThreshold, Conditions: []webhook.Condition{
		{Metric: "cpu", Operator: webhook.ConditionGT, Value: 90},
		{Metric: "cpu", Operator: webhook.ConditionGT, Value: 90, ForSeconds: 60},
	}})
	create(t, svc, "spikes", webhook.Trigger{Type: webhook.TriggerAnomaly, Metric: "signups"})
	create(t, svc, "hourly", webhook.Trigger{Type: webhook.TriggerScheduled, IntervalSeconds: 3600})

	kind := attribute.Key("webhook.trigger.kind")
	result := attribute.Key("webhook.evaluation.result")
	transition := attribute.Key("webhook.alert.transition")

	// Anomaly: 40 flat buckets, then a spike, then flat again.
	for i := range 60 {
		v := 10.0
		if i == 40 {
			v = 1000
		}
		require.NoError(t, svc.RecordMetric(ctx, "signups", v, time.Time{}, ""))
		clock.Advance(time.Minute)
		require.NoError(t, svc.Evaluate(ctx))
	}
	// Threshold: a breach fires the first condition and makes the
	// second pending; a drop resolves the first and clears the second.
	_, err = svc.TriggerThreshold(ctx, "cpu", 95, 90, "")
	require.NoError(t, err)
	_, err = svc.TriggerThreshold(ctx, "cpu", 50, 90, "")
	require.NoError(t, err)
	// Scheduled: the hour ends; the summary fails once, then works.
	failSummary = true
	clock.Advance(time.Hour)
	require.Error(t, svc.Evaluate(ctx))
	failSummary = false
	require.NoError(t, svc.Evaluate(ctx))

	m := collectMetrics(t, reader)
	evals := m["webhook.triggers.evaluations"]
	require.NotNil(t, evals, "evaluations are counted")
	assert.Equal(t, int64(62), count(t, evals, kind.String("threshold"), result.String("ok")))
	assert.Equal(t, int64(62), count(t, evals, kind.String("anomaly"), result.String("ok")))
	assert.Equal(t, int64(61), count(t, evals, kind.String("scheduled"), result.String("ok")))
	assert.Equal(t, int64(1), count(t, evals, kind.String("scheduled"), result.String("error")))
	assert.Zero(t, count(t, evals, kind.String("threshold"), result.String("error")))

	tr := m["webhook.alerts.transitions"]
	require.NotNil(t, tr, "transitions are counted")
	assert.Equal(t, int64(1), count(t, tr, kind.String("threshold"), transition.String("firing")))
	assert.Equal(t, int64(1), count(t, tr, kind.String("threshold"), transition.String("pending")))
	assert.Equal(t, int64(1), count(t, tr, kind.String("threshold"), transition.String("resolved")))
	assert.Equal(t, int64(1), count(t, tr, kind.String("threshold"), transition.String("cleared")))
	assert.Equal(t, int64(1), count(t, tr, kind.String("anomaly"), transition.String("firing")))
	assert.Equal(t, int64(1), count(t, tr, kind.String("anomaly"), transition.String("resolved")))
}
