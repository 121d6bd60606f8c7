package webhook

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"strconv"
	"strings"
	"time"
)

// Threshold conditions: their validation, how a value is judged, and
// their evaluation over metric windows.

// Limits on the timing fields of a Condition.
const (
	// MaxForSeconds is the longest Condition.ForSeconds: one day. A
	// breach that must hold longer is better written as a window.
	MaxForSeconds = 24 * 60 * 60
	// MinRepeatIntervalSeconds is the shortest positive
	// Condition.RepeatIntervalSeconds, so that an alert cannot renotify
	// faster than a minute.
	MinRepeatIntervalSeconds = 60
)

// validateCondition adds the problems of one threshold condition to ps
// under field ("triggers[0].conditions[1]").
func validateCondition(ps *problems, field string, c Condition) {
	if c.Metric == "" {
		ps.add(field+".metric", "must not be empty")
	} else if len(c.Metric) > MaxEventNameLength || !printable(c.Metric) {
		ps.add(field+".metric", fmt.Sprintf("must be printable UTF-8 of at most %d bytes", MaxEventNameLength))
	}
	switch c.Operator {
	case ConditionGT, ConditionGTE, ConditionLT, ConditionLTE, ConditionEQ:
	default:
		ps.add(field+".operator", fmt.Sprintf("unknown condition operator %q (want gt, gte, lt, lte or eq)", truncate(string(c.Operator))))
	}
	if !finite(c.Value) {
		ps.add(field+".value", "must be a finite number")
	}
	switch {
	case c.WindowSeconds < 0:
		ps.add(field+".window_seconds", "must not be negative (0 means no window)")
	case c.WindowSeconds > MaxWindow:
		ps.add(field+".window_seconds", fmt.Sprintf("must be at most %d (31 days)", MaxWindow))
	}
	switch c.Aggregation {
	case "", AggregateLast:
	case AggregateSum, AggregateAvg, AggregateMin, AggregateMax, AggregateCount:
		if c.WindowSeconds == 0 {
			ps.add(field+".aggregation", fmt.Sprintf("%s needs a window: set window_seconds (without one the condition sees each value as it is given)", c.Aggregation))
		}
	default:
		ps.add(field+".aggregation", fmt.Sprintf("unknown aggregation %q (want sum, avg, min, max, count or last)", truncate(string(c.Aggregation))))
	}
	switch {
	case c.ForSeconds < 0:
		ps.add(field+".for_seconds", "must not be negative (0 fires at once)")
	case c.ForSeconds > MaxForSeconds:
		ps.add(field+".for_seconds", fmt.Sprintf("must be at most %d (one day); for a breach that must hold longer, aggregate over a window", MaxForSeconds))
	}
	switch {
	case c.RepeatIntervalSeconds < 0:
		ps.add(field+".repeat_interval_seconds", "must not be negative (0 never renotifies)")
	case c.RepeatIntervalSeconds > 0 && c.RepeatIntervalSeconds < MinRepeatIntervalSeconds:
		ps.add(field+".repeat_interval_seconds", fmt.Sprintf("must be 0 (never renotify) or at least %d", MinRepeatIntervalSeconds))
	case c.RepeatIntervalSeconds > MaxWindow:
		ps.add(field+".repeat_interval_seconds", fmt.Sprintf("must be at most %d (31 days)", MaxWindow))
	}
	if r := c.RecoveryValue; r != nil {
		switch {
		case !finite(*r):
			ps.add(field+".recovery_value", "must be a finite number")
		case c.Operator == ConditionEQ:
			ps.add(field+".recovery_value", "does not apply to eq: an eq alert resolves when the value differs")
		case (c.Operator == ConditionGT || c.Operator == ConditionGTE) && *r > c.Value:
			ps.add(field+".recovery_value", fmt.Sprintf("must be at most the value (%v) for %s: the alert resolves at or below it", c.Value, c.Operator))
		case (c.Operator == ConditionLT || c.Operator == ConditionLTE) && *r < c.Value:
			ps.add(field+".recovery_value", fmt.Sprintf("must be at least the value (%v) for %s: the alert resolves at or above it", c.Value, c.Operator))
		}
	}
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// aggregation returns the condition's aggregation, last by default.
func (c Condition) aggregation() Aggregation {
	if c.Aggregation == "" {
		return AggregateLast
	}
	return c.Aggregation
}

// breached reports whether v breaches the condition.
func (c Condition) breached(v float64) bool {
	if math.IsNaN(v) {
		return false
	}
	if c.Operator == ConditionEQ {
		return floatEqual(v, c.Value)
	}
	return compareFloats(string(c.Operator), v, c.Value)
}

// recovers reports whether v satisfies the condition's recovery: past
// RecoveryValue, with the strictness of Datadog's monitors (gt recovers
// at <=, gte at <, lt at >=, lte at >), or simply no breach without one.
func (c Condition) recovers(v float64) bool {
	if math.IsNaN(v) {
		return false
	}
	if c.RecoveryValue == nil || c.Operator == ConditionEQ {
		return !c.breached(v)
	}
	r := *c.RecoveryValue
	switch c.Operator {
	case ConditionGT:
		return v <= r
	case ConditionGTE:
		return v < r
	case ConditionLT:
		return v >= r
	case ConditionLTE:
		return v > r
	}
	return false
}

// observe judges one value.
func (c Condition) observe(v float64) alertObservation {
	return alertObservation{breach: c.breached(v), recovered: c.recovers(v), value: v}
}

// rule returns what the condition says about its alerts.
func (c Condition) rule() alertRule {
	return alertRule{
		forDur:         time.Duration(c.ForSeconds) * time.Second,
		repeat:         time.Duration(c.RepeatIntervalSeconds) * time.Second,
		notifyResolved: c.NotifyResolved == nil || *c.NotifyResolved,
	}
}

// windowBuckets returns how many buckets of MetricResolution the
// condition's window spans: WindowSeconds rounded up to whole buckets.
func (c Condition) windowBuckets() int64 {
	res := int64(MetricResolution / time.Second)
	return (c.WindowSeconds + res - 1) / res
}

// windowRange returns the bucket starts [from, to) a window of n buckets
// covers at now: the bucket holding now and the n-1 before it.
func windowRange(n int64, now time.Time) (from, to time.Time) {
	to = now.Truncate(MetricResolution).Add(MetricResolution)
	return to.Add(-time.Duration(n) * MetricResolution), to
}

// observeWindow judges a window's aggregate; ok is false for an empty
// window. An empty window has a count and a sum of 0, and no average,
// minimum, maximum or last value.
func (c Condition) observeWindow(b MetricBucket, ok bool) alertObservation {
	if !ok || b.Count == 0 {
		switch c.aggregation() {
		case AggregateCount, AggregateSum:
			return c.observe(0)
		}
		return alertObservation{noData: true}
	}
	var v float64
	switch c.aggregation() {
	case AggregateSum:
		v = b.Sum
	case AggregateAvg:
		v = b.Sum / float64(b.Count)
	case AggregateMin:
		v = b.Min
	case AggregateMax:
		v = b.Max
	case AggregateCount:
		v = float64(b.Count)
	default:
		v = b.Last
	}
	return c.observe(v)
}

// conditionPart names a condition within its trigger in state keys: its
// index and a fingerprint of what defines its breach (metric, operator,
// value, window, aggregation, recovery value), so that a condition edited
// in any of these starts with a fresh state. Editing its for, repeat or
// notify_resolved fields keeps the state.
func conditionPart(i int, c Condition) string {
	h := fnv.New32a()
	var b strings.Builder
	b.WriteString(c.Metric)
	b.WriteByte(0)
	b.WriteString(string(c.Operator))
	b.WriteByte(0)
	b.WriteString(strconv.FormatFloat(c.Value, 'g', -1, 64))
	b.WriteByte(0)
	b.WriteString(strconv.FormatInt(c.windowBuckets(), 10))
	b.WriteByte(0)
	b.WriteString(string(c.aggregation()))
	if c.RecoveryValue != nil {
		b.WriteByte(0)
		b.WriteString(strconv.FormatFloat(*c.RecoveryValue, 'g', -1, 64))
	}
	h.Write([]byte(b.String()))
	return fmt.Sprintf("%d-%08x", i, h.Sum32())
}

// condRef is one threshold condition of one indexed webhook.
type condRef struct {
	w    *Webhook
	trig int
	c    Condition
	part string
}

// key returns the state key of the condition in env.
func (r condRef) key(env string) string { return stateKey("threshold", r.w.ID, r.trig, r.part, env) }

// thresholdConditions lists the threshold conditions of the webhooks
// for which keep holds.
func thresholdConditions(hooks []*compiledWebhook, keep func(w *Webhook, c Condition) bool) []condRef {
	var out []condRef
	for _, cw := range hooks {
		for ti, t := range cw.triggers {
			if t.typ != TriggerThreshold {
				continue
			}
			for ci, c := range t.conditions {
				if keep(cw.w, c) {
					out = append(out, condRef{w: cw.w, trig: ti, c: c, part: conditionPart(ci, c)})
				}
			}
		}
	}
	return out
}

// seriesID names a tenant's metric.
type seriesID struct{ tenant, metric string }

// windowID names one metric query: a tenant's metric over a window.
type windowID struct {
	seriesID
	buckets int64
}

// evaluateThresholds evaluates the threshold conditions of the indexed
// webhooks at now: windowed conditions over their windows, and the
// pending and firing alerts of conditions without a window with the
// last value they saw, so that for_seconds and repeat intervals elapse
// without new values. It prunes the metric buckets past MetricRetention
// too.
func (s *Service) evaluateThresholds(ctx context.Context, now time.Time, idx *index) error {
	return errors.Join(s.evalThresholds(ctx, now, idx, nil, true), s.pruneMetrics(ctx, now))
}

// evalThresholds evaluates threshold conditions at now. With flushed nil
// it evaluates them all (the tick); otherwise only the conditions on the
// flushed series, those without a window with the latest flushed sample
// of each environment. windowed false leaves out the windowed conditions.
func (s *Service) evalThresholds(ctx context.Context, now time.Time, idx *index, flushed map[seriesID]map[string]MetricBucket, windowed bool) error {
	refs := thresholdConditions(idx.stateful, func(w *Webhook, c Condition) bool {
		if !windowed && c.WindowSeconds > 0 {
			return false
		}
		if flushed == nil {
			return true
		}
		_, ok := flushed[seriesID{w.TenantID, c.Metric}]
		return ok
	})
	if len(refs) == 0 {
		return nil
	}
	var ids []string
	for _, r := range refs {
		if len(ids) == 0 || ids[len(ids)-1] != r.w.ID {
			ids = append(ids, r.w.ID)
		}
	}
	states, err := s.statesByKey(ctx, ids)
	if err != nil {
		return err
	}
	// The stored states of each condition, by their key without the
	// environment (which comes last).
	byCond := make(map[string][]*TriggerState)
	for k, st := range states {
		if strings.HasPrefix(k, "threshold:") && strings.HasSuffix(k, st.Environment) {
			p := k[:len(k)-len(st.Environment)]
			byCond[p] = append(byCond[p], st)
		}
	}
	var errs []error
	windows := make(map[windowID]map[string]MetricBucket)
	if ms, ok := s.metricStore(); ok {
		for _, r := range refs {
			if r.c.WindowSeconds == 0 {
				continue
			}
			wid := windowID{seriesID{r.w.TenantID, r.c.Metric}, r.c.windowBuckets()}
			if _, done := windows[wid]; done {
				continue
			}
			from, to := windowRange(wid.buckets, now)
			got, err := ms.QueryMetric(ctx, MetricQuery{TenantID: wid.tenant, Metric: wid.metric, From: from, To: to})
			if err != nil {
				errs = append(errs, fmt.Errorf("webhook: query metric %q: %w", wid.metric, err))
				continue
			}
			byEnv := make(map[string]MetricBucket, len(got))
			for _, b := range got {
				byEnv[b.Environment] = b
			}
			windows[wid] = byEnv
		}
	}
	for _, r := range refs {
		stored := byCond[r.key("")]
		storedIn := func(env string) *TriggerState {
			for _, st := range stored {
				if st.Environment == env {
					return st
				}
			}
			return nil
		}
		active := func(st *TriggerState) bool {
			return st != nil && (st.Alert.Status == AlertPending || st.Alert.Status == AlertFiring)
		}
		if r.c.WindowSeconds == 0 {
			if flushed != nil {
				for env, b := range flushed[seriesID{r.w.TenantID, r.c.Metric}] {
					if !r.w.hasEnvironment(env) {
						continue
					}
					_, err := s.stepCondition(ctx, r, env, storedIn(env), r.c.observe(b.Last), now, now, nil)
					errs = append(errs, err)
				}
				continue
			}
			for _, st := range stored {
				if active(st) && r.w.hasEnvironment(st.Environment) {
					_, err := s.stepCondition(ctx, r, st.Environment, st, r.c.observe(st.Alert.LastValue), now, now, nil)
					errs = append(errs, err)
				}
			}
			continue
		}
		byEnv, ok := windows[windowID{seriesID{r.w.TenantID, r.c.Metric}, r.c.windowBuckets()}]
		if !ok {
			continue // its query failed (or there is no MetricStore)
		}
		envs := r.w.Environments
		if len(envs) == 0 {
			for env := range byEnv {
				envs = append(envs, env)
			}
			// And the environments with state: an emptied window
			// resolves, and a count or sum of 0 is judged.
			for _, st := range stored {
				if _, seen := byEnv[st.Environment]; !seen {
					envs = append(envs, st.Environment)
				}
			}
		}
		for _, env := range envs {
			b, has := byEnv[env]
			st := storedIn(env)
			obs := r.c.observeWindow(b, has)
			if !active(st) && !obs.breach {
				continue // ok, and stays ok: nothing to write
			}
			_, err := s.stepCondition(ctx, r, env, st, obs, now, now, nil)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// stepCondition steps the alert state of condition r in env (st is the
// stored state, nil for none) by obs at now, and saves it with the
// notification the step asks for, timestamped ts. extra is added to the
// notification's data. It returns the enqueued delivery IDs.
func (s *Service) stepCondition(ctx context.Context, r condRef, env string, st *TriggerState, obs alertObservation, now, ts time.Time, extra map[string]any) ([]string, error) {
	if st == nil {
		st = &TriggerState{Key: r.key(env), TenantID: r.w.TenantID, WebhookID: r.w.ID, Environment: env}
	}
	rule := r.c.rule()
	res, err := s.updateState(ctx, st, func(st *TriggerState) (stateDecision, error) {
		var idErr error
		before := st.Alert.Status
		notice, changed := st.Alert.step(rule, obs, now, func() string {
			id, err := newID()
			idErr = err
			return id
		})
		if idErr != nil {
			return stateDecision{}, idErr
		}
		transition := transitionOf(before, st.Alert.Status)
		if notice == noticeNone {
			return stateDecision{changed: changed, kind: TriggerThreshold, transition: transition}, nil
		}
		eventType, data, suffix := alertMessage(r.c, &st.Alert, notice, obs)
		for k, v := range extra {
			data[k] = v
		}
		key := fmt.Sprintf("alert:%s:%d:%s:%s:%s:%s", r.w.ID, r.trig, r.part, env, st.Alert.EpisodeID, suffix)
		p, err := s.messageFor(r.w, eventType, data, env, key, ts, now)
		if err != nil {
			return stateDecision{}, err
		}
		return stateDecision{enqueue: p, changed: true, kind: TriggerThreshold, transition: transition}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("webhook: threshold alert of webhook %s: %w", r.w.ID, err)
	}
	if res.Duplicate {
		return nil, nil
	}
	return res.DeliveryIDs, nil
}

// alertMessage returns the event type, the data and the idempotency key
// suffix of the notice of alert st of condition c.
func alertMessage(c Condition, st *AlertState, notice alertNotice, obs alertObservation) (string, map[string]any, string) {
	data := map[string]any{
		"metric":             c.Metric,
		"threshold":          c.Value,
		"exceeded":           obs.breach,
		"operator":           string(c.Operator),
		"aggregation":        string(c.aggregation()),
		"window_seconds":     c.WindowSeconds,
		"episode_id":         st.EpisodeID,
		"started_at":         st.StartedAt,
		"fired_at":           st.FiredAt,
		"notification_count": st.NotificationCount,
	}
	if obs.noData {
		data["value"] = nil
	} else {
		data["value"] = obs.value
	}
	if c.RecoveryValue != nil {
		data["recovery_value"] = *c.RecoveryValue
	}
	switch notice {
	case noticeResolved:
		data["status"] = "resolved"
		data["reason"] = "recovered"
		if obs.noData {
			data["reason"] = "no_data"
		}
		data["resolved_at"] = st.ResolvedAt
		data["duration_seconds"] = st.ResolvedAt.Sub(st.StartedAt).Seconds()
		return EventTypeThresholdResolved, data, "resolved"
	case noticeRenotify:
		data["status"] = "firing"
		data["reason"] = "renotify"
		return EventTypeThresholdAlert, data, "renotify-" + strconv.Itoa(st.NotificationCount)
	default:
		data["status"] = "firing"
		data["reason"] = "fired"
		return EventTypeThresholdAlert, data, "fired"
	}
}
