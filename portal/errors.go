package portal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/httpapi"
)

// pageError is a response to send as an error page: its status, the
// message shown, extra headers, and the cause to log.
type pageError struct {
	status  int
	message string
	header  http.Header
	cause   error
}

func (e *pageError) Error() string {
	if e.cause != nil {
		return e.cause.Error()
	}
	return fmt.Sprintf("%d: %s", e.status, e.message)
}

func notFound() *pageError {
	return &pageError{status: http.StatusNotFound, message: "There is no such page, or it is not yours."}
}

func badRequest(msg string) *pageError {
	return &pageError{status: http.StatusBadRequest, message: msg}
}

// hostError maps an error of Config.Tenant to the response, as httpapi
// does for its own Config.Tenant (see httpapi.HostStatus); an error it
// does not know asks the visitor to sign in.
func hostError(err error) *pageError {
	status, header, detail, ok := httpapi.HostStatus(err)
	if !ok {
		status = http.StatusUnauthorized
	}
	if detail == "" {
		switch status {
		case http.StatusTooManyRequests:
			detail = "Too many requests; try again in a moment."
		case http.StatusForbidden:
			detail = "You may not use this page."
		default:
			detail = "Please sign in first."
		}
	}
	return &pageError{status: status, message: detail, header: header, cause: err}
}

// serviceError maps an error of the Service to the response.
func serviceError(err error) *pageError {
	var pe *pageError
	var ve *webhook.ValidationError
	switch {
	case errors.As(err, &pe):
		return pe
	case errors.Is(err, webhook.ErrNotFound):
		e := notFound()
		e.cause = err
		return e
	case errors.Is(err, webhook.ErrConflict):
		return &pageError{status: http.StatusConflict, message: "The endpoint changed while you were editing it; reload it and try again.", cause: err}
	case errors.Is(err, webhook.ErrTenantRequired):
		return &pageError{status: http.StatusInternalServerError, message: "The server has no tenant for this request.", cause: err}
	case errors.As(err, &ve):
		reasons := make([]string, 0, len(ve.Fields))
		for _, f := range ve.Fields {
			reasons = append(reasons, f.Reason)
		}
		return &pageError{status: http.StatusConflict, message: "That is not possible now: " + strings.Join(reasons, "; ") + ".", cause: err}
	case errors.Is(err, webhook.ErrQueueFull):
		return &pageError{status: http.StatusServiceUnavailable, message: "The delivery queue is full; try again later.",
			header: http.Header{"Retry-After": {"5"}}, cause: err}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &pageError{status: http.StatusServiceUnavailable, message: "The request was canceled or timed out.", cause: err}
	}
	return &pageError{status: http.StatusInternalServerError, message: "Something went wrong on our side.", cause: err}
}

// fail writes err as an error page, and logs it: at error level for a
// server fault, at debug level otherwise. Form values never reach the
// log; the cause of a refusal is the Service's error, which names
// fields but holds no secrets.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := serviceError(err)
	if e.status >= 500 {
		h.log.ErrorContext(r.Context(), "portal: request failed", "method", r.Method, "path", r.URL.Path, "status", e.status, "error", err)
	} else {
		h.log.DebugContext(r.Context(), "portal: request refused", "method", r.Method, "path", r.URL.Path, "status", e.status)
	}
	for k, vs := range e.header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	h.errorPage(w, r, e.status, e.message)
}

// errorPage renders the error page with status and message.
func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request, status int, message string) {
	w.Header().Set("Cache-Control", "no-store")
	h.render(w, r, status, "error", &view{Title: http.StatusText(status), Data: message})
}
