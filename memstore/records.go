package memstore

import (
	"slices"
	"time"

	"github.com/analytics-webhooks/webhook"
)

// delivery is a stored delivery, kept small: what a queued delivery
// needs is inline, what only a delivery with a recorded attempt or a
// redelivery link needs is in res.
type delivery struct {
	id          string
	webhookID   string
	eventType   string
	pl          *payload
	status      webhook.DeliveryStatus
	attempt     int32
	maxAttempts int32
	pos         int32 // index in q.h while queued
	next        time.Time
	created     time.Time
	lease       *webhook.Lease // while delivering
	res         *result
	q           *queue // its webhook's queue while unfinished, else nil
}

// result holds what a delivery has once attempted or redelivered.
type result struct {
	statusCode    int
	responseBody  string
	duration      time.Duration
	err           string
	completed     time.Time
	redeliveryOf  string
	redeliveredBy string
	attempts      []webhook.Attempt
}

// payload is a stored payload. Its body is head followed by tail; the
// payloads of one Enqueue share the tail their bodies have in common
// (all but each webhook's own fields, for a trigger call's fan-out), so
// an event's data is held once however many webhooks it goes to.
type payload struct {
	id, webhookID, eventType, env, traceParent string
	ts                                         time.Time
	head, tail                                 []byte
}

// minSharedTail is the shortest common tail worth sharing.
const minSharedTail = 64

// newPayloads converts the payloads of one Enqueue, sharing the tail of
// each body with the first's.
func newPayloads(pls []*webhook.Payload) []*payload {
	out := make([]*payload, len(pls))
	var first []byte
	for i, pl := range pls {
		p := &payload{id: pl.ID, webhookID: pl.WebhookID, eventType: pl.EventType, env: pl.Environment, traceParent: pl.TraceParent, ts: pl.Timestamp}
		n := 0
		if i > 0 {
			n = commonTail(first, pl.Body)
		}
		if n >= minSharedTail {
			p.head = slices.Clone(pl.Body[:len(pl.Body)-n])
			p.tail = first[len(first)-n:]
		} else {
			p.head = slices.Clone(pl.Body)
		}
		if i == 0 {
			first = p.head
		}
		out[i] = p
	}
	return out
}

// commonTail returns how many bytes a and b end with in common.
func commonTail(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[len(a)-1-n] == b[len(b)-1-n] {
		n++
	}
	return n
}

func (p *payload) size() int { return len(p.head) + len(p.tail) }

// view returns p as a webhook.Payload with its own copy of the body.
func (p *payload) view() *webhook.Payload {
	var body []byte
	if p.head != nil || p.tail != nil {
		body = make([]byte, 0, p.size())
		body = append(append(body, p.head...), p.tail...)
	}
	return &webhook.Payload{ID: p.id, WebhookID: p.webhookID, EventType: p.eventType, Environment: p.env,
		Timestamp: p.ts, Body: body, TraceParent: p.traceParent}
}

// charge is what d counts towards Config.MaxActiveBytes while unfinished.
func (d *delivery) charge() int64 { return int64(d.pl.size()) + DeliveryOverheadBytes }

// newDelivery converts a delivery to enqueue.
func newDelivery(d *webhook.Delivery, pl *payload, lease *webhook.Lease) *delivery {
	sd := &delivery{id: d.ID, webhookID: d.WebhookID, eventType: d.EventType, pl: pl, status: d.Status,
		attempt: int32(d.Attempt), maxAttempts: int32(d.MaxAttempts), pos: -1, next: d.NextAttemptAt, created: d.CreatedAt}
	if lease != nil {
		l := *lease
		sd.lease = &l
	}
	if d.RedeliveryOf != "" || d.StatusCode != 0 || d.ResponseBody != "" || d.Error != "" || d.Duration != 0 || !d.CompletedAt.IsZero() {
		sd.res = &result{statusCode: d.StatusCode, responseBody: d.ResponseBody, duration: d.Duration, err: d.Error,
			completed: d.CompletedAt, redeliveryOf: d.RedeliveryOf}
	}
	return sd
}

// result returns d.res, allocating it on first need.
func (d *delivery) result() *result {
	if d.res == nil {
		d.res = &result{}
	}
	return d.res
}

// view returns d as a webhook.Delivery, with a copy of its attempts if
// attempts is set.
func (d *delivery) view(attempts bool) *webhook.Delivery {
	v := &webhook.Delivery{ID: d.id, WebhookID: d.webhookID, PayloadID: d.pl.id, EventType: d.eventType, Status: d.status,
		Attempt: int(d.attempt), MaxAttempts: int(d.maxAttempts), NextAttemptAt: d.next, CreatedAt: d.created}
	if r := d.res; r != nil {
		v.StatusCode, v.ResponseBody, v.Duration, v.Error = r.statusCode, r.responseBody, r.duration, r.err
		v.CompletedAt, v.RedeliveryOf, v.RedeliveredBy = r.completed, r.redeliveryOf, r.redeliveredBy
		if attempts {
			v.Attempts = slices.Clone(r.attempts)
		}
	}
	return v
}

// attempts returns d's recorded attempts (not a copy).
func (d *delivery) attempts() []webhook.Attempt {
	if d.res == nil {
		return nil
	}
	return d.res.attempts
}
