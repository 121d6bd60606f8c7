package webhook

import (
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"unicode/utf8"
)

func inSet(got any, set []any) bool {
	for _, e := range set {
		if equalValues(got, e) {
			return true
		}
	}
	return false
}

// Limits on list sizes in webhook definitions.
const (
	maxListLen   = 32
	maxInListLen = 1000
	maxDepth     = 32
)

// asSent returns data as the Service's matching sees it: encoded as
// JSON, as the payload carries it, and decoded again, so that structs
// appear by their JSON field names, numbers as float64, and invalid
// UTF-8 replaced. It returns an error wrapping ErrInvalid, as the trigger
// calls do, when data cannot be encoded.
func asSent(data map[string]any) (map[string]any, error) {
	raw, err := encodeJSON(data)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, invalid("event", "data", "cannot be decoded again: "+err.Error())
	}
	return m, nil
}

// lookup finds the property in data: the whole path as a top-level key
// first, then as a dot path through nested maps and arrays.
func lookup(data map[string]any, property string, path []string) (any, bool) {
	if v, ok := data[property]; ok {
		return v, true
	}
	if len(path) < 2 {
		return nil, false
	}
	var cur any = data
	for _, seg := range path {
		next, ok := child(cur, seg)
		if !ok {
			return nil, false
		}
		cur = next
	}
	return cur, true
}

// child returns the element seg of a map (by key) or a slice (by index).
func child(v any, seg string) (any, bool) {
	switch x := v.(type) {
	case map[string]any:
		c, ok := x[seg]
		return c, ok
	case []any:
		i, err := strconv.Atoi(seg)
		if err != nil || i < 0 || i >= len(x) {
			return nil, false
		}
		return x[i], true
	case nil:
		return nil, false
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return nil, false
		}
		e := rv.MapIndex(reflect.ValueOf(seg).Convert(rv.Type().Key()))
		if !e.IsValid() {
			return nil, false
		}
		return e.Interface(), true
	case reflect.Slice, reflect.Array:
		i, err := strconv.Atoi(seg)
		if err != nil || i < 0 || i >= rv.Len() {
			return nil, false
		}
		return rv.Index(i).Interface(), true
	}
	return nil, false
}

// toFloat converts any Go or JSON number to float64.
func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case nil, string, bool:
		return 0, false
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return float64(rv.Uint()), true
	case reflect.Float32, reflect.Float64:
		return rv.Float(), true
	}
	return 0, false
}

// stringValue returns v as a string if it is one (of any string kind).
func stringValue(v any) (string, bool) {
	if s, ok := v.(string); ok {
		return s, true
	}
	if v == nil {
		return "", false
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.String {
		return rv.String(), true
	}
	return "", false
}

// equalValues compares two JSON-like values: numbers by value, strings,
// bools and nulls exactly, arrays and objects element by element.
func equalValues(a, b any) bool {
	return equalDepth(a, b, 0)
}

func equalDepth(a, b any, depth int) bool {
	if depth > maxDepth {
		return false
	}
	if a == nil || b == nil {
		return isNil(a) && isNil(b)
	}
	if fa, ok := toFloat(a); ok {
		fb, ok := toFloat(b)
		return ok && fa == fb
	}
	if sa, ok := stringValue(a); ok {
		sb, ok := stringValue(b)
		return ok && sa == sb
	}
	if ba, ok := a.(bool); ok {
		bb, ok := b.(bool)
		return ok && ba == bb
	}
	ra, rb := reflect.ValueOf(a), reflect.ValueOf(b)
	switch ra.Kind() {
	case reflect.Slice, reflect.Array:
		if rb.Kind() != reflect.Slice && rb.Kind() != reflect.Array {
			return false
		}
		if ra.Len() != rb.Len() {
			return false
		}
		for i := range ra.Len() {
			if !equalDepth(ra.Index(i).Interface(), rb.Index(i).Interface(), depth+1) {
				return false
			}
		}
		return true
	case reflect.Map:
		if rb.Kind() != reflect.Map || ra.Len() != rb.Len() ||
			ra.Type().Key().Kind() != reflect.String || rb.Type().Key().Kind() != reflect.String {
			return false
		}
		iter := ra.MapRange()
		for iter.Next() {
			bv := rb.MapIndex(reflect.ValueOf(iter.Key().String()).Convert(rb.Type().Key()))
			if !bv.IsValid() || !equalDepth(iter.Value().Interface(), bv.Interface(), depth+1) {
				return false
			}
		}
		return true
	}
	return false
}

func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Map, reflect.Slice, reflect.Pointer, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

// normalize converts a filter operand to its JSON form: numbers become
// float64, arrays []any, objects map[string]any. It reports false for
// values JSON cannot represent (NaN, infinities, channels, funcs) and for
// nesting deeper than maxDepth.
func normalize(v any, depth int) (any, bool) {
	if depth > maxDepth {
		return nil, false
	}
	switch x := v.(type) {
	case nil:
		return nil, true
	case string:
		return x, true
	case bool:
		return x, true
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, false
		}
		return x, true
	case json.Number:
		f, err := x.Float64()
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, false
		}
		return f, true
	}
	if f, ok := toFloat(v); ok {
		return normalize(f, depth)
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		return rv.String(), true
	case reflect.Bool:
		return rv.Bool(), true
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return nil, true
		}
		out := make([]any, rv.Len())
		for i := range rv.Len() {
			e, ok := normalize(rv.Index(i).Interface(), depth+1)
			if !ok {
				return nil, false
			}
			out[i] = e
		}
		return out, true
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return nil, false
		}
		if rv.IsNil() {
			return nil, true
		}
		out := make(map[string]any, rv.Len())
		iter := rv.MapRange()
		for iter.Next() {
			e, ok := normalize(iter.Value().Interface(), depth+1)
			if !ok {
				return nil, false
			}
			out[iter.Key().String()] = e
		}
		return out, true
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return nil, true
		}
		return normalize(rv.Elem().Interface(), depth+1)
	}
	return nil, false
}

// truncate shortens s for inclusion in an error message.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	// Cut at a rune boundary.
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// compareFloats applies gt, gte, lt or lte; any other operator is false.
func compareFloats(op string, a, b float64) bool {
	switch op {
	case "gt":
		return a > b
	case "gte":
		return a >= b
	case "lt":
		return a < b
	case "lte":
		return a <= b
	}
	return false
}

// floatEqual reports whether a and b are equal within a relative 1e-9.
func floatEqual(a, b float64) bool {
	if a == b {
		return true
	}
	scale := math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
	return math.Abs(a-b) <= 1e-9*scale
}
