package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Strict JSON decoding, shared by the UnmarshalJSON methods of Webhook,
// Trigger, Filter, Condition, RetryPolicy and RetiredSecret.
//
// Every object is decoded key by key: a key that is not one of the type's
// field names (compared exactly, case included), or that appears twice,
// is a problem named by its path ("triggers[0].event"); so is a value of
// the wrong JSON type. All problems are collected into one
// *ValidationError, which wraps ErrInvalid. A null value means the same
// as an absent key.

// jsonField decodes the value of one key of an object; path is the
// key's path, for problems.
type jsonField func(raw json.RawMessage, path string, ps *problems)

// decoder decodes raw, the JSON of one T, into dst, adding problems
// under path.
type decoder[T any] func(dst *T, raw json.RawMessage, path string, ps *problems)

// unmarshalStrict decodes b into dst with decode and returns a
// *ValidationError naming what is wrong in "what", leaving dst unchanged
// then. A JSON null leaves dst unchanged, as encoding/json does.
func unmarshalStrict[T any](b []byte, what string, dst *T, decode decoder[T]) error {
	if isNull(b) {
		return nil
	}
	var n T
	var ps problems
	decode(&n, b, "", &ps)
	if err := ps.err(what); err != nil {
		return err
	}
	*dst = n
	return nil
}

// object returns a jsonField that decodes an object into dst.
func object[T any](dst *T, decode decoder[T]) jsonField {
	return func(raw json.RawMessage, path string, ps *problems) {
		decode(dst, raw, path, ps)
	}
}

// decodeObject decodes raw as an object with the given fields, adding
// problems under path.
func decodeObject(raw json.RawMessage, path string, ps *problems, fields map[string]jsonField) {
	walkObject(raw, path, ps, joinPath, func(key string, val json.RawMessage, field string) {
		f, ok := fields[key]
		if !ok {
			ps.add(field, unknownField(key, fields))
			return
		}
		if !isNull(val) {
			f(val, field, ps)
		}
	})
}

// walkObject calls fn for each key of the object raw, in order, with the
// key's path made by join, and adds a problem for a repeated key (fn is
// not called again for it) or for a value that is not an object.
func walkObject(raw json.RawMessage, path string, ps *problems, join func(path, key string) string, fn func(key string, val json.RawMessage, field string)) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		ps.add(orTop(path), "must be a JSON object")
		return
	}
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		key, isKey := tok.(string)
		var val json.RawMessage
		if err == nil && isKey {
			err = dec.Decode(&val)
		}
		if err != nil || !isKey {
			ps.add(orTop(path), "malformed JSON object")
			return
		}
		field := join(path, key)
		if seen[key] {
			ps.add(field, "appears more than once")
			continue
		}
		seen[key] = true
		fn(key, val, field)
	}
}

// unknownField is the reason for an unknown key, with a hint when the
// key differs from a field name only in case.
func unknownField(key string, fields map[string]jsonField) string {
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		if strings.EqualFold(name, key) {
			return fmt.Sprintf("unknown field (names are case-sensitive: did you mean %q?)", name)
		}
	}
	return "unknown field"
}

// joinPath appends key to path: "a.b" for plain names, `a["odd key"]`
// otherwise, so that paths stay unambiguous.
func joinPath(path, key string) string {
	plain := key != ""
	for i := range len(key) {
		c := key[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			plain = false
			break
		}
	}
	switch {
	case !plain:
		return keyPath(path, key)
	case path == "":
		return key
	}
	return path + "." + key
}

// keyPath returns the path of a map's key, path["key"], as Validate
// names headers.
func keyPath(path, key string) string {
	return path + "[" + strconv.Quote(truncate(key)) + "]"
}

// indexPath returns path[i].
func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// orTop names the whole input when path is empty.
func orTop(path string) string {
	if path == "" {
		return "(input)"
	}
	return path
}

func isNull(b []byte) bool {
	return string(bytes.TrimSpace(b)) == "null"
}

// into returns a jsonField that decodes the value into dst with
// encoding/json, reporting a type mismatch as "must be <want>".
func into(dst any, want string) jsonField {
	return func(raw json.RawMessage, path string, ps *problems) {
		if err := json.Unmarshal(raw, dst); err != nil {
			ps.add(path, "must be "+want)
		}
	}
}

// timeField decodes an RFC 3339 time, in UTC.
func timeField(dst *time.Time) jsonField {
	return func(raw json.RawMessage, path string, ps *problems) {
		var t time.Time
		if err := json.Unmarshal(raw, &t); err != nil {
			ps.add(path, "must be an RFC 3339 time")
			return
		}
		t = t.UTC()
		if y := t.Year(); y < 0 || y > 9999 {
			ps.add(path, "must be a time between the years 0 and 9999 in UTC")
			return
		}
		*dst = t
	}
}

// stringList decodes an array of strings; an empty array becomes nil,
// as the encoders omit empty lists.
func stringList(dst *[]string) jsonField {
	return func(raw json.RawMessage, path string, ps *problems) {
		var l []string
		if err := json.Unmarshal(raw, &l); err != nil {
			ps.add(path, "must be an array of strings")
			return
		}
		if len(l) > 0 {
			*dst = l
		}
	}
}

// objectList returns a jsonField that decodes an array of objects into
// dst, each with decode. An empty array is kept as empty.
func objectList[T any](dst *[]T, decode decoder[T]) jsonField {
	return func(raw json.RawMessage, path string, ps *problems) {
		var l []json.RawMessage
		if err := json.Unmarshal(raw, &l); err != nil {
			ps.add(path, "must be an array of objects")
			return
		}
		out := make([]T, len(l))
		for i, e := range l {
			p := indexPath(path, i)
			if isNull(e) {
				ps.add(p, "must be a JSON object, not null")
				continue
			}
			decode(&out[i], e, p, ps)
		}
		*dst = out
	}
}

// stringMap decodes an object of strings strictly: a repeated key is a
// problem rather than "last one wins".
func stringMap(dst *map[string]string) jsonField {
	return func(raw json.RawMessage, path string, ps *problems) {
		m := make(map[string]string)
		walkObject(raw, path, ps, keyPath, func(key string, val json.RawMessage, field string) {
			var s string
			if err := json.Unmarshal(val, &s); err != nil {
				ps.add(field, "must be a string")
				return
			}
			m[key] = s
		})
		*dst = m
	}
}
