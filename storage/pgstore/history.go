package pgstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/jackc/pgx/v5"
)

var _ webhook.HistoryReader = (*Store)(nil)

// deliveryCols holds the nullable columns of a delivery row while scanning.
type deliveryCols struct {
	next, completed *time.Time
	created         time.Time
	status          string
	attempt, code   int32
	maxAttempts     int32
	durationNS      int64
}

// statusColumn is the status of the delivery row aliased d, of the
// queue or the history: a leased queued delivery is delivering, whatever
// its status column says (the status it returns to if the lease is
// handed back; see claimSQL).
const statusColumn = `CASE WHEN d.lease_token IS NULL THEN d.status ELSE 'delivering' END`

// deliveryColumns lists the columns dest scans, in order.
const deliveryColumns = `d.id::text, d.webhook_id::text, d.payload_id::text, d.event_type, ` + statusColumn + `, d.attempt,
	d.next_attempt_at, d.status_code, d.response_body, d.duration_ns, d.error, d.created_at, d.completed_at,
	d.max_attempts, coalesce(d.redelivery_of::text, ''), coalesce(d.redelivered_by::text, '')`

func (c *deliveryCols) dest(d *webhook.Delivery) []any {
	return []any{&d.ID, &d.WebhookID, &d.PayloadID, &d.EventType, &c.status, &c.attempt,
		&c.next, &c.code, &d.ResponseBody, &c.durationNS, &d.Error, &c.created, &c.completed,
		&c.maxAttempts, &d.RedeliveryOf, &d.RedeliveredBy}
}

func (c *deliveryCols) finish(d *webhook.Delivery) {
	d.Status = webhook.DeliveryStatus(c.status)
	d.Attempt = int(c.attempt)
	d.MaxAttempts = int(c.maxAttempts)
	d.NextAttemptAt = utc(c.next)
	d.StatusCode = int(c.code)
	d.Duration = time.Duration(c.durationNS)
	d.CreatedAt = c.created.UTC()
	d.CompletedAt = utc(c.completed)
}

func scanDelivery(row pgx.CollectableRow) (*webhook.Delivery, error) {
	var d webhook.Delivery
	var c deliveryCols
	if err := row.Scan(c.dest(&d)...); err != nil {
		return nil, err
	}
	c.finish(&d)
	return &d, nil
}

// GetDelivery implements webhook.Storage.
func (s *Store) GetDelivery(ctx context.Context, id string) (*webhook.Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !validID(id) {
		return nil, fmt.Errorf("delivery %s: %w", id, webhook.ErrNotFound)
	}
	rows, err := s.pool.Query(ctx, s.sql.getDelivery, id)
	if err != nil {
		return nil, translate(err, "delivery %s", id)
	}
	d, err := pgx.CollectExactlyOneRow(rows, scanDelivery)
	return d, translate(err, "delivery %s", id)
}

// ListDeliveries implements webhook.Storage.
func (s *Store) ListDeliveries(ctx context.Context, p webhook.ListDeliveriesParams) ([]*webhook.Delivery, error) {
	sql, args, err := s.historyPage(p, false)
	if sql == "" || err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, translate(err, "list deliveries")
	}
	ds, err := pgx.CollectRows(rows, scanDelivery)
	return ds, translate(err, "list deliveries")
}

// ListDeliveriesWithAttempts implements webhook.HistoryReader: one
// statement reads the page and its attempts.
func (s *Store) ListDeliveriesWithAttempts(ctx context.Context, p webhook.ListDeliveriesParams) ([]*webhook.Delivery, error) {
	sql, args, err := s.historyPage(p, true)
	if sql == "" || err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, translate(err, "list deliveries")
	}
	ds, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*webhook.Delivery, error) {
		var d webhook.Delivery
		var c deliveryCols
		var a attemptArrays
		if err := row.Scan(append(c.dest(&d), a.dest()...)...); err != nil {
			return nil, err
		}
		c.finish(&d)
		var err error
		d.Attempts, err = a.attempts(d.ID)
		return &d, err
	})
	return ds, translate(err, "list deliveries")
}

// historyPage validates p and returns the statement of its page; none
// (and no error) when the page is empty whatever is stored.
func (s *Store) historyPage(p webhook.ListDeliveriesParams, attempts bool) (string, []any, error) {
	if err := p.Validate(); err != nil {
		return "", nil, err
	}
	if !validID(p.WebhookID) {
		return "", nil, nil
	}
	before := p.Before
	if before == "" {
		before = maxUUID
	} else if !validID(before) {
		return "", nil, fmt.Errorf("%w: cursor %q is not a delivery ID", webhook.ErrInvalid, p.Before)
	}
	sql, args := s.listDeliveriesQuery(p, before, attempts)
	return sql, args, nil
}

// ListAttempts implements webhook.Storage.
func (s *Store) ListAttempts(ctx context.Context, deliveryID string) ([]webhook.Attempt, error) {
	if !validID(deliveryID) {
		return nil, fmt.Errorf("delivery %s: %w", deliveryID, webhook.ErrNotFound)
	}
	rows, err := s.pool.Query(ctx, s.sql.listAttempts, deliveryID)
	if err != nil {
		return nil, translate(err, "delivery %s: attempts", deliveryID)
	}
	atts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (webhook.Attempt, error) {
		var a webhook.Attempt
		var number, code int32
		var ns int64
		err := row.Scan(&number, &a.StartedAt, &ns, &code, &a.ResponseBody, &a.Error)
		a.DeliveryID, a.Number, a.StatusCode, a.Duration, a.StartedAt = deliveryID, int(number), int(code), time.Duration(ns), a.StartedAt.UTC()
		return a, err
	})
	if err != nil {
		return nil, translate(err, "delivery %s: attempts", deliveryID)
	}
	if len(atts) == 0 {
		var exists bool
		if err := s.pool.QueryRow(ctx, s.sql.deliveryExists, deliveryID).Scan(&exists); err != nil {
			return nil, translate(err, "delivery %s", deliveryID)
		}
		if !exists {
			return nil, fmt.Errorf("delivery %s: %w", deliveryID, webhook.ErrNotFound)
		}
	}
	return atts, nil
}

// GetPayload implements webhook.Storage.
func (s *Store) GetPayload(ctx context.Context, id string) (*webhook.Payload, error) {
	if !validID(id) {
		return nil, fmt.Errorf("payload %s: %w", id, webhook.ErrNotFound)
	}
	var p webhook.Payload
	err := s.pool.QueryRow(ctx, s.sql.getPayload, id).Scan(&p.ID, &p.WebhookID, &p.EventType, &p.Environment, &p.Timestamp, &p.Body, &p.TraceParent)
	if err != nil {
		return nil, translate(err, "payload %s", id)
	}
	p.Timestamp = p.Timestamp.UTC()
	return &p, nil
}

// replayStatements holds the SQL of redeliveries and replays.
type replayStatements struct {
	markRedelivered, countDeliveries, lockPayloads string
}

func newReplayStatements(schema string) replayStatements {
	q := func(sql string) string { return strings.ReplaceAll(sql, "{{schema}}", schema) }
	return replayStatements{
		// Point each original ($2) at its redelivery ($1); with $3, only
		// originals not redelivered yet. Returns the originals marked.
		// An original is finished (in the history) when the Service
		// redelivers it, but the Storage contract allows any.
		markRedelivered: q(`WITH i AS (SELECT * FROM unnest($1::text[], $2::text[]) AS i(new_id, orig_id)),
			h AS (
				UPDATE {{schema}}.deliveries o SET redelivered_by = i.new_id::uuid FROM i
				WHERE o.id = i.orig_id::uuid AND NOT ($3 AND o.redelivered_by IS NOT NULL)
				RETURNING o.id
			), q AS (
				UPDATE {{schema}}.queue o SET redelivered_by = i.new_id::uuid FROM i
				WHERE o.id = i.orig_id::uuid AND NOT ($3 AND o.redelivered_by IS NOT NULL)
				RETURNING o.id
			)
			SELECT id::text FROM h UNION ALL SELECT id::text FROM q`),
		lockPayloads: q(`SELECT id::text FROM {{schema}}.payloads WHERE id = ANY ($1::text[]::uuid[]) FOR KEY SHARE`),
		countDeliveries: q(`SELECT (SELECT count(*) FROM {{schema}}.deliveries WHERE id = ANY ($1::text[]::uuid[]))
			+ (SELECT count(*) FROM {{schema}}.queue WHERE id = ANY ($1::text[]::uuid[]))`),
	}
}
