package pgstore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Listen implements webhook.Notifier: it LISTENs on the store's channel
// on a connection of its own and calls notify for every notification
// (Enqueue sends one when its transaction commits). When the connection
// drops it reconnects with backoff, calling notify once it listens again
// so that enqueues missed meanwhile are not left to the next poll. It
// returns nil when ctx is done.
func (s *Store) Listen(ctx context.Context, notify func()) error {
	backoff := 100 * time.Millisecond
	for {
		listened, err := s.listenOnce(ctx, notify)
		if ctx.Err() != nil {
			return nil
		}
		if listened {
			backoff = 100 * time.Millisecond
		}
		s.log.WarnContext(ctx, "pgstore: notification listener lost its connection; reconnecting", "error", err, "retry_in", backoff)
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
func (s *Store) listenOnce(ctx context.Context, notify func()) (bool, error) {
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
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return false, err
	}
	notify()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return true, err
		}
		notify()
	}
}
