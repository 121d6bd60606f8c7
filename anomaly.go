package webhook

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Anomaly triggers: a detector (pewma.go) per webhook, trigger and
// environment watches a recorded metric, one closed bucket at a time,
// and an alert state (alert.go) turns its verdicts into one "$anomaly"
// per incident and one "$anomaly_resolved" when the metric is back in
// the band. Both are kept in one TriggerState, changed by one
// compare-and-set per batch of buckets together with the notification
// it sends, so that Services evaluating at once neither notify twice nor
// feed the detector a bucket twice.

// Limits and defaults of anomaly triggers.
const (
	// DefaultAnomalyBucket is an anomaly trigger's bucket width when
	// Trigger.BucketSeconds is zero.
	DefaultAnomalyBucket = time.Minute
	// MaxAnomalyBucket is the widest bucket an anomaly trigger may use.
	MaxAnomalyBucket = 24 * time.Hour
	// DefaultAnomalySensitivity is an anomaly trigger's sensitivity, in
	// standard deviations, when Trigger.Sensitivity is zero.
	DefaultAnomalySensitivity = 3.0
	// MaxAnomalySensitivity is the largest sensitivity an anomaly trigger
	// may use.
	MaxAnomalySensitivity = 10.0
	// AnomalyCatchUp is how many closed buckets an anomaly detector
	// catches up on after its series was not evaluated for a while (no
	// Service ran): older buckets are skipped, not judged.
	AnomalyCatchUp = 1440
)

// anomalySettle is how long after a bucket ends it is judged, so that
// the samples other processes buffered for it (RecordMetric flushes at
// least every second) have reached Storage.
const anomalySettle = 5 * time.Second

// anomalyRule is the alert rule of every anomaly trigger: it fires on
// the first anomalous bucket, never renotifies, and resolves (notifying)
// on the first bucket back in the band.
var anomalyRule = alertRule{notifyResolved: true}

// anomalySpec is a validated anomaly trigger's detector configuration,
// with its defaults applied.
type anomalySpec struct {
	metric      string
	aggregation Aggregation
	bucket      time.Duration
	sensitivity float64
	direction   AnomalyDirection
	// part is the state key's part: a fingerprint of what the detector
	// learns from (metric, aggregation and bucket), so that a trigger
	// edited to watch something else starts afresh, while a new
	// sensitivity or direction keeps what was learnt.
	part string
}

// validateAnomaly adds the problems of an anomaly trigger's detector
// fields to ps under prefix, and returns its configuration (meaningful
// only when none was added).
func validateAnomaly(ps *problems, prefix string, t Trigger) *anomalySpec {
	sp := &anomalySpec{
		metric:      t.Metric,
		aggregation: t.Aggregation,
		bucket:      time.Duration(t.BucketSeconds) * time.Second,
		sensitivity: t.Sensitivity,
		direction:   t.Direction,
	}
	switch {
	case t.Metric == "":
		ps.add(joinPath(prefix, "metric"), "an anomaly trigger needs a metric")
	case len(t.Metric) > MaxEventNameLength || !printable(t.Metric):
		ps.add(joinPath(prefix, "metric"), fmt.Sprintf("must be printable UTF-8 of at most %d bytes", MaxEventNameLength))
	}
	switch t.Aggregation {
	case "":
		sp.aggregation = AggregateLast
	case AggregateSum, AggregateAvg, AggregateMin, AggregateMax, AggregateCount, AggregateLast:
	default:
		ps.add(joinPath(prefix, "aggregation"), fmt.Sprintf("unknown aggregation %q (want sum, avg, min, max, count or last)", truncate(string(t.Aggregation))))
	}
	res := int64(MetricResolution / time.Second)
	switch {
	case t.BucketSeconds == 0:
		sp.bucket = DefaultAnomalyBucket
	case t.BucketSeconds < res || t.BucketSeconds > int64(MaxAnomalyBucket/time.Second) || t.BucketSeconds%res != 0:
		ps.add(joinPath(prefix, "bucket_seconds"), fmt.Sprintf("must be a multiple of %d between %d and %d (one day), or 0 for %d", res, res, int64(MaxAnomalyBucket/time.Second), int64(DefaultAnomalyBucket/time.Second)))
	}
	switch {
	case t.Sensitivity == 0:
		sp.sensitivity = DefaultAnomalySensitivity
	case math.IsNaN(t.Sensitivity) || t.Sensitivity < 0 || t.Sensitivity > MaxAnomalySensitivity:
		ps.add(joinPath(prefix, "sensitivity"), fmt.Sprintf("must be a number of standard deviations above 0 and at most %g, or 0 for %g", MaxAnomalySensitivity, DefaultAnomalySensitivity))
	}
	switch t.Direction {
	case "":
		sp.direction = AnomalyBoth
	case AnomalyBoth, AnomalyAbove, AnomalyBelow:
	default:
		ps.add(joinPath(prefix, "direction"), fmt.Sprintf("unknown direction %q (want both, above or below)", truncate(string(t.Direction))))
	}
	h := fnv.New32a()
	h.Write([]byte(sp.metric))
	h.Write([]byte{0})
	h.Write([]byte(sp.aggregation))
	h.Write([]byte{0})
	h.Write([]byte(strconv.FormatInt(int64(sp.bucket/time.Second), 10)))
	sp.part = fmt.Sprintf("%08x", h.Sum32())
	return sp
}

// zeroFilled reports whether an empty bucket counts as 0 (sum and count:
// nothing happened) rather than being skipped (the other aggregations
// have no value without a sample).
func (sp *anomalySpec) zeroFilled() bool {
	return sp.aggregation == AggregateSum || sp.aggregation == AggregateCount
}

// anomalyValue is the value of a stored bucket under agg.
func anomalyValue(b MetricBucket, agg Aggregation) float64 {
	switch agg {
	case AggregateSum:
		return b.Sum
	case AggregateCount:
		return float64(b.Count)
	case AggregateAvg:
		return b.Sum / float64(b.Count)
	case AggregateMin:
		return b.Min
	case AggregateMax:
		return b.Max
	}
	return b.Last
}

// evaluateAnomalies runs the detectors of the indexed webhooks' anomaly
// triggers over the buckets closed by now. It does nothing over a
// Storage that keeps no metrics (anomaly triggers then fire only on
// TriggerAnomaly calls).
func (s *Service) evaluateAnomalies(ctx context.Context, now time.Time, idx *index) error {
	ms, ok := s.metricStore()
	if !ok {
		return nil
	}
	if _, ok := s.stateStore(); !ok {
		return nil
	}
	var hooks []*compiledWebhook
	var ids []string
	for _, cw := range idx.stateful {
		if slices.ContainsFunc(cw.triggers, func(ct *compiledTrigger) bool { return ct.anomaly != nil }) {
			hooks = append(hooks, cw)
			ids = append(ids, cw.w.ID)
		}
	}
	if len(hooks) == 0 {
		return nil
	}
	states, err := s.statesByKey(ctx, ids)
	if err != nil {
		return err
	}
	byHook := make(map[string][]*TriggerState)
	for _, st := range states {
		byHook[st.WebhookID] = append(byHook[st.WebhookID], st)
	}
	var errs []error
	for _, cw := range hooks {
		for i, ct := range cw.triggers {
			if ct.anomaly == nil {
				continue
			}
			if err := ctx.Err(); err != nil {
				return errors.Join(append(errs, err)...)
			}
			if err := s.evaluateAnomaly(ctx, ms, cw.w, i, ct.anomaly, now, byHook[cw.w.ID]); err != nil {
				errs = append(errs, fmt.Errorf("webhook %s: triggers[%d]: %w", cw.w.ID, i, err))
			}
		}
	}
	return errors.Join(errs...)
}

// anomalySeries is what one evaluation knows of one series (one
// environment of one anomaly trigger of one webhook).
type anomalySeries struct {
	w       *Webhook
	trigger int
	sp      *anomalySpec
	env     string
	// values holds the closed buckets with samples, by start (Unix
	// microseconds).
	values map[int64]float64
	// first is the first bucket with samples at or after fresh; zero if
	// none. A new series starts there.
	first time.Time
	// floor is the oldest bucket a series catches up on; end the end of
	// the last closed bucket.
	floor, end time.Time
	// now is the evaluation's time.
	now time.Time
}

// evaluateAnomaly brings the series of one anomaly trigger (its
// environments) up to the buckets closed by now: those it has state for
// and those with samples in the last pewmaWarmup buckets, which a new
// series learns from first.
func (s *Service) evaluateAnomaly(ctx context.Context, ms MetricStore, w *Webhook, trigger int, sp *anomalySpec, now time.Time, hookStates []*TriggerState) error {
	end := now.Add(-anomalySettle).Truncate(sp.bucket)
	floor := end.Add(-AnomalyCatchUp * sp.bucket)
	fresh := end.Add(-pewmaWarmup * sp.bucket)
	prefix := stateKey("anomaly", w.ID, trigger, sp.part, "")
	known := make(map[string]*TriggerState)
	from, upToDate := fresh, true
	for _, st := range hookStates {
		if !strings.HasPrefix(st.Key, prefix) || st.Detector == nil || !w.hasEnvironment(st.Environment) {
			continue
		}
		known[st.Environment] = st
		next := laterOf(st.Detector.LastBucket.Add(sp.bucket), floor)
		if next.Before(from) {
			from = next
		}
		upToDate = upToDate && !next.Before(end)
	}
	// Every known series has judged the last closed bucket, so the
	// buckets of new environments (which are new here too) have been
	// looked at: nothing to do until the next bucket closes.
	if (len(known) > 0 && upToDate) || !from.Before(end) {
		return nil
	}
	q := MetricQuery{TenantID: w.TenantID, Metric: sp.metric, From: from, To: end, Step: sp.bucket}
	if len(w.Environments) > 0 {
		q.Environments = w.Environments
	}
	rows, err := ms.QueryMetric(ctx, q)
	if err != nil {
		return fmt.Errorf("query metric %q: %w", sp.metric, err)
	}
	series := make(map[string]*anomalySeries)
	get := func(env string) *anomalySeries {
		sr := series[env]
		if sr == nil {
			sr = &anomalySeries{w: w, trigger: trigger, sp: sp, env: env, values: map[int64]float64{}, floor: floor, end: end, now: now}
			series[env] = sr
		}
		return sr
	}
	for env := range known {
		get(env)
	}
	for _, b := range rows {
		if !w.hasEnvironment(b.Environment) {
			continue
		}
		sr := get(b.Environment)
		sr.values[b.Start.UnixMicro()] = anomalyValue(b, sp.aggregation)
		if !b.Start.Before(fresh) && (sr.first.IsZero() || b.Start.Before(sr.first)) {
			sr.first = b.Start
		}
	}
	envs := make([]string, 0, len(series))
	for env := range series {
		envs = append(envs, env)
	}
	slices.Sort(envs)
	var errs []error
	for _, env := range envs {
		st := known[env]
		if st == nil {
			st = &TriggerState{Key: prefix + env, TenantID: w.TenantID, WebhookID: w.ID, Environment: env}
		}
		if err := s.advanceAnomaly(ctx, series[env], st); err != nil {
			errs = append(errs, fmt.Errorf("environment %q: %w", env, err))
		}
	}
	return errors.Join(errs...)
}

// advanceAnomaly feeds the series' closed buckets that st has not seen to
// its detector and alert, in order, saving the state after each
// notification (with it) and after the last bucket.
func (s *Service) advanceAnomaly(ctx context.Context, sr *anomalySeries, st *TriggerState) error {
	for {
		var saved *TriggerState
		var more bool
		_, err := s.updateState(ctx, st, func(next *TriggerState) (stateDecision, error) {
			d, m, err := s.stepAnomaly(sr, next)
			saved, more = nil, false
			if err == nil && d.changed {
				saved, more = next, m
			}
			return d, err
		})
		if err != nil || saved == nil || !more {
			return err
		}
		st = saved
		st.Version++ // the version SaveTriggerState stored it at
	}
}

// stepAnomaly feeds st the series' buckets after its last one, until one
// of them makes the alert notify or none is left. It returns the
// decision (the notification to enqueue with the state) and whether
// buckets are left. It is a pure function of st (see updateState).
func (s *Service) stepAnomaly(sr *anomalySeries, st *TriggerState) (stateDecision, bool, error) {
	width := sr.sp.bucket
	var from time.Time
	if st.Detector == nil {
		if sr.first.IsZero() {
			return stateDecision{}, false, nil
		}
		st.Detector = &DetectorState{}
		from = sr.first
	} else {
		from = laterOf(st.Detector.LastBucket.Add(width), sr.floor)
	}
	d := st.Detector
	changed := false
	for b := from; b.Before(sr.end); b = b.Add(width) {
		d.LastBucket = b
		changed = true
		x, ok := sr.values[b.UnixMicro()]
		if !ok && sr.sp.zeroFilled() {
			x, ok = 0, true
		}
		if !ok {
			continue // an empty bucket: the detector and the alert wait
		}
		v, ok := d.observe(x, sr.sp.sensitivity, sr.sp.direction)
		if !ok {
			continue
		}
		at := b.Add(width)
		before := st.Alert.Status
		notice, _ := st.Alert.step(anomalyRule, alertObservation{breach: v.anomalous, recovered: !v.anomalous, value: x}, at,
			func() string { return b.UTC().Format("20060102T150405Z") })
		if notice == noticeNone {
			continue
		}
		if notice == noticeFired {
			d.Side = v.side
		}
		enq, err := s.anomalyMessage(sr, st, notice, v, x, b)
		if err != nil {
			return stateDecision{}, false, err
		}
		return stateDecision{enqueue: enq, changed: true, kind: TriggerAnomaly, transition: transitionOf(before, st.Alert.Status)}, at.Before(sr.end), nil
	}
	return stateDecision{changed: changed}, false, nil
}

// anomalyMessage builds the delivery of an anomaly trigger's notice
// about the bucket starting at start, with value x judged as v.
func (s *Service) anomalyMessage(sr *anomalySeries, st *TriggerState, notice alertNotice, v pewmaVerdict, x float64, start time.Time) (*EnqueueParams, error) {
	a := st.Alert
	eventType, status := EventTypeAnomaly, "firing"
	if notice == noticeResolved {
		eventType, status = EventTypeAnomalyResolved, "resolved"
	}
	data := map[string]any{
		"metric":         sr.sp.metric,
		"value":          x,
		"expected":       v.expected,
		"lower":          v.lower,
		"upper":          v.upper,
		"score":          v.score,
		"direction":      string(st.Detector.Side),
		"sensitivity":    sr.sp.sensitivity,
		"status":         status,
		"episode_id":     a.EpisodeID,
		"started_at":     a.StartedAt,
		"fired_at":       a.FiredAt,
		"aggregation":    string(sr.sp.aggregation),
		"bucket_seconds": int64(sr.sp.bucket / time.Second),
		"bucket_start":   start.UTC(),
	}
	if notice == noticeResolved {
		data["resolved_at"] = a.ResolvedAt
		data["duration_seconds"] = a.ResolvedAt.Sub(a.StartedAt).Seconds()
	}
	key := fmt.Sprintf("anomaly:%s:%d:%s:%s:%s", sr.w.ID, sr.trigger, sr.env, a.EpisodeID, notice)
	at := start.Add(sr.sp.bucket)
	return s.messageFor(sr.w, eventType, data, sr.env, key, at, sr.now)
}

// laterOf returns the later of a and b.
func laterOf(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}
