package webhook_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
)

// okDoer answers every request 204 at once.
type okDoer struct{}

func (okDoer) Do(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	return &http.Response{StatusCode: http.StatusNoContent, Body: io.NopCloser(strings.NewReader("")), Header: http.Header{}, Request: r}, nil
}

// TestWorkerRunsThresholdAlerts: Worker.Run is all a host runs. Its
// periodic evaluation resolves a window that emptied without new
// samples, and a sample recorded just before it stops is written.
func TestWorkerRunsThresholdAlerts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memstore.New(nil)
		svc, err := webhook.NewService(store, &webhook.Config{Doer: okDoer{}})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		w := thresholdHook(t, svc, webhook.Condition{Metric: "m", Operator: webhook.ConditionGT, Value: 1, WindowSeconds: 30, Aggregation: webhook.AggregateMax})
		worker, err := webhook.NewWorker(svc, nil)
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() { done <- worker.Run(ctx) }()

		require.NoError(t, svc.RecordMetric(ctx, "m", 5, time.Time{}, "prod"))
		time.Sleep(2 * time.Second) // written after a second, and judged then
		synctest.Wait()
		assert.Equal(t, []string{"fired"}, reasons(alertsOf(t, store, w.ID)))

		time.Sleep(time.Minute) // the window empties; evaluations every 10 s notice
		synctest.Wait()
		assert.Equal(t, []string{"fired", "no_data"}, reasons(alertsOf(t, store, w.ID)))

		start := time.Now()
		require.NoError(t, svc.RecordMetric(ctx, "m", 7, time.Time{}, "prod"))
		cancel()
		require.NoError(t, <-done)
		bs, err := store.QueryMetric(t.Context(), webhook.MetricQuery{Metric: "m", From: start.Add(-30 * time.Second), To: start.Add(time.Minute)})
		require.NoError(t, err)
		require.Len(t, bs, 1, "written by the time Run returns")
		assert.Equal(t, 7.0, bs[0].Max)
	})
}
