package webhook_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/internal/faultstore"
	"github.com/analytics-webhooks/webhook/memstore"
)

// TestWindowAggregations checks every aggregation against hand-computed
// values over samples recorded by two Services on one Storage, and what
// each does when its window empties.
func TestWindowAggregations(t *testing.T) {
	store := memstore.New(nil)
	clock := newFakeClock() // 09:00:00.123456
	t0 := clock.Now()
	a, err := webhook.NewService(store, &webhook.Config{Now: clock.Now})
	require.NoError(t, err)
	b, err := webhook.NewService(store, &webhook.Config{Now: clock.Now})
	require.NoError(t, err)
	ctx := t.Context()
	rec := func(svc *webhook.Service, v float64, after time.Duration) {
		t.Helper()
		require.NoError(t, svc.RecordMetric(ctx, "latency", v, t0.Add(after), "prod"))
	}
	rec(a, 10, 0)                                                        // bucket 09:00:00
	rec(a, 30, 5*time.Second)                                            // bucket 09:00:00
	rec(b, 40, 12*time.Second)                                           // bucket 09:00:10, the latest sample
	rec(b, 5, 3*time.Second)                                             // bucket 09:00:00, recorded by the other process
	rec(b, 1000, -2*time.Minute)                                         // 08:58:00: outside the window
	require.NoError(t, a.RecordMetric(ctx, "latency", 7, t0, "staging")) // another environment, which the webhook does not hear
	require.NoError(t, a.Flush(ctx))
	require.NoError(t, b.Flush(ctx))

	// Every condition holds on any window with samples, so each fires
	// with its aggregate as value.
	var conds []webhook.Condition
	for _, agg := range []webhook.Aggregation{webhook.AggregateSum, webhook.AggregateAvg, webhook.AggregateMin, webhook.AggregateMax, webhook.AggregateCount, webhook.AggregateLast} {
		conds = append(conds, webhook.Condition{Metric: "latency", Operator: webhook.ConditionGT, Value: 0, WindowSeconds: 60, Aggregation: agg})
	}
	w, err := a.Create(ctx, &webhook.Webhook{Name: "w", URL: "https://example.com/w", Environments: []string{"prod"},
		Triggers: []webhook.Trigger{{Type: webhook.TriggerThreshold, Conditions: conds}}})
	require.NoError(t, err)
	clock.Advance(15 * time.Second) // 09:00:15: the window is the buckets 08:59:20 … 09:00:10
	require.NoError(t, a.Evaluate(ctx))
	got := map[string]any{}
	for _, al := range alertsOf(t, store, w.ID) {
		require.Equal(t, "fired", al.reason)
		assert.Equal(t, 60.0, al.data["window_seconds"])
		got[al.data["aggregation"].(string)] = al.data["value"]
	}
	assert.Equal(t, map[string]any{"sum": 85.0, "avg": 21.25, "min": 5.0, "max": 40.0, "count": 4.0, "last": 40.0}, got)
	require.NoError(t, b.Evaluate(ctx))
	assert.Len(t, alertsOf(t, store, w.ID), 6, "the other Service sees them firing")

	// 09:01:15: the window is 09:00:20 … 09:01:10, without samples. Count
	// and sum are 0 and recover; the others have no value: no_data.
	clock.Advance(time.Minute)
	require.NoError(t, b.Evaluate(ctx))
	resolved := map[string]string{}
	for _, al := range alertsOf(t, store, w.ID)[6:] {
		assert.Equal(t, webhook.EventTypeThresholdResolved, al.event)
		resolved[al.data["aggregation"].(string)] = al.reason
		if al.reason == "no_data" {
			assert.Nil(t, al.data["value"])
		} else {
			assert.Equal(t, 0.0, al.data["value"])
		}
	}
	assert.Equal(t, map[string]string{"sum": "recovered", "count": "recovered", "avg": "no_data", "min": "no_data", "max": "no_data", "last": "no_data"}, resolved)
	require.NoError(t, a.Evaluate(ctx))
	assert.Len(t, alertsOf(t, store, w.ID), 12)
}

// TestTheIssueExample is the report that started it: "error_rate gt
// 0.05, window_seconds 300" fed 0.08, 0.09, 0.10, 0.01, 0.08 sent an
// alert for every value above 0.05.
func TestTheIssueExample(t *testing.T) {
	for _, c := range []struct {
		agg  webhook.Aggregation
		want []string
	}{
		// The latest value: it breaches, recovers at 0.01, and breaches
		// again; once each.
		{"", []string{"fired", "recovered", "fired"}},
		// The average over five minutes stays above 0.05 throughout
		// (0.08, 0.085, 0.09, 0.07, 0.072): one alert.
		{webhook.AggregateAvg, []string{"fired"}},
		// The maximum: one alert.
		{webhook.AggregateMax, []string{"fired"}},
	} {
		t.Run(string(c.agg), func(t *testing.T) {
			svc, store, clock := newService(t)
			ctx := t.Context()
			w := thresholdHook(t, svc, webhook.Condition{Metric: "error_rate", Operator: webhook.ConditionGT, Value: 0.05, WindowSeconds: 300, Aggregation: c.agg})
			for _, v := range []float64{0.08, 0.09, 0.10, 0.01, 0.08} {
				require.NoError(t, svc.RecordMetric(ctx, "error_rate", v, time.Time{}, "production"))
				require.NoError(t, svc.Flush(ctx)) // what the background flush does within a second
				require.NoError(t, svc.Evaluate(ctx))
				clock.Advance(time.Minute)
			}
			assert.Equal(t, c.want, reasons(alertsOf(t, store, w.ID)))

			// Five minutes after the last sample the window is empty: the
			// alert resolves (no data).
			clock.Advance(5 * time.Minute)
			require.NoError(t, svc.Evaluate(ctx))
			as := alertsOf(t, store, w.ID)
			assert.Equal(t, "no_data", as[len(as)-1].reason)
		})
	}
}

func TestRecordMetricWithoutWindow(t *testing.T) {
	svc, store, clock := newService(t)
	ctx := t.Context()
	w := thresholdHook(t, svc, webhook.Condition{Metric: "temp", Operator: webhook.ConditionGT, Value: 30})
	for range 100 {
		require.NoError(t, svc.RecordMetric(ctx, "temp", 35, time.Time{}, ""))
		clock.Advance(100 * time.Millisecond)
	}
	require.NoError(t, svc.Flush(ctx))
	require.NoError(t, svc.RecordMetric(ctx, "temp", 36, time.Time{}, ""))
	require.NoError(t, svc.Flush(ctx))
	require.NoError(t, svc.Evaluate(ctx))
	assert.Equal(t, []string{"fired"}, reasons(alertsOf(t, store, w.ID)), "a hundred samples above: one alert")
	require.NoError(t, svc.RecordMetric(ctx, "temp", 36, time.Time{}, ""))
	require.NoError(t, svc.RecordMetric(ctx, "temp", 20, time.Time{}, ""))
	require.NoError(t, svc.Flush(ctx))
	as := alertsOf(t, store, w.ID)
	assert.Equal(t, []string{"fired", "recovered"}, reasons(as), "the latest sample decides")
	assert.Equal(t, 20.0, as[1].data["value"])
}

func TestRecordMetricTenants(t *testing.T) {
	svc, store, _ := newService(t)
	ctx := t.Context()
	cond := webhook.Condition{Metric: "m", Operator: webhook.ConditionGT, Value: 1, WindowSeconds: 60, Aggregation: webhook.AggregateSum}
	mk := func(tenant string) *webhook.Webhook {
		w, err := svc.Create(ctx, &webhook.Webhook{TenantID: tenant, Name: "t" + tenant, URL: "https://example.com/a",
			Triggers: []webhook.Trigger{{Type: webhook.TriggerThreshold, Conditions: []webhook.Condition{cond}}}})
		require.NoError(t, err)
		return w
	}
	a, b := mk("a"), mk("b")
	require.NoError(t, svc.RecordMetric(ctx, "m", 5, time.Time{}, "", webhook.WithTenant("a")))
	require.NoError(t, svc.Tenant("a").RecordMetric(ctx, "m", 5, time.Time{}, ""))
	require.NoError(t, svc.RecordMetric(ctx, "m", 5, time.Time{}, ""), "no tenant: no tenant's series")
	require.NoError(t, svc.Evaluate(ctx))
	as := alertsOf(t, store, a.ID)
	require.Len(t, as, 1)
	assert.Equal(t, 10.0, as[0].data["value"])
	assert.Empty(t, alertsOf(t, store, b.ID))
}

// flakyMetrics fails AddMetricBuckets while failing is set.
type flakyMetrics struct {
	*memstore.Store
	failing atomic.Bool
	writes  atomic.Int32
}

func (f *flakyMetrics) AddMetricBuckets(ctx context.Context, bs []webhook.MetricBucket) error {
	f.writes.Add(1)
	if f.failing.Load() {
		return faultstore.ErrBlip
	}
	return f.Store.AddMetricBuckets(ctx, bs)
}

// stored returns the count and sum of a metric's samples in Storage.
func stored(t *testing.T, ms webhook.MetricStore, tenant, metric string, from, to time.Time) (int64, float64) {
	t.Helper()
	bs, err := ms.QueryMetric(t.Context(), webhook.MetricQuery{TenantID: tenant, Metric: metric, From: from, To: to})
	require.NoError(t, err)
	var n int64
	var sum float64
	for _, b := range bs {
		n += b.Count
		sum += b.Sum
	}
	return n, sum
}

func TestRecordMetricBackPressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &flakyMetrics{Store: memstore.New(nil)}
		svc, err := webhook.NewService(store, &webhook.Config{MaxBufferedMetricBuckets: 3})
		require.NoError(t, err)
		ctx := t.Context()
		now := time.Now()
		store.failing.Store(true)
		for _, m := range []string{"a", "b", "c"} {
			require.NoError(t, svc.RecordMetric(ctx, m, 1, time.Time{}, ""))
		}
		require.NoError(t, svc.RecordMetric(ctx, "a", 2, time.Time{}, ""), "a sample of a buffered bucket needs no room")
		err = svc.RecordMetric(ctx, "d", 1, time.Time{}, "")
		require.ErrorIs(t, err, faultstore.ErrBlip, "full, and the write failed: the caller hears it")
		assert.Contains(t, err.Error(), "buffer is full")

		store.failing.Store(false)
		require.NoError(t, svc.RecordMetric(ctx, "d", 4, time.Time{}, ""), "full: written in the call, then buffered")
		n, sum := stored(t, store, "", "a", now.Add(-time.Minute), now.Add(time.Minute))
		assert.Equal(t, int64(2), n, "the failed write lost nothing")
		assert.Equal(t, 3.0, sum)
		n, _ = stored(t, store, "", "d", now.Add(-time.Minute), now.Add(time.Minute))
		assert.Zero(t, n, "d waits in the buffer")
		require.NoError(t, svc.Flush(ctx))
		n, sum = stored(t, store, "", "d", now.Add(-time.Minute), now.Add(time.Minute))
		assert.Equal(t, int64(1), n)
		assert.Equal(t, 4.0, sum)
	})
}

// TestRecordMetricWritesWithinASecond runs in a bubble of fake time: a
// sample is written a second after it was recorded, without any call;
// a failed write is kept and tried again.
func TestRecordMetricWritesWithinASecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &flakyMetrics{Store: memstore.New(nil)}
		svc, err := webhook.NewService(store, nil)
		require.NoError(t, err)
		ctx := t.Context()
		now := time.Now()
		span := func() (time.Time, time.Time) { return now.Add(-time.Minute), now.Add(time.Hour) }

		require.NoError(t, svc.RecordMetric(ctx, "m", 1, time.Time{}, ""))
		require.NoError(t, svc.RecordMetric(ctx, "m", 2, time.Time{}, ""))
		time.Sleep(999 * time.Millisecond)
		synctest.Wait()
		from, to := span()
		n, _ := stored(t, store, "", "m", from, to)
		assert.Zero(t, n, "not yet")
		time.Sleep(time.Millisecond)
		synctest.Wait()
		n, sum := stored(t, store, "", "m", from, to)
		assert.Equal(t, int64(2), n, "written a second after the first sample, in one write")
		assert.Equal(t, 3.0, sum)
		assert.Equal(t, int32(1), store.writes.Load())

		time.Sleep(time.Hour)
		synctest.Wait()
		assert.Equal(t, int32(1), store.writes.Load(), "nothing armed while there is nothing to write")

		store.failing.Store(true)
		require.NoError(t, svc.RecordMetric(ctx, "m", 4, time.Time{}, ""))
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, int32(2), store.writes.Load())
		require.NoError(t, svc.RecordMetric(ctx, "m", 8, time.Time{}, ""))
		store.failing.Store(false)
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, int32(3), store.writes.Load(), "tried again a second later")
		n, sum = stored(t, store, "", "m", from, time.Now().Add(time.Hour))
		assert.Equal(t, int64(4), n, "the failed write's samples were kept")
		assert.Equal(t, 15.0, sum)
	})
}

// TestWindowAbsence: a count of 0 is a value, so "count lt 1" fires when
// a metric stops arriving.
func TestWindowAbsence(t *testing.T) {
	svc, store, clock := newService(t)
	ctx := t.Context()
	cond := webhook.Condition{Metric: "heartbeat", Operator: webhook.ConditionLT, Value: 1, WindowSeconds: 30, Aggregation: webhook.AggregateCount}
	listed, err := svc.Create(ctx, &webhook.Webhook{Name: "listed", URL: "https://example.com/l", Environments: []string{"prod"},
		Triggers: []webhook.Trigger{{Type: webhook.TriggerThreshold, Conditions: []webhook.Condition{cond}}}})
	require.NoError(t, err)
	unlisted := thresholdHook(t, svc, cond)

	require.NoError(t, svc.Evaluate(ctx))
	assert.Equal(t, []string{"fired"}, reasons(alertsOf(t, store, listed.ID)), "prod is listed: no heartbeat at all fires")
	assert.Empty(t, alertsOf(t, store, unlisted.ID), "no environment is known yet")

	require.NoError(t, svc.RecordMetric(ctx, "heartbeat", 1, time.Time{}, "prod"))
	require.NoError(t, svc.Evaluate(ctx))
	assert.Equal(t, []string{"fired", "recovered"}, reasons(alertsOf(t, store, listed.ID)))

	// The heartbeat stops. The unlisted webhook never alerted on prod,
	// so it has no state there: it does not know prod. The listed one
	// does.
	clock.Advance(40 * time.Second)
	require.NoError(t, svc.Evaluate(ctx))
	assert.Equal(t, []string{"fired", "recovered", "fired"}, reasons(alertsOf(t, store, listed.ID)))
	assert.Empty(t, alertsOf(t, store, unlisted.ID))
}

// evalCountingStore counts the reads an evaluation makes.
type evalCountingStore struct {
	*memstore.Store
	queries, stateReads atomic.Int32
}

func (c *evalCountingStore) QueryMetric(ctx context.Context, q webhook.MetricQuery) ([]webhook.MetricBucket, error) {
	c.queries.Add(1)
	return c.Store.QueryMetric(ctx, q)
}

func (c *evalCountingStore) TriggerStates(ctx context.Context, ids []string) ([]*webhook.TriggerState, error) {
	c.stateReads.Add(1)
	return c.Store.TriggerStates(ctx, ids)
}

// TestEvaluateReadsBounded: one state read per evaluation, and one
// metric query per (tenant, metric, window), however many webhooks and
// aggregations share it.
func TestEvaluateReadsBounded(t *testing.T) {
	store := &evalCountingStore{Store: memstore.New(nil)}
	svc, err := webhook.NewService(store, nil)
	require.NoError(t, err)
	ctx := t.Context()
	for i := range 20 {
		_, err := svc.Create(ctx, &webhook.Webhook{Name: "w", URL: "https://example.com/w", Triggers: []webhook.Trigger{{Type: webhook.TriggerThreshold, Conditions: []webhook.Condition{
			{Metric: "a", Operator: webhook.ConditionGT, Value: float64(i), WindowSeconds: 60, Aggregation: webhook.AggregateAvg},
			{Metric: "a", Operator: webhook.ConditionGT, Value: float64(i), WindowSeconds: 55, Aggregation: webhook.AggregateMax}, // the same six buckets
			{Metric: "a", Operator: webhook.ConditionGT, Value: float64(i), WindowSeconds: 300},
			{Metric: "b", Operator: webhook.ConditionGT, Value: float64(i), WindowSeconds: 60},
			{Metric: "c", Operator: webhook.ConditionGT, Value: float64(i)},
		}}}})
		require.NoError(t, err)
	}
	require.NoError(t, svc.RecordMetric(ctx, "a", 10, time.Time{}, "prod"))
	require.NoError(t, svc.RecordMetric(ctx, "a", 10, time.Time{}, "dev"))
	require.NoError(t, svc.Evaluate(ctx))
	assert.Equal(t, int32(1), store.stateReads.Load())
	assert.Equal(t, int32(3), store.queries.Load(), "a over 60 s, a over 300 s, b over 60 s")
}

// TestRecordMetricConcurrently records from many goroutines while flushes
// run, with a bound small enough to hit: every sample is written once.
func TestRecordMetricConcurrently(t *testing.T) {
	store := memstore.New(nil)
	svc, err := webhook.NewService(store, &webhook.Config{MaxBufferedMetricBuckets: 5})
	require.NoError(t, err)
	ctx := t.Context()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const goroutines, each = 8, 500
	done := make(chan struct{})
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		for {
			select {
			case <-done:
				return
			default:
				assert.NoError(t, svc.Flush(ctx))
			}
		}
	}()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				metric := []string{"a", "b", "c", "d", "e", "f", "g"}[(g+i)%7]
				assert.NoError(t, svc.RecordMetric(ctx, metric, 1, at.Add(time.Duration(i%3)*webhook.MetricResolution), ""))
			}
		})
	}
	wg.Wait()
	close(done)
	<-flushed
	require.NoError(t, svc.Flush(ctx))
	var total int64
	for _, m := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		n, sum := stored(t, store, "", m, at, at.Add(time.Minute))
		assert.Equal(t, float64(n), sum)
		total += n
	}
	assert.Equal(t, int64(goroutines*each), total)
}

func TestEvaluatePrunesOldMetrics(t *testing.T) {
	svc, store, clock := newService(t)
	ctx := t.Context()
	now := clock.Now()
	old := now.Add(-webhook.MetricRetention - time.Minute)
	require.NoError(t, svc.RecordMetric(ctx, "m", 1, old, ""))
	require.NoError(t, svc.RecordMetric(ctx, "m", 1, now, ""))
	require.NoError(t, svc.Evaluate(ctx))
	n, _ := stored(t, store, "", "m", old.Add(-time.Hour), now.Add(time.Hour))
	assert.Equal(t, int64(1), n, "the bucket past the retention is gone")

	require.NoError(t, svc.RecordMetric(ctx, "m", 1, old, ""))
	require.NoError(t, svc.Evaluate(ctx))
	n, _ = stored(t, store, "", "m", old.Add(-time.Hour), now.Add(time.Hour))
	assert.Equal(t, int64(2), n, "pruned at most hourly")
	clock.Advance(time.Hour)
	require.NoError(t, svc.Evaluate(ctx))
	n, _ = stored(t, store, "", "m", old.Add(-time.Hour), now.Add(time.Hour))
	assert.Equal(t, int64(1), n)
}
