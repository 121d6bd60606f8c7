package pgstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/jackc/pgx/v5"
)

// RecordAttempt implements webhook.Storage.
func (s *Store) RecordAttempt(ctx context.Context, p webhook.RecordAttemptParams) error {
	if err := p.Validate(); err != nil {
		return err
	}
	// One statement does it all: one round trip, one commit.
	refused, err := s.recordOne(ctx, s.pool, p)
	return cmp.Or(err, refused)
}

// recordOne records one valid result through q. It returns refused
// (ErrNotFound, ErrLeaseLost) when the result was refused, and err when
// a statement failed, which leaves a transaction unusable.
func (s *Store) recordOne(ctx context.Context, q querier, p webhook.RecordAttemptParams) (refused, err error) {
	if !validID(p.DeliveryID) {
		return fmt.Errorf("delivery %s: %w", p.DeliveryID, webhook.ErrNotFound), nil
	}
	if p.Released {
		var webhookID string
		err = q.QueryRow(ctx, s.sql.releaseDelivery, p.DeliveryID, p.Token, p.NextAttemptAt).Scan(&webhookID)
	} else {
		var rows pgx.Rows
		rows, err = q.Query(ctx, s.sql.recordAttempts, recordArgs([]webhook.RecordAttemptParams{p})...)
		if err == nil {
			var recorded []string
			recorded, err = pgx.CollectRows(rows, pgx.RowTo[string])
			if err == nil && len(recorded) == 0 {
				err = pgx.ErrNoRows
			}
		}
	}
	if errors.Is(err, pgx.ErrNoRows) {
		var exists bool
		if err := q.QueryRow(ctx, s.sql.deliveryExists, p.DeliveryID).Scan(&exists); err != nil {
			return nil, translate(err, "delivery %s: record attempt", p.DeliveryID)
		}
		if !exists {
			return fmt.Errorf("delivery %s: %w", p.DeliveryID, webhook.ErrNotFound), nil
		}
		return fmt.Errorf("delivery %s: %w", p.DeliveryID, webhook.ErrLeaseLost), nil
	}
	if err != nil {
		return nil, translate(err, "delivery %s: record attempt", p.DeliveryID)
	}
	return nil, nil
}

// RecordAttempts implements webhook.BatchRecorder, in one transaction:
// results are written in one statement, releases one by one. If any
// statement fails, nothing is recorded and the error is returned as the
// second result. A batch of results alone, each of another delivery (a
// worker's usual batch), is that one statement, which needs no
// transaction of its own around it: one round trip.
func (s *Store) RecordAttempts(ctx context.Context, ps []webhook.RecordAttemptParams) ([]error, error) {
	if resultsOnly(ps) {
		return s.recordIn(ctx, s.pool, ps)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, translate(err, "record attempts")
	}
	defer tx.Rollback(ctx)
	errs, err := s.recordIn(ctx, tx, ps)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, translate(err, "record attempts")
	}
	return errs, nil
}

// resultsOnly reports whether ps holds no release, and names each
// delivery once with an ID that can exist.
func resultsOnly(ps []webhook.RecordAttemptParams) bool {
	named := make(map[string]bool, len(ps))
	for _, p := range ps {
		id := strings.ToLower(p.DeliveryID)
		if p.Released || !validID(id) || named[id] {
			return false
		}
		named[id] = true
	}
	return true
}

// recordIn records ps through q, the pool (for ps that resultsOnly
// accepts) or a transaction, whose commit is left to the caller.
func (s *Store) recordIn(ctx context.Context, q querier, ps []webhook.RecordAttemptParams) ([]error, error) {
	errs := make([]error, len(ps))
	var batch, again []int
	named := make(map[string]bool, len(ps))
	for i, p := range ps {
		if err := p.Validate(); err != nil {
			errs[i] = err
			continue
		}
		if p.Released || !validID(p.DeliveryID) {
			refused, err := s.recordOne(ctx, q, p)
			if err != nil {
				return nil, err
			}
			errs[i] = refused
			continue
		}
		// The statement names each delivery once; a second result for
		// one is recorded after it, and so refused unless its token
		// holds a lease again.
		if id := strings.ToLower(p.DeliveryID); named[id] {
			again = append(again, i)
			continue
		}
		named[strings.ToLower(p.DeliveryID)] = true
		batch = append(batch, i)
	}
	if len(batch) == 0 {
		return errs, nil
	}
	params := make([]webhook.RecordAttemptParams, len(batch))
	for j, i := range batch {
		params[j] = ps[i]
	}
	rows, err := q.Query(ctx, s.sql.recordAttempts, recordArgs(params)...)
	if err != nil {
		return nil, translate(err, "record attempts")
	}
	recorded, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, translate(err, "record attempts")
	}
	done := make(map[string]bool, len(recorded))
	for _, id := range recorded {
		done[id] = true // PostgreSQL prints UUIDs in lower case
	}
	var missing []string
	for _, i := range batch {
		if !done[strings.ToLower(ps[i].DeliveryID)] {
			missing = append(missing, ps[i].DeliveryID)
		}
	}
	exists := map[string]bool{}
	if len(missing) > 0 {
		rows, err := q.Query(ctx, s.sql.existingDeliveries, missing)
		if err != nil {
			return nil, translate(err, "record attempts")
		}
		found, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, translate(err, "record attempts")
		}
		for _, id := range found {
			exists[id] = true
		}
	}
	for _, i := range batch {
		id := strings.ToLower(ps[i].DeliveryID)
		switch {
		case done[id]:
		case exists[id]:
			errs[i] = fmt.Errorf("delivery %s: %w", id, webhook.ErrLeaseLost)
		default:
			errs[i] = fmt.Errorf("delivery %s: %w", id, webhook.ErrNotFound)
		}
	}
	for _, i := range again {
		refused, err := s.recordOne(ctx, q, ps[i])
		if err != nil {
			return nil, err
		}
		errs[i] = refused
	}
	return errs, nil
}

// recordArgs returns the arguments of the recordAttempts statement for
// ps, valid results that are not releases.
func recordArgs(ps []webhook.RecordAttemptParams) []any {
	n := len(ps)
	var (
		ids, tokens, statuses, bodies, msgs = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		codes                               = make([]int32, n)
		durs                                = make([]int64, n)
		nexts, completed, started           = make([]*time.Time, n), make([]*time.Time, n), make([]time.Time, n)
	)
	for j, p := range ps {
		ids[j], tokens[j], statuses[j] = p.DeliveryID, p.Token, string(p.Status)
		codes[j], bodies[j], durs[j], msgs[j] = int32(p.Attempt.StatusCode), text(p.Attempt.ResponseBody), int64(p.Attempt.Duration), text(p.Attempt.Error)
		if p.Status.Final() {
			completed[j] = &p.Now
		} else {
			nexts[j] = &p.NextAttemptAt
		}
		started[j] = p.Attempt.StartedAt
	}
	return []any{ids, tokens, statuses, codes, bodies, durs, msgs, nexts, completed, started}
}
