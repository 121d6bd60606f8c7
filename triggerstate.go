package webhook

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Shared plumbing of the stateful triggers (threshold, anomaly,
// scheduled): state keys, the compare-and-set loop and the delivery a
// transition enqueues.

// errNoStateStore reports a stateful trigger over a Storage that cannot
// keep its state.
var errNoStateStore = fmt.Errorf("%w: the Storage keeps no trigger state (it does not implement TriggerStateStore)", ErrInvalid)

// stateStore returns the Storage's TriggerStateStore, if it has one.
func (s *Service) stateStore() (TriggerStateStore, bool) {
	ts, ok := s.store.(TriggerStateStore)
	return ts, ok
}

// metricStore returns the Storage's MetricStore, if it has one.
func (s *Service) metricStore() (MetricStore, bool) {
	ms, ok := s.store.(MetricStore)
	return ms, ok
}

// stateKey returns the TriggerState key of one series: kind
// ("threshold", "anomaly", "scheduled"), the webhook, the trigger's
// index, a part naming the condition within it (its index and a
// fingerprint of its definition, so that an edited condition starts
// afresh; "" when the trigger is the series), and the environment, last
// because it may hold any character.
func stateKey(kind, webhookID string, trigger int, part, env string) string {
	var b strings.Builder
	b.WriteString(kind)
	b.WriteByte(':')
	b.WriteString(webhookID)
	b.WriteByte(':')
	b.WriteString(strconv.Itoa(trigger))
	b.WriteByte(':')
	b.WriteString(part)
	b.WriteByte(':')
	b.WriteString(env)
	return b.String()
}

// maxStateAttempts bounds the compare-and-set retries of one update.
const maxStateAttempts = 8

// stateDecision is what a decide function returns: the delivery to
// enqueue with the change (nil for none) and whether the state changed
// at all (nothing is written when it did not).
type stateDecision struct {
	enqueue *EnqueueParams
	changed bool
	// kind and transition name the alert transition the change makes
	// (see transitionOf), counted once it is saved; transition is "" for
	// none.
	kind       TriggerType
	transition string
}

// updateState decides on st (as read; Version 0 for a state not stored
// yet) and saves the result together with the decision's enqueue in one
// compare-and-set. When another writer changed the state first, it reads
// the state again and decides again, up to maxStateAttempts times, so
// that a transition another Service has made already is not made twice.
// decide must be a pure function of the state it is given (it may be
// called several times). It returns what the enqueue stored, if
// anything.
//
// The payloads of a decision's enqueue carry the traceparent of a
// producer span (see Payload.TraceParent), so that the spans of their
// attempts link to it: the span of the trigger call when ctx is one's
// (see startStatefulCall), otherwise a span of the notification's own,
// started at the first decision to enqueue and ended when updateState
// returns. A call that enqueues nothing starts no span.
func (s *Service) updateState(ctx context.Context, st *TriggerState, decide func(st *TriggerState) (stateDecision, error)) (saved EnqueueResult, err error) {
	ts, ok := s.stateStore()
	if !ok {
		return EnqueueResult{}, errNoStateStore
	}
	spanCtx, traced := ctx, inStatefulCall(ctx)
	defer func() {
		if spanCtx != ctx {
			s.tel.endTrigger(spanCtx, saved.DeliveryIDs, err)
		}
	}()
	cur := st.Clone()
	for attempt := 1; ; attempt++ {
		next := cur.Clone()
		d, err := decide(next)
		if err != nil || !d.changed {
			return EnqueueResult{}, err
		}
		if d.enqueue != nil {
			if !traced {
				spanCtx, traced = s.tel.startNotification(ctx, stateKind(next), d.enqueue, next), true
			}
			tp := traceParent(spanCtx)
			for _, pl := range d.enqueue.Payloads {
				pl.TraceParent = tp
			}
		}
		res, err := ts.SaveTriggerState(spanCtx, SaveTriggerStateParams{State: next, Enqueue: d.enqueue, Now: s.clock()})
		if err == nil {
			if d.enqueue != nil && len(res.DeliveryIDs) > 0 && !res.Duplicate {
				s.notify()
				s.tel.enqueuedDeliveries(ctx, stateKind(next), len(res.DeliveryIDs))
			}
			if d.transition != "" {
				s.tel.noteAlertTransition(ctx, d.kind, d.transition)
			}
			return res, nil
		}
		if !errors.Is(err, ErrConflict) || attempt == maxStateAttempts {
			return EnqueueResult{}, fmt.Errorf("webhook: save trigger state %s: %w", st.Key, err)
		}
		if cur, err = s.readState(ctx, ts, st); err != nil {
			return EnqueueResult{}, err
		}
	}
}

// readState reads the stored state with st's key, or a fresh one (with
// st's identity and Version 0) if none is stored.
func (s *Service) readState(ctx context.Context, ts TriggerStateStore, st *TriggerState) (*TriggerState, error) {
	all, err := ts.TriggerStates(ctx, []string{st.WebhookID})
	if err != nil {
		return nil, fmt.Errorf("webhook: read trigger state %s: %w", st.Key, err)
	}
	for _, got := range all {
		if got.Key == st.Key {
			return got, nil
		}
	}
	return &TriggerState{Key: st.Key, TenantID: st.TenantID, WebhookID: st.WebhookID, Environment: st.Environment}, nil
}

// statesByKey reads the states of the given webhooks, keyed by Key.
func (s *Service) statesByKey(ctx context.Context, webhookIDs []string) (map[string]*TriggerState, error) {
	ts, ok := s.stateStore()
	if !ok || len(webhookIDs) == 0 {
		return map[string]*TriggerState{}, nil
	}
	all, err := ts.TriggerStates(ctx, webhookIDs)
	if err != nil {
		return nil, fmt.Errorf("webhook: read trigger states: %w", err)
	}
	out := make(map[string]*TriggerState, len(all))
	for _, st := range all {
		out[st.Key] = st
	}
	return out, nil
}

// messageFor builds the enqueue of one delivery of eventType with data
// to webhook w, with the idempotency key key (scoped to w's tenant) and
// timestamp ts. It returns an error wrapping ErrPayloadTooLarge if the
// body would exceed the Service's limit.
func (s *Service) messageFor(w *Webhook, eventType string, data map[string]any, env, key string, ts, now time.Time) (*EnqueueParams, error) {
	raw, err := encodeJSON(data)
	if err != nil {
		return nil, err
	}
	pl, d, err := newMessage(w.ID, eventType, ts.UTC().Truncate(time.Microsecond), now, raw, env)
	if err != nil {
		return nil, err
	}
	if len(pl.Body) > s.maxLen {
		return nil, fmt.Errorf("%w: %s body is %d bytes, the limit is %d", ErrPayloadTooLarge, eventType, len(pl.Body), s.maxLen)
	}
	d.MaxAttempts = w.Retry.MaxAttempts
	return &EnqueueParams{
		Payloads:       []*Payload{pl},
		Deliveries:     []*Delivery{d},
		IdempotencyKey: scopedKey(w.TenantID, key),
		Now:            now,
	}, nil
}
