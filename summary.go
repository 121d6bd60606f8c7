package webhook

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Period is the span of time a scheduled summary covers: from the
// schedule's previous fire time (Start, inclusive) to the fire time that
// ended it (End, exclusive). A cron schedule's periods are in the
// trigger's Timezone (so a "0 0 * * *" period is the local day, 23 or 25
// hours long across a daylight saving change), an interval's in UTC.
type Period struct {
	Start, End time.Time
	// Trigger is the index, in the webhook's Triggers, of the scheduled
	// trigger the period is of: a webhook may have several.
	Trigger int
}

// SummaryFunc computes the host's data for a scheduled summary: the
// analytics of w's tenant (w.TenantID) over the period. It is called by
// Service.Evaluate with the webhook as stored (the caller's own copy),
// once per period and webhook in the common case, but possibly again
// for the same period: after it returned an error, or by two Services
// racing the same period (only one summary is sent). It must be safe for
// concurrent use. An error is returned by Evaluate (a running Worker
// logs it, once) and the period is tried again on the next Evaluate,
// until a newer period ends: only the latest period is ever sent. The result must be encodable as JSON.
type SummaryFunc func(ctx context.Context, w *Webhook, p Period) (map[string]any, error)

// evaluateSchedules enqueues the summaries of the periods ended by now:
// for each enabled webhook's scheduled trigger, the latest period that
// ended at or before now, unless it was sent already (by this Service or
// another), in one compare-and-set of the trigger's state with the
// enqueue. After downtime, the periods missed before the latest one are
// not sent. It returns the errors of the triggers that failed, joined;
// they are tried again on the next call.
func (s *Service) evaluateSchedules(ctx context.Context, now time.Time, idx *index) error {
	type scheduled struct {
		w  *Webhook
		i  int
		cs *compiledSchedule
	}
	var all []scheduled
	var ids []string
	for _, cw := range idx.stateful {
		n := len(all)
		for i, ct := range cw.triggers {
			if ct.typ == TriggerScheduled && ct.schedule != nil {
				all = append(all, scheduled{cw.w, i, ct.schedule})
			}
		}
		if len(all) > n {
			ids = append(ids, cw.w.ID)
		}
	}
	if len(all) == 0 {
		return nil
	}
	if _, ok := s.stateStore(); !ok {
		return fmt.Errorf("webhook: %d scheduled triggers cannot run: %w", len(all), errNoStateStore)
	}
	states, err := s.statesByKey(ctx, ids)
	if err != nil {
		return err
	}
	var errs []error
	for _, sc := range all {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		if err := s.summarize(ctx, now, sc.w, sc.i, sc.cs, states); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// summarize sends the summary of the latest period of w's scheduled
// trigger i that ended at or before now, unless its state (in states, as
// read) says it was sent.
//
// The state's key holds the schedule's fingerprint, so that an edited
// schedule starts afresh. A trigger without state sends no summary for
// the periods that ended before the webhook was last saved (created, or
// updated with this schedule): its first summary is of the first period
// that ends after that.
func (s *Service) summarize(ctx context.Context, now time.Time, w *Webhook, i int, cs *compiledSchedule, states map[string]*TriggerState) error {
	p, ok := cs.period(now)
	if !ok {
		return nil
	}
	p.Trigger = i
	key := stateKey("scheduled", w.ID, i, cs.fingerprint, "")
	st := states[key]
	switch {
	case st == nil:
		if !p.End.After(w.UpdatedAt) {
			return nil
		}
		st = &TriggerState{Key: key, TenantID: w.TenantID, WebhookID: w.ID}
	case st.Schedule != nil && !st.Schedule.LastPeriodEnd.Before(p.End):
		return nil
	}
	var summary map[string]any
	if s.summary != nil {
		var err error
		if summary, err = s.summary(ctx, w.Clone(), p); err != nil {
			return fmt.Errorf("webhook %s: triggers[%d]: summary of the period ending %s: %w", w.ID, i, p.End.Format(time.RFC3339), err)
		}
	}
	data := map[string]any{
		"period_start": p.Start.Format(time.RFC3339),
		"period_end":   p.End.Format(time.RFC3339),
		"summary":      summary,
	}
	if cs.interval > 0 {
		data["interval_seconds"] = int64(cs.interval / time.Second)
	} else {
		data["schedule"], data["timezone"] = cs.expr, cs.zone
	}
	env := ""
	if len(w.Environments) == 1 {
		env = w.Environments[0]
	}
	end := p.End.UTC()
	ikey := fmt.Sprintf("scheduled:%s:%d:%s", w.ID, i, end.Format(time.RFC3339))
	res, err := s.updateState(ctx, st, func(st *TriggerState) (stateDecision, error) {
		if st.Schedule != nil && !st.Schedule.LastPeriodEnd.Before(end) {
			return stateDecision{}, nil // sent by another Service meanwhile
		}
		msg, err := s.messageFor(w, EventTypeScheduledSummary, data, env, ikey, end, now)
		if err != nil {
			return stateDecision{}, err
		}
		st.Schedule = &ScheduleState{LastPeriodEnd: end}
		return stateDecision{enqueue: msg, changed: true}, nil
	})
	if err != nil {
		return fmt.Errorf("webhook %s: triggers[%d]: enqueue the summary of the period ending %s: %w", w.ID, i, p.End.Format(time.RFC3339), err)
	}
	if len(res.DeliveryIDs) > 0 && !res.Duplicate {
		s.log.DebugContext(ctx, "webhook: enqueued a scheduled summary", "webhook_id", w.ID, "tenant_id", w.TenantID, "trigger", i, "period_end", p.End)
	}
	return nil
}
