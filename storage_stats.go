package webhook

import (
	"context"
	"fmt"
	"time"
)

// QueueStatsReader is an optional interface for a Storage that can
// describe its whole queue of unfinished deliveries cheaply: depth by
// status, the earliest due time and the webhooks with the largest
// backlogs, over every delivery (also those of deleted webhooks). It is
// answered from indexes that hold only unfinished deliveries, so its cost
// follows the backlog, not the history; it is meant to be polled, by
// metrics gauges for one. Service.QueueStats needs it. memstore and
// pgstore implement it.
type QueueStatsReader interface {
	// QueueStats returns the queue's state at p.Now. It returns an error
	// wrapping ErrInvalid for a negative p.TopWebhooks.
	QueueStats(ctx context.Context, p QueueStatsParams) (QueueStats, error)
}

// MaxTopWebhooks is the most webhooks QueueStats lists by backlog; a
// larger QueueStatsParams.TopWebhooks is reduced to it.
const MaxTopWebhooks = 1000

// QueueStatsParams configures QueueStatsReader.QueueStats.
type QueueStatsParams struct {
	// TopWebhooks is how many webhooks to list in QueueStats.TopBacklog,
	// at most MaxTopWebhooks. 0 lists none.
	TopWebhooks int
	// Now is the caller's current time: deliveries pending or retrying
	// whose NextAttemptAt is not after it count as Due.
	Now time.Time
}

// Validate checks p and returns it with TopWebhooks capped at
// MaxTopWebhooks. It returns an error wrapping ErrInvalid for a negative
// TopWebhooks.
func (p QueueStatsParams) Validate() (QueueStatsParams, error) {
	if p.TopWebhooks < 0 {
		return p, fmt.Errorf("%w: queue stats: TopWebhooks must not be negative", ErrInvalid)
	}
	p.TopWebhooks = min(p.TopWebhooks, MaxTopWebhooks)
	return p, nil
}

// QueueStats is the state of the whole delivery queue.
type QueueStats struct {
	// Depth counts the unfinished deliveries by status: pending,
	// delivering and retrying. Every one of the three keys is present,
	// with 0 when no delivery has that status.
	Depth map[DeliveryStatus]int64 `json:"depth"`
	// Due counts the pending and retrying deliveries whose NextAttemptAt
	// is not after QueueStatsParams.Now: those that could be claimed
	// now. A Due that stays high means the workers do not keep up.
	Due int64 `json:"due"`
	// OldestDue is the earliest NextAttemptAt among pending and retrying
	// deliveries; zero when there are none. Now minus OldestDue, when
	// positive, is how late the most overdue delivery is.
	OldestDue time.Time `json:"oldest_due,omitzero"`
	// TopBacklog lists the webhooks with the most unfinished deliveries,
	// most first (ties in ascending webhook ID order), up to
	// QueueStatsParams.TopWebhooks of them.
	TopBacklog []WebhookBacklog `json:"top_backlog,omitempty"`
}

// Unfinished returns the number of unfinished deliveries: the sum of
// Depth.
func (q QueueStats) Unfinished() int64 {
	var n int64
	for _, v := range q.Depth {
		n += v
	}
	return n
}

// WebhookBacklog is one webhook's share of the queue.
type WebhookBacklog struct {
	// WebhookID is the webhook's ID; its webhook may have been deleted.
	WebhookID string `json:"webhook_id"`
	// Unfinished counts its pending, delivering and retrying deliveries.
	Unfinished int64 `json:"unfinished"`
}

// NewQueueStats returns QueueStats with a Depth that holds the three
// unfinished statuses at 0, for backends to fill in.
func NewQueueStats() QueueStats {
	return QueueStats{Depth: map[DeliveryStatus]int64{StatusPending: 0, StatusDelivering: 0, StatusRetrying: 0}}
}

// StatsReader is an optional interface for a Storage that can summarise
// one webhook's recent deliveries and attempts itself, reading only that
// webhook's rows in the window (pgstore reads an index on webhook and
// creation time), never the whole history. Service.Stats uses it, and
// otherwise computes a possibly partial summary from at most
// StatsFallbackLimit deliveries read through ListDeliveries and
// ListAttempts. memstore and pgstore implement it.
type StatsReader interface {
	// WebhookStats summarises the deliveries of p.WebhookID created at
	// or after p.Since, and all their attempts, as a StatsBuilder given
	// each of them would: the Delivery, Attempt, rate, latency and last
	// attempt fields of WebhookStats. It leaves the fields that come
	// from the Webhook (ConsecutiveFailures and after) zero, and reports
	// no error for a webhook without deliveries, or one that does not
	// exist.
	WebhookStats(ctx context.Context, p StatsParams) (*WebhookStats, error)
}

// StatsParams selects what StatsReader.WebhookStats summarises.
type StatsParams struct {
	// WebhookID is the webhook. Required.
	WebhookID string
	// Since is the window's start: deliveries created at or after it
	// count, with all their attempts.
	Since time.Time
}

// Validate checks that p names a webhook. It returns an error wrapping
// ErrInvalid.
func (p StatsParams) Validate() error {
	if p.WebhookID == "" {
		return fmt.Errorf("%w: stats need a webhook ID", ErrInvalid)
	}
	return nil
}
