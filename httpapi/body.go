package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Media types of request bodies.
const (
	typeJSON       = "application/json"
	typeMergePatch = "application/merge-patch+json"
)

// body reads the request body, up to the limit, and checks its media
// type against accepted. An empty body is nil; required makes it a 400.
// A non-empty body must be valid JSON.
func (h *Handler) body(rq *request, required bool, accepted ...string) ([]byte, error) {
	r := rq.r
	if r.ContentLength > h.maxBody {
		return nil, &http.MaxBytesError{Limit: h.maxBody}
	}
	b, err := io.ReadAll(http.MaxBytesReader(rq.w, r.Body, h.maxBody))
	var mb *http.MaxBytesError
	switch {
	case errors.As(err, &mb):
		return nil, err
	case err != nil:
		return nil, badRequest("the request body could not be read")
	}
	if len(bytes.TrimSpace(b)) == 0 {
		if required {
			return nil, badRequest("a JSON request body is required")
		}
		return nil, nil
	}
	if err := checkMediaType(r.Header.Get("Content-Type"), accepted); err != nil {
		if r.Method == http.MethodPatch {
			err.header = http.Header{"Accept-Patch": {strings.Join(accepted, ", ")}}
		}
		return nil, err
	}
	if !json.Valid(b) {
		var v any
		err := json.Unmarshal(b, &v)
		if err == nil {
			err = errors.New("invalid JSON")
		}
		return nil, badRequest("malformed JSON: " + err.Error())
	}
	return b, nil
}

// checkMediaType returns a 415 unless ct is one of the accepted media
// types, with no parameter but charset=utf-8.
func checkMediaType(ct string, accepted []string) *apiError {
	refuse := newError(http.StatusUnsupportedMediaType, fmt.Sprintf("the request body must be %s", strings.Join(accepted, " or ")))
	if ct == "" {
		return refuse
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || !slices.Contains(accepted, mt) {
		return refuse
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return refuse
		}
	}
	return nil
}

// field decodes the value of one key of a request object, returning why
// it does not fit.
type field func(raw json.RawMessage) string

// decodeFields decodes a JSON object strictly: each key must be one of
// fields, once; a null value counts as absent. It returns a 400 naming
// every problem.
func decodeFields(b []byte, fields map[string]field) error {
	if b == nil {
		return nil
	}
	var problems []fieldProblem
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return badRequest("the request body must be a JSON object", fieldProblem{Pointer: ptr(""), Detail: "must be a JSON object"})
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		key, ok := tok.(string)
		var val json.RawMessage
		if err == nil && ok {
			err = dec.Decode(&val)
		}
		if err != nil || !ok {
			return badRequest("malformed JSON object")
		}
		p := keyPointer(key)
		f, known := fields[key]
		switch {
		case seen[key]:
			problems = append(problems, fieldProblem{Pointer: ptr(p), Detail: "appears more than once"})
		case !known:
			problems = append(problems, fieldProblem{Pointer: ptr(p), Detail: "unknown field"})
		case string(val) != "null":
			if reason := f(val); reason != "" {
				problems = append(problems, fieldProblem{Pointer: ptr(p), Detail: reason})
			}
		}
		seen[key] = true
	}
	if len(problems) > 0 {
		return badRequest("the request body does not fit the API: unknown fields, wrong types or malformed JSON", problems...)
	}
	return nil
}

// into returns a field that decodes into dst, a value of the wanted
// JSON type.
func into(dst any, want string) field {
	return func(raw json.RawMessage) string {
		if err := json.Unmarshal(raw, dst); err != nil {
			return "must be " + want
		}
		return ""
	}
}

// query checks a request's query parameters: only those named in
// allowed, each once unless repeatable. It returns the values.
func query(r *http.Request, allowed map[string]bool) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("malformed query string")
	}
	var problems []fieldProblem
	for _, name := range slices.Sorted(maps.Keys(q)) {
		repeatable, ok := allowed[name]
		switch {
		case !ok:
			problems = append(problems, fieldProblem{Parameter: name, Detail: "unknown query parameter"})
		case len(q[name]) > 1 && !repeatable:
			problems = append(problems, fieldProblem{Parameter: name, Detail: "may appear once"})
		}
	}
	if len(problems) > 0 {
		return nil, badRequest("unknown or repeated query parameters", problems...)
	}
	return q, nil
}
