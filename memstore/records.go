package memstore

import (
	"slices"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/internal/bodytail"
)

// delivery is a stored delivery, kept small: what a queued delivery
// needs is inline, what only a delivery with a recorded attempt or a
// redelivery link needs is in res. Times are kept in microseconds, UTC:
// the precision every Storage keeps.
type delivery struct {
	id          string
	webhookID   string
	eventType   string
	pl          *payload
	attempt     int32
	maxAttempts int32
	pos         int32          // index in q.h while queued
	st          uint8          // index in statuses; 0: res.status
	next        int64          // NextAttemptAt
	created     int64          // CreatedAt
	lease       *webhook.Lease // while delivering
	res         *result
	q           *queue // its webhook's queue while unfinished, else nil
}

// statuses are the statuses a delivery's st names.
var statuses = [...]webhook.DeliveryStatus{"", webhook.StatusPending, webhook.StatusDelivering, webhook.StatusRetrying, webhook.StatusDelivered, webhook.StatusFailed}

func (d *delivery) status() webhook.DeliveryStatus {
	if d.st == 0 {
		return d.res.status
	}
	return statuses[d.st]
}

func (d *delivery) setStatus(st webhook.DeliveryStatus) {
	for i := 1; i < len(statuses); i++ {
		if statuses[i] == st {
			d.st = uint8(i)
			return
		}
	}
	d.st = 0
	d.result().status = st
}

// micros and fromMicros convert the times a Store keeps.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// result holds what a delivery has once attempted or redelivered.
type result struct {
	status        webhook.DeliveryStatus // one not in statuses
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
// an event's data is held once however many webhooks it goes to. Its
// webhook and event type are its owner's (the delivery enqueued with it)
// unless meta says otherwise.
type payload struct {
	id, env    string
	ts         int64 // microseconds
	head, tail []byte
	owner      *delivery
	meta       *payloadMeta
}

// payloadMeta holds what a payload does not share with its owner.
type payloadMeta struct {
	webhookID, eventType, traceParent string
}

func (p *payload) webhookID() string {
	if p.meta != nil && p.owner == nil {
		return p.meta.webhookID
	}
	return p.owner.webhookID
}

func (p *payload) eventType() string {
	if p.meta != nil && p.owner == nil {
		return p.meta.eventType
	}
	return p.owner.eventType
}

// newPayloads converts the payloads of one Enqueue, sharing the tail of
// each body with the first's.
func newPayloads(pls []*webhook.Payload) []*payload {
	out := make([]*payload, len(pls))
	var first []byte
	for i, pl := range pls {
		p := &payload{id: pl.ID, env: pl.Environment, ts: micros(pl.Timestamp)}
		// Until an owner is found (see own), the payload keeps its own.
		p.meta = &payloadMeta{webhookID: pl.WebhookID, eventType: pl.EventType, traceParent: pl.TraceParent}
		n := 0
		if i > 0 {
			n = bodytail.Common(first, pl.Body)
		}
		if n >= bodytail.MinShared {
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

// own makes d, enqueued with p, its owner if they agree on the webhook
// and event type, so that p need not keep them.
func (p *payload) own(d *delivery) {
	if p.owner != nil || p.meta == nil || p.meta.webhookID != d.webhookID || p.meta.eventType != d.eventType {
		return
	}
	p.owner = d
	if p.meta.traceParent == "" {
		p.meta = nil
	} else {
		p.meta.webhookID, p.meta.eventType = "", ""
	}
}

func (p *payload) size() int { return len(p.head) + len(p.tail) }

// view returns p as a webhook.Payload with its own copy of the body.
func (p *payload) view() *webhook.Payload {
	v := new(webhook.Payload)
	p.viewInto(v)
	return v
}

// viewInto sets *v to p, as view returns it.
func (p *payload) viewInto(v *webhook.Payload) {
	var body []byte
	if p.head != nil || p.tail != nil {
		body = make([]byte, 0, p.size())
		body = append(append(body, p.head...), p.tail...)
	}
	*v = webhook.Payload{ID: p.id, WebhookID: p.webhookID(), EventType: p.eventType(), Environment: p.env,
		Timestamp: fromMicros(p.ts), Body: body}
	if p.meta != nil {
		v.TraceParent = p.meta.traceParent
	}
}

// charge is what d counts towards Config.MaxActiveBytes while unfinished.
func (d *delivery) charge() int64 { return int64(d.pl.size()) + DeliveryOverheadBytes }

// newDelivery converts a delivery to enqueue.
func newDelivery(d *webhook.Delivery, pl *payload, lease *webhook.Lease) *delivery {
	sd := &delivery{id: d.ID, webhookID: d.WebhookID, eventType: d.EventType, pl: pl,
		attempt: int32(d.Attempt), maxAttempts: int32(d.MaxAttempts), pos: -1, next: micros(d.NextAttemptAt), created: micros(d.CreatedAt)}
	sd.setStatus(d.Status)
	if lease != nil {
		l := *lease
		sd.lease = &l
	}
	if d.RedeliveryOf != "" || d.StatusCode != 0 || d.ResponseBody != "" || d.Error != "" || d.Duration != 0 || !d.CompletedAt.IsZero() {
		r := sd.result()
		r.statusCode, r.responseBody, r.duration, r.err = d.StatusCode, d.ResponseBody, d.Duration, d.Error
		r.completed, r.redeliveryOf = d.CompletedAt, d.RedeliveryOf
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
	v := new(webhook.Delivery)
	d.viewInto(v, attempts)
	return v
}

// viewInto sets *v to d, as view returns it.
func (d *delivery) viewInto(v *webhook.Delivery, attempts bool) {
	*v = webhook.Delivery{ID: d.id, WebhookID: d.webhookID, PayloadID: d.pl.id, EventType: d.eventType, Status: d.status(),
		Attempt: int(d.attempt), MaxAttempts: int(d.maxAttempts), NextAttemptAt: fromMicros(d.next), CreatedAt: fromMicros(d.created)}
	if r := d.res; r != nil {
		v.StatusCode, v.ResponseBody, v.Duration, v.Error = r.statusCode, r.responseBody, r.duration, r.err
		v.CompletedAt, v.RedeliveryOf, v.RedeliveredBy = r.completed, r.redeliveryOf, r.redeliveredBy
		if attempts {
			v.Attempts = slices.Clone(r.attempts)
		}
	}
}

// attempts returns d's recorded attempts (not a copy).
func (d *delivery) attempts() []webhook.Attempt {
	if d.res == nil {
		return nil
	}
	return d.res.attempts
}
