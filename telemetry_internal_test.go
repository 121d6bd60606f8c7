package webhook

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// queueStore is a Storage that answers QueueStats only, counting calls;
// with block it waits for its context to end instead.
type queueStore struct {
	Storage
	stats    QueueStats
	block    bool
	calls    atomic.Int32
	deadline atomic.Pointer[time.Time] // of the last call's context
}

func (s *queueStore) QueueStats(ctx context.Context, _ QueueStatsParams) (QueueStats, error) {
	s.calls.Add(1)
	if d, ok := ctx.Deadline(); ok {
		s.deadline.Store(&d)
	}
	if s.block {
		<-ctx.Done()
		return QueueStats{}, ctx.Err()
	}
	return s.stats, nil
}

// gauges collects and returns the queue gauges' points: depth by status,
// and the oldest due age (-1 if not reported).
func gauges(t *testing.T, r *sdkmetric.ManualReader) (map[string]int64, float64, error) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	err := r.Collect(context.Background(), &rm)
	depth, age := map[string]int64{}, -1.0
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch m.Name {
			case "webhook.queue.depth":
				for _, p := range m.Data.(metricdata.Gauge[int64]).DataPoints {
					v, _ := p.Attributes.Value("webhook.delivery.status")
					depth[v.AsString()] = p.Value
				}
			case "webhook.queue.oldest_due.age":
				for _, p := range m.Data.(metricdata.Gauge[float64]).DataPoints {
					age = p.Value
				}
			}
		}
	}
	return depth, age, err
}

func TestQueueGaugesReadStorageOncePerCollection(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	store := &queueStore{stats: QueueStats{
		Depth:     map[DeliveryStatus]int64{StatusPending: 3, StatusDelivering: 1, StatusRetrying: 2},
		OldestDue: now.Add(-90 * time.Second),
	}}
	reader := sdkmetric.NewManualReader()
	svc, err := NewService(store, &Config{Now: func() time.Time { return now }, MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
	require.NoError(t, err)

	depth, age, err := gauges(t, reader)
	require.NoError(t, err)
	assert.Empty(t, depth, "no gauges before a worker runs")
	assert.Equal(t, -1.0, age)
	assert.Zero(t, store.calls.Load())

	// Two workers of the service run: one callback, one read per
	// collection, bounded by the timeout.
	stop1, stop2 := svc.observeQueue(), svc.observeQueue()
	for i := range 3 {
		depth, age, err = gauges(t, reader)
		require.NoError(t, err)
		assert.Equal(t, map[string]int64{"pending": 3, "delivering": 1, "retrying": 2}, depth)
		assert.Equal(t, 90.0, age)
		assert.Equal(t, int32(i+1), store.calls.Load(), "one Storage read per collection")
	}
	require.NotNil(t, store.deadline.Load(), "the read is bounded")

	// A queue whose earliest delivery is not due yet is not late.
	store.stats.OldestDue = now.Add(time.Minute)
	_, age, err = gauges(t, reader)
	require.NoError(t, err)
	assert.Equal(t, 0.0, age)

	stop1()
	stop1() // stopping twice is harmless
	_, age, err = gauges(t, reader)
	require.NoError(t, err)
	assert.Equal(t, 0.0, age, "still reported while the other worker runs")
	stop2()
	calls := store.calls.Load()
	depth, age, err = gauges(t, reader)
	require.NoError(t, err)
	assert.Empty(t, depth, "no gauges once the last worker stopped")
	assert.Equal(t, -1.0, age)
	assert.Equal(t, calls, store.calls.Load())
}

func TestQueueGaugesGiveUpOnASlowStorage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &queueStore{block: true}
		reader := sdkmetric.NewManualReader()
		svc, err := NewService(store, &Config{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
		require.NoError(t, err)
		defer svc.observeQueue()()
		start := time.Now()
		_, _, err = gauges(t, reader)
		require.Error(t, err, "the collection reports the timed-out read")
		assert.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
		assert.Equal(t, queueStatsTimeout, time.Since(start))
	})
}

func TestQueueGaugesNeedAQueueStatsReader(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	svc, err := NewService(&hookMap{}, &Config{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
	require.NoError(t, err)
	defer svc.observeQueue()()
	depth, _, err := gauges(t, reader)
	require.NoError(t, err)
	assert.Empty(t, depth)
}

func TestEvaluationHooksCount(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	svc, err := NewService(&hookMap{}, &Config{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
	require.NoError(t, err)
	ctx := t.Context()
	svc.tel.noteEvaluation(ctx, TriggerThreshold, nil)
	svc.tel.noteEvaluation(ctx, TriggerThreshold, nil)
	svc.tel.noteEvaluation(ctx, TriggerAnomaly, errors.New("boom"))
	svc.tel.noteAlertTransition(ctx, TriggerThreshold, "firing")
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(ctx, &rm))
	got := map[string]map[attribute.Distinct]int64{}
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
			got[m.Name] = map[attribute.Distinct]int64{}
			for _, p := range sum.DataPoints {
				got[m.Name][p.Attributes.Equivalent()] = p.Value
			}
		}
	}
	key := func(kv ...attribute.KeyValue) attribute.Distinct {
		set := attribute.NewSet(kv...)
		return set.Equivalent()
	}
	kind := attribute.Key("webhook.trigger.kind")
	result := attribute.Key("webhook.evaluation.result")
	assert.Equal(t, map[attribute.Distinct]int64{
		key(kind.String("threshold"), result.String("ok")):  2,
		key(kind.String("anomaly"), result.String("error")): 1,
	}, got["webhook.triggers.evaluations"])
	assert.Equal(t, map[attribute.Distinct]int64{
		key(kind.String("threshold"), attribute.String("webhook.alert.transition", "firing")): 1,
	}, got["webhook.alerts.transitions"])
}

func TestTraceParentRoundTrips(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	sc := spanContextOf(tp)
	require.True(t, sc.IsValid())
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", sc.TraceID().String())
	assert.Equal(t, "00f067aa0ba902b7", sc.SpanID().String())
	for _, bad := range []string{"", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"} {
		assert.False(t, spanContextOf(bad).IsValid(), "%q", bad)
	}
	assert.Empty(t, traceParent(context.Background()))
}

// BenchmarkTelemetryCalls measures the instrumentation of one trigger
// call and one delivery (the producer, consumer and client spans, the
// stored traceparent, the counters and histograms) with the default
// providers and no SDK installed: what instrumenting costs a host that
// installs none, over and above the work itself (BenchmarkInstrumentation).
func BenchmarkTelemetryCalls(b *testing.B) {
	svc, err := NewService(&hookMap{}, nil)
	require.NoError(b, err)
	tel := svc.tel
	hook := &Webhook{ID: "w1", URL: "https://example.com/hook"}
	c := &Claim{Delivery: &Delivery{ID: "d1", WebhookID: "w1", EventType: "purchase", Attempt: 1, CreatedAt: time.Now()}, Payload: &Payload{}}
	ids := []string{"d1"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		tctx := tel.startTrigger(ctx, TriggerEvent, "purchase")
		tel.triggerTenant(tctx, "")
		c.Payload.TraceParent = traceParent(tctx)
		tel.enqueuedDeliveries(tctx, string(TriggerEvent), 1)
		tel.endTrigger(tctx, ids, nil)
		sctx, wctx, span := tel.startDelivery(ctx, ctx, c)
		rctx := tel.startRequest(sctx, hook, c.Delivery.Attempt)
		res := sendResult{outcome: OutcomeSuccess, attempt: Attempt{StatusCode: 200, Duration: time.Millisecond}}
		tel.endRequest(rctx, hook, &res)
		tel.recordAttempt(wctx, c.Delivery, res, StatusDelivered, time.Now())
		span.End()
	}
}
