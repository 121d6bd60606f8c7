package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/analytics-webhooks/webhook"
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
	var rows pgx.Rows
	var err error
	if p.MaxPerWebhook <= 0 || p.MaxPerWebhook >= p.Limit {
		rows, err = s.pool.Query(ctx, s.sql.claim, p.Now, exclude, p.Limit, lease, text(p.WorkerID), leaseNow)
	} else {
		// Rank a window of due deliveries to spread the claim across
		// webhooks; excluded webhooks never enter the window.
		window := min(p.Limit*16, 10000)
		rows, err = s.pool.Query(ctx, s.sql.claimCapped, p.Now, exclude, p.Limit, lease, text(p.WorkerID), leaseNow, p.MaxPerWebhook, window)
	}
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
	if len(claims) > 0 && !s.callerClock {
		// The lease ends LeaseDuration after the database's now().
		s.checkSkew(ctx, p.Now, claims[0].Lease.ExpiresAt.Add(-p.LeaseDuration))
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
