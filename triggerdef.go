package webhook

import (
	"fmt"
	"math"
	"strings"
)

// TriggerType says which kind of occurrence a Trigger listens to. The values
// are the specification's JSON names.
type TriggerType string

// The seven trigger types. Event, error, funnel and cohort triggers match
// each trigger call on its own; threshold, anomaly and scheduled triggers
// are stateful: the Service evaluates them (on RecordMetric,
// TriggerThreshold and TriggerAnomaly calls, and periodically while a
// Worker runs; see Service.Evaluate) and keeps their state in Storage
// (see TriggerStateStore).
const (
	// TriggerEvent fires on every matching TriggerEvent call.
	TriggerEvent TriggerType = "event"
	// TriggerError fires on TriggerError calls (event type "$error").
	TriggerError TriggerType = "error"
	// TriggerThreshold fires once when a metric breaches one of the
	// trigger's conditions ("$threshold_alert"), and once when it
	// recovers ("$threshold_resolved"); see Condition.
	TriggerThreshold TriggerType = "threshold"
	// TriggerAnomaly fires once when a metric's closed buckets leave the
	// band its detector expects ("$anomaly"), and once when they return
	// ("$anomaly_resolved"), or on TriggerAnomaly calls.
	TriggerAnomaly TriggerType = "anomaly"
	// TriggerScheduled sends a summary once per period
	// ("$scheduled_summary"); see Trigger.Schedule and Config.Summary.
	TriggerScheduled TriggerType = "scheduled"
	// TriggerFunnelComplete fires on TriggerFunnelComplete calls
	// ("$funnel_complete").
	TriggerFunnelComplete TriggerType = "funnel_complete"
	// TriggerCohortEntry fires on TriggerCohortEntry calls
	// ("$cohort_entry").
	TriggerCohortEntry TriggerType = "cohort_entry"
)

// Event types of the library's own occurrences.
const (
	EventTypeError             = "$error"
	EventTypeThresholdAlert    = "$threshold_alert"
	EventTypeThresholdResolved = "$threshold_resolved"
	EventTypeAnomaly           = "$anomaly"
	EventTypeAnomalyResolved   = "$anomaly_resolved"
	EventTypeScheduledSummary  = "$scheduled_summary"
	EventTypeFunnelComplete    = "$funnel_complete"
	EventTypeCohortEntry       = "$cohort_entry"
	EventTypeTest              = "$test"
)

// Valid reports whether t is one of the seven trigger types.
func (t TriggerType) Valid() bool {
	switch t {
	case TriggerEvent, TriggerError, TriggerThreshold, TriggerAnomaly,
		TriggerScheduled, TriggerFunnelComplete, TriggerCohortEntry:
		return true
	}
	return false
}

// Supported reports whether the library can fire triggers of type t:
// every valid type.
func (t TriggerType) Supported() bool { return t.Valid() }

// Stateful reports whether triggers of type t are evaluated by the
// Service against state kept in Storage (threshold, anomaly and
// scheduled) rather than only matched against trigger calls. Anomaly
// triggers are both: their detector keeps state, and they also match
// TriggerAnomaly calls (see Trigger.Match).
func (t TriggerType) Stateful() bool {
	switch t {
	case TriggerThreshold, TriggerAnomaly, TriggerScheduled:
		return true
	}
	return false
}

// fits reports whether an occurrence with the given event type is
// matched, call by call, against triggers of type t: TriggerEvent
// calls raise any name not starting with "$", TriggerError "$error",
// TriggerFunnelComplete "$funnel_complete", TriggerCohortEntry
// "$cohort_entry", TriggerAnomaly "$anomaly" and "$anomaly_resolved"
// (the host's own anomalies). Threshold and scheduled triggers fit
// nothing: their deliveries come from their state machines, not from
// matching.
func (t TriggerType) fits(eventType string) bool {
	switch t {
	case TriggerEvent:
		return eventType != "" && !strings.HasPrefix(eventType, "$")
	case TriggerError:
		return eventType == EventTypeError
	case TriggerFunnelComplete:
		return eventType == EventTypeFunnelComplete
	case TriggerCohortEntry:
		return eventType == EventTypeCohortEntry
	case TriggerAnomaly:
		return eventType == EventTypeAnomaly || eventType == EventTypeAnomalyResolved
	}
	return false
}

// ConditionOperator compares a metric's value with a Condition's threshold.
type ConditionOperator string

// The condition operators.
const (
	ConditionGT  ConditionOperator = "gt"  // value > threshold
	ConditionGTE ConditionOperator = "gte" // value >= threshold
	ConditionLT  ConditionOperator = "lt"  // value < threshold
	ConditionLTE ConditionOperator = "lte" // value <= threshold
	ConditionEQ  ConditionOperator = "eq"  // value equals threshold within a relative 1e-9
)

// Limits on trigger definitions, enforced by validation.
const (
	// MaxRegexLength is the longest regular expression a FilterRegex
	// filter may hold, in bytes.
	MaxRegexLength = 1024
	// MaxPropertyLength is the longest property path a Filter may name.
	MaxPropertyLength = 256
	// MaxEventNameLength is the longest event type or event pattern.
	MaxEventNameLength = 256
	// MaxWindow is the longest window a Condition aggregates over, in
	// seconds (31 days).
	MaxWindow = 31 * 24 * 60 * 60
)

// Aggregation says how a window's samples become one value.
type Aggregation string

// The aggregations. An empty Aggregation means AggregateLast.
const (
	AggregateSum   Aggregation = "sum"
	AggregateAvg   Aggregation = "avg"
	AggregateMin   Aggregation = "min"
	AggregateMax   Aggregation = "max"
	AggregateCount Aggregation = "count"
	AggregateLast  Aggregation = "last"
)

// AnomalyDirection says which anomalies an anomaly trigger reports.
type AnomalyDirection string

// The anomaly directions. An empty direction means AnomalyBoth.
const (
	AnomalyBoth  AnomalyDirection = "both"
	AnomalyAbove AnomalyDirection = "above"
	AnomalyBelow AnomalyDirection = "below"
)

// Trigger selects what a webhook is notified of. Event, error, funnel
// and cohort triggers match a trigger call when its type fits, one of
// the trigger's event patterns matches the event type (no patterns means
// every event) and all of its filters hold on the event data. Threshold,
// anomaly and scheduled triggers are evaluated by the Service (see
// TriggerType.Stateful). A webhook's triggers are OR-ed.
type Trigger struct {
	// Type is the kind of occurrence this trigger listens to.
	Type TriggerType `json:"trigger_type"`
	// Events lists event-type patterns, only for TriggerEvent: an exact
	// name ("purchase"), "*" for all, or a prefix ending in ".*"
	// ("checkout.*" matches "checkout.started" but not "checkout").
	// Empty means all events.
	Events []string `json:"events,omitempty"`
	// Filters must all hold on the event data. They apply to event,
	// error, funnel, cohort and anomaly triggers (an anomaly trigger's
	// filters see the data of TriggerAnomaly calls).
	Filters []Filter `json:"filters"`
	// Conditions, only for TriggerThreshold: each is an alert of its
	// own (see Condition).
	Conditions []Condition `json:"conditions"`

	// Metric, Aggregation, BucketSeconds, Sensitivity and Direction
	// configure an anomaly trigger: its detector watches Metric,
	// aggregated with Aggregation (default last) over buckets of
	// BucketSeconds (default 60, a multiple of 10), and reports
	// buckets further than Sensitivity standard deviations (default 3)
	// from what it expects, in Direction (default both).
	Metric        string           `json:"metric,omitempty"`
	Aggregation   Aggregation      `json:"aggregation,omitempty"`
	BucketSeconds int64            `json:"bucket_seconds,omitempty"`
	Sensitivity   float64          `json:"sensitivity,omitempty"`
	Direction     AnomalyDirection `json:"direction,omitempty"`

	// IntervalSeconds or Schedule, with Timezone, configure a scheduled
	// trigger: a summary every IntervalSeconds, or at the times of
	// Schedule, a five-field cron expression ("0 9 * * 1": Mondays at
	// 09:00) read in Timezone, an IANA zone name ("Europe/Berlin").
	// Exactly one of IntervalSeconds and Schedule is set.
	IntervalSeconds int64  `json:"interval_seconds,omitempty"`
	Schedule        string `json:"schedule,omitempty"`
	Timezone        string `json:"timezone,omitempty"`
}

// Condition is one alert of a threshold trigger: it fires when Metric,
// aggregated over WindowSeconds with Aggregation, compares with Value by
// Operator (the breach), and resolves when it no longer does, past
// RecoveryValue. Its state is kept per environment in Storage, so that it
// notifies once per episode however many Services evaluate it.
//
// Its notifications are "$threshold_alert" (reason "fired" or
// "renotify") and "$threshold_resolved" (reason "recovered", or
// "no_data" when its window emptied), with the data "metric", "value"
// (null without data), "threshold" (Value), "exceeded" (whether the
// breach holds), "status" ("firing" or "resolved"), "reason",
// "operator", "aggregation", "window_seconds", "recovery_value" (when
// set), "episode_id", "started_at" (when the breach was first seen),
// "fired_at", "notification_count", and on resolving "resolved_at" and
// "duration_seconds" (since started_at). TriggerThreshold adds
// "reported_threshold".
//
// A condition's state is keyed by its index in the trigger and a
// fingerprint of its Metric, Operator, Value, window, Aggregation and
// RecoveryValue: editing one of these starts it afresh, editing the
// other fields keeps its state. An alert firing under the old definition
// is resolved by the Update that edits it: one "$threshold_resolved"
// with reason "edited" (see ReasonEdited) and the old definition's data.
type Condition struct {
	// Metric is the metric's name, compared exactly.
	Metric string `json:"metric"`
	// Operator compares the metric's value with Value.
	Operator ConditionOperator `json:"operator"`
	// Value is the threshold. It must be finite.
	Value float64 `json:"value"`
	// WindowSeconds is the window the samples recorded with RecordMetric
	// (by any Service on the Storage) are aggregated over; at most
	// MaxWindow. It is rounded up to whole buckets of MetricResolution:
	// a window of W seconds covers the ceil(W/10) latest 10-second
	// buckets, the current one included. 0 means no window: the
	// condition sees each value TriggerThreshold is given, and the latest
	// sample RecordMetric recorded at each write.
	WindowSeconds int64 `json:"window_seconds"`
	// Aggregation turns a window's samples into one value: sum, avg,
	// min, max, count or last (the default; the only one without a
	// window). An empty window has a count and a sum of 0 and no other
	// value: "no data", which clears a pending alert and resolves a
	// firing one.
	Aggregation Aggregation `json:"aggregation,omitempty"`
	// ForSeconds is how long the breach must hold before the alert fires
	// (it is pending meanwhile); 0 fires at once; at most MaxForSeconds.
	ForSeconds int64 `json:"for_seconds,omitempty"`
	// RecoveryValue, when set, is where a firing alert resolves
	// (hysteresis): with gt 100 and recovery 80, it resolves only at or
	// below 80 (gt recovers at <=, gte at <, lt at >=, lte at >). It
	// must be finite, at most Value for gt and gte, at least Value for lt
	// and lte, and is not allowed for eq. Without it, the alert resolves
	// when the breach ends.
	RecoveryValue *float64 `json:"recovery_value,omitempty"`
	// RepeatIntervalSeconds, when positive, notifies again
	// ("renotify") every so often while the alert keeps firing; 0 never
	// does. At least MinRepeatIntervalSeconds, at most MaxWindow.
	RepeatIntervalSeconds int64 `json:"repeat_interval_seconds,omitempty"`
	// NotifyResolved says whether resolving sends
	// "$threshold_resolved". Defaults to true.
	NotifyResolved *bool `json:"notify_resolved,omitempty"`
}

// Match reports whether the condition holds for metric's value. A NaN
// value never matches.
func (c Condition) Match(metric string, value float64) bool {
	if metric != c.Metric || math.IsNaN(value) {
		return false
	}
	if c.Operator == ConditionEQ {
		return floatEqual(value, c.Value)
	}
	return compareFloats(string(c.Operator), value, c.Value)
}

// Match reports whether the trigger matches an occurrence with the given
// event type and data exactly when the Service's trigger calls would
// deliver it to a webhook with this trigger (and no environment
// restriction): the type must fit the event type (TriggerEvent calls
// raise names not starting with "$", TriggerError "$error",
// TriggerFunnelComplete "$funnel_complete", TriggerCohortEntry
// "$cohort_entry", TriggerAnomaly "$anomaly" and "$anomaly_resolved"),
// an event trigger's Events patterns must match it, and its filters must
// hold on the data, seen as the Service sees it (see Filter.Match). For an
// anomaly trigger, Match answers for TriggerAnomaly calls: data with the
// call's "metric", "direction" and "status" (see Service.TriggerAnomaly)
// matches when the metric is the trigger's, the side is one its
// Direction reports and its filters hold; the notifications of its own
// detector come from its state, not from matching. Threshold and
// scheduled triggers never match here: their deliveries come from their
// state (see TriggerType.Stateful), so Match returns false for them.
//
// It returns an error wrapping ErrInvalid if the trigger is invalid,
// with field paths relative to the trigger ("filters[0].value").
func (t Trigger) Match(eventType string, data map[string]any) (bool, error) {
	ct, err := compileTrigger(t)
	if err != nil {
		return false, err
	}
	if !t.Type.fits(eventType) {
		return false, nil
	}
	d, err := asSent(data)
	if err != nil {
		return false, err
	}
	return ct.match(eventType, d), nil
}

// compiledTrigger is a validated Trigger with its filters compiled.
type compiledTrigger struct {
	typ        TriggerType
	events     []string
	filters    []compiledFilter
	conditions []Condition
	// schedule is a scheduled trigger's compiled schedule; nil for
	// other types.
	schedule *compiledSchedule
	// anomaly is an anomaly trigger's detector configuration; nil for
	// other types.
	anomaly *anomalySpec
}

// compileTrigger validates t and compiles its filters.
func compileTrigger(t Trigger) (*compiledTrigger, error) {
	var ps problems
	ct := validateTrigger(&ps, "", t)
	if err := ps.err("trigger"); err != nil {
		return nil, err
	}
	return ct, nil
}

// validateTrigger adds t's problems to ps under the field prefix ("" for
// a trigger on its own) and returns the compiled trigger (meaningful
// only when no problem was added).
func validateTrigger(ps *problems, prefix string, t Trigger) *compiledTrigger {
	ct := &compiledTrigger{typ: t.Type, events: t.Events, conditions: t.Conditions}
	switch {
	case !t.Type.Valid():
		ps.add(joinPath(prefix, "trigger_type"), fmt.Sprintf("unknown trigger type %q", truncate(string(t.Type))))
	}
	if len(t.Events) > 0 && t.Type.Valid() && t.Type != TriggerEvent {
		ps.add(joinPath(prefix, "events"), "event patterns apply only to event triggers")
	}
	if len(t.Events) > maxListLen {
		ps.add(joinPath(prefix, "events"), fmt.Sprintf("at most %d patterns", maxListLen))
	}
	for i, e := range t.Events {
		if reason := checkEventPattern(e); reason != "" {
			ps.add(indexPath(joinPath(prefix, "events"), i), reason)
		}
	}
	if len(t.Filters) > maxListLen {
		ps.add(joinPath(prefix, "filters"), fmt.Sprintf("at most %d filters", maxListLen))
	}
	ct.filters = make([]compiledFilter, 0, len(t.Filters))
	for i, f := range t.Filters {
		cf, field, reason := compileFilter(f)
		if reason != "" {
			ps.add(joinPath(indexPath(joinPath(prefix, "filters"), i), field), reason)
			continue
		}
		ct.filters = append(ct.filters, cf)
	}
	if len(t.Filters) > 0 && (t.Type == TriggerThreshold || t.Type == TriggerScheduled) {
		ps.add(joinPath(prefix, "filters"), fmt.Sprintf("filters do not apply to %s triggers", t.Type))
	}
	switch {
	case t.Type == TriggerThreshold && len(t.Conditions) == 0:
		ps.add(joinPath(prefix, "conditions"), "a threshold trigger needs at least one condition")
	case t.Type.Valid() && t.Type != TriggerThreshold && len(t.Conditions) > 0:
		ps.add(joinPath(prefix, "conditions"), "conditions apply only to threshold triggers")
	case len(t.Conditions) > maxListLen:
		ps.add(joinPath(prefix, "conditions"), fmt.Sprintf("at most %d conditions", maxListLen))
	}
	for i, c := range t.Conditions {
		validateCondition(ps, indexPath(joinPath(prefix, "conditions"), i), c)
	}
	if t.Type == TriggerAnomaly {
		ct.anomaly = validateAnomaly(ps, prefix, t)
	} else if t.Type.Valid() {
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"metric", t.Metric != ""}, {"aggregation", t.Aggregation != ""},
			{"bucket_seconds", t.BucketSeconds != 0}, {"sensitivity", t.Sensitivity != 0},
			{"direction", t.Direction != ""},
		} {
			if f.set {
				ps.add(joinPath(prefix, f.name), "applies only to anomaly triggers")
			}
		}
	}
	if t.Type == TriggerScheduled {
		ct.schedule = validateSchedule(ps, prefix, t)
	} else if t.Type.Valid() {
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"interval_seconds", t.IntervalSeconds != 0}, {"schedule", t.Schedule != ""},
			{"timezone", t.Timezone != ""},
		} {
			if f.set {
				ps.add(joinPath(prefix, f.name), "applies only to scheduled triggers")
			}
		}
	}
	return ct
}

// checkEventPattern returns why p is not a valid event pattern, or "".
func checkEventPattern(p string) string {
	switch {
	case p == "":
		return "must not be empty"
	case len(p) > MaxEventNameLength || !printable(p):
		return fmt.Sprintf("must be printable UTF-8 of at most %d bytes", MaxEventNameLength)
	case p == "*":
		return ""
	}
	body := strings.TrimSuffix(p, ".*")
	if body == "" || strings.Contains(body, "*") {
		return `"*" may stand only alone or as the last segment, as in "checkout.*"`
	}
	return ""
}

// match reports whether the trigger matches the event type and data.
func (ct *compiledTrigger) match(eventType string, data map[string]any) bool {
	if len(ct.events) > 0 {
		ok := false
		for _, p := range ct.events {
			if MatchEventName(p, eventType) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if ct.anomaly != nil && !ct.anomaly.match(data) {
		return false
	}
	for i := range ct.filters {
		if !ct.filters[i].match(data) {
			return false
		}
	}
	return true
}
