package memstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/analytics-webhooks/webhook"
)

// TriggerStates implements webhook.TriggerStateStore.
func (s *Store) TriggerStates(ctx context.Context, webhookIDs []string) ([]*webhook.TriggerState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*webhook.TriggerState
	seen := make(map[string]bool, len(webhookIDs))
	for _, id := range webhookIDs {
		if seen[id] {
			continue
		}
		seen[id] = true
		for _, st := range s.states[id] {
			out = append(out, st.Clone())
		}
	}
	slices.SortFunc(out, func(a, b *webhook.TriggerState) int { return cmp.Compare(a.Key, b.Key) })
	return out, nil
}

// SaveTriggerState implements webhook.TriggerStateStore.
func (s *Store) SaveTriggerState(ctx context.Context, p webhook.SaveTriggerStateParams) (webhook.EnqueueResult, error) {
	if err := ctx.Err(); err != nil {
		return webhook.EnqueueResult{}, err
	}
	if err := p.Validate(); err != nil {
		return webhook.EnqueueResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	byKey := s.states[p.State.WebhookID]
	var stored int64
	if cur, ok := byKey[p.State.Key]; ok {
		stored = cur.Version
	}
	if stored != p.State.Version {
		return webhook.EnqueueResult{}, fmt.Errorf("trigger state %s: version %d, stored %d: %w", p.State.Key, p.State.Version, stored, webhook.ErrConflict)
	}
	var res webhook.EnqueueResult
	if p.Enqueue != nil {
		var err error
		if res, err = s.enqueueLocked(*p.Enqueue); err != nil {
			return webhook.EnqueueResult{}, err
		}
	}
	if byKey == nil {
		byKey = make(map[string]*webhook.TriggerState)
		s.states[p.State.WebhookID] = byKey
	}
	st := p.State.Clone()
	st.Version++
	st.UpdatedAt = p.Now
	byKey[st.Key] = st
	return res, nil
}
