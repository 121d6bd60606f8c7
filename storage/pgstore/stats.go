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

// The queue view reads the queue table (migration 008), which holds only
// unfinished deliveries: its cost follows the backlog, not the history.
// An index of its own (status, due_at, webhook_id) would cost every
// claim and result one more index write; a view that is polled every
// few seconds is not worth that. due_at is NextAttemptAt (a leased
// delivery keeps the one it was claimed at, which Due and OldestDue leave
// out).
const (
	queueDepthSQL = `SELECT CASE WHEN lease_token IS NULL THEN status ELSE 'delivering' END AS st,
			count(*), count(*) FILTER (WHERE due_at <= $1::timestamptz), min(due_at)
		FROM {{schema}}.queue
		GROUP BY st`
	queueTopSQL = `SELECT webhook_id::text, count(*) FROM {{schema}}.queue
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

// The window's finished deliveries are read through
// deliveries_webhook_created_idx (migration 006), its unfinished ones
// through queue_webhook_idx (the webhook's backlog), and their attempts
// through the attempts' primary key: only the webhook's rows in the
// window and its backlog, never the history.
const (
	windowSQL = `(SELECT x.id, x.status, x.status_code, x.error FROM {{schema}}.deliveries x
			WHERE x.webhook_id = $1::uuid AND x.created_at >= $2::timestamptz
		UNION ALL
		SELECT x.id, CASE WHEN x.lease_token IS NULL THEN x.status ELSE 'delivering' END, x.status_code, x.error FROM {{schema}}.queue x
			WHERE x.webhook_id = $1::uuid AND x.created_at >= $2::timestamptz)`
	statsDeliveriesSQL = `SELECT x.status, ` + outcomeSQL + `, count(*)
		FROM ` + windowSQL + ` x
		GROUP BY 1, 2`
	statsAttemptsCTE = `WITH a AS (
			SELECT x.delivery_id, x.number, x.started_at, x.duration_ns, x.status_code, x.error, o.outcome,
				x.status_code <> 0 OR o.outcome IN ('timeout', 'network_error') AS timed
			FROM ` + windowSQL + ` d JOIN {{schema}}.attempts x ON x.delivery_id = d.id,
				LATERAL (SELECT ` + outcomeSQL + ` AS outcome) o
		)`
	// One pass over the window's attempts: counts by outcome, the
	// latency of those that reached the endpoint (see
	// webhook.WebhookStats), and the last success and failure.
	statsAttemptsSQL = statsAttemptsCTE + `, agg AS (
			SELECT count(*) FILTER (WHERE outcome = 'success') AS success,
				count(*) FILTER (WHERE outcome = 'http_error') AS http_error,
				count(*) FILTER (WHERE outcome = 'network_error') AS network_error,
				count(*) FILTER (WHERE outcome = 'timeout') AS timeout,
				count(*) FILTER (WHERE outcome = 'blocked') AS blocked,
				count(*) FILTER (WHERE outcome = 'aborted') AS aborted,
				count(*) FILTER (WHERE timed) AS samples,
				coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ns) FILTER (WHERE timed), 0) AS p50,
				coalesce(percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ns) FILTER (WHERE timed), 0) AS p95
			FROM a
		), ls AS (
			SELECT * FROM a WHERE outcome = 'success' ORDER BY started_at DESC, delivery_id DESC, number DESC LIMIT 1
		), lf AS (
			SELECT * FROM a WHERE outcome <> 'success' ORDER BY started_at DESC, delivery_id DESC, number DESC LIMIT 1
		)
		SELECT agg.success, agg.http_error, agg.network_error, agg.timeout, agg.blocked, agg.aborted, agg.samples, agg.p50, agg.p95,
			ls.delivery_id::text, ls.number, ls.started_at, ls.duration_ns, ls.status_code, ls.error,
			lf.delivery_id::text, lf.number, lf.started_at, lf.duration_ns, lf.status_code, lf.error, lf.outcome
		FROM agg LEFT JOIN ls ON true LEFT JOIN lf ON true`
)

// WebhookStats implements webhook.StatsReader, in one snapshot and one
// round trip for its two statements.
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
		b.Queue(s.stmt(statsAttemptsSQL), p.WebhookID, p.Since).QueryRow(func(row pgx.Row) error {
			var (
				counts   [6]int64
				p50, p95 float64
				ls, lf   lastAttempt
				lfOut    *string
			)
			dest := []any{&counts[0], &counts[1], &counts[2], &counts[3], &counts[4], &counts[5], &st.LatencySamples, &p50, &p95}
			dest = append(dest, ls.dest()...)
			dest = append(append(dest, lf.dest()...), &lfOut)
			if err := row.Scan(dest...); err != nil {
				return err
			}
			for i, o := range []webhook.AttemptOutcome{webhook.AttemptSuccess, webhook.AttemptHTTPError, webhook.AttemptNetworkError,
				webhook.AttemptTimeout, webhook.AttemptBlocked, webhook.AttemptAborted} {
				st.Attempts[o] = counts[i]
			}
			st.LatencyP50, st.LatencyP95 = time.Duration(math.Round(p50)), time.Duration(math.Round(p95))
			st.LastSuccess, st.LastFailure = ls.attempt(), lf.attempt()
			if lfOut != nil {
				st.LastFailureOutcome = webhook.AttemptOutcome(*lfOut)
			}
			return nil
		})
		return tx.SendBatch(ctx, &b).Close()
	})
	if err != nil {
		return nil, translate(err, "webhook %s: stats", p.WebhookID)
	}
	st.SetRates()
	return st, nil
}

// lastAttempt scans the nullable columns of a last success or failure.
type lastAttempt struct {
	deliveryID, msg *string
	number, code    *int32
	started         *time.Time
	ns              *int64
}

func (l *lastAttempt) dest() []any {
	return []any{&l.deliveryID, &l.number, &l.started, &l.ns, &l.code, &l.msg}
}

// attempt returns the attempt scanned, or nil for none.
func (l *lastAttempt) attempt() *webhook.Attempt {
	if l.deliveryID == nil {
		return nil
	}
	return &webhook.Attempt{DeliveryID: *l.deliveryID, Number: int(*l.number), StartedAt: l.started.UTC(),
		Duration: time.Duration(*l.ns), StatusCode: int(*l.code), Error: *l.msg}
}
