package webhook

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strings"
	"unicode/utf8"
)

// TriggerType says which kind of occurrence a Trigger listens to. The values
// are the specification's JSON names.
type TriggerType string

// The seven trigger types. Only TriggerEvent, TriggerError and
// TriggerThreshold can fire today (see TriggerType.Supported); the others
// are refused when a webhook is saved until the library raises their
// occurrences.
const (
	// TriggerEvent fires on every matching TriggerEvent call.
	TriggerEvent TriggerType = "event"
	// TriggerError fires on TriggerError calls (event type "$error").
	TriggerError TriggerType = "error"
	// TriggerThreshold fires when a metric breaches one of the trigger's
	// conditions (event type "$threshold_alert").
	TriggerThreshold TriggerType = "threshold"
	// TriggerAnomaly will fire on detected anomalies (event type
	// "$anomaly"). Not supported yet: refused on save.
	TriggerAnomaly TriggerType = "anomaly"
	// TriggerScheduled will fire periodic summaries. Not supported yet:
	// refused on save.
	TriggerScheduled TriggerType = "scheduled"
	// TriggerFunnelComplete will fire when a user completes a funnel. Not
	// supported yet: refused on save.
	TriggerFunnelComplete TriggerType = "funnel_complete"
	// TriggerCohortEntry will fire when a user enters a cohort. Not
	// supported yet: refused on save.
	TriggerCohortEntry TriggerType = "cohort_entry"
)

// Valid reports whether t is one of the seven trigger types, supported
// or not.
func (t TriggerType) Valid() bool {
	switch t {
	case TriggerEvent, TriggerError, TriggerThreshold, TriggerAnomaly,
		TriggerScheduled, TriggerFunnelComplete, TriggerCohortEntry:
		return true
	}
	return false
}

// Supported reports whether the library can fire triggers of type t
// today: TriggerEvent, TriggerError and TriggerThreshold. Validation
// refuses the other types.
func (t TriggerType) Supported() bool {
	switch t {
	case TriggerEvent, TriggerError, TriggerThreshold:
		return true
	}
	return false
}

// fits reports whether an occurrence with the given event type is of
// trigger type t, as the Service's trigger calls raise them: TriggerEvent
// raises any name not starting with "$", TriggerError "$error",
// TriggerThreshold "$threshold_alert".
func (t TriggerType) fits(eventType string) bool {
	switch t {
	case TriggerEvent:
		return eventType != "" && !strings.HasPrefix(eventType, "$")
	case TriggerError:
		return eventType == EventTypeError
	case TriggerThreshold:
		return eventType == EventTypeThresholdAlert
	}
	return false
}

// FilterOperator is the comparison a Filter applies to a property.
type FilterOperator string

// The filter operators. Properties are dot paths into the event data
// ("user.plan", "items.0.sku"); JSON numbers compare by value, so 1 equals 1.0.
const (
	// FilterEquals holds when the property is present and equal to the value.
	FilterEquals FilterOperator = "equals"
	// FilterNotEquals holds when the property is missing or differs from the value.
	FilterNotEquals FilterOperator = "not_equals"
	// FilterContains holds when a string property contains the value as a
	// substring, or an array property has an element equal to the value.
	FilterContains FilterOperator = "contains"
	// FilterIsSet holds when the property is present, even if null. The
	// filter's value must be null or omitted.
	FilterIsSet FilterOperator = "is_set"
	// FilterNotSet holds when the property is missing. The filter's value
	// must be null or omitted.
	FilterNotSet FilterOperator = "not_set"
	// FilterGT holds when a numeric property is greater than the value.
	FilterGT FilterOperator = "gt"
	// FilterGTE holds when a numeric property is greater than or equal to the value.
	FilterGTE FilterOperator = "gte"
	// FilterLT holds when a numeric property is less than the value.
	FilterLT FilterOperator = "lt"
	// FilterLTE holds when a numeric property is less than or equal to the value.
	FilterLTE FilterOperator = "lte"
	// FilterIn holds when the property equals one of the values in the
	// filter's array.
	FilterIn FilterOperator = "in"
	// FilterNotIn holds when the property is missing or equals none of the
	// values in the filter's array.
	FilterNotIn FilterOperator = "not_in"
	// FilterStartsWith holds when a string property starts with the value.
	FilterStartsWith FilterOperator = "starts_with"
	// FilterEndsWith holds when a string property ends with the value.
	FilterEndsWith FilterOperator = "ends_with"
	// FilterRegex holds when a string property matches the value, an RE2
	// regular expression (see package regexp) of at most MaxRegexLength bytes.
	FilterRegex FilterOperator = "regex"
)

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
	// MaxWindow is the longest window a Condition will aggregate over,
	// in seconds (31 days), once windows are supported.
	MaxWindow = 31 * 24 * 60 * 60
)

// Trigger selects the occurrences a webhook is notified of. A trigger
// matches when its type fits, one of its event patterns matches the event
// type (no patterns means every event), all of its filters hold on the
// event data and, for threshold triggers, one of its conditions holds.
// A webhook's triggers are OR-ed.
type Trigger struct {
	// Type is the kind of occurrence this trigger listens to.
	Type TriggerType `json:"trigger_type"`
	// Events lists event-type patterns, only for TriggerEvent: an exact
	// name ("purchase"), "*" for all, or a prefix ending in ".*"
	// ("checkout.*" matches "checkout.started" but not "checkout").
	// Empty means all events.
	Events []string `json:"events,omitempty"`
	// Filters must all hold on the event data.
	Filters []Filter `json:"filters"`
	// Conditions, only for TriggerThreshold: at least one must hold
	// for the reported metric and value.
	Conditions []Condition `json:"conditions"`
}

// Filter tests one property of the event data.
type Filter struct {
	// Property is a dot path into the data: "plan", "user.country",
	// "items.0.sku". A key that itself contains dots is found when it
	// matches the whole path at the top level.
	Property string `json:"property"`
	// Operator is the comparison to apply.
	Operator FilterOperator `json:"operator"`
	// Value is the operand: a string, number, bool, null or, for
	// FilterIn and FilterNotIn, an array of those.
	Value any `json:"value"`
}

// Condition is a threshold on a metric, for TriggerThreshold triggers.
type Condition struct {
	// Metric is the metric's name, compared exactly.
	Metric string `json:"metric"`
	// Operator compares the metric's value with Value.
	Operator ConditionOperator `json:"operator"`
	// Value is the threshold. It must be finite.
	Value float64 `json:"value"`
	// WindowSeconds is reserved for aggregating recorded metrics over a
	// window. Windows are not supported yet: it must be 0, and the value
	// passed to TriggerThreshold is compared as given.
	WindowSeconds int64 `json:"window_seconds"`
}

// MatchEventName reports whether pattern matches the event type name.
// An empty pattern and "*" match everything; a pattern ending in ".*"
// matches every name that starts with the part before "*" and continues
// after it; any other pattern matches only itself.
func MatchEventName(pattern, name string) bool {
	switch {
	case pattern == "" || pattern == "*":
		return true
	case strings.HasSuffix(pattern, ".*"):
		prefix := pattern[:len(pattern)-1] // keep the dot
		return len(name) > len(prefix) && strings.HasPrefix(name, prefix)
	default:
		return pattern == name
	}
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

// Match reports whether the filter holds on data, seen as the Service
// sees it: as the JSON the data encodes to (a struct by its JSON field
// names, numbers as float64), decoded again. It returns an error wrapping
// ErrInvalid, and false, if the filter itself is invalid (an unknown
// operator, a value of the wrong type, a bad regular expression; the
// *ValidationError names "property", "operator" or "value") or if data
// cannot be encoded as JSON (field "data"), as a trigger call would.
// Match compiles the filter on every call; the Service compiles each
// webhook's filters once.
func (f Filter) Match(data map[string]any) (bool, error) {
	cf, field, reason := compileFilter(f)
	if reason != "" {
		return false, invalid("filter", field, reason)
	}
	d, err := asSent(data)
	if err != nil {
		return false, err
	}
	return cf.match(d), nil
}

// MatchFilters reports whether every filter holds on data, seen as the
// Service sees it (see Filter.Match). It returns an error wrapping
// ErrInvalid if any filter is invalid, naming each field as in a
// trigger ("filters[1].value"), or if data cannot be encoded as JSON.
func MatchFilters(filters []Filter, data map[string]any) (bool, error) {
	var ps problems
	cfs := make([]compiledFilter, 0, len(filters))
	for i, f := range filters {
		cf, field, reason := compileFilter(f)
		if reason != "" {
			ps.add(fmt.Sprintf("filters[%d].%s", i, field), reason)
			continue
		}
		cfs = append(cfs, cf)
	}
	if err := ps.err("filters"); err != nil {
		return false, err
	}
	d, err := asSent(data)
	if err != nil {
		return false, err
	}
	for i := range cfs {
		if !cfs[i].match(d) {
			return false, nil
		}
	}
	return true, nil
}

// Match reports whether the trigger matches an occurrence with the given
// event type and data exactly when the Service's trigger calls would
// deliver it to a webhook with this trigger (and no environment
// restriction): the type must fit the event type (TriggerEvent calls
// raise names not starting with "$", TriggerError "$error",
// TriggerThreshold "$threshold_alert"), and the data is seen as the
// Service sees it (see Filter.Match). For threshold triggers the
// conditions read the metric's name from data["metric"] and its value
// from data["value"], the shape TriggerThreshold sends.
//
// It returns an error wrapping ErrInvalid if the trigger is invalid,
// with field paths relative to the trigger ("filters[0].value"), and for
// the types that cannot fire yet (see TriggerType.Supported), so that it
// never claims a match the Service cannot make.
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
	case !t.Type.Supported():
		ps.add(joinPath(prefix, "trigger_type"), fmt.Sprintf("trigger type %q is not supported yet: the library cannot fire it (use event, error or threshold)", t.Type))
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
	switch {
	case t.Type == TriggerThreshold && len(t.Conditions) == 0:
		ps.add(joinPath(prefix, "conditions"), "a threshold trigger needs at least one condition")
	case t.Type.Valid() && t.Type != TriggerThreshold && len(t.Conditions) > 0:
		ps.add(joinPath(prefix, "conditions"), "conditions apply only to threshold triggers")
	case len(t.Conditions) > maxListLen:
		ps.add(joinPath(prefix, "conditions"), fmt.Sprintf("at most %d conditions", maxListLen))
	}
	for i, c := range t.Conditions {
		field := indexPath(joinPath(prefix, "conditions"), i)
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
		if math.IsNaN(c.Value) || math.IsInf(c.Value, 0) {
			ps.add(field+".value", "must be a finite number")
		}
		if c.WindowSeconds != 0 {
			ps.add(field+".window_seconds", "windows are not supported yet: must be 0 (TriggerThreshold compares the value it is given)")
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
	for i := range ct.filters {
		if !ct.filters[i].match(data) {
			return false
		}
	}
	if len(ct.conditions) > 0 {
		metric, _ := data["metric"].(string)
		value, ok := toFloat(data["value"])
		if !ok {
			return false
		}
		for _, c := range ct.conditions {
			if c.Match(metric, value) {
				return true
			}
		}
		return false
	}
	return true
}

// compiledFilter is a validated Filter, ready to match.
type compiledFilter struct {
	property string
	path     []string
	op       FilterOperator
	value    any     // normalised operand (numbers as float64)
	num      float64 // numeric operand for gt/gte/lt/lte
	str      string  // string operand for starts_with/ends_with/contains
	set      []any   // normalised operands for in/not_in
	re       *regexp.Regexp
}

// compileFilter validates f. If f is invalid it returns the field at
// fault ("property", "operator" or "value") and a non-empty reason.
func compileFilter(f Filter) (compiledFilter, string, string) {
	cf := compiledFilter{property: f.Property, op: f.Operator}
	switch {
	case f.Property == "":
		return cf, "property", "must not be empty"
	case len(f.Property) > MaxPropertyLength || !utf8.ValidString(f.Property):
		return cf, "property", fmt.Sprintf("must be valid UTF-8 of at most %d bytes", MaxPropertyLength)
	}
	cf.path = strings.Split(f.Property, ".")
	v, ok := normalize(f.Value, 0)
	if !ok {
		return cf, "value", "must be a JSON value with finite numbers"
	}
	cf.value = v
	switch f.Operator {
	case FilterEquals, FilterNotEquals:
	case FilterContains:
		switch x := v.(type) {
		case string:
			cf.str = x
		case float64, bool:
		default:
			return cf, "value", "contains needs a string, number or bool"
		}
	case FilterIsSet, FilterNotSet:
		if v != nil {
			return cf, "value", fmt.Sprintf("must be null or omitted for %s", f.Operator)
		}
	case FilterGT, FilterGTE, FilterLT, FilterLTE:
		n, ok := v.(float64)
		if !ok {
			return cf, "value", fmt.Sprintf("%s needs a number", f.Operator)
		}
		cf.num = n
	case FilterIn, FilterNotIn:
		list, ok := v.([]any)
		if !ok {
			return cf, "value", fmt.Sprintf("%s needs an array", f.Operator)
		}
		if len(list) > maxInListLen {
			return cf, "value", fmt.Sprintf("at most %d elements", maxInListLen)
		}
		for _, e := range list {
			switch e.(type) {
			case string, float64, bool, nil:
			default:
				return cf, "value", fmt.Sprintf("%s needs an array of strings, numbers, bools or nulls", f.Operator)
			}
		}
		cf.set = list
	case FilterStartsWith, FilterEndsWith:
		s, ok := v.(string)
		if !ok {
			return cf, "value", fmt.Sprintf("%s needs a string", f.Operator)
		}
		cf.str = s
	case FilterRegex:
		s, ok := v.(string)
		if !ok {
			return cf, "value", "regex needs a string"
		}
		if len(s) > MaxRegexLength {
			return cf, "value", fmt.Sprintf("regular expression longer than %d bytes", MaxRegexLength)
		}
		re, err := regexp.Compile(s)
		if err != nil {
			return cf, "value", err.Error()
		}
		cf.re = re
	default:
		return cf, "operator", fmt.Sprintf("unknown filter operator %q", truncate(string(f.Operator)))
	}
	return cf, "", ""
}

// match reports whether the filter holds on data.
func (cf *compiledFilter) match(data map[string]any) bool {
	got, present := lookup(data, cf.property, cf.path)
	switch cf.op {
	case FilterIsSet:
		return present
	case FilterNotSet:
		return !present
	case FilterNotEquals:
		return !present || !equalValues(got, cf.value)
	case FilterNotIn:
		return !present || !inSet(got, cf.set)
	}
	if !present {
		return false
	}
	switch cf.op {
	case FilterEquals:
		return equalValues(got, cf.value)
	case FilterContains:
		if s, ok := got.(string); ok {
			if _, isStr := cf.value.(string); isStr {
				return strings.Contains(s, cf.str)
			}
			return false
		}
		rv := reflect.ValueOf(got)
		if rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array {
			for i := range rv.Len() {
				if equalValues(rv.Index(i).Interface(), cf.value) {
					return true
				}
			}
		}
		return false
	case FilterGT, FilterGTE, FilterLT, FilterLTE:
		n, ok := toFloat(got)
		return ok && !math.IsNaN(n) && compareFloats(string(cf.op), n, cf.num)
	case FilterIn:
		return inSet(got, cf.set)
	case FilterStartsWith, FilterEndsWith, FilterRegex:
		s, ok := stringValue(got)
		if !ok {
			return false
		}
		switch cf.op {
		case FilterStartsWith:
			return strings.HasPrefix(s, cf.str)
		case FilterEndsWith:
			return strings.HasSuffix(s, cf.str)
		default:
			return cf.re.MatchString(s)
		}
	}
	return false
}
