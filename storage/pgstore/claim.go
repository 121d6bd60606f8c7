package pgstore

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// ClaimDeliveries implements webhook.Storage. Leases are set and
// compared on the database's clock (now()), whatever the callers' clocks
// say; due times (NextAttemptAt, written by callers) are compared with
// p.Now. Each claim carries its webhook's version, read in the same
// statement.
func (s *Store) ClaimDeliveries(ctx context.Context, p webhook.ClaimParams) ([]*webhook.Claim, error) {
	if p.Limit < 1 || p.LeaseDuration <= 0 {
		return nil, fmt.Errorf("%w: claim needs a positive limit and lease duration", webhook.ErrInvalid)
	}
	exclude := make([]string, 0, len(p.ExcludeWebhooks))
	for _, id := range p.ExcludeWebhooks {
		if validID(id) {
			exclude = append(exclude, id)
		}
	}
	// Leases run on the database's clock, so that workers whose clocks
	// disagree never take each other's live leases; a test store may
	// simulate time instead (UseCallerClock, in export_test.go).
	lease := max(p.LeaseDuration.Microseconds(), 1)
	var leaseNow *time.Time
	if s.callerClock {
		leaseNow = &p.Now
	}
	// The caps are int4 parameters: a cap of 2³¹ or more cannot bind
	// a claim, which never returns so many.
	perWebhook := p.MaxPerWebhook
	if perWebhook <= 0 || perWebhook > p.Limit {
		perWebhook = p.Limit
	}
	perWebhook = min(perWebhook, math.MaxInt32)
	capIDs := make([]string, 0, len(p.MaxByWebhook))
	caps := make([]int32, 0, len(p.MaxByWebhook))
	spread := 0 // the sum of the caps
	for id, n := range p.MaxByWebhook {
		switch {
		case !validID(id):
		case n < 1:
			// Excluded: the claim then reads beyond a window of its
			// deliveries, as for the others excluded.
			exclude = append(exclude, id)
		default:
			n = min(n, p.Limit, math.MaxInt32)
			capIDs, caps = append(capIDs, id), append(caps, int32(n))
			spread += n
		}
	}
	// The plain claim only without a cap and exclusions. It is planned
	// afresh for every call (PostgreSQL finds its generic plan dearer
	// than one made for the limit given), so a worker's claims, which
	// have a cap, do not use it even for one delivery.
	if p.MaxPerWebhook <= 0 && len(exclude) == 0 && len(capIDs) == 0 {
		claims, err := s.collectClaims(s.pool.Query(ctx, s.sql.claim, p.Now, exclude, p.Limit, lease, text(p.WorkerID), leaseNow))
		return s.claimed(ctx, p, claims, err)
	}
	// Rank a window of due deliveries to spread the claim across
	// webhooks, locking only the rows returned.
	window := claimWindow(p.Limit, len(caps), spread)
	args := []any{p.Now, exclude, p.Limit, lease, text(p.WorkerID), leaseNow, perWebhook, capIDs, caps}
	claims, err := s.collectClaims(s.pool.Query(ctx, s.sql.claimCapped(window), args...))
	if err == nil && len(claims) < p.Limit && len(exclude) > 0 {
		// The window may have held only excluded webhooks' deliveries
		// (a long backlog of a webhook at its cap): read the others a
		// webhook at a time, skipping those claimed already when the
		// claim is capped per webhook (so that the cap holds).
		more := slices.Clone(exclude)
		if perWebhook < p.Limit || len(caps) > 0 {
			for _, c := range claims {
				more = append(more, c.Delivery.WebhookID)
			}
		}
		rest, err := s.collectClaims(s.pool.Query(ctx, s.sql.claimByWebhook,
			p.Now, more, p.Limit-len(claims), lease, text(p.WorkerID), leaseNow, perWebhook, capIDs, caps, max(4*p.Limit, byWebhookWalk), uuid.NewString()))
		switch {
		case err != nil && len(claims) > 0:
			// The first statement's leases are committed: return them
			// rather than leave them to expire (and count as attempts).
			s.log.WarnContext(ctx, "pgstore: claiming beyond a window of excluded webhooks' deliveries failed", "error", err)
			return s.claimed(ctx, p, claims, nil)
		case err != nil:
			return nil, err
		case len(rest) > 0:
			// Earliest due first, over both statements' claims.
			claims = append(claims, rest...)
			slices.SortStableFunc(claims, func(a, b *webhook.Claim) int {
				return cmp.Or(a.Delivery.NextAttemptAt.Compare(b.Delivery.NextAttemptAt), strings.Compare(a.Delivery.ID, b.Delivery.ID))
			})
		}
	}
	if err == nil && len(claims) == 0 {
		// Every candidate may have been locked by another claimer,
		// though more are due: lock the window, skipping the locked
		// rows, and rank that.
		claims, err = s.collectClaims(s.pool.Query(ctx, s.sql.claimCappedSkipping(window), args...))
	}
	return s.claimed(ctx, p, claims, err)
}

// claimWindow returns how many due deliveries a capped claim of limit
// ranks, when capped webhooks have caps of their own adding up to
// spread: 16 times the limit when each webhook may have one, and when
// the webhooks with caps of their own may have more, 16 times the limit
// over the square of their average cap, at least twice the limit.
// (Measured with the harness in bench/: beside caps of about 3, a window
// of twice the limit fills claims as well as one of 16 times, and
// PostgreSQL spends a fifth less a delivery; one of 8 times the limit
// saved a little.)
func claimWindow(limit, capped, spread int) int {
	limit = min(limit, claimWindows[len(claimWindows)-1]) // more would read the largest window anyway, or overflow
	if capped == 0 || spread <= capped {
		return 16 * limit
	}
	avg := float64(spread) / float64(capped)
	return max(2*limit, int(16*float64(limit)/(avg*avg)))
}

// byWebhookWalk is the fewest webhooks a claim that reads the queue a
// webhook at a time walks (claimByWebhookDue): every webhook of a queue
// that holds no more, a random stretch of the others.
const byWebhookWalk = 256

// claimed finishes ClaimDeliveries with the claims collected.
func (s *Store) claimed(ctx context.Context, p webhook.ClaimParams, claims []*webhook.Claim, err error) ([]*webhook.Claim, error) {
	if err != nil {
		return nil, err
	}
	if len(claims) > 0 && !s.callerClock {
		// The lease ends LeaseDuration after the database's now().
		s.checkSkew(ctx, p.Now, claims[0].Lease.ExpiresAt.Add(-p.LeaseDuration))
	}
	return claims, nil
}

// collectClaims reads the claims a claim statement returns.
func (s *Store) collectClaims(rows pgx.Rows, err error) ([]*webhook.Claim, error) {
	if err != nil {
		return nil, translate(err, "claim")
	}
	claims, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*webhook.Claim, error) {
		var (
			c   webhook.Claim
			d   webhook.Delivery
			pl  webhook.Payload
			cr  deliveryCols
			ts  time.Time
			exp time.Time
		)
		if err := row.Scan(append(cr.dest(&d), &c.Lease.Token, &c.Lease.WorkerID, &exp,
			&pl.WebhookID, &pl.EventType, &pl.Environment, &ts, &pl.Body, &c.WebhookVersion, &pl.TraceParent)...); err != nil {
			return nil, err
		}
		cr.finish(&d)
		pl.ID, pl.Timestamp = d.PayloadID, ts.UTC()
		c.Lease.ExpiresAt = exp.UTC()
		c.Delivery, c.Payload = &d, &pl
		return &c, nil
	})
	if err != nil {
		return nil, translate(err, "claim")
	}
	return claims, nil
}

// MaxClockSkew is how far a caller's clock (ClaimParams.Now) may be from
// the database's before a claim logs a warning. Leases run on the
// database's clock, so skew cannot steal a lease, but due times are the
// callers': a worker whose clock runs ahead sends retries early.
const MaxClockSkew = 30 * time.Second

// skewWarnEvery bounds the clock-skew warnings of one Store.
const skewWarnEvery = 10 * time.Minute

// checkSkew logs a warning, at most every skewWarnEvery, when the
// caller's time and the database's differ by more than MaxClockSkew.
func (s *Store) checkSkew(ctx context.Context, caller, db time.Time) {
	skew := caller.Sub(db)
	if skew.Abs() <= MaxClockSkew {
		return
	}
	now := time.Now().UnixNano()
	last := s.skewWarned.Load()
	if last != 0 && time.Duration(now-last) < skewWarnEvery || !s.skewWarned.CompareAndSwap(last, now) {
		return
	}
	s.log.WarnContext(ctx, "pgstore: the caller's clock is far from the database's; keep clocks in sync (NTP), since due times are the callers'",
		"skew", skew.Round(time.Millisecond), "caller_time", caller, "database_time", db)
}
