package webhook

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Recorded metrics: RecordMetric buffers samples in memory, aggregated per
// series and bucket of MetricResolution, and writes them to the
// MetricStore at least every metricFlushInterval, so that recording is
// not a Storage write per call and windows are right whichever process
// recorded their samples.

// DefaultMaxBufferedMetricBuckets is Config.MaxBufferedMetricBuckets'
// default.
const DefaultMaxBufferedMetricBuckets = 100_000

// metricFlushInterval is the longest a recorded sample waits in memory
// before it is written, while Storage accepts it.
const metricFlushInterval = time.Second

// metricFlushTimeout bounds a background flush.
const metricFlushTimeout = 10 * time.Second

// metricFlushBatch is the most buckets one AddMetricBuckets call writes.
const metricFlushBatch = 1000

// MetricRetention is how long recorded metric buckets are kept: the
// longest window (MaxWindow) and an hour. Evaluate deletes older ones,
// at most once an hour per Service.
const MetricRetention = MaxWindow*time.Second + time.Hour

// metricPruneInterval is how often a Service prunes metric buckets.
const metricPruneInterval = time.Hour

// errNoMetricStore reports RecordMetric over a Storage without metrics.
var errNoMetricStore = fmt.Errorf("%w: the Storage keeps no metrics (it does not implement MetricStore)", ErrInvalid)

// bufferKey identifies one buffered bucket.
type bufferKey struct {
	tenant, metric, env string
	start               int64 // Unix microseconds
}

// metricBuffer holds the samples recorded and not yet written.
type metricBuffer struct {
	max int // the most buckets held, buffered and being written

	flushMu sync.Mutex // one flush at a time, so that Evaluate sees what was recorded before it

	lastPrune atomic.Int64 // Unix microseconds of the last prune; 0 for none

	mu       sync.Mutex
	buckets  map[bufferKey]*MetricBucket
	inFlight int         // buckets being written by a flush
	timer    *time.Timer // the armed background flush; nil when none
}

func newMetricBuffer(max int) *metricBuffer {
	return &metricBuffer{max: max, buckets: make(map[bufferKey]*MetricBucket)}
}

// RecordMetric records one sample of metric, taken at at (the current
// time when zero), in environment, for the call's tenant (see
// WithTenant; other options do not apply and are refused). Threshold
// conditions with a window aggregate the samples of their metric,
// whichever Service recorded them, over their window; conditions without
// one see the latest sample (see Condition); anomaly triggers on the
// metric judge its closed buckets (see Trigger.Metric).
//
// Samples are aggregated in memory per (tenant, metric, environment,
// bucket of MetricResolution) and written to Storage (which must
// implement MetricStore) by a background write at least every second,
// by Evaluate, by Flush, and when a Worker stops; the threshold
// conditions on the written series are evaluated after each write. A
// crash loses the samples recorded since the last write: at most about a
// second's, or more while Storage refuses writes (a failed write keeps
// its samples for the next one, a second later; the background write
// logs its error, Evaluate and Flush return theirs). At most
// Config.MaxBufferedMetricBuckets buckets are held: a sample that needs
// a new bucket past that writes the buffer first, in the call, and
// RecordMetric returns Storage's error if that fails (the sample is not
// recorded). Nothing is dropped silently.
//
// It returns an error wrapping ErrInvalid for a bad argument (an empty
// metric, a NaN or infinite value, a time outside years 1970 to 9999)
// or a Storage without metrics.
func (s *Service) RecordMetric(ctx context.Context, metric string, value float64, at time.Time, environment string, opts ...TriggerOption) error {
	var o triggerOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	var ps problems
	checkName(&ps, "metric", metric)
	if !finite(value) {
		ps.add("value", "must be a finite number")
	}
	if !at.IsZero() && (at.Year() < 1970 || at.Year() > 9999) {
		ps.add("at", "must be between the years 1970 and 9999")
	}
	if len(environment) > MaxEnvironmentLength || !printable(environment) {
		ps.add("environment", fmt.Sprintf("must be printable UTF-8 of at most %d bytes", MaxEnvironmentLength))
	}
	if o.key != "" || o.enqueuer != nil || !o.timestamp.IsZero() {
		ps.add("options", "only WithTenant applies to RecordMetric")
	}
	missing := s.checkTenant(&ps, o.tenant, "pass WithTenant")
	if err := tenantErr(ps.err("metric"), missing); err != nil {
		return err
	}
	if _, ok := s.metricStore(); !ok {
		return errNoMetricStore
	}
	if at.IsZero() {
		at = s.clock()
	} else {
		at = at.UTC().Truncate(time.Microsecond)
	}
	start := at.Truncate(MetricResolution)
	sample := MetricBucket{TenantID: o.tenant, Metric: metric, Environment: environment, Start: start,
		Count: 1, Sum: value, Min: value, Max: value, Last: value, LastAt: at}
	return s.buffer(ctx, bufferKey{o.tenant, metric, environment, start.UnixMicro()}, sample)
}

// buffer adds a sample to the buffer, writing the buffer first when it is
// full.
func (s *Service) buffer(ctx context.Context, k bufferKey, sample MetricBucket) error {
	b := s.metrics
	b.mu.Lock()
	for {
		if cur, ok := b.buckets[k]; ok {
			cur.merge(sample)
			b.mu.Unlock()
			return nil
		}
		if len(b.buckets)+b.inFlight < b.max {
			break
		}
		// Full: write it now (back-pressure), and try again.
		b.mu.Unlock()
		err, evalErr := s.flush(ctx, evalWritten)
		s.logEvalErr(ctx, evalErr)
		if err != nil {
			return fmt.Errorf("webhook: record metric %q: the buffer is full and writing it failed: %w", sample.Metric, err)
		}
		b.mu.Lock()
	}
	c := sample
	b.buckets[k] = &c
	s.armFlushLocked()
	b.mu.Unlock()
	return nil
}

// armFlushLocked arms the background flush if the buffer holds samples
// and none is armed. It is called with metrics.mu held.
func (s *Service) armFlushLocked() {
	b := s.metrics
	if b.timer != nil || len(b.buckets) == 0 {
		return
	}
	b.timer = time.AfterFunc(metricFlushInterval, s.backgroundFlush)
}

// backgroundFlush is the armed flush.
func (s *Service) backgroundFlush() {
	ctx, cancel := context.WithTimeout(context.Background(), metricFlushTimeout)
	defer cancel()
	err, evalErr := s.flush(ctx, evalWritten)
	if err != nil {
		s.log.ErrorContext(ctx, "webhook: writing recorded metrics failed; keeping them and trying again", slog.Duration("retry_in", metricFlushInterval), "error", err)
	}
	s.logEvalErr(ctx, evalErr)
}

// logEvalErr logs the error of the evaluation after a background write
// of recorded metrics, which has no caller to return it to.
func (s *Service) logEvalErr(ctx context.Context, err error) {
	if err != nil {
		s.log.ErrorContext(ctx, "webhook: evaluating threshold alerts on recorded metrics failed; the next evaluation retries", "error", err)
	}
}

// Flush writes the metric samples RecordMetric has buffered to Storage
// and evaluates the threshold conditions on the written series. Worker.Run
// does it when it stops and Evaluate before it evaluates; call it when
// your process stops without a Worker, so that the last second's samples
// are not lost. It returns Storage's errors, of the write (the samples
// not written stay buffered) and of the evaluation (the next one
// retries), joined.
func (s *Service) Flush(ctx context.Context) error {
	return errors.Join(s.flush(ctx, evalWritten))
}

// flushMetrics writes the samples buffered by RecordMetric to Storage,
// and evaluates the conditions without a window on the series written
// (Evaluate evaluates the windowed ones next, over every series).
func (s *Service) flushMetrics(ctx context.Context) error {
	return errors.Join(s.flush(ctx, evalUnwindowed))
}

// flushEval says what a flush evaluates after writing.
type flushEval int

const (
	// evalWritten: every threshold condition on the series written.
	evalWritten flushEval = iota
	// evalUnwindowed: only the conditions without a window.
	evalUnwindowed
)

// flush writes the buffer, and evaluates the threshold conditions on the
// series written as eval says. It returns the error of the write and
// that of the evaluation; the caller returns or logs them, once.
func (s *Service) flush(ctx context.Context, eval flushEval) (writeErr, evalErr error) {
	b := s.metrics
	b.flushMu.Lock()
	b.mu.Lock()
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	snap := b.buckets
	if len(snap) == 0 {
		b.mu.Unlock()
		b.flushMu.Unlock()
		return nil, nil
	}
	b.buckets = make(map[bufferKey]*MetricBucket, len(snap))
	b.inFlight = len(snap)
	b.mu.Unlock()

	list := make([]MetricBucket, 0, len(snap))
	for _, mb := range snap {
		list = append(list, *mb)
	}
	// One order for every process, so that concurrent upserts of the same
	// buckets cannot deadlock.
	slices.SortFunc(list, func(x, y MetricBucket) int {
		return cmp.Or(cmp.Compare(x.TenantID, y.TenantID), cmp.Compare(x.Metric, y.Metric),
			cmp.Compare(x.Environment, y.Environment), x.Start.Compare(y.Start))
	})
	written := len(list)
	var err error
	if ms, ok := s.metricStore(); !ok {
		written, err = 0, errNoMetricStore
	} else {
		for i := 0; i < len(list); i += metricFlushBatch {
			if err = ms.AddMetricBuckets(ctx, list[i:min(i+metricFlushBatch, len(list))]); err != nil {
				written = i
				err = fmt.Errorf("webhook: write metrics: %w", err)
				break
			}
		}
	}

	b.mu.Lock()
	b.inFlight = 0
	for _, mb := range list[written:] {
		k := bufferKey{mb.TenantID, mb.Metric, mb.Environment, mb.Start.UnixMicro()}
		if cur, ok := b.buckets[k]; ok {
			*cur = MergeMetricBucket(mb, *cur)
			continue
		}
		c := mb
		b.buckets[k] = &c
	}
	s.armFlushLocked()
	b.mu.Unlock()
	b.flushMu.Unlock()

	if written > 0 {
		evalErr = s.evaluateWritten(ctx, list[:written], eval == evalWritten)
	}
	return err, evalErr
}

// evaluateWritten evaluates the threshold conditions on the series of the
// written buckets, those without a window with each environment's latest
// sample, and, if windows, the windowed ones.
func (s *Service) evaluateWritten(ctx context.Context, written []MetricBucket, windows bool) error {
	idx, err := s.index(ctx)
	if err != nil {
		return err
	}
	flushed := make(map[seriesID]map[string]MetricBucket)
	for _, mb := range written {
		id := seriesID{mb.TenantID, mb.Metric}
		envs := flushed[id]
		if envs == nil {
			envs = make(map[string]MetricBucket)
			flushed[id] = envs
		}
		if cur, ok := envs[mb.Environment]; !ok || !mb.LastAt.Before(cur.LastAt) {
			envs[mb.Environment] = mb
		}
	}
	return s.evalThresholds(ctx, s.clock(), idx, flushed, windows)
}

// pruneMetrics deletes the metric buckets older than MetricRetention, if
// the last prune of this Service is an interval ago.
func (s *Service) pruneMetrics(ctx context.Context, now time.Time) error {
	ms, ok := s.metricStore()
	if !ok {
		return nil
	}
	last := s.metrics.lastPrune.Load()
	if last != 0 && now.Sub(time.UnixMicro(last)) < metricPruneInterval {
		return nil
	}
	if !s.metrics.lastPrune.CompareAndSwap(last, now.UnixMicro()) {
		return nil // another evaluation prunes
	}
	n, err := ms.PruneMetrics(ctx, now.Add(-MetricRetention))
	if err != nil {
		return fmt.Errorf("webhook: prune metrics: %w", err)
	}
	if n > 0 {
		s.log.DebugContext(ctx, "webhook: pruned old metric buckets", "buckets", n)
	}
	return nil
}
