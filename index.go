package webhook

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// invalidate marks the matching index stale after a local change.
func (s *Service) invalidate() { s.gen.Add(1) }

// index returns a matching index no older than the TTL that reflects
// every change made through this service.
func (s *Service) index(ctx context.Context) (*index, error) {
	if idx := s.idx.Load(); s.fresh(idx) {
		return idx, nil
	}
	select {
	case s.reload <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.reload }()
	if idx := s.idx.Load(); s.fresh(idx) { // loaded while we waited
		return idx, nil
	}
	gen := s.gen.Load()
	loadedAt := s.now()
	idx, err := s.loadIndex(ctx)
	if err != nil {
		return nil, err
	}
	idx.gen, idx.loadedAt = gen, loadedAt
	s.idx.Store(idx)
	return idx, nil
}

func (s *Service) fresh(idx *index) bool {
	return idx != nil && idx.gen == s.gen.Load() && s.ttl > 0 && s.now().Sub(idx.loadedAt) < s.ttl
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

// index finds the webhooks that may match an occurrence without looking
// at the others: by tenant first (so one tenant's lookups never touch
// another's webhooks), then by trigger type, then by exact event name, by
// event-name prefix, or as listening to all events.
type index struct {
	gen      uint64
	loadedAt time.Time
	byTenant map[string]map[TriggerType]*typeIndex // "" holds the webhooks without a tenant
	byID     map[string]*compiledWebhook
	// stateful holds the webhooks with threshold, anomaly or scheduled
	// triggers, of every tenant, in ID order: the ones Evaluate visits.
	stateful []*compiledWebhook
}

func newIndex() *index {
	return &index{byTenant: make(map[string]map[TriggerType]*typeIndex), byID: make(map[string]*compiledWebhook)}
}

type typeIndex struct {
	exact  map[string][]*compiledWebhook
	prefix map[string][]*compiledWebhook // key ends with "."
	all    []*compiledWebhook
}

func (idx *index) add(cw *compiledWebhook) {
	idx.byID[cw.w.ID] = cw
	byType := idx.byTenant[cw.w.TenantID]
	if byType == nil {
		byType = make(map[TriggerType]*typeIndex)
		idx.byTenant[cw.w.TenantID] = byType
	}
	for _, t := range cw.triggers {
		if t.typ.Stateful() {
			idx.stateful = appendOnce(idx.stateful, cw)
		}
		ti := byType[t.typ]
		if ti == nil {
			ti = &typeIndex{exact: map[string][]*compiledWebhook{}, prefix: map[string][]*compiledWebhook{}}
			byType[t.typ] = ti
		}
		if len(t.events) == 0 {
			ti.all = appendOnce(ti.all, cw)
			continue
		}
		for _, e := range t.events {
			switch {
			case e == "*":
				ti.all = appendOnce(ti.all, cw)
			case strings.HasSuffix(e, ".*"):
				k := e[:len(e)-1]
				ti.prefix[k] = appendOnce(ti.prefix[k], cw)
			default:
				ti.exact[e] = appendOnce(ti.exact[e], cw)
			}
		}
	}
}

// appendOnce appends cw unless it is already the last element (webhooks
// are added one at a time, so that is the only place a repeat can be).
func appendOnce(list []*compiledWebhook, cw *compiledWebhook) []*compiledWebhook {
	if n := len(list); n > 0 && list[n-1] == cw {
		return list
	}
	return append(list, cw)
}

// candidates returns the webhooks of the tenant ("" for the webhooks
// without one) that may match, each once, in ID order.
func (idx *index) candidates(tenant string, typ TriggerType, name string) []*compiledWebhook {
	ti := idx.byTenant[tenant][typ]
	if ti == nil {
		return nil
	}
	out := slices.Clone(ti.all)
	out = append(out, ti.exact[name]...)
	for i := range len(name) {
		if name[i] == '.' && i+1 < len(name) {
			out = append(out, ti.prefix[name[:i+1]]...)
		}
	}
	slices.SortFunc(out, func(a, b *compiledWebhook) int { return strings.Compare(a.w.ID, b.w.ID) })
	return slices.Compact(out)
}
