package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/analytics-webhooks/webhook"
)

// Errors that Config.Tenant and Config.RateLimit return to refuse a
// request. Wrapping them (fmt.Errorf("%w: ...")) is fine: the response
// never shows the error's text, only a fixed detail.
var (
	// ErrUnauthenticated answers 401: the request carries no valid
	// credentials.
	ErrUnauthenticated = errors.New("httpapi: unauthenticated")
	// ErrForbidden answers 403: the credentials are valid but may not
	// use the API.
	ErrForbidden = errors.New("httpapi: forbidden")
)

// StatusError is an error of Config.Tenant or Config.RateLimit that
// chooses the response: Status (400 to 599), Detail shown to the client,
// and Header added to the response (such as WWW-Authenticate).
type StatusError struct {
	Status int
	Detail string
	Header http.Header
	// Err is the cause, for logs; it is never shown.
	Err error
}

// Error describes the error.
func (e *StatusError) Error() string {
	msg := fmt.Sprintf("httpapi: status %d", e.Status)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the cause.
func (e *StatusError) Unwrap() error { return e.Err }

// RateLimitError is an error of Config.RateLimit (or Config.Tenant) that
// answers 429 Too Many Requests with a Retry-After header of RetryAfter,
// in whole seconds, at least 1.
type RateLimitError struct {
	RetryAfter time.Duration
}

// Error describes the error.
func (e *RateLimitError) Error() string {
	return fmt.Sprintf("httpapi: rate limited; retry after %v", e.RetryAfter)
}

// apiError is a response to send as a problem: its status, detail,
// field errors and extra headers, and the cause to log.
type apiError struct {
	status int
	detail string
	errors []fieldProblem
	header http.Header
	cause  error
}

func (e *apiError) Error() string {
	if e.cause != nil {
		return e.cause.Error()
	}
	return fmt.Sprintf("%d: %s", e.status, e.detail)
}

// fieldProblem is one entry of a problem's "errors": a JSON Pointer
// into the request body, or the name of a query parameter or header.
type fieldProblem struct {
	Pointer   *string `json:"pointer,omitempty"`
	Parameter string  `json:"parameter,omitempty"`
	Header    string  `json:"header,omitempty"`
	Detail    string  `json:"detail"`
}

// problem is an RFC 9457 problem detail.
type problem struct {
	Type     string         `json:"type"`
	Title    string         `json:"title"`
	Status   int            `json:"status"`
	Detail   string         `json:"detail,omitempty"`
	Instance string         `json:"instance,omitempty"`
	Errors   []fieldProblem `json:"errors,omitempty"`
}

// ptr returns a pointer to the JSON Pointer p ("" is the whole body).
func ptr(p string) *string { return &p }

func newError(status int, detail string) *apiError {
	return &apiError{status: status, detail: detail}
}

func badRequest(detail string, fields ...fieldProblem) *apiError {
	return &apiError{status: http.StatusBadRequest, detail: detail, errors: fields}
}

func notFound(detail string) *apiError { return newError(http.StatusNotFound, detail) }

// HostStatus says how this package answers an error of the host's
// Config.Tenant or Config.RateLimit, so that other handlers taking the
// same function (the portal) answer alike: 429 with Retry-After for a
// *RateLimitError; a *StatusError's status, headers and detail (its
// status text when it has none); 403 for ErrForbidden; 401 for
// ErrUnauthenticated. ok is false for any other error, which the caller
// answers as it sees fit (this package: 401 from Tenant, 429 from
// RateLimit).
func HostStatus(err error) (status int, header http.Header, detail string, ok bool) {
	var se *StatusError
	var rl *RateLimitError
	switch {
	case errors.As(err, &rl):
		return http.StatusTooManyRequests, http.Header{"Retry-After": {retryAfter(rl.RetryAfter)}}, "", true
	case errors.As(err, &se) && se.Status >= 400 && se.Status <= 599:
		detail := se.Detail
		if detail == "" {
			detail = http.StatusText(se.Status)
		}
		return se.Status, se.Header, detail, true
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden, nil, "", true
	case errors.Is(err, ErrUnauthenticated):
		return http.StatusUnauthorized, nil, "", true
	}
	return 0, nil, "", false
}

// hostError maps an error of Config.Tenant or Config.RateLimit to the
// response (see HostStatus), with def for an error it does not know.
func hostError(err error, def int) *apiError {
	status, header, detail, ok := HostStatus(err)
	switch {
	case !ok && def != http.StatusUnauthorized:
		return &apiError{status: def, detail: http.StatusText(def), cause: err}
	case !ok:
		status = def
	}
	if detail == "" {
		switch status {
		case http.StatusTooManyRequests:
			detail = "too many requests; retry later"
		case http.StatusForbidden:
			detail = "the credentials may not use this API"
		case http.StatusUnauthorized:
			detail = "authentication required"
		default:
			detail = http.StatusText(status)
		}
	}
	return &apiError{status: status, detail: detail, header: header, cause: err}
}

// serviceError maps an error of the Service to the response.
func serviceError(err error) *apiError {
	var ae *apiError
	var mb *http.MaxBytesError
	var ve *webhook.ValidationError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &mb):
		return &apiError{status: http.StatusRequestEntityTooLarge, detail: fmt.Sprintf("the request body is larger than %d bytes", mb.Limit)}
	case errors.Is(err, webhook.ErrIdempotencyKeyReused):
		return &apiError{status: http.StatusUnprocessableEntity, detail: "the Idempotency-Key was used before for a request with another webhook configuration",
			errors: []fieldProblem{{Header: "Idempotency-Key", Detail: "already used for another webhook"}}}
	case errors.Is(err, webhook.ErrConflict):
		return &apiError{status: http.StatusConflict, detail: "the webhook changed concurrently; read it again and retry", cause: err}
	case errors.Is(err, webhook.ErrNotFound):
		return notFound("not found")
	case errors.Is(err, webhook.ErrTenantRequired):
		return &apiError{status: http.StatusInternalServerError, detail: "the server has no tenant for the request", cause: err}
	case errors.As(err, &ve):
		return &apiError{status: http.StatusUnprocessableEntity, detail: "the " + what(ve) + " is invalid", errors: fieldProblems(ve), cause: err}
	case errors.Is(err, webhook.ErrQueueFull):
		return &apiError{status: http.StatusServiceUnavailable, detail: "the delivery queue is full; retry later", header: http.Header{"Retry-After": {"5"}}, cause: err}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &apiError{status: http.StatusServiceUnavailable, detail: "the request was canceled or timed out", cause: err}
	}
	return &apiError{status: http.StatusInternalServerError, detail: "internal server error", cause: err}
}

// what names the input of a validation error, for a detail.
func what(ve *webhook.ValidationError) string {
	if ve.What == "" {
		return "input"
	}
	return ve.What
}

// decodeError maps an error of decoding a request body to a 400, with
// the ValidationError's fields as pointers.
func decodeError(err error) *apiError {
	var ve *webhook.ValidationError
	if errors.As(err, &ve) {
		return badRequest("the request body does not fit the API: unknown fields, wrong types or malformed JSON", fieldProblems(ve)...)
	}
	return badRequest("malformed JSON: " + err.Error())
}

// fieldProblems converts a ValidationError's fields to problems with
// JSON Pointers.
func fieldProblems(ve *webhook.ValidationError) []fieldProblem {
	out := make([]fieldProblem, 0, len(ve.Fields))
	for _, f := range ve.Fields {
		out = append(out, fieldProblem{Pointer: ptr(pointer(f.Field)), Detail: f.Reason})
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// fail writes err as a problem, and logs it: at error level for a
// server fault, at debug level otherwise, with the request's tenant_id
// ("" before it is known, or for a single-tenant host).
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, tenant string, err error) {
	e := serviceError(err)
	if e.status >= 500 {
		h.log.ErrorContext(r.Context(), "httpapi: request failed", "method", r.Method, "path", r.URL.Path, "tenant_id", tenant, "status", e.status, "error", err)
	} else {
		h.log.DebugContext(r.Context(), "httpapi: request refused", "method", r.Method, "path", r.URL.Path, "tenant_id", tenant, "status", e.status, "detail", e.detail)
	}
	for k, vs := range e.header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	writeProblem(w, e.status, e.detail, e.errors)
}

// writeProblem writes an application/problem+json response.
func writeProblem(w http.ResponseWriter, status int, detail string, fields []fieldProblem) {
	b, err := json.Marshal(problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail, Errors: fields})
	if err != nil {
		b = []byte(`{"type":"about:blank","title":"Internal Server Error","status":500}`)
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Del("Content-Length")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// muxErrorWriter turns the ServeMux's own 404 and 405 responses into
// problems, keeping its headers (Allow); other responses (redirects to
// the cleaned path) pass.
type muxErrorWriter struct {
	http.ResponseWriter
	h        *Handler
	r        *http.Request
	replaced bool
}

func (m *muxErrorWriter) WriteHeader(status int) {
	if status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
		m.ResponseWriter.WriteHeader(status)
		return
	}
	m.replaced = true
	detail := "no such resource"
	if status == http.StatusMethodNotAllowed {
		detail = fmt.Sprintf("method %s is not allowed here; see Allow", m.r.Method)
	}
	m.h.log.DebugContext(m.r.Context(), "httpapi: request refused", "method", m.r.Method, "path", m.r.URL.Path, "status", status)
	writeProblem(m.ResponseWriter, status, detail, nil)
}

func (m *muxErrorWriter) Write(b []byte) (int, error) {
	if m.replaced {
		return len(b), nil
	}
	return m.ResponseWriter.Write(b)
}
