package pgstore

import (
	"context"
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
