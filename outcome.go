package webhook

import (
	"net/http"
	"strconv"
	"strings"
)

// Outcome classifies the result of one delivery attempt.
type Outcome int

// The outcomes of an attempt.
const (
	// OutcomeSuccess: a 2xx response; the delivery is done.
	OutcomeSuccess Outcome = iota + 1
	// OutcomeRetry: any other failure, network errors and timeouts
	// included; the delivery is attempted again if attempts remain.
	OutcomeRetry
	// OutcomeAbort: the receiver answered with the header
	// "webhook-delivery: abort-message"; the delivery fails for good.
	OutcomeAbort
	// OutcomeGone: 410 Gone; the delivery fails for good and the
	// webhook is disabled.
	OutcomeGone
)

// String returns the outcome's name.
func (o Outcome) String() string {
	switch o {
	case OutcomeSuccess:
		return "success"
	case OutcomeRetry:
		return "retry"
	case OutcomeAbort:
		return "abort"
	case OutcomeGone:
		return "gone"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// HeaderDeliveryControl is the response header a receiver may set to
// "abort-message" to stop retries of one delivery.
const HeaderDeliveryControl = "webhook-delivery"

// Classify returns the outcome of an attempt from the response's status
// code and headers, or from the transport error err (which wins when
// non-nil). Only 2xx is success; 3xx is a failure because redirects are
// not followed.
func Classify(statusCode int, header http.Header, err error) Outcome {
	switch {
	case err != nil:
		return OutcomeRetry
	case statusCode >= 200 && statusCode <= 299:
		return OutcomeSuccess
	case statusCode == http.StatusGone:
		return OutcomeGone
	case strings.EqualFold(strings.TrimSpace(header.Get(HeaderDeliveryControl)), "abort-message"):
		return OutcomeAbort
	}
	return OutcomeRetry
}
