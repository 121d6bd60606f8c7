package webhooktest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"

	"github.com/analytics-webhooks/webhook"
)

// Message is the decoded body of a delivery, in the fields and order the
// library sends: json.Marshal of a Message gives a body like the
// library's, for testing a receiver.
type Message struct {
	// ID is the message ID, also sent as the webhook-id header.
	ID          string         `json:"id"`
	WebhookID   string         `json:"webhook_id"`
	EventType   string         `json:"event_type"`
	Timestamp   time.Time      `json:"timestamp"`
	Data        map[string]any `json:"data"`
	Environment string         `json:"environment"`
	// Delivery is the stored delivery the message was found through, for
	// messages the Require functions return; nil otherwise.
	Delivery *webhook.Delivery `json:"-"`
}

// DecodeMessage decodes a delivery's body. Numbers in Data are float64,
// as encoding/json decodes them.
func DecodeMessage(body []byte) (*Message, error) {
	var m Message
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&m); err != nil {
		return nil, err
	}
	return &m, nil
}

// Request is one request a Doer or a Receiver saw.
type Request struct {
	// Method, URL and Header are the request's.
	Method string
	URL    string
	Header http.Header
	// Body is the request body as sent.
	Body []byte
	// Message is Body decoded; nil when Body is not a message.
	Message *Message
	// VerifyErr is the Receiver's signature check's error; nil when the
	// signature is valid, and always nil for a Doer, which does not check.
	VerifyErr error
}

// newRequest records r, whose body is body.
func newRequest(r *http.Request, body []byte) *Request {
	req := &Request{Method: r.Method, URL: r.URL.String(), Header: r.Header.Clone(), Body: body}
	req.Message, _ = DecodeMessage(body)
	return req
}

// EventType returns the request's event type, or "" when it carries no
// message.
func (r *Request) EventType() string {
	if r.Message == nil {
		return ""
	}
	return r.Message.EventType
}

// Responder decides how a Doer or Receiver answers a request: the status
// code to answer with, or 0 for a Doer to fail the request with a
// network error (a Receiver answers 0 as 200).
type Responder func(r *Request) int

// Statuses returns a Responder that answers the n-th request it sees (in
// the order requests arrive, whichever their delivery) with the n-th
// code, and every request after the last code with the last code; with
// no codes, 200. Statuses(503, 503, 200) makes an endpoint that fails
// twice and then succeeds.
func Statuses(codes ...int) Responder {
	var n syncCounter
	return func(*Request) int {
		if len(codes) == 0 {
			return http.StatusOK
		}
		return codes[min(n.next(), len(codes)-1)]
	}
}
