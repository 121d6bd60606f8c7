package webhook

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// How the matching index stays fresh without making trigger calls wait:
//
//   - Only the first load blocks (and, with a negative TTL, every call
//     loads, as documented).
//   - A change made through this Service (webhooks.go) or learned by
//     Watch (watch.go) is recorded with the webhook as stored; the next
//     call applies the recorded changes to a copy of the index, which
//     costs about a copy of the maps touched, not a reload.
//   - Once the index is half its TTL old, or anything may have changed
//     (invalidate), a call starts one reload in the background and goes
//     on matching with the current index; the reload then applies the
//     changes recorded while it read. A call that finds the index past
//     its whole TTL with no reload running (after the Service was idle)
//     reloads before matching, so the TTL stays the bound it was.

// indexChanges is what changed since the current index was built.
type indexChanges struct {
	mu      sync.Mutex
	pending map[string]*Webhook // ID → webhook as stored, nil when deleted; not in the index yet
	loading bool                // a reload is reading the webhooks
	during  map[string]*Webhook // changes recorded while loading
	stale   atomic.Bool         // anything may have changed: reload in full
}

// reloadTimeout bounds a reload started in the background.
const reloadTimeout = time.Minute

// invalidate records that anything may have changed: the next call
// reloads the index in the background.
func (s *Service) invalidate() {
	s.ix.stale.Store(true)
	s.gen.Add(1)
}

// indexPut records that w (a copy of it) is now stored.
func (s *Service) indexPut(w *Webhook) { s.record(w.ID, w.Clone()) }

// indexRemove records that the webhook of ID id is deleted.
func (s *Service) indexRemove(id string) { s.record(id, nil) }

func (s *Service) record(id string, w *Webhook) {
	c := &s.ix
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending == nil {
		c.pending = map[string]*Webhook{}
	}
	keep(c.pending, id, w)
	if c.loading {
		keep(c.during, id, w)
	}
	s.gen.Add(1)
}

// keep records w for id in m unless m holds a newer version of it.
func keep(m map[string]*Webhook, id string, w *Webhook) {
	if old := m[id]; old != nil && w != nil && old.Version > w.Version {
		return
	}
	m[id] = w
}

// index returns the matching index: one that reflects every change made
// through this service, and no older than the TTL unless a reload is
// under way (see above).
func (s *Service) index(ctx context.Context) (*index, error) {
	idx := s.idx.Load()
	if idx == nil || s.ttl < 0 {
		return s.loadNow(ctx)
	}
	if idx.gen != s.gen.Load() {
		idx = s.applyChanges()
	}
	age := s.now().Sub(idx.loadedAt)
	switch {
	case age >= s.ttl:
		select {
		case s.reload <- struct{}{}:
			defer func() { <-s.reload }()
			return s.reloadIndex(ctx)
		default: // a reload is under way
		}
	case age >= s.ttl/2 || s.ix.stale.Load():
		s.reloadInBackground(ctx)
	}
	return idx, nil
}

// loadNow loads the index before returning, unless another call loaded
// one while this one waited.
func (s *Service) loadNow(ctx context.Context) (*index, error) {
	select {
	case s.reload <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.reload }()
	if idx := s.idx.Load(); idx != nil && s.ttl > 0 && s.now().Sub(idx.loadedAt) < s.ttl { // loaded while we waited
		if idx.gen != s.gen.Load() {
			idx = s.applyChanges()
		}
		return idx, nil
	}
	return s.reloadIndex(ctx)
}

// reloadInBackground starts a reload unless one is under way.
func (s *Service) reloadInBackground(ctx context.Context) {
	select {
	case s.reload <- struct{}{}:
	default:
		return
	}
	go func() {
		defer func() { <-s.reload }()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reloadTimeout)
		defer cancel()
		if _, err := s.reloadIndex(ctx); err != nil {
			s.log.ErrorContext(ctx, "webhook: reloading the matching index failed; matching with the current one", "error", err)
		}
	}()
}

// reloadIndex reads every webhook into a new index and publishes it.
// The caller holds s.reload.
func (s *Service) reloadIndex(ctx context.Context) (*index, error) {
	c := &s.ix
	c.mu.Lock()
	c.loading, c.during = true, map[string]*Webhook{}
	wasStale := c.stale.Swap(false)
	c.mu.Unlock()
	loadedAt := s.now()
	idx, err := s.loadIndex(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	during := c.during
	c.loading, c.during = false, nil
	if err != nil {
		if wasStale {
			c.stale.Store(true)
		}
		return nil, err
	}
	// Changes recorded while reading may have come after the read of
	// their webhook; those recorded before are in what was read.
	if len(during) > 0 {
		idx = s.applyTo(idx, during)
	}
	idx.gen, idx.loadedAt = s.gen.Load(), loadedAt
	c.pending = nil
	s.idx.Store(idx)
	return idx, nil
}

// applyChanges publishes the current index with the pending changes
// applied, and returns it.
func (s *Service) applyChanges() *index {
	c := &s.ix
	c.mu.Lock()
	defer c.mu.Unlock()
	idx := s.idx.Load()
	gen := s.gen.Load()
	if idx.gen == gen {
		return idx // applied meanwhile
	}
	if len(c.pending) > 0 {
		idx = s.applyTo(idx, c.pending)
		c.pending = nil
	} else {
		cp := *idx
		idx = &cp
	}
	idx.gen = gen
	s.idx.Store(idx)
	return idx
}

// applyTo returns a copy of idx with the changes applied: each webhook
// replaced by its stored version (unless the index holds a newer one),
// dropped when deleted or disabled.
func (s *Service) applyTo(idx *index, changes map[string]*Webhook) *index {
	b := fork(idx)
	for id, w := range changes {
		if old, ok := b.idx.byID[id]; ok && w != nil && old.w.Version > w.Version {
			continue
		}
		b.remove(id)
		if w == nil || w.Disabled {
			continue
		}
		cw, err := w.compile()
		if err != nil {
			s.log.Error("webhook: stored webhook is invalid; not matching it", "webhook_id", id, "error", err)
			continue
		}
		b.insert(cw)
	}
	return b.idx
}

// loadIndex reads every webhook and indexes the enabled ones.
func (s *Service) loadIndex(ctx context.Context) (*index, error) {
	idx := newIndex()
	after := ""
	for {
		page, err := s.store.ListWebhooks(ctx, ListWebhooksParams{After: after, Limit: MaxPageSize})
		if err != nil && !errors.Is(err, ErrCorruptWebhook) {
			return nil, fmt.Errorf("webhook: load webhooks: %w", err)
		}
		// Rows that cannot be read are skipped, not fatal to every
		// trigger call; they still count towards the page.
		corrupt := CorruptWebhooks(err)
		for _, c := range corrupt {
			s.log.ErrorContext(ctx, "webhook: stored webhook cannot be read; not matching it", "webhook_id", c.ID, "error", c.Err)
			after = max(after, c.ID)
		}
		for _, w := range page {
			if w.Disabled {
				continue
			}
			cw, err := w.compile()
			if err != nil {
				// A row written by another version or by hand: skip it
				// rather than fail every trigger call.
				s.log.ErrorContext(ctx, "webhook: stored webhook is invalid; not matching it", "webhook_id", w.ID, "error", err)
				continue
			}
			idx.add(cw)
		}
		if len(page)+len(corrupt) < MaxPageSize {
			return idx, nil
		}
		if len(page) > 0 {
			after = max(after, page[len(page)-1].ID)
		}
	}
}
