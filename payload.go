package webhook

import (
	"encoding/json"
	"time"
)

// Payload is one message for one webhook, stored when the trigger call
// enqueues it. Body holds the exact bytes every attempt sends:
//
//	{"id":…,"webhook_id":…,"event_type":…,"timestamp":…,"data":{…},"environment":…}
//
// ID is the webhook-id header, the same on every attempt and redelivery.
type Payload struct {
	ID          string    `json:"id"`
	WebhookID   string    `json:"webhook_id"`
	EventType   string    `json:"event_type"`
	Environment string    `json:"environment"`
	Timestamp   time.Time `json:"timestamp"`
	// Body is the request body, sent as stored.
	Body json.RawMessage `json:"body"`
	// TraceParent is the W3C traceparent of the trigger call's span, so
	// that each attempt's span links to it; empty when the call was not
	// traced. It is never sent, unless the webhook has PropagateTrace
	// (which sends the attempt's own span instead).
	TraceParent string `json:"traceparent,omitempty"`
}

// newMessage builds one occurrence's payload for one webhook, with new
// IDs, and its delivery, pending and due at now. data is encoded JSON.
func newMessage(webhookID, eventType string, ts, now time.Time, data []byte, env string) (*Payload, *Delivery, error) {
	pid, err := newID()
	if err != nil {
		return nil, nil, err
	}
	did, err := newID()
	if err != nil {
		return nil, nil, err
	}
	body, err := encodePayload(pid, webhookID, eventType, ts, data, env)
	if err != nil {
		return nil, nil, err
	}
	pl := &Payload{ID: pid, WebhookID: webhookID, EventType: eventType, Environment: env, Timestamp: ts, Body: body}
	d := &Delivery{ID: did, WebhookID: webhookID, PayloadID: pid, EventType: eventType, Status: StatusPending, NextAttemptAt: now, CreatedAt: now}
	return pl, d, nil
}

// encodeJSON encodes event data, reporting failures as ErrInvalid.
func encodeJSON(data map[string]any) ([]byte, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, invalid("event", "data", "cannot be encoded as JSON: "+err.Error())
	}
	return raw, nil
}

// encodePayload returns the wire body:
// {"id","webhook_id","event_type","timestamp","data","environment"}.
// data is already encoded JSON.
func encodePayload(id, webhookID, eventType string, ts time.Time, data []byte, env string) ([]byte, error) {
	tsJSON, err := ts.MarshalJSON()
	if err != nil {
		return nil, invalid("payload", "timestamp", err.Error())
	}
	b := make([]byte, 0, len(data)+len(eventType)+len(env)+200)
	b = append(b, `{"id":`...)
	b = appendJSONString(b, id)
	b = append(b, `,"webhook_id":`...)
	b = appendJSONString(b, webhookID)
	b = append(b, `,"event_type":`...)
	b = appendJSONString(b, eventType)
	b = append(b, `,"timestamp":`...)
	b = append(b, tsJSON...)
	b = append(b, `,"data":`...)
	b = append(b, data...)
	b = append(b, `,"environment":`...)
	b = appendJSONString(b, env)
	return append(b, '}'), nil
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always encodes
	return append(b, q...)
}
