package pgstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/internal/bodytail"
)

// Enqueue implements webhook.Storage.
func (s *Store) Enqueue(ctx context.Context, p webhook.EnqueueParams) (webhook.EnqueueResult, error) {
	return s.enqueue(ctx, s.pool, true, p)
}

// Tx returns an Enqueuer that writes into tx, the caller's transaction:
// the deliveries exist if and only if tx commits, and workers are woken
// when it does. Use it with webhook.WithEnqueuer. An error inside
// Enqueue rolls back only Enqueue's own work (a savepoint), so tx stays
// usable, except when ctx ends mid-statement: pgx then closes the
// connection, and tx with it.
func (s *Store) Tx(tx pgx.Tx) webhook.Enqueuer { return txEnqueuer{s: s, tx: tx} }

type txEnqueuer struct {
	s  *Store
	tx pgx.Tx
}

func (t txEnqueuer) Enqueue(ctx context.Context, p webhook.EnqueueParams) (webhook.EnqueueResult, error) {
	return t.s.enqueue(ctx, t.tx, false, p)
}

// enqueue writes p through q. own says whether q is the pool, so that
// the transaction begun here is a real one whose COMMIT decides the
// outcome, rather than a savepoint in the caller's transaction.
func (s *Store) enqueue(ctx context.Context, q querier, own bool, p webhook.EnqueueParams) (webhook.EnqueueResult, error) {
	if err := checkEnqueue(p); err != nil {
		return webhook.EnqueueResult{}, err
	}
	if own && batchable(p) {
		ids := make([]string, len(p.Deliveries))
		for i, d := range p.Deliveries {
			ids[i] = d.ID
		}
		return s.enqueueBatch(ctx, p, ids)
	}
	tx, err := q.Begin(ctx) // a savepoint inside a caller's transaction
	if err != nil {
		return webhook.EnqueueResult{}, translate(err, "enqueue")
	}
	defer tx.Rollback(ctx)
	res, err := s.enqueueIn(ctx, tx, p)
	if err != nil || res.Duplicate {
		return res, err // a duplicate wrote nothing: nothing to commit
	}
	if err := tx.Commit(ctx); err != nil {
		if own {
			return webhook.EnqueueResult{}, commitError(err, "enqueue")
		}
		return webhook.EnqueueResult{}, translate(err, "enqueue")
	}
	return res, nil
}

// enqueueIn writes p, which checkEnqueue accepted, in tx, and leaves the
// commit to the caller. A used idempotency key writes nothing and
// returns the deliveries it was used for, with Duplicate set.
func (s *Store) enqueueIn(ctx context.Context, tx pgx.Tx, p webhook.EnqueueParams) (webhook.EnqueueResult, error) {
	ids := make([]string, len(p.Deliveries))
	for i, d := range p.Deliveries {
		ids[i] = d.ID
	}
	if p.IdempotencyKey != "" {
		tag, err := tx.Exec(ctx, s.sql.insertKey, p.IdempotencyKey, ids, p.Now)
		if err != nil {
			return webhook.EnqueueResult{}, translate(err, "enqueue: idempotency key")
		}
		if tag.RowsAffected() == 0 {
			var prev []string
			if err := tx.QueryRow(ctx, s.sql.getKey, p.IdempotencyKey).Scan(&prev); err != nil {
				return webhook.EnqueueResult{}, translate(err, "enqueue: idempotency key")
			}
			return webhook.EnqueueResult{DeliveryIDs: prev, Duplicate: true}, nil
		}
	}
	st := s.enqueueStatements(p, ids)
	if noStoredRefs(p) {
		// Nothing below needs an answer on the way: one round trip.
		var b pgx.Batch
		s.queueStatements(&b, st, ids)
		if b.Len() > 0 {
			if err := tx.SendBatch(ctx, &b).Close(); err != nil {
				return webhook.EnqueueResult{}, translate(err, "enqueue")
			}
		}
		return webhook.EnqueueResult{DeliveryIDs: ids}, nil
	}
	if st.tail != nil {
		if _, err := tx.Exec(ctx, s.sql.insertTail, st.tail...); err != nil {
			return webhook.EnqueueResult{}, translate(err, "enqueue: payloads")
		}
	}
	if st.payloads != nil {
		if _, err := tx.Exec(ctx, s.sql.insertPayloads, st.payloads...); err != nil {
			return webhook.EnqueueResult{}, translate(err, "enqueue: payloads")
		}
	}
	if err := s.lockStoredPayloads(ctx, tx, p); err != nil {
		return webhook.EnqueueResult{}, err
	}
	if st.deliveries != nil {
		if _, err := tx.Exec(ctx, s.sql.insertDeliveries, st.deliveries...); err != nil {
			return webhook.EnqueueResult{}, translate(err, "enqueue: deliveries")
		}
		if err := s.markRedelivered(ctx, tx, st.redoneBy, st.redone, p.Replay); err != nil {
			return webhook.EnqueueResult{}, err
		}
		if _, err := tx.Exec(ctx, s.sql.refuseFinished, ids); err != nil {
			return webhook.EnqueueResult{}, translate(err, "enqueue: deliveries")
		}
		if _, err := tx.Exec(ctx, s.sql.notify, s.channel); err != nil {
			return webhook.EnqueueResult{}, translate(err, "enqueue: notify")
		}
	}
	return webhook.EnqueueResult{DeliveryIDs: ids}, nil
}

// enqueueArgs holds the arguments of an enqueue's statements; nil for a
// statement it does not run.
type enqueueArgs struct {
	tail, payloads, deliveries []any
	// The originals p redelivers, and their redeliveries.
	redone, redoneBy []string
}

// enqueueStatements returns the arguments of p's statements, whose
// deliveries have IDs ids. The tail the payloads' bodies share, if any
// is worth it, is stored once (insertTail) and cut off the bodies that
// end with it, each of which then names it.
func (s *Store) enqueueStatements(p webhook.EnqueueParams, ids []string) enqueueArgs {
	var a enqueueArgs
	if n := len(p.Payloads); n > 0 {
		var (
			pids, hooks, types, envs = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
			stamps                   = make([]time.Time, n)
			bodies                   = make([][]byte, n)
			traces, tails            = make([]string, n), make([]string, n)
		)
		for i, pl := range p.Payloads {
			pids[i], hooks[i], types[i], envs[i], stamps[i], bodies[i] = pl.ID, pl.WebhookID, text(pl.EventType), text(pl.Environment), pl.Timestamp, pl.Body
			traces[i] = text(pl.TraceParent)
		}
		if k, uses := bodytail.Shared(bodies); k > 0 {
			id, refs := uuid.NewString(), 0
			tail := bodies[0][len(bodies[0])-k:]
			for i, b := range bodies {
				if uses[i] {
					bodies[i], tails[i] = b[:len(b)-k:len(b)-k], id
					refs++
				}
			}
			a.tail = []any{id, tail, refs}
		}
		a.payloads = []any{pids, hooks, types, envs, stamps, bodies, traces, tails}
	}
	if n := len(p.Deliveries); n > 0 {
		var (
			hooks, pids, types, statuses = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
			attempts, budgets            = make([]int32, n), make([]int32, n)
			next, created                = make([]time.Time, n), make([]time.Time, n)
			origs                        = make([]string, n)
		)
		for i, d := range p.Deliveries {
			hooks[i], pids[i], types[i], statuses[i] = d.WebhookID, d.PayloadID, text(d.EventType), string(d.Status)
			attempts[i], next[i], created[i] = int32(d.Attempt), d.NextAttemptAt, d.CreatedAt
			budgets[i], origs[i] = int32(min(max(d.MaxAttempts, 0), math.MaxInt32)), d.RedeliveryOf
			if d.RedeliveryOf != "" {
				a.redone, a.redoneBy = append(a.redone, d.RedeliveryOf), append(a.redoneBy, d.ID)
			}
		}
		// A lease runs on the database's clock (see claim.go): it is
		// stored as its length from the caller's Now, added to now().
		var token, worker, length, leaseNow any
		if p.Lease != nil {
			token, worker, length = p.Lease.Token, text(p.Lease.WorkerID), p.Lease.ExpiresAt.Sub(p.Now).Microseconds()
			if s.callerClock {
				leaseNow = p.Now
			}
		}
		a.deliveries = []any{ids, hooks, pids, types, statuses, attempts, next, created, token, worker, length, budgets, origs, leaseNow}
	}
	return a
}

// batchable reports whether p can be enqueued in one round trip
// (enqueueBatch): it needs no answer from the database on the way, as an
// idempotency key, a redelivery or a payload stored earlier do.
func batchable(p webhook.EnqueueParams) bool {
	return p.IdempotencyKey == "" && noStoredRefs(p)
}

// noStoredRefs reports whether p's deliveries refer only to the payloads
// p stores, and redeliver nothing.
func noStoredRefs(p webhook.EnqueueParams) bool {
	stored := make(map[string]bool, len(p.Payloads))
	for _, pl := range p.Payloads {
		stored[strings.ToLower(pl.ID)] = true
	}
	for _, d := range p.Deliveries {
		if d.RedeliveryOf != "" || !stored[strings.ToLower(d.PayloadID)] {
			return false
		}
	}
	return true
}

// enqueueBatch enqueues p, which batchable accepted, in one round trip:
// its statements go in one pgx batch, which PostgreSQL runs as one
// implicit transaction (all or nothing; the NOTIFY goes out when it
// commits). A failure whose outcome is unknown (the connection lost
// after the batch was sent) is webhook.ErrCommitUnknown.
func (s *Store) enqueueBatch(ctx context.Context, p webhook.EnqueueParams, ids []string) (webhook.EnqueueResult, error) {
	var b pgx.Batch
	s.queueStatements(&b, s.enqueueStatements(p, ids), ids)
	if b.Len() == 0 {
		return webhook.EnqueueResult{DeliveryIDs: ids}, nil
	}
	err := s.pool.SendBatch(ctx, &b).Close()
	if err != nil {
		return webhook.EnqueueResult{}, commitError(err, "enqueue")
	}
	return webhook.EnqueueResult{DeliveryIDs: ids}, nil
}

// queueStatements queues in b the statements of an enqueue that refers
// to no stored payload and redelivers nothing (noStoredRefs), whose
// arguments are st and deliveries' IDs ids.
func (s *Store) queueStatements(b *pgx.Batch, st enqueueArgs, ids []string) {
	if st.tail != nil {
		b.Queue(s.sql.insertTail, st.tail...)
	}
	if st.payloads != nil {
		b.Queue(s.sql.insertPayloads, st.payloads...)
	}
	if st.deliveries != nil {
		b.Queue(s.sql.insertDeliveries, st.deliveries...)
		b.Queue(s.sql.refuseFinished, ids)
		b.Queue(s.sql.notify, s.channel)
	}
}

// lockStoredPayloads checks that the payloads p's deliveries refer to,
// beyond those p stores, exist, and locks them (FOR KEY SHARE, as a
// foreign key would) until tx ends, so that Prune cannot delete them
// meanwhile: it locks them FOR UPDATE before it checks for references
// (see pruneBatch). The queue has no foreign key to payloads, which
// would make each payload Prune deletes scan the queue.
func (s *Store) lockStoredPayloads(ctx context.Context, tx pgx.Tx, p webhook.EnqueueParams) error {
	stored := make(map[string]bool, len(p.Payloads))
	for _, pl := range p.Payloads {
		stored[strings.ToLower(pl.ID)] = true
	}
	want := map[string]bool{}
	var ids []string
	for _, d := range p.Deliveries {
		if id := strings.ToLower(d.PayloadID); !stored[id] && !want[id] {
			want[id] = true
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, s.replay.lockPayloads, ids)
	if err != nil {
		return translate(err, "enqueue: payloads")
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return translate(err, "enqueue: payloads")
	}
	if len(found) < len(ids) {
		return fmt.Errorf("enqueue: a delivery's payload does not exist: %w", webhook.ErrNotFound)
	}
	return nil
}

// markRedelivered points each original at its redelivery. With replay,
// an original redelivered before (or named twice) fails with
// webhook.ErrConflict; a missing one fails with webhook.ErrNotFound.
func (s *Store) markRedelivered(ctx context.Context, tx pgx.Tx, by, origs []string, replay bool) error {
	if len(origs) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, s.replay.markRedelivered, by, origs, replay)
	if err != nil {
		return translate(err, "enqueue: redeliveries")
	}
	marked, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return translate(err, "enqueue: redeliveries")
	}
	if len(marked) == len(origs) {
		return nil
	}
	distinct := make(map[string]bool, len(origs))
	for _, id := range origs {
		distinct[strings.ToLower(id)] = true
	}
	var found int
	if err := tx.QueryRow(ctx, s.replay.countDeliveries, origs).Scan(&found); err != nil {
		return translate(err, "enqueue: redeliveries")
	}
	if found < len(distinct) {
		return fmt.Errorf("enqueue: a redelivered delivery does not exist: %w", webhook.ErrNotFound)
	}
	if replay {
		return fmt.Errorf("enqueue: a replayed delivery was redelivered already: %w", webhook.ErrConflict)
	}
	return nil
}

// checkEnqueue validates what Enqueue is given before any SQL runs.
func checkEnqueue(p webhook.EnqueueParams) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if text(p.IdempotencyKey) != p.IdempotencyKey {
		return fmt.Errorf("%w: idempotency key must be UTF-8 without NUL", webhook.ErrInvalid)
	}
	for _, pl := range p.Payloads {
		if !validID(pl.ID) || !validID(pl.WebhookID) {
			return fmt.Errorf("%w: payload and webhook IDs must be UUIDs", webhook.ErrInvalid)
		}
	}
	for _, d := range p.Deliveries {
		if !validID(d.ID) || !validID(d.WebhookID) || !validID(d.PayloadID) || (d.RedeliveryOf != "" && !validID(d.RedeliveryOf)) {
			return fmt.Errorf("%w: delivery, webhook and payload IDs must be UUIDs", webhook.ErrInvalid)
		}
	}
	return nil
}

// commitError translates the failure of a COMMIT. A COMMIT that the
// server answered with an ERROR did not commit, nor did one that never
// left the client (pgconn.SafeToRetry). Any other failure leaves the
// outcome unknown and is reported as webhook.ErrCommitUnknown: a FATAL
// or PANIC answer only says the session is gone (a pooler such as
// PgBouncer sends one when it loses its server connection mid-COMMIT);
// and pgx reports a connection lost while waiting for COMMIT's answer as
// pgconn.ErrConnClosed, which claims to be safe to retry although the
// server may well have committed, so that error counts as unknown too.
func commitError(err error, what string) error {
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &pe) && !sessionEnded(pe), errors.Is(err, pgx.ErrTxCommitRollback):
		return translate(err, "%s", what)
	case pgconn.SafeToRetry(err) && !errors.Is(err, pgconn.ErrConnClosed):
		return translate(err, "%s", what)
	}
	return fmt.Errorf("%s: %w: %w", what, webhook.ErrCommitUnknown, err)
}

// sessionEnded reports whether pe is a FATAL or PANIC error, which ends
// the session rather than the statement. The severity is read in its
// unlocalized form where the server sends one (PostgreSQL 9.6 and
// later).
func sessionEnded(pe *pgconn.PgError) bool {
	sev := cmp.Or(pe.SeverityUnlocalized, pe.Severity)
	return sev == "FATAL" || sev == "PANIC"
}
