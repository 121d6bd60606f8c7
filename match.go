package webhook

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strings"
	"unicode/utf8"
)

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
