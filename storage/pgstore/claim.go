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
			&pl.WebhookID, &pl.EventType, &pl.Environment, &ts, &pl.Body, &c.WebhookVersion)...); err != nil {
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
