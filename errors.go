package webhook

import (
	"errors"
	"strings"
)

// Sentinel errors returned by the Service and by every Storage. Check them
// with errors.Is; the returned errors wrap them with detail.
var (
	// ErrNotFound reports that a webhook, delivery or payload does not exist.
	ErrNotFound = errors.New("webhook: not found")

	// ErrDuplicate reports that a row with the same ID already exists.
	ErrDuplicate = errors.New("webhook: duplicate")

	// ErrInvalid reports bad input. Errors that wrap it are usually a
	// *ValidationError, which lists every offending field.
	ErrInvalid = errors.New("webhook: invalid")

	// ErrConflict reports that a webhook changed since it was read: an
	// update based on an older Version was refused. Read it again and
	// retry.
	ErrConflict = errors.New("webhook: changed concurrently")

	// ErrQueueFull reports that a Storage refused an enqueue because its
	// queue is at capacity: back-pressure instead of unbounded growth.
	// Nothing was stored; retry later or shed load.
	ErrQueueFull = errors.New("webhook: delivery queue full")

	// ErrLeaseLost reports that a worker tried to record the result of a
	// delivery it no longer holds: its lease expired and another worker
	// claimed the delivery, or the result was already recorded.
	ErrLeaseLost = errors.New("webhook: delivery lease lost")

	// ErrCommitUnknown reports that a Storage lost its connection while
	// committing a write, so the write may or may not have been stored:
	// a trigger call that returns it may have enqueued its deliveries.
	// Retry such a call with the same idempotency key
	// (WithIdempotencyKey), which enqueues once whichever way the first
	// commit went. Create, Update and Delete can return it too: read the
	// webhook (or List) to see which way it went before trying again.
	ErrCommitUnknown = errors.New("webhook: commit outcome unknown")
)

// FieldError describes one invalid field of an input.
type FieldError struct {
	// Field is the JSON path of the field at fault, relative to the
	// input that was validated or decoded. For a Webhook: "url",
	// "triggers[0].filters[1].value", "triggers[0].conditions[0].metric",
	// "retry.max_attempts", "previous_secrets[0].secret"; map keys are
	// quoted in brackets (`headers["X-Team"]`). For a Trigger on its own
	// (Trigger.Match, Trigger's JSON): "filters[1].value"; for a Filter
	// (Filter.Match): "property", "operator" or "value"; for MatchFilters:
	// "filters[1].value"; for a RetryPolicy: "max_attempts". Trigger calls
	// name their arguments ("event_type", "environment", "data"). A JSON
	// input that is not an object at all is "(input)".
	Field string `json:"field"`
	// Reason says what is wrong, in words meant for the person who
	// supplied the input.
	Reason string `json:"reason"`
}

func (f FieldError) String() string { return f.Field + ": " + f.Reason }

// ValidationError is returned when an input has one or more invalid fields.
// errors.Is(err, ErrInvalid) reports true for it.
type ValidationError struct {
	// What names the input that was validated, such as "webhook".
	What string
	// Fields lists every problem found, in field order.
	Fields []FieldError
}

// Error returns all problems on one line.
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("webhook: invalid ")
	if e.What != "" {
		b.WriteString(e.What)
	} else {
		b.WriteString("input")
	}
	for i, f := range e.Fields {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.String())
	}
	return b.String()
}

// Is reports whether target is ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// problems collects field errors during validation.
type problems struct {
	fields []FieldError
}

func (p *problems) add(field, reason string) {
	p.fields = append(p.fields, FieldError{Field: field, Reason: reason})
}

// err returns nil when nothing was added, else a *ValidationError.
func (p *problems) err(what string) error {
	if len(p.fields) == 0 {
		return nil
	}
	return &ValidationError{What: what, Fields: p.fields}
}

// invalidf returns a one-field *ValidationError.
func invalid(what, field, reason string) error {
	return &ValidationError{What: what, Fields: []FieldError{{Field: field, Reason: reason}}}
}
