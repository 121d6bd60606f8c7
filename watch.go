package webhook

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Watch keeps the Service's matching index in step with webhook changes
// made through other Services sharing the Storage (other processes,
// mostly): each change drops the index, which the next trigger call
// reloads, so matching sees a change within moments instead of within
// Config.WebhookCacheTTL, which stays the fallback for notifications that
// are lost. It runs until ctx is done and then returns nil.
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
	if err := n.ListenWebhooks(ctx, s.changedElsewhere); err != nil {
		return fmt.Errorf("webhook: watch: %w", err)
	}
	return nil
}

// changedElsewhere is told of a change to webhook id ("": any) that may
// have been made by another Service.
func (s *Service) changedElsewhere(string) { s.invalidate() }

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
