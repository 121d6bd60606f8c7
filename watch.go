package webhook

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"
)

// Watch keeps the Service's matching index in step with webhook changes
// made through other Services sharing the Storage (other processes,
// mostly): each changed webhook is read and, if the change matters for
// matching, applied to the index without reading every webhook again, so
// matching sees the change within moments instead of within
// Config.WebhookCacheTTL, which stays the fallback for notifications that
// are lost. Changes to the health counters alone (ConsecutiveFailures,
// FailingSince), which the workers of every process write as deliveries
// fail, cost one read of that webhook and change nothing.
// Watch runs until ctx is done and then returns nil.
//
// Worker.Run watches on its own; run Watch in a goroutine of a process
// that triggers events but runs no Worker. Several watchers are harmless.
// If the Storage cannot notify (it does not implement WebhookNotifier, as
// memstore does not), Watch returns at once with an error wrapping
// errors.ErrUnsupported. Sending never depends on Watch: every attempt
// checks its webhook's version in the claim.
func (s *Service) Watch(ctx context.Context) error {
	n, ok := s.store.(WebhookNotifier)
	if !ok {
		return fmt.Errorf("webhook: watch: the Storage does not notify of webhook changes: %w", errors.ErrUnsupported)
	}
	pending := &changes{ids: map[string]struct{}{}, signal: make(chan struct{}, 1)}
	applyCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { s.apply(applyCtx, pending) })
	defer wg.Wait()
	defer stop()
	if err := n.ListenWebhooks(ctx, pending.add); err != nil {
		return fmt.Errorf("webhook: watch: %w", err)
	}
	return nil
}

// maxPendingChanges bounds the webhook IDs a watcher remembers to check;
// more changes at once drop the index without checking them one by one.
const maxPendingChanges = 256

// changes collects the webhook IDs a watcher was told of, for apply.
type changes struct {
	mu     sync.Mutex
	ids    map[string]struct{}
	all    bool          // drop the index whatever changed
	signal chan struct{} // has room for one: apply has work
}

// add is the WebhookNotifier callback: it never blocks.
func (c *changes) add(id string) {
	c.mu.Lock()
	if id == "" || len(c.ids) >= maxPendingChanges {
		c.all, c.ids = true, map[string]struct{}{}
	} else if !c.all {
		c.ids[id] = struct{}{}
	}
	c.mu.Unlock()
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

// take returns and forgets what was collected.
func (c *changes) take() (ids map[string]struct{}, all bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids, all = c.ids, c.all
	c.ids, c.all = map[string]struct{}{}, false
	return ids, all
}

// apply brings the index up to date with the collected changes that
// matter, until ctx is done: each changed webhook is read and its stored
// version recorded for the index (indexload.go), without a reload.
func (s *Service) apply(ctx context.Context, c *changes) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.signal:
		}
		ids, all := c.take()
		if all {
			s.invalidate()
			continue
		}
		for id := range ids {
			s.refresh(ctx, id)
		}
	}
}

// checkTimeout bounds the read of one changed webhook.
const checkTimeout = 5 * time.Second

// refresh reads webhook id, changed elsewhere, and records it for the
// index if the change matters; if it cannot be read, the index reloads.
func (s *Service) refresh(ctx context.Context, id string) {
	stored, ok, matters := s.examine(ctx, id)
	switch {
	case !ok:
		s.invalidate()
	case matters:
		s.record(id, stored) // nil: deleted
	}
}

// matters reports whether a change to webhook id, made elsewhere, may
// make the matching index wrong: it compares the stored webhook with the
// index's copy, ignoring the health counters. When in doubt it says yes.
func (s *Service) matters(ctx context.Context, id string) bool {
	_, ok, matters := s.examine(ctx, id)
	return !ok || matters
}

// examine reads webhook id and reports whether its change matters (see
// matters): stored is the webhook as stored, nil if it is gone, and ok is
// false if it could not be read.
func (s *Service) examine(ctx context.Context, id string) (stored *Webhook, ok, matters bool) {
	idx := s.idx.Load()
	if idx == nil && len(s.reload) == 0 {
		return nil, true, false // nothing cached: the first load reads the change
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	stored, err := s.store.GetWebhook(ctx, id)
	var cached *compiledWebhook
	indexed := false
	if idx != nil {
		cached, indexed = idx.byID[id]
	}
	// A reload under way may have read the webhook before the change,
	// and a change recorded but not applied yet may be older than it.
	s.ix.mu.Lock()
	_, pending := s.ix.pending[id]
	s.ix.mu.Unlock()
	loading := len(s.reload) > 0 || pending
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, true, indexed || loading
	case err != nil:
		return nil, false, true
	case !indexed:
		return stored, true, !stored.Disabled || loading // only an enabled webhook joins the index
	}
	return stored, true, loading || !sameButHealth(cached.w, stored)
}

// sameButHealth reports whether a and b are the same webhook apart from
// the health counters and what every write changes (UpdatedAt, Version).
func sameButHealth(a, b *Webhook) bool {
	x, y := *a, *b
	for _, w := range []*Webhook{&x, &y} {
		w.ConsecutiveFailures, w.FailingSince, w.UpdatedAt, w.Version = 0, time.Time{}, time.Time{}, 0
	}
	return reflect.DeepEqual(x, y)
}

// watchDuring runs Watch until ctx is done or the returned function is
// called, which waits for it to return. With a Storage that cannot
// notify it does nothing.
func (s *Service) watchDuring(ctx context.Context) (stop func()) {
	if _, ok := s.store.(WebhookNotifier); !ok {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.Watch(ctx); err != nil {
			s.log.ErrorContext(ctx, "webhook: watching webhook changes stopped; relying on WebhookCacheTTL", "error", err)
		}
	})
	return func() {
		cancel()
		wg.Wait()
	}
}
