package webhook_test

import (
	"cmp"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
)

// anomalyT0 is the start of the first bucket the anomaly tests write.
var anomalyT0 = time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)

// anomalySettle mirrors the delay after which a closed bucket is judged.
const anomalySettle = 5 * time.Second

type anomalyEnv struct {
	t     *testing.T
	svc   *webhook.Service
	store *memstore.Store
	clock *fakeClock
}

func newAnomalyEnv(t *testing.T) *anomalyEnv {
	t.Helper()
	store := memstore.New(nil)
	clock := &fakeClock{now: anomalyT0}
	svc, err := webhook.NewService(store, &webhook.Config{Now: clock.Now})
	require.NoError(t, err)
	return &anomalyEnv{t: t, svc: svc, store: store, clock: clock}
}

// anomalyTrigger is an anomaly trigger on metric, summed over buckets of
// a minute.
func anomalyTrigger(metric string) webhook.Trigger {
	return webhook.Trigger{Type: webhook.TriggerAnomaly, Metric: metric, Aggregation: webhook.AggregateSum, BucketSeconds: 60}
}

// hook creates a webhook with the trigger t.
func (e *anomalyEnv) hook(name string, t webhook.Trigger) *webhook.Webhook {
	e.t.Helper()
	w, err := e.svc.Create(e.t.Context(), &webhook.Webhook{Name: name, URL: "https://example.com/" + name, Triggers: []webhook.Trigger{t}})
	require.NoError(e.t, err)
	return w
}

// put stores one sample of value in the bucket starting at start.
func (e *anomalyEnv) put(store webhook.MetricStore, tenant, metric, env string, start time.Time, value float64) {
	e.t.Helper()
	require.NoError(e.t, store.AddMetricBuckets(e.t.Context(), []webhook.MetricBucket{{
		TenantID: tenant, Metric: metric, Environment: env, Start: start,
		Count: 1, Sum: value, Min: value, Max: value, Last: value, LastAt: start,
	}}))
}

// at sets the clock to t (never backwards).
func (e *anomalyEnv) at(t time.Time) {
	e.t.Helper()
	now := e.clock.Now()
	require.False(e.t, t.Before(now), "the clock does not go back")
	e.clock.Advance(t.Sub(now))
}

// evaluate runs svc.Evaluate once bucket i (of width w, counted from
// anomalyT0) is closed and settled.
func (e *anomalyEnv) evaluate(svc *webhook.Service, i int, w time.Duration) {
	e.t.Helper()
	e.at(anomalyT0.Add(time.Duration(i+1)*w + anomalySettle))
	require.NoError(e.t, svc.Evaluate(e.t.Context()))
}

// feed writes values as consecutive minute buckets from bucket first on,
// evaluating after each (twice: the second finds nothing to do).
func (e *anomalyEnv) feed(metric, env string, first int, values ...float64) {
	e.t.Helper()
	for i, v := range values {
		e.put(e.store, "", metric, env, bucketStart(first+i, time.Minute), v)
		e.evaluate(e.svc, first+i, time.Minute)
		require.NoError(e.t, e.svc.Evaluate(e.t.Context()))
	}
}

func bucketStart(i int, w time.Duration) time.Time { return anomalyT0.Add(time.Duration(i) * w) }

// anomalyNotice is one enqueued anomaly notification.
type anomalyNotice struct {
	Type string
	Env  string
	Data map[string]any
	At   string // the payload's timestamp
}

// notices returns the notifications enqueued for webhook id, in the
// order of their timestamps.
func notices(t *testing.T, svc *webhook.Service, store webhook.Storage, id string) []anomalyNotice {
	t.Helper()
	ds, err := svc.Deliveries(t.Context(), id, 1000)
	require.NoError(t, err)
	out := make([]anomalyNotice, 0, len(ds))
	for _, d := range ds {
		_, body, _ := payloadOf(t, store, d.ID)
		data, _ := body["data"].(map[string]any)
		env, _ := body["environment"].(string)
		ts, _ := body["timestamp"].(string)
		out = append(out, anomalyNotice{Type: d.EventType, Env: env, Data: data, At: ts})
	}
	slices.SortStableFunc(out, func(a, b anomalyNotice) int { return cmp.Or(cmp.Compare(a.At, b.At), cmp.Compare(a.Type, b.Type)) })
	return out
}

// noisy returns n buckets of 100 plus Gaussian noise of deviation 5,
// the same for every run.
func noisy(n int, seed uint64) []float64 {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]float64, n)
	for i := range out {
		out[i] = 100 + 5*r.NormFloat64()
	}
	return out
}

func TestAnomalyFiresAtTheSpikeOnceAndResolves(t *testing.T) {
	e := newAnomalyEnv(t)
	w := e.hook("spikes", anomalyTrigger("signups"))
	series := noisy(90, 1)
	series[12] = 400                                   // during the warm-up: never an alert
	series[60], series[61], series[62] = 200, 210, 190 // one incident of three buckets
	e.feed("signups", "production", 0, series...)

	got := notices(t, e.svc, e.store, w.ID)
	require.Len(t, got, 2, "%v", got)
	fired, resolved := got[0], got[1]
	assert.Equal(t, webhook.EventTypeAnomaly, fired.Type)
	assert.Equal(t, "production", fired.Env)
	d := fired.Data
	assert.Equal(t, "signups", d["metric"])
	assert.Equal(t, 200.0, d["value"])
	assert.InDelta(t, 100, d["expected"], 10)
	assert.Less(t, d["upper"], 200.0)
	assert.Less(t, d["lower"], d["expected"])
	assert.Greater(t, d["score"], 3.0)
	assert.Equal(t, "above", d["direction"])
	assert.Equal(t, "firing", d["status"])
	assert.Equal(t, "sum", d["aggregation"])
	assert.Equal(t, 60.0, d["bucket_seconds"])
	assert.Equal(t, 3.0, d["sensitivity"])
	assert.Equal(t, bucketStart(60, time.Minute).Format(time.RFC3339), d["bucket_start"])
	assert.Equal(t, bucketStart(61, time.Minute).Format(time.RFC3339), d["started_at"], "when the bucket closed")
	assert.Equal(t, d["started_at"], d["fired_at"])
	assert.NotEmpty(t, d["episode_id"])
	assert.NotContains(t, d, "resolved_at")

	assert.Equal(t, webhook.EventTypeAnomalyResolved, resolved.Type)
	r := resolved.Data
	assert.Equal(t, "resolved", r["status"])
	assert.Equal(t, d["episode_id"], r["episode_id"])
	assert.Equal(t, "above", r["direction"], "the incident's side")
	assert.Equal(t, bucketStart(63, time.Minute).Format(time.RFC3339), r["bucket_start"], "the first bucket back in the band")
	assert.Equal(t, bucketStart(64, time.Minute).Format(time.RFC3339), r["resolved_at"])
	assert.Equal(t, 180.0, r["duration_seconds"])
	assert.Equal(t, series[63], r["value"])
	assert.Less(t, r["lower"], r["value"])
	assert.Greater(t, r["upper"], r["value"])

	// The detector saw every bucket once.
	st := anomalyStates(t, e.store, w.ID)
	require.Len(t, st, 1)
	assert.Equal(t, int64(90), st[0].Detector.Buckets)
	assert.Equal(t, bucketStart(89, time.Minute), st[0].Detector.LastBucket)
	assert.Equal(t, webhook.AlertOK, st[0].Alert.Status)
}

func anomalyStates(t *testing.T, store webhook.TriggerStateStore, id string) []*webhook.TriggerState {
	t.Helper()
	st, err := store.TriggerStates(t.Context(), []string{id})
	require.NoError(t, err)
	return st
}

func TestAnomalyFlatSeriesNeverFires(t *testing.T) {
	e := newAnomalyEnv(t)
	flat := e.hook("flat", anomalyTrigger("flat"))
	zero := e.hook("zero", anomalyTrigger("zero"))
	for i := range 200 {
		e.put(e.store, "", "flat", "", bucketStart(i, time.Minute), 42)
		e.put(e.store, "", "zero", "", bucketStart(i, time.Minute), 0)
		e.evaluate(e.svc, i, time.Minute)
	}
	assert.Empty(t, notices(t, e.svc, e.store, flat.ID))
	assert.Empty(t, notices(t, e.svc, e.store, zero.ID))
	for _, id := range []string{flat.ID, zero.ID} {
		st := anomalyStates(t, e.store, id)
		require.Len(t, st, 1)
		assert.Equal(t, int64(200), st[0].Detector.Buckets)
	}
}

func TestAnomalyDirectionAboveIgnoresADip(t *testing.T) {
	e := newAnomalyEnv(t)
	tr := anomalyTrigger("orders")
	tr.Direction = webhook.AnomalyAbove
	above := e.hook("above", tr)
	tr.Direction = webhook.AnomalyBelow
	below := e.hook("below", tr)
	series := noisy(80, 2)
	series[45] = 0   // a dip
	series[65] = 250 // a spike
	e.feed("orders", "", 0, series...)

	got := notices(t, e.svc, e.store, above.ID)
	require.Len(t, got, 2, "%v", got)
	assert.Equal(t, webhook.EventTypeAnomaly, got[0].Type)
	assert.Equal(t, 250.0, got[0].Data["value"])
	assert.Equal(t, webhook.EventTypeAnomalyResolved, got[1].Type)

	got = notices(t, e.svc, e.store, below.ID)
	require.Len(t, got, 2, "%v", got)
	assert.Equal(t, 0.0, got[0].Data["value"])
	assert.Equal(t, "below", got[0].Data["direction"])
	assert.Less(t, got[0].Data["score"], -3.0)
}

// Empty buckets count as zero for sum and count, and are skipped for the
// other aggregations.
func TestAnomalyEmptyBuckets(t *testing.T) {
	e := newAnomalyEnv(t)
	sum := e.hook("sum", anomalyTrigger("m"))
	tr := anomalyTrigger("m")
	tr.Aggregation = webhook.AggregateAvg
	avg := e.hook("avg", tr)
	series := noisy(40, 3)
	e.feed("m", "", 0, series...)
	// Ten minutes without a sample.
	e.evaluate(e.svc, 49, time.Minute)

	got := notices(t, e.svc, e.store, sum.ID)
	require.NotEmpty(t, got, "nothing happened: an anomaly")
	assert.Equal(t, webhook.EventTypeAnomaly, got[0].Type)
	assert.Equal(t, 0.0, got[0].Data["value"])
	assert.Equal(t, bucketStart(40, time.Minute).Format(time.RFC3339), got[0].Data["bucket_start"])
	assert.Empty(t, notices(t, e.svc, e.store, avg.ID), "no samples, no average: nothing to judge")
	for _, c := range []struct {
		id      string
		buckets int64
	}{{sum.ID, 50}, {avg.ID, 40}} {
		st := anomalyStates(t, e.store, c.id)
		require.Len(t, st, 1)
		assert.Equal(t, c.buckets, st[0].Detector.Buckets)
		assert.Equal(t, bucketStart(49, time.Minute), st[0].Detector.LastBucket, "seen, if skipped")
	}
}

// After downtime the detector catches up on the buckets it missed, in
// order, each once.
func TestAnomalyCatchesUpAfterDowntime(t *testing.T) {
	e := newAnomalyEnv(t)
	w := e.hook("catch-up", anomalyTrigger("signups"))
	series := noisy(60, 4)
	series[50] = 300
	e.feed("signups", "", 0, series[:40]...)
	// No Service runs while buckets 40 to 59 are written.
	for i := 40; i < 60; i++ {
		e.put(e.store, "", "signups", "", bucketStart(i, time.Minute), series[i])
	}
	e.evaluate(e.svc, 59, time.Minute)
	require.NoError(t, e.svc.Evaluate(t.Context()))

	got := notices(t, e.svc, e.store, w.ID)
	require.Len(t, got, 2, "%v", got)
	assert.Equal(t, webhook.EventTypeAnomaly, got[0].Type)
	assert.Equal(t, bucketStart(50, time.Minute).Format(time.RFC3339), got[0].Data["bucket_start"])
	assert.Equal(t, webhook.EventTypeAnomalyResolved, got[1].Type)
	assert.Greater(t, got[1].Data["bucket_start"], got[0].Data["bucket_start"])
	assert.Less(t, got[1].Data["bucket_start"], bucketStart(55, time.Minute).Format(time.RFC3339), "back to normal right after the spike")
	st := anomalyStates(t, e.store, w.ID)
	require.Len(t, st, 1)
	assert.Equal(t, int64(60), st[0].Detector.Buckets, "each bucket once")
	assert.Equal(t, bucketStart(59, time.Minute), st[0].Detector.LastBucket)
}

// A downtime longer than AnomalyCatchUp buckets skips the older ones.
func TestAnomalyCatchUpIsBounded(t *testing.T) {
	e := newAnomalyEnv(t)
	tr := anomalyTrigger("beats")
	tr.BucketSeconds = 10
	w := e.hook("bounded", tr)
	const step = 10 * time.Second
	for i := range 40 {
		e.put(e.store, "", "beats", "", bucketStart(i, step), 5)
		e.evaluate(e.svc, i, step)
	}
	last := 40 + webhook.AnomalyCatchUp + 500
	e.evaluate(e.svc, last, step)
	st := anomalyStates(t, e.store, w.ID)
	require.Len(t, st, 1)
	assert.Equal(t, int64(40+webhook.AnomalyCatchUp), st[0].Detector.Buckets)
	assert.Equal(t, bucketStart(last, step), st[0].Detector.LastBucket)
	got := notices(t, e.svc, e.store, w.ID)
	require.NotEmpty(t, got)
	assert.Equal(t, 0.0, got[0].Data["value"], "the silence is an anomaly")
	assert.Equal(t, bucketStart(last-webhook.AnomalyCatchUp+1, step).Format(time.RFC3339), got[0].Data["bucket_start"], "the first bucket caught up on")
}

// A new series learns from the last buckets before it (the warm-up)
// rather than from the whole history.
func TestAnomalyNewSeriesLearnsFromTheRecentPast(t *testing.T) {
	e := newAnomalyEnv(t)
	series := noisy(100, 5)
	series[20] = 1000 // long before the trigger exists
	for i, v := range series {
		e.put(e.store, "", "visits", "", bucketStart(i, time.Minute), v)
	}
	w := e.hook("late", anomalyTrigger("visits"))
	e.evaluate(e.svc, 99, time.Minute)
	st := anomalyStates(t, e.store, w.ID)
	require.Len(t, st, 1)
	assert.Equal(t, int64(30), st[0].Detector.Buckets)
	assert.Empty(t, notices(t, e.svc, e.store, w.ID))
	// Warmed up: the next spike fires at once.
	e.put(e.store, "", "visits", "", bucketStart(100, time.Minute), 300)
	e.evaluate(e.svc, 100, time.Minute)
	got := notices(t, e.svc, e.store, w.ID)
	require.Len(t, got, 1)
	assert.Equal(t, 300.0, got[0].Data["value"])
}

// A bucket is judged only once it has settled after its end.
func TestAnomalyWaitsForTheBucketToSettle(t *testing.T) {
	e := newAnomalyEnv(t)
	w := e.hook("settle", anomalyTrigger("m"))
	e.feed("m", "", 0, noisy(40, 6)...)
	e.put(e.store, "", "m", "", bucketStart(40, time.Minute), 500)
	e.at(bucketStart(41, time.Minute).Add(anomalySettle - time.Microsecond))
	require.NoError(t, e.svc.Evaluate(t.Context()))
	assert.Empty(t, notices(t, e.svc, e.store, w.ID))
	e.at(bucketStart(41, time.Minute).Add(anomalySettle))
	require.NoError(t, e.svc.Evaluate(t.Context()))
	assert.Len(t, notices(t, e.svc, e.store, w.ID), 1)
}

// Each environment has a series of its own; a webhook's environments
// restrict them, and a tenant's webhook sees only the tenant's metrics.
func TestAnomalyEnvironmentsAndTenants(t *testing.T) {
	e := newAnomalyEnv(t)
	tr := anomalyTrigger("m")
	tr.Sensitivity = 4 // no false alarm in these three noisy series
	all := e.hook("all", tr)
	staging, err := e.svc.Create(t.Context(), &webhook.Webhook{Name: "staging", URL: "https://example.com/s", Environments: []string{"staging"}, Triggers: []webhook.Trigger{tr}})
	require.NoError(t, err)
	acme, err := e.svc.Tenant("acme").Create(t.Context(), &webhook.Webhook{Name: "acme", URL: "https://example.com/a", Triggers: []webhook.Trigger{tr}})
	require.NoError(t, err)

	prod, stag, other := noisy(60, 7), noisy(60, 8), noisy(60, 9)
	prod[50] = 400
	other[55] = 400
	for i := range 60 {
		e.put(e.store, "", "m", "production", bucketStart(i, time.Minute), prod[i])
		e.put(e.store, "", "m", "staging", bucketStart(i, time.Minute), stag[i])
		e.put(e.store, "acme", "m", "production", bucketStart(i, time.Minute), other[i])
		e.evaluate(e.svc, i, time.Minute)
	}
	got := notices(t, e.svc, e.store, all.ID)
	require.Len(t, got, 2, "%v", got)
	assert.Equal(t, "production", got[0].Env)
	assert.Equal(t, bucketStart(50, time.Minute).Format(time.RFC3339), got[0].Data["bucket_start"])
	assert.Len(t, anomalyStates(t, e.store, all.ID), 2, "one series per environment")

	assert.Empty(t, notices(t, e.svc, e.store, staging.ID), "production is not its environment")
	st := anomalyStates(t, e.store, staging.ID)
	require.Len(t, st, 1)
	assert.Equal(t, "staging", st[0].Environment)

	got = notices(t, e.svc, e.store, acme.ID)
	require.Len(t, got, 2, "%v", got)
	assert.Equal(t, bucketStart(55, time.Minute).Format(time.RFC3339), got[0].Data["bucket_start"], "the tenant's own metric")
	assert.Equal(t, "acme", anomalyStates(t, e.store, acme.ID)[0].TenantID)
}

// Two Services on one Storage evaluating the same buckets at once send
// each notification once, and feed the detector each bucket once. The
// Storage holds both after they read the states, so that both decide on
// the same version and one of them loses the compare-and-set.
func TestAnomalyConcurrentServicesNotifyOnce(t *testing.T) {
	conflicts := 0
	for round := range 30 {
		e := newAnomalyEnv(t)
		rs := &raceStore{Store: e.store}
		one, err := webhook.NewService(rs, &webhook.Config{Now: e.clock.Now})
		require.NoError(t, err)
		two, err := webhook.NewService(rs, &webhook.Config{Now: e.clock.Now})
		require.NoError(t, err)
		tr := anomalyTrigger("m")
		tr.Sensitivity = 4.5 // no false alarm in the noise
		w, err := one.Create(t.Context(), &webhook.Webhook{Name: "race", URL: "https://example.com/race", Triggers: []webhook.Trigger{tr}})
		require.NoError(t, err)
		series := noisy(50, uint64(100+round))
		series[35] = 300
		for i, v := range series {
			e.put(e.store, "", "m", "", bucketStart(i, time.Minute), v)
			e.at(bucketStart(i+1, time.Minute).Add(anomalySettle))
			rs.arm(2)
			evaluateTogether(t, one, two)
		}
		got := notices(t, one, e.store, w.ID)
		require.Len(t, got, 2, "round %d: %v", round, got)
		assert.Equal(t, webhook.EventTypeAnomaly, got[0].Type)
		assert.Equal(t, webhook.EventTypeAnomalyResolved, got[1].Type)
		st := anomalyStates(t, e.store, w.ID)
		require.Len(t, st, 1)
		assert.Equal(t, int64(50), st[0].Detector.Buckets, "round %d: no bucket twice", round)
		conflicts += rs.conflicts()
	}
	assert.Positive(t, conflicts, "the Services raced")
}

// raceStore makes the next n TriggerStates calls wait for each other
// (see arm), and counts the compare-and-sets that lost.
type raceStore struct {
	*memstore.Store
	mu      sync.Mutex
	waiting int
	release chan struct{}
	lost    int
}

// arm makes the next n TriggerStates calls return together.
func (r *raceStore) arm(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waiting, r.release = n, make(chan struct{})
}

func (r *raceStore) TriggerStates(ctx context.Context, ids []string) ([]*webhook.TriggerState, error) {
	st, err := r.Store.TriggerStates(ctx, ids)
	r.mu.Lock()
	release := r.release
	if r.waiting > 0 {
		r.waiting--
		if r.waiting == 0 {
			close(release)
		}
	} else {
		release = nil
	}
	r.mu.Unlock()
	if release != nil {
		select {
		case <-release:
		case <-time.After(10 * time.Second):
			return nil, errors.New("raceStore: the other reader never came")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return st, err
}

func (r *raceStore) SaveTriggerState(ctx context.Context, p webhook.SaveTriggerStateParams) (webhook.EnqueueResult, error) {
	res, err := r.Store.SaveTriggerState(ctx, p)
	if errors.Is(err, webhook.ErrConflict) {
		r.mu.Lock()
		r.lost++
		r.mu.Unlock()
	}
	return res, err
}

func (r *raceStore) conflicts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lost
}

// evaluateTogether runs Evaluate on every Service at once.
func evaluateTogether(t *testing.T, svcs ...*webhook.Service) {
	t.Helper()
	start := make(chan struct{})
	errs := make([]error, len(svcs))
	var wg sync.WaitGroup
	for i, svc := range svcs {
		wg.Go(func() {
			<-start
			errs[i] = svc.Evaluate(t.Context())
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
}
