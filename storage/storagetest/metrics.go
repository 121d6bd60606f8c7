package storagetest

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
)

// metricCases check webhook.MetricStore; they are skipped for a Storage
// that does not implement it.
var metricCases = []struct {
	name string
	fn   func(t *testing.T, ms webhook.MetricStore)
}{
	{"MetricMergeRules", testMetricMerge},
	{"MetricSeriesApart", testMetricSeriesApart},
	{"MetricInvalid", testMetricInvalid},
	{"MetricQuerySteps", testMetricQuerySteps},
	{"MetricQueryEnvironments", testMetricQueryEnvironments},
	{"MetricQueryEdges", testMetricQueryEdges},
	{"MetricPrune", testMetricPrune},
	{"MetricCanceledContext", testMetricCanceled},
	{"MetricConcurrentAdds", testMetricConcurrentAdds},
}

// m0 is the start of the metric cases' first bucket.
var m0 = t0.Truncate(webhook.MetricResolution)

// sample is one recorded value.
type sample struct {
	v  float64
	at time.Duration // after the bucket's start
}

// bucket aggregates samples into the bucket of metric "m" of tenant
// "acme" in env starting at start.
func bucket(env string, start time.Time, samples ...sample) webhook.MetricBucket {
	b := webhook.MetricBucket{TenantID: "acme", Metric: "m", Environment: env, Start: start}
	for _, s := range samples {
		at := start.Add(s.at)
		if b.Count == 0 {
			b.Min, b.Max = s.v, s.v
		}
		b.Count++
		b.Sum += s.v
		b.Min, b.Max = min(b.Min, s.v), max(b.Max, s.v)
		if !at.Before(b.LastAt) {
			b.Last, b.LastAt = s.v, at
		}
	}
	return b
}

// agg is what a query returns for one step: the bucket of all samples,
// as it would be recorded in one bucket starting at start.
func agg(env string, start time.Time, count int64, sum, lo, hi, last float64, lastAt time.Time) webhook.MetricBucket {
	return webhook.MetricBucket{TenantID: "acme", Metric: "m", Environment: env, Start: start,
		Count: count, Sum: sum, Min: lo, Max: hi, Last: last, LastAt: lastAt}
}

func addBuckets(t *testing.T, ms webhook.MetricStore, bs ...webhook.MetricBucket) {
	t.Helper()
	require.NoError(t, ms.AddMetricBuckets(t.Context(), bs))
}

func query(t *testing.T, ms webhook.MetricStore, q webhook.MetricQuery) []webhook.MetricBucket {
	t.Helper()
	if q.TenantID == "" && q.Metric == "" {
		q.TenantID, q.Metric = "acme", "m"
	}
	got, err := ms.QueryMetric(t.Context(), q)
	require.NoError(t, err)
	return got
}

// whole returns the query of every environment over [from, to) in one
// step.
func whole(from, to time.Time) webhook.MetricQuery {
	return webhook.MetricQuery{TenantID: "acme", Metric: "m", From: from, To: to}
}

func testMetricMerge(t *testing.T, ms webhook.MetricStore) {
	sec := time.Second
	one := whole(m0, m0.Add(webhook.MetricResolution))
	addBuckets(t, ms, bucket("production", m0, sample{1, sec}, sample{2, 5 * sec}))
	require.Equal(t, []webhook.MetricBucket{agg("production", m0, 2, 3, 1, 2, 2, m0.Add(5*sec))}, query(t, ms, one))

	// Counts and sums add, min and max widen; an earlier last stays.
	addBuckets(t, ms, bucket("production", m0, sample{-1, 2 * sec}, sample{3, 3 * sec}, sample{7, 4 * sec}))
	require.Equal(t, []webhook.MetricBucket{agg("production", m0, 5, 12, -1, 7, 2, m0.Add(5*sec))}, query(t, ms, one))

	// A last taken at the same instant: the given one wins.
	addBuckets(t, ms, bucket("production", m0, sample{9, 5 * sec}))
	require.Equal(t, []webhook.MetricBucket{agg("production", m0, 6, 21, -1, 9, 9, m0.Add(5*sec))}, query(t, ms, one))

	// One batch naming a bucket twice merges both, in the order given.
	addBuckets(t, ms, bucket("production", m0, sample{4, 6 * sec}), bucket("production", m0, sample{5, 6 * sec}))
	require.Equal(t, []webhook.MetricBucket{agg("production", m0, 8, 30, -1, 9, 5, m0.Add(6*sec))}, query(t, ms, one))

	// A later last wins.
	addBuckets(t, ms, bucket("production", m0, sample{0.5, 9 * sec}))
	require.Equal(t, []webhook.MetricBucket{agg("production", m0, 9, 30.5, -1, 9, 0.5, m0.Add(9*sec))}, query(t, ms, one))

	// The aggregate of two buckets takes the last of the later sample,
	// and on a tie that of the later bucket.
	addBuckets(t, ms, bucket("production", m0.Add(webhook.MetricResolution), sample{6, -2 * sec}))
	two := whole(m0, m0.Add(2*webhook.MetricResolution))
	require.Equal(t, []webhook.MetricBucket{agg("production", m0, 10, 36.5, -1, 9, 0.5, m0.Add(9*sec))}, query(t, ms, two))
	addBuckets(t, ms, bucket("production", m0.Add(webhook.MetricResolution), sample{8, -sec}))
	require.Equal(t, []webhook.MetricBucket{agg("production", m0, 11, 44.5, -1, 9, 8, m0.Add(9*sec))}, query(t, ms, two))
}

func testMetricSeriesApart(t *testing.T, ms webhook.MetricStore) {
	b := bucket("production", m0, sample{1, 0})
	other := func(f func(b *webhook.MetricBucket)) webhook.MetricBucket {
		c := bucket("production", m0, sample{100, time.Second})
		f(&c)
		return c
	}
	addBuckets(t, ms, b,
		other(func(c *webhook.MetricBucket) { c.TenantID = "" }),
		other(func(c *webhook.MetricBucket) { c.TenantID = "globex" }),
		other(func(c *webhook.MetricBucket) { c.Metric = "m2" }),
	)
	q := whole(m0, m0.Add(time.Minute))
	require.Equal(t, []webhook.MetricBucket{b}, query(t, ms, q), "other tenants' and metrics' samples are not counted")
	q.TenantID = ""
	got := query(t, ms, q)
	require.Len(t, got, 1)
	require.Equal(t, "", got[0].TenantID, "the query's tenant")
	require.Equal(t, 100.0, got[0].Sum, "no tenant is a tenant of its own")
}

func testMetricInvalid(t *testing.T, ms webhook.MetricStore) {
	ctx := t.Context()
	require.NoError(t, ms.AddMetricBuckets(ctx, nil))
	good := bucket("production", m0, sample{1, 0})
	for name, spoil := range map[string]func(b *webhook.MetricBucket){
		"no metric":          func(b *webhook.MetricBucket) { b.Metric = "" },
		"start off the grid": func(b *webhook.MetricBucket) { b.Start = b.Start.Add(time.Second) },
		"no samples":         func(b *webhook.MetricBucket) { b.Count = 0 },
		"NaN":                func(b *webhook.MetricBucket) { b.Sum = math.NaN() },
	} {
		bad := bucket("production", m0.Add(webhook.MetricResolution), sample{2, 0})
		spoil(&bad)
		err := ms.AddMetricBuckets(ctx, []webhook.MetricBucket{good, bad})
		require.ErrorIs(t, err, webhook.ErrInvalid, name)
	}
	require.Empty(t, query(t, ms, whole(m0, m0.Add(time.Hour))), "a batch with an invalid bucket adds none")

	for name, q := range map[string]webhook.MetricQuery{
		"no metric":     {TenantID: "acme", From: m0, To: m0.Add(time.Minute)},
		"empty range":   {TenantID: "acme", Metric: "m", From: m0, To: m0},
		"reversed":      {TenantID: "acme", Metric: "m", From: m0, To: m0.Add(-time.Minute)},
		"odd step":      {TenantID: "acme", Metric: "m", From: m0, To: m0.Add(time.Minute), Step: 15 * time.Second},
		"negative step": {TenantID: "acme", Metric: "m", From: m0, To: m0.Add(time.Minute), Step: -webhook.MetricResolution},
	} {
		_, err := ms.QueryMetric(ctx, q)
		require.ErrorIs(t, err, webhook.ErrInvalid, name)
	}
}

// series adds buckets of env at m0 + i·10s for each i, with one sample
// of value i at 1s into the bucket.
func series(t *testing.T, ms webhook.MetricStore, env string, is ...int) {
	t.Helper()
	var bs []webhook.MetricBucket
	for _, i := range is {
		bs = append(bs, bucket(env, at(i), sample{float64(i), time.Second}))
	}
	addBuckets(t, ms, bs...)
}

// at returns the start of bucket i.
func at(i int) time.Time { return m0.Add(time.Duration(i) * webhook.MetricResolution) }

func testMetricQuerySteps(t *testing.T, ms webhook.MetricStore) {
	series(t, ms, "production", 0, 1, 2, 3, 4, 5, 9)
	sec := time.Second
	// Steps of 30 s from m0: [0,1,2], [3,4,5], none for 6-8 (left
	// out), [9].
	q := whole(at(0), at(12))
	q.Step = 30 * sec
	require.Equal(t, []webhook.MetricBucket{
		agg("production", at(0), 3, 3, 0, 2, 2, at(2).Add(sec)),
		agg("production", at(3), 3, 12, 3, 5, 5, at(5).Add(sec)),
		agg("production", at(9), 1, 9, 9, 9, 9, at(9).Add(sec)),
	}, query(t, ms, q))

	// Step 0: the whole range, starting at From.
	q.Step = 0
	require.Equal(t, []webhook.MetricBucket{agg("production", at(0), 7, 24, 0, 9, 9, at(9).Add(sec))}, query(t, ms, q))

	// Steps start at From, which need not be on the grid: from 5 s
	// into bucket 1, steps of 20 s hold buckets [2,3], [4,5], [], [].
	q = whole(at(1).Add(5*sec), at(9))
	q.Step = 20 * sec
	require.Equal(t, []webhook.MetricBucket{
		agg("production", at(1).Add(5*sec), 2, 5, 2, 3, 3, at(3).Add(sec)),
		agg("production", at(3).Add(5*sec), 2, 9, 4, 5, 5, at(5).Add(sec)),
	}, query(t, ms, q))

	// A step as wide as the range, and wider: one step.
	for _, step := range []time.Duration{120 * sec, time.Hour} {
		q = whole(at(0), at(12))
		q.Step = step
		require.Equal(t, []webhook.MetricBucket{agg("production", at(0), 7, 24, 0, 9, 9, at(9).Add(sec))}, query(t, ms, q), step)
	}

	// Steps of one bucket give the buckets back.
	q = whole(at(0), at(3))
	q.Step = webhook.MetricResolution
	require.Equal(t, []webhook.MetricBucket{
		bucket("production", at(0), sample{0, sec}),
		bucket("production", at(1), sample{1, sec}),
		bucket("production", at(2), sample{2, sec}),
	}, query(t, ms, q))
}

func testMetricQueryEnvironments(t *testing.T, ms webhook.MetricStore) {
	// Environments sort byte-wise: "" < "B" < "production" < "staging".
	series(t, ms, "staging", 0, 1)
	series(t, ms, "production", 1, 2)
	series(t, ms, "B", 2)
	series(t, ms, "", 3)
	sec := time.Second
	envs := func(bs []webhook.MetricBucket) []string {
		out := make([]string, len(bs))
		for i, b := range bs {
			out[i] = b.Environment
		}
		return out
	}
	q := whole(at(0), at(4))
	all := query(t, ms, q)
	require.Equal(t, []string{"", "B", "production", "staging"}, envs(all), "nil: every environment, one result each")
	require.Equal(t, agg("production", at(0), 2, 3, 1, 2, 2, at(2).Add(sec)), all[2])
	require.Equal(t, agg("staging", at(0), 2, 1, 0, 1, 1, at(1).Add(sec)), all[3])

	q.Environments = []string{"staging", ""}
	require.Equal(t, []string{"", "staging"}, envs(query(t, ms, q)))
	q.Environments = []string{"production", "nowhere", "production"}
	require.Equal(t, []webhook.MetricBucket{all[2]}, query(t, ms, q), "an environment named twice counts once")
	q.Environments = []string{}
	require.Empty(t, query(t, ms, q), "no environments: nothing")

	// With steps: by environment, then start.
	q = whole(at(0), at(4))
	q.Step = 2 * webhook.MetricResolution
	got := query(t, ms, q)
	type es struct {
		env   string
		start time.Time
	}
	var order []es
	for _, b := range got {
		order = append(order, es{b.Environment, b.Start})
	}
	require.Equal(t, []es{{"", at(2)}, {"B", at(2)}, {"production", at(0)}, {"production", at(2)}, {"staging", at(0)}}, order)
}

func testMetricQueryEdges(t *testing.T, ms webhook.MetricStore) {
	series(t, ms, "production", 0, 1, 2)
	sum := func(q webhook.MetricQuery) float64 {
		t.Helper()
		got := query(t, ms, q)
		if len(got) == 0 {
			return -1
		}
		require.Len(t, got, 1)
		return got[0].Sum
	}
	require.Equal(t, 1.0, sum(whole(at(1), at(2))), "From is in, To is out")
	require.Equal(t, 3.0, sum(whole(at(1), at(2).Add(time.Nanosecond))), "a start just before To is in")
	require.Equal(t, 2.0, sum(whole(at(1).Add(time.Nanosecond), at(3))), "a start just before From is out")
	require.Equal(t, -1.0, sum(whole(at(3), at(9))), "no samples: no result")
	require.Equal(t, -1.0, sum(whole(at(-9), at(0))))

	// Steps from an instant just before a bucket's start.
	q := whole(at(1).Add(-time.Nanosecond), at(3))
	q.Step = webhook.MetricResolution
	got := query(t, ms, q)
	require.Len(t, got, 2)
	require.True(t, at(1).Add(-time.Nanosecond).Equal(got[0].Start), "steps start at From: %v", got[0].Start)
	require.Equal(t, 1.0, got[0].Sum)

	// Times in any zone are the same instants; results are in UTC.
	east := time.FixedZone("UTC+05:30", 5*3600+1800)
	q = whole(at(0).In(east), at(3).In(east))
	q.Step = 2 * webhook.MetricResolution
	got = query(t, ms, q)
	require.Len(t, got, 2)
	require.Equal(t, at(0), got[0].Start)
	require.Equal(t, at(2), got[1].Start)
	require.Equal(t, time.UTC, got[1].Start.Location())
	addBuckets(t, ms, bucket("production", at(4).In(east), sample{4, 0}))
	require.Equal(t, 4.0, sum(whole(at(4), at(5))))
}

func testMetricPrune(t *testing.T, ms webhook.MetricStore) {
	ctx := t.Context()
	series(t, ms, "production", 0, 1, 2)
	series(t, ms, "staging", 0, 1, 2)
	n, err := ms.PruneMetrics(ctx, at(2))
	require.NoError(t, err)
	require.Equal(t, 4, n)
	got := query(t, ms, whole(at(-10), at(10)))
	require.Len(t, got, 2)
	for _, b := range got {
		require.Equal(t, 2.0, b.Sum, "only bucket 2 is left in %s", b.Environment)
	}
	n, err = ms.PruneMetrics(ctx, at(2))
	require.NoError(t, err)
	require.Zero(t, n)
	n, err = ms.PruneMetrics(ctx, at(2).Add(time.Nanosecond))
	require.NoError(t, err)
	require.Equal(t, 2, n, "a bucket starting just before the cut-off goes")
	series(t, ms, "production", 2)
	series(t, ms, "staging", 2)

	// More buckets than a backend may delete in one batch.
	var bs []webhook.MetricBucket
	for i := range 2500 {
		bs = append(bs, bucket("bulk", at(-3000+i), sample{1, 0}))
	}
	addBuckets(t, ms, bs...)
	n, err = ms.PruneMetrics(ctx, at(0))
	require.NoError(t, err)
	require.Equal(t, 2500, n)
	n, err = ms.PruneMetrics(ctx, at(3))
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Empty(t, query(t, ms, whole(at(-10000), at(10000))))
}

func testMetricCanceled(t *testing.T, ms webhook.MetricStore) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, ms.AddMetricBuckets(ctx, []webhook.MetricBucket{bucket("production", m0, sample{1, 0})}), context.Canceled)
	require.Empty(t, query(t, ms, whole(m0, m0.Add(time.Minute))), "a canceled add adds nothing")
	_, err := ms.QueryMetric(ctx, whole(m0, m0.Add(time.Minute)))
	require.ErrorIs(t, err, context.Canceled)
	_, err = ms.PruneMetrics(ctx, m0)
	require.ErrorIs(t, err, context.Canceled)
}

// Several processes flush overlapping buckets at once, each batch in
// its own order: nothing is lost, nobody deadlocks.
func testMetricConcurrentAdds(t *testing.T, ms webhook.MetricStore) {
	const writers, flushes, buckets = 8, 5, 40
	errs := make([]error, writers)
	together(writers, func(w int) {
		r := rand.New(rand.NewPCG(uint64(w), 1))
		for f := range flushes {
			bs := make([]webhook.MetricBucket, 0, buckets)
			for i := range buckets {
				// Writer w's flush f adds value w·flushes+f to every
				// bucket, half of them in two environments.
				v := float64(w*flushes + f)
				bs = append(bs, bucket("production", at(i), sample{v, time.Duration(v) * time.Millisecond}))
				if i%2 == 0 {
					bs = append(bs, bucket("staging", at(i), sample{v, 0}))
				}
			}
			r.Shuffle(len(bs), func(i, j int) { bs[i], bs[j] = bs[j], bs[i] })
			if errs[w] = ms.AddMetricBuckets(context.Background(), bs); errs[w] != nil {
				return
			}
		}
	})
	for w, err := range errs {
		require.NoError(t, err, "writer %d", w)
	}
	const n = writers * flushes
	hi := float64(n - 1)
	q := whole(at(0), at(buckets))
	q.Step = webhook.MetricResolution
	got := query(t, ms, q)
	require.Len(t, got, buckets+buckets/2)
	for _, b := range got {
		require.EqualValues(t, n, b.Count, "%s %v", b.Environment, b.Start)
		require.Equal(t, hi*(hi+1)/2, b.Sum)
		require.Equal(t, 0.0, b.Min)
		require.Equal(t, hi, b.Max)
		if b.Environment == "production" {
			require.Equal(t, hi, b.Last, "the latest sample")
		}
	}
}
