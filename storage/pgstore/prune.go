package pgstore

import (
	"context"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/jackc/pgx/v5"
)

// DefaultPruneBatch is the batch size Prune uses when none is given.
const DefaultPruneBatch = 1000

// Prune implements webhook.Pruner: it deletes deliveries that finished
// before p.Before, their attempts, payloads no delivery refers to any
// more, and idempotency keys older than p.Before, each batch in its own
// short transaction. A redelivery that races with pruning of its payload
// may fail with webhook.ErrNotFound.
func (s *Store) Prune(ctx context.Context, p webhook.PruneParams) (int, error) {
	batch := p.BatchSize
	if batch <= 0 {
		batch = DefaultPruneBatch
	}
	total := 0
	for {
		n, err := s.pruneBatch(ctx, p.Before, batch)
		total += n
		if err != nil {
			return total, err
		}
		if n < batch {
			break
		}
	}
	for {
		tag, err := s.pool.Exec(ctx, s.sql.pruneKeys, p.Before, batch)
		if err != nil {
			return total, translate(err, "prune idempotency keys")
		}
		if tag.RowsAffected() < int64(batch) {
			return total, nil
		}
	}
}

func (s *Store) pruneBatch(ctx context.Context, before time.Time, batch int) (int, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, translate(err, "prune")
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, s.sql.pruneDeliveries, before, batch)
	if err != nil {
		return 0, translate(err, "prune deliveries")
	}
	payloads, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, translate(err, "prune deliveries")
	}
	if len(payloads) > 0 {
		// Lock the payloads first: an enqueue under way that refers to
		// one holds it FOR KEY SHARE (lockStoredPayloads) until it
		// commits, and the delete's own snapshot, taken after the lock,
		// then sees its queued delivery.
		if _, err := tx.Exec(ctx, s.sql.lockPrunedPayloads, payloads); err != nil {
			return 0, translate(err, "prune payloads")
		}
		rows, err := tx.Query(ctx, s.sql.prunePayloads, payloads)
		if err != nil {
			return 0, translate(err, "prune payloads")
		}
		tails, err := pgx.CollectRows(rows, pgx.RowTo[*string])
		if err != nil {
			return 0, translate(err, "prune payloads")
		}
		var ids []string
		for _, t := range tails {
			if t != nil {
				ids = append(ids, *t)
			}
		}
		if len(ids) > 0 {
			if _, err := tx.Exec(ctx, s.sql.releaseTails, ids); err != nil {
				return 0, translate(err, "prune payload tails")
			}
			if _, err := tx.Exec(ctx, s.sql.pruneTails, ids); err != nil {
				return 0, translate(err, "prune payload tails")
			}
		}
	}
	return len(payloads), translate(tx.Commit(ctx), "prune")
}
