package pgstore

import (
	"context"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/analytics-webhooks/webhook"
)

var _ webhook.QueueStatsReader = (*Store)(nil)

// The queue view reads deliveries_unfinished_idx (migration 006), which
// holds only unfinished deliveries: its cost follows the backlog, not
// the history. due_at is NextAttemptAt while pending or retrying (and the
// lease's expiry while delivering, which Due and OldestDue leave out).
const (
	queueDepthSQL = `SELECT status, count(*), count(*) FILTER (WHERE due_at <= $1::timestamptz), min(due_at)
		FROM {{schema}}.deliveries WHERE due_at IS NOT NULL
		GROUP BY status`
	queueTopSQL = `SELECT webhook_id::text, count(*) FROM {{schema}}.deliveries WHERE due_at IS NOT NULL
		GROUP BY webhook_id ORDER BY count(*) DESC, webhook_id LIMIT $1`
)

// stmt returns sql with the store's schema filled in.
func (s *Store) stmt(sql string) string {
	return strings.ReplaceAll(sql, "{{schema}}", pgx.Identifier{s.schema}.Sanitize())
}

// QueueStats implements webhook.QueueStatsReader. Both of its statements
// read one snapshot.
func (s *Store) QueueStats(ctx context.Context, p webhook.QueueStatsParams) (webhook.QueueStats, error) {
	p, err := p.Validate()
	if err != nil {
		return webhook.QueueStats{}, err
	}
	q := webhook.NewQueueStats()
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, s.stmt(queueDepthSQL), p.Now)
		if err != nil {
			return err
		}
		var (
			status string
			n, due int64
			oldest *time.Time
		)
		_, err = pgx.ForEachRow(rows, []any{&status, &n, &due, &oldest}, func() error {
			st := webhook.DeliveryStatus(status)
			q.Depth[st] = n
			if st == webhook.StatusDelivering || oldest == nil {
				return nil
			}
			q.Due += due
			if q.OldestDue.IsZero() || oldest.Before(q.OldestDue) {
				q.OldestDue = oldest.UTC()
			}
			return nil
		})
		if err != nil || p.TopWebhooks == 0 {
			return err
		}
		rows, err = tx.Query(ctx, s.stmt(queueTopSQL), p.TopWebhooks)
		if err != nil {
			return err
		}
		q.TopBacklog, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (webhook.WebhookBacklog, error) {
			var b webhook.WebhookBacklog
			err := row.Scan(&b.WebhookID, &b.Unfinished)
			return b, err
		})
		return err
	})
	if err != nil {
		return webhook.QueueStats{}, translate(err, "queue stats")
	}
	return q, nil
}

var _ webhook.StatsReader = (*Store)(nil)

// outcomeSQL classifies an attempt (or a delivery's last attempt) from
// the status_code and error columns of the table aliased x, by the rules
// of webhook.ClassifyAttempt; storagetest checks that they agree.
const outcomeSQL = `CASE
		WHEN x.status_code BETWEEN 200 AND 299 THEN 'success'
		WHEN x.status_code <> 0 AND strpos(x.error, 'abort-message') > 0 THEN 'aborted'
		WHEN x.status_code <> 0 THEN 'http_error'
		WHEN starts_with(x.error, 'request timed out') THEN 'timeout'
		WHEN strpos(x.error, 'which webhooks may not reach') > 0 THEN 'blocked'
		WHEN starts_with(x.error, 'not sent') OR starts_with(x.error, 'canceled') OR starts_with(x.error, 'lease of worker ') THEN 'aborted'
		ELSE 'network_error' END`

// The window's deliveries are read through deliveries_webhook_created_idx
// (migration 006) and their attempts through the attempts' primary key:
// only the webhook's rows in the window, never the history.
const (
	statsDeliveriesSQL = `SELECT x.status, ` + outcomeSQL + `, count(*)
		FROM {{schema}}.deliveries x WHERE x.webhook_id = $1::uuid AND x.created_at >= $2::timestamptz
		GROUP BY 1, 2`
	statsAttemptsCTE = `WITH a AS (
			SELECT x.delivery_id, x.number, x.started_at, x.duration_ns, x.status_code, x.error, ` + outcomeSQL + ` AS outcome
			FROM {{schema}}.deliveries d JOIN {{schema}}.attempts x ON x.delivery_id = d.id
			WHERE d.webhook_id = $1::uuid AND d.created_at >= $2::timestamptz
		) `
	statsOutcomesSQL = statsAttemptsCTE + `SELECT outcome, count(*) FROM a GROUP BY outcome`
	// The attempts that reached the endpoint (see webhook.WebhookStats).
	statsLatencySQL = statsAttemptsCTE + `SELECT count(*),
			coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ns), 0),
			coalesce(percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ns), 0)
		FROM a WHERE status_code <> 0 OR outcome IN ('timeout', 'network_error')`
	statsLastSQL = statsAttemptsCTE + `(SELECT delivery_id::text, number, started_at, duration_ns, status_code, error, outcome
			FROM a WHERE outcome = 'success' ORDER BY started_at DESC, delivery_id DESC, number DESC LIMIT 1)
		UNION ALL
		(SELECT delivery_id::text, number, started_at, duration_ns, status_code, error, outcome
			FROM a WHERE outcome <> 'success' ORDER BY started_at DESC, delivery_id DESC, number DESC LIMIT 1)`
)

// WebhookStats implements webhook.StatsReader, in one snapshot and one
// round trip for its four statements.
func (s *Store) WebhookStats(ctx context.Context, p webhook.StatsParams) (*webhook.WebhookStats, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	st := webhook.NewWebhookStats(p.WebhookID, p.Since)
	if !validID(p.WebhookID) {
		return st, nil
	}
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var b pgx.Batch
		var (
			status, outcome string
			n               int64
		)
		b.Queue(s.stmt(statsDeliveriesSQL), p.WebhookID, p.Since).Query(func(rows pgx.Rows) error {
			_, err := pgx.ForEachRow(rows, []any{&status, &outcome, &n}, func() error {
				st.Deliveries[webhook.DeliveryStatus(status)] += n
				if webhook.DeliveryStatus(status).Final() {
					st.DeliveryOutcomes[webhook.AttemptOutcome(outcome)] += n
				}
				return nil
			})
			return err
		})
		b.Queue(s.stmt(statsOutcomesSQL), p.WebhookID, p.Since).Query(func(rows pgx.Rows) error {
			_, err := pgx.ForEachRow(rows, []any{&outcome, &n}, func() error {
				st.Attempts[webhook.AttemptOutcome(outcome)] = n
				return nil
			})
			return err
		})
		b.Queue(s.stmt(statsLatencySQL), p.WebhookID, p.Since).QueryRow(func(row pgx.Row) error {
			var p50, p95 float64
			if err := row.Scan(&st.LatencySamples, &p50, &p95); err != nil {
				return err
			}
			st.LatencyP50, st.LatencyP95 = time.Duration(math.Round(p50)), time.Duration(math.Round(p95))
			return nil
		})
		b.Queue(s.stmt(statsLastSQL), p.WebhookID, p.Since).Query(func(rows pgx.Rows) error {
			var (
				a      webhook.Attempt
				number int32
				code   int32
				ns     int64
			)
			_, err := pgx.ForEachRow(rows, []any{&a.DeliveryID, &number, &a.StartedAt, &ns, &code, &a.Error, &outcome}, func() error {
				c := a
				c.Number, c.StatusCode, c.Duration, c.StartedAt = int(number), int(code), time.Duration(ns), a.StartedAt.UTC()
				if outcome == string(webhook.AttemptSuccess) {
					st.LastSuccess = &c
				} else {
					st.LastFailure, st.LastFailureOutcome = &c, webhook.AttemptOutcome(outcome)
				}
				return nil
			})
			return err
		})
		return tx.SendBatch(ctx, &b).Close()
	})
	if err != nil {
		return nil, translate(err, "webhook %s: stats", p.WebhookID)
	}
	st.SetRates()
	return st, nil
}
