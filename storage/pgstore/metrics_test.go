package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
)

// A flush is one statement that commits on its own: a connection lost
// after the server ran it is an unknown outcome (a blind retry would
// count the samples twice).
func TestAddMetricBucketsReportsUnknownCommit(t *testing.T) {
	direct := newStore(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	proxied, cutter := proxiedStore(t, ctx, direct, true)
	cutter.match = []byte(`insert into "` + direct.Schema() + `".metric_buckets`)
	start := time.Now().UTC().Truncate(webhook.MetricResolution)
	b := webhook.MetricBucket{TenantID: "acme", Metric: "m", Start: start, Count: 1, Sum: 2, Min: 2, Max: 2, Last: 2, LastAt: start}
	cutter.armed.Store(true)
	err := proxied.AddMetricBuckets(ctx, []webhook.MetricBucket{b})
	select {
	case <-cutter.cut:
	default:
		t.Fatalf("the proxy never saw the INSERT; AddMetricBuckets returned %v", err)
	}
	require.ErrorIs(t, err, webhook.ErrCommitUnknown)
	got, err := direct.QueryMetric(ctx, webhook.MetricQuery{TenantID: "acme", Metric: "m", From: start, To: start.Add(time.Minute)})
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.EqualValues(t, 1, got[0].Count, "the bucket was added")
}

// Names PostgreSQL text cannot hold are stored with the bytes replaced,
// and found again under the names the caller uses; one such name does
// not fail a whole flush.
func TestMetricNamesWithoutValidText(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	start := time.Now().UTC().Truncate(webhook.MetricResolution)
	b := webhook.MetricBucket{TenantID: "t\x00", Metric: "m\xff", Environment: "prod\x00", Start: start, Count: 1, Sum: 2, Min: 2, Max: 2, Last: 2, LastAt: start}
	ok := b
	ok.Metric = "plain"
	require.NoError(t, s.AddMetricBuckets(ctx, []webhook.MetricBucket{b, ok}))
	for _, envs := range [][]string{nil, {"prod\x00"}} {
		got, err := s.QueryMetric(ctx, webhook.MetricQuery{TenantID: "t\x00", Metric: "m\xff", Environments: envs, From: start, To: start.Add(time.Minute)})
		require.NoError(t, err)
		require.Len(t, got, 1)
		assert.Equal(t, "t\x00", got[0].TenantID)
		assert.Equal(t, "m\xff", got[0].Metric)
		if envs != nil {
			assert.Equal(t, "prod\x00", got[0].Environment, "the environment the caller named")
		}
	}
}
