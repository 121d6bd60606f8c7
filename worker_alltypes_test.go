package webhook_test

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
)

// Worker.Run is all a host runs for every stateful trigger type: a
// windowed threshold fires and resolves, an anomaly detector fires on a
// spike, and a scheduled summary is sent once per period, with nothing
// but RecordMetric calls and time passing. When Run returns, no goroutine
// of the library is left, including the background flush of recorded
// metrics.
func TestWorkerRunAloneRunsEveryStatefulType(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		store := memstore.New(nil)
		svc, err := webhook.NewService(store, &webhook.Config{Doer: okDoer{},
			Summary: func(context.Context, *webhook.Webhook, webhook.Period) (map[string]any, error) {
				return map[string]any{"ok": true}, nil
			}})
		require.NoError(t, err)
		w := create(t, svc, "all",
			webhook.Trigger{Type: webhook.TriggerThreshold, Conditions: []webhook.Condition{
				{Metric: "m", Operator: webhook.ConditionGT, Value: 100, WindowSeconds: 60, Aggregation: webhook.AggregateMax},
			}},
			webhook.Trigger{Type: webhook.TriggerAnomaly, Metric: "m"},
			webhook.Trigger{Type: webhook.TriggerScheduled, IntervalSeconds: 3600},
		)
		worker, err := webhook.NewWorker(svc, nil)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- worker.Run(ctx) }()

		for i := range 120 { // two hours, a sample a minute, a spike at minute 60
			v := 10.0
			if i == 60 {
				v = 1000
			}
			require.NoError(t, svc.RecordMetric(ctx, "m", v, time.Time{}, ""))
			time.Sleep(time.Minute)
		}
		synctest.Wait()
		cancel()
		require.NoError(t, <-done)

		var got []string
		for _, a := range alertsOf(t, store, w.ID) {
			got = append(got, a.event)
		}
		count := func(e string) int {
			return len(slices.DeleteFunc(slices.Clone(got), func(s string) bool { return s != e }))
		}
		assert.Equal(t, 1, count(webhook.EventTypeThresholdAlert), "%v", got)
		assert.Equal(t, 1, count(webhook.EventTypeThresholdResolved), "%v", got)
		assert.Equal(t, 1, count(webhook.EventTypeAnomaly), "%v", got)
		assert.Equal(t, 1, count(webhook.EventTypeAnomalyResolved), "%v", got)
		assert.Equal(t, 2, count(webhook.EventTypeScheduledSummary), "two hours end: %v", got)

		// A sample recorded after Run stopped is written by the
		// background flush a second later, whose goroutine then ends.
		require.NoError(t, svc.RecordMetric(t.Context(), "m", 5, time.Time{}, ""))
		time.Sleep(2 * time.Second)
		synctest.Wait()
		bs, err := store.QueryMetric(t.Context(), webhook.MetricQuery{Metric: "m", From: time.Now().Add(-time.Minute), To: time.Now().Add(time.Minute)})
		require.NoError(t, err)
		require.Len(t, bs, 1)
		assert.Equal(t, 5.0, bs[0].Last)
	})
}
