package webhook

import (
	"encoding/json"
	"time"
)

// DeliveryStatus is where a delivery stands. The values are the specification's.
type DeliveryStatus string

// The delivery statuses.
const (
	// StatusPending: due for its first attempt.
	StatusPending DeliveryStatus = "pending"
	// StatusDelivering: leased by a worker that is attempting it.
	StatusDelivering DeliveryStatus = "delivering"
	// StatusRetrying: an attempt failed and the next is scheduled.
	StatusRetrying DeliveryStatus = "retrying"
	// StatusDelivered: an attempt succeeded (final).
	StatusDelivered DeliveryStatus = "delivered"
	// StatusFailed: no attempt succeeded and none will be made (final).
	StatusFailed DeliveryStatus = "failed"
)

// Final reports whether no further attempt will be made in this status.
func (s DeliveryStatus) Final() bool { return s == StatusDelivered || s == StatusFailed }

// Valid reports whether s is one of the five statuses.
func (s DeliveryStatus) Valid() bool {
	switch s {
	case StatusPending, StatusDelivering, StatusRetrying, StatusDelivered, StatusFailed:
		return true
	}
	return false
}

// Delivery is the delivery of one Payload to one webhook: its status and
// the outcome of its latest attempt, in the specification's field names.
type Delivery struct {
	ID        string         `json:"id"`
	WebhookID string         `json:"webhook_id"`
	PayloadID string         `json:"payload_id"`
	EventType string         `json:"event_type"`
	Status    DeliveryStatus `json:"status"`
	// Attempt is the number of attempts started, the current one
	// included; 0 before the first.
	Attempt int `json:"attempt"`
	// NextAttemptAt is when the delivery is next due (pending, retrying).
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"`
	// StatusCode, ResponseBody, Duration and Error describe the latest
	// finished attempt.
	StatusCode   int           `json:"status_code,omitempty"`
	ResponseBody string        `json:"response_body,omitempty"`
	Duration     time.Duration `json:"-"`
	Error        string        `json:"error,omitempty"`
	CreatedAt    time.Time     `json:"created_at"`
	// CompletedAt is when the delivery reached delivered or failed.
	CompletedAt time.Time `json:"completed_at,omitzero"`
	// MaxAttempts is the attempt budget the delivery was enqueued with
	// (its webhook's RetryPolicy.MaxAttempts then), or 0 when unknown.
	// Storage uses it only to tell a lost lease of a real attempt from
	// one taken after the budget was used up (see
	// Storage.ClaimDeliveries).
	MaxAttempts int `json:"-"`
	// RedeliveryOf is the ID of the delivery this one sends again (by
	// Redeliver or ReplayFailed); empty for a first delivery.
	RedeliveryOf string `json:"redelivery_of,omitempty"`
	// RedeliveredBy is the ID of the latest delivery that sends this one
	// again. ReplayFailed skips deliveries that have one, so replaying
	// twice queues each failed message once.
	RedeliveredBy string `json:"redelivered_by,omitempty"`
	// Attempts is the attempt history, oldest first, filled by the
	// Service's Delivery, Deliveries and ListDeliveries; Storage leaves
	// it nil, except in what HistoryReader returns.
	Attempts []Attempt `json:"attempts,omitempty"`
}

// MarshalJSON adds duration_ms, the specification's form of Duration.
func (d Delivery) MarshalJSON() ([]byte, error) {
	type plain Delivery
	return json.Marshal(struct {
		plain
		DurationMS *int64 `json:"duration_ms,omitempty"`
	}{plain(d), durationMS(d.Duration, d.Attempt > 0 && d.Status != StatusDelivering)})
}

// Attempt records one HTTP try of a delivery.
type Attempt struct {
	DeliveryID string `json:"delivery_id"`
	// Number counts attempts of the delivery from 1.
	Number    int           `json:"attempt"`
	StartedAt time.Time     `json:"started_at"`
	Duration  time.Duration `json:"-"`
	// StatusCode is the response's status, 0 if none arrived.
	StatusCode int `json:"status_code,omitempty"`
	// ResponseBody is the start of the response body, up to the
	// worker's limit.
	ResponseBody string `json:"response_body,omitempty"`
	// Error says why the attempt failed, empty on success.
	Error string `json:"error,omitempty"`
}

// MarshalJSON adds duration_ms.
func (a Attempt) MarshalJSON() ([]byte, error) {
	type plain Attempt
	return json.Marshal(struct {
		plain
		DurationMS *int64 `json:"duration_ms"`
	}{plain(a), durationMS(a.Duration, true)})
}

func durationMS(d time.Duration, ok bool) *int64 {
	if !ok {
		return nil
	}
	ms := d.Milliseconds()
	return &ms
}
