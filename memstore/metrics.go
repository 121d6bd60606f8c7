package memstore

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/analytics-webhooks/webhook"
)

// metricKey identifies one stored metric bucket.
type metricKey struct {
	tenant, metric, env string
	start               int64 // Unix microseconds
}

// AddMetricBuckets implements webhook.MetricStore.
func (s *Store) AddMetricBuckets(ctx context.Context, buckets []webhook.MetricBucket) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, b := range buckets {
		if err := b.Validate(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range buckets {
		k := metricKey{b.TenantID, b.Metric, b.Environment, b.Start.UnixMicro()}
		if cur, ok := s.metrics[k]; ok {
			*cur = webhook.MergeMetricBucket(*cur, b)
			continue
		}
		c := b
		c.Start = b.Start.UTC()
		s.metrics[k] = &c
	}
	return nil
}

// QueryMetric implements webhook.MetricStore. It scans every stored
// bucket: memstore is for tests and single processes.
func (s *Store) QueryMetric(ctx context.Context, q webhook.MetricQuery) ([]webhook.MetricBucket, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	type stepKey struct {
		env  string
		step int64
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var in []*webhook.MetricBucket
	for k, b := range s.metrics {
		if k.tenant != q.TenantID || k.metric != q.Metric {
			continue
		}
		if q.Environments != nil && !slices.Contains(q.Environments, k.env) {
			continue
		}
		if b.Start.Before(q.From) || !b.Start.Before(q.To) {
			continue
		}
		in = append(in, b)
	}
	// Merged in order of start, so that of two buckets whose Last was
	// taken at one instant the later bucket's wins, as in pgstore.
	slices.SortFunc(in, func(a, b *webhook.MetricBucket) int { return a.Start.Compare(b.Start) })
	agg := make(map[stepKey]*webhook.MetricBucket)
	for _, b := range in {
		start := q.From
		if q.Step > 0 {
			start = q.From.Add(b.Start.Sub(q.From) / q.Step * q.Step)
		}
		sk := stepKey{b.Environment, start.UnixMicro()}
		if cur, ok := agg[sk]; ok {
			*cur = webhook.MergeMetricBucket(*cur, *b)
			continue
		}
		c := *b
		c.Start = start.UTC()
		agg[sk] = &c
	}
	out := make([]webhook.MetricBucket, 0, len(agg))
	for _, b := range agg {
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b webhook.MetricBucket) int {
		return cmp.Or(cmp.Compare(a.Environment, b.Environment), a.Start.Compare(b.Start))
	})
	return out, nil
}

// PruneMetrics implements webhook.MetricStore.
func (s *Store) PruneMetrics(ctx context.Context, before time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, b := range s.metrics {
		if b.Start.Before(before) {
			delete(s.metrics, k)
			n++
		}
	}
	return n, nil
}
