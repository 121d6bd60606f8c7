package pgstore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/analytics-webhooks/webhook"
)

var _ webhook.WebhookNotifier = (*Store)(nil)

// webhookChannel is the channel that webhook changes are NOTIFYed on,
// with the webhook's ID as the payload.
func (s *Store) webhookChannel() string { return s.schema + "_webhooks" }

// Listen implements webhook.Notifier: it LISTENs on the store's channel
// on a connection of its own and calls notify for every notification
// (Enqueue sends one when its transaction commits). When the connection
// drops it reconnects with backoff, calling notify once it listens again
// so that enqueues missed meanwhile are not left to the next poll. It
// returns nil when ctx is done.
func (s *Store) Listen(ctx context.Context, notify func()) error {
	return s.listen(ctx, s.channel, func(string) { notify() })
}

// ListenWebhooks implements webhook.WebhookNotifier: it LISTENs, on a
// connection of its own, for the notifications that CreateWebhook,
// UpdateWebhook, DeleteWebhook and RecordAttempt (when it disables a
// webhook) send in the transaction of their change, and calls changed
// with the webhook's ID. It calls changed("") each time it starts
// listening, after a lost connection too, since changes may have been
// missed meanwhile. It returns nil when ctx is done.
func (s *Store) ListenWebhooks(ctx context.Context, changed func(webhookID string)) error {
	return s.listen(ctx, s.webhookChannel(), changed)
}

// listen calls got with each notification's payload on channel, and
// with "" whenever it starts listening, until ctx is done.
func (s *Store) listen(ctx context.Context, channel string, got func(payload string)) error {
	backoff := 100 * time.Millisecond
	for {
		listened, err := s.listenOnce(ctx, channel, got)
		if ctx.Err() != nil {
			return nil
		}
		if listened {
			backoff = 100 * time.Millisecond
		}
		s.log.WarnContext(ctx, "pgstore: notification listener lost its connection; reconnecting", "channel", channel, "error", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// listenOnce listens until the connection fails or ctx is done. It
// reports whether LISTEN succeeded.
func (s *Store) listenOnce(ctx context.Context, channel string, got func(payload string)) (bool, error) {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return false, err
	}
	// The connection leaves the pool for good: one that was LISTENing,
	// or was interrupted mid-wait, must not serve anybody else.
	conn := pc.Hijack()
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return false, err
	}
	got("")
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, err
		}
		got(n.Payload)
	}
}
