package webhook

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// DefaultEvaluationInterval is how often a running Worker evaluates the
// stateful triggers when Config.EvaluationInterval is zero.
const DefaultEvaluationInterval = 10 * time.Second

// Evaluate brings the stateful triggers up to date at the current time:
// it writes the metric samples RecordMetric has buffered to Storage, then
// evaluates every threshold condition, every anomaly trigger whose
// bucket has closed and every scheduled trigger whose period has ended,
// enqueuing the notifications that are due. Worker.Run calls it every
// Config.EvaluationInterval, which is all a host needs to run; call it
// yourself where no Worker runs, or in tests with an injected clock.
//
// It is safe to call from several goroutines and processes at once: every
// transition is a compare-and-set in Storage, enqueued in the same atomic
// step, so each notification is enqueued once. It returns the errors of
// the evaluations that failed, joined, each prefixed with its kind
// ("threshold triggers: …"); the others still happen, and the failed
// ones are tried again on the next call.
//
// Each notification it enqueues gets a producer span of its own,
// "webhook.trigger" with webhook.trigger.kind (threshold, anomaly or
// scheduled), webhook.event_type and webhook.id, a child of ctx's span
// if it has one; the notification's payload stores the span's
// traceparent, so the spans of its delivery attempts link to it. A round
// that enqueues nothing makes no span: one span per round would start a
// trace every Config.EvaluationInterval in every process, mostly empty,
// and would tie unrelated alerts to one span. Notifications enqueued
// when recorded metrics are written (see RecordMetric) get their spans
// the same way.
func (s *Service) Evaluate(ctx context.Context) error {
	errs := []error{s.flushMetrics(ctx)}
	idx, err := s.index(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	now := s.clock()
	kinds := statefulKinds(idx)
	for _, e := range []struct {
		kind TriggerType
		eval func(context.Context, time.Time, *index) error
	}{
		{TriggerThreshold, s.evaluateThresholds},
		{TriggerAnomaly, s.evaluateAnomalies},
		{TriggerScheduled, s.evaluateSchedules},
	} {
		err := e.eval(ctx, now, idx)
		if kinds[e.kind] {
			s.tel.noteEvaluation(ctx, e.kind, err)
		}
		if err != nil {
			// Say which evaluation failed: their Storage errors read alike.
			errs = append(errs, fmt.Errorf("%s triggers: %w", e.kind, err))
		}
	}
	return errors.Join(errs...)
}

// statefulKinds returns the stateful trigger types the indexed webhooks
// have, so that the webhook.triggers.evaluations metric counts only the
// evaluations of kinds that exist.
func statefulKinds(idx *index) map[TriggerType]bool {
	kinds := make(map[TriggerType]bool, 3)
	for _, cw := range idx.stateful {
		for _, ct := range cw.triggers {
			if ct.typ.Stateful() {
				kinds[ct.typ] = true
			}
		}
	}
	return kinds
}

// evaluateDuring runs Evaluate every evaluation interval until ctx is
// done, unless another evaluator of this Service runs already (two
// Workers on one Service evaluate once), and then flushes the buffered
// metric samples one last time with flushCtx. The returned stop waits for
// it to finish.
func (s *Service) evaluateDuring(ctx, flushCtx context.Context) (stop func()) {
	if s.evalEvery <= 0 || !s.evaluating.CompareAndSwap(false, true) {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer s.evaluating.Store(false)
		timer := time.NewTimer(s.evalEvery)
		defer timer.Stop()
		for {
			select {
			case <-ctx.Done():
				if err := s.flushMetrics(flushCtx); err != nil {
					s.log.ErrorContext(flushCtx, "webhook: writing recorded metrics at shutdown failed", "error", err)
				}
				return
			case <-timer.C:
			}
			if err := s.Evaluate(ctx); err != nil && ctx.Err() == nil {
				s.log.ErrorContext(ctx, "webhook: evaluating triggers failed; will retry", "retry_in", s.evalEvery, "error", err)
			}
			timer.Reset(s.evalEvery)
		}
	}()
	return func() { <-done }
}

// checkStateful reports the problems of w's stateful triggers that this
// Service cannot run: a Storage without trigger state, or without metrics
// for a windowed threshold condition.
func (s *Service) checkStateful(ps *problems, w *Webhook) {
	_, states := s.stateStore()
	_, metrics := s.metricStore()
	for i, t := range w.Triggers {
		if t.Type.Stateful() && !states {
			ps.add(fmt.Sprintf("triggers[%d].trigger_type", i), fmt.Sprintf("%s triggers need a Storage that keeps trigger state (TriggerStateStore)", t.Type))
		}
		if t.Type != TriggerThreshold || metrics {
			continue
		}
		for j, c := range t.Conditions {
			if c.WindowSeconds > 0 {
				ps.add(fmt.Sprintf("triggers[%d].conditions[%d].window_seconds", i, j), "a window needs a Storage that keeps metrics (MetricStore)")
			}
		}
	}
}
