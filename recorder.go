package webhook

import (
	"context"
	"errors"
	"sync"
	"time"
)

// recordReq is one result waiting for the recorder.
type recordReq struct {
	p    RecordAttemptParams
	done chan error // buffered: the recorder never waits on it
}

// maxRecordBatch bounds how many results one batch write carries.
const maxRecordBatch = 128

// startRecorder starts the goroutine that writes results in batches, if
// the Storage can, and returns the function that stops it once every
// attempt has finished.
func (w *Worker) startRecorder(ctx context.Context) (stop func()) {
	br, ok := w.svc.store.(BatchRecorder)
	if !ok {
		return func() {}
	}
	w.results = make(chan recordReq, w.cfg.Concurrency)
	var wg sync.WaitGroup
	wg.Go(func() { w.recordLoop(context.WithoutCancel(ctx), br) })
	return func() {
		w.wg.Wait() // no attempt is left to send a result
		close(w.results)
		wg.Wait()
		w.results = nil
	}
}

// recordLoop writes the results that arrive, each batch holding all that
// queued up while the previous write was under way.
func (w *Worker) recordLoop(ctx context.Context, br BatchRecorder) {
	for first := range w.results {
		batch := []recordReq{first}
	collect:
		for len(batch) < maxRecordBatch {
			select {
			case r, ok := <-w.results:
				if !ok {
					break collect
				}
				batch = append(batch, r)
			default:
				break collect
			}
		}
		ps := make([]RecordAttemptParams, len(batch))
		for i, r := range batch {
			ps[i] = r.p
		}
		rctx, cancel := context.WithTimeout(ctx, recordTimeout)
		errs, err := br.RecordAttempts(rctx, ps)
		cancel()
		if err != nil || len(errs) != len(batch) {
			// The batch failed as a whole, and recorded nothing: record
			// one by one, each with time of its own.
			for _, r := range batch {
				rctx, cancel := context.WithTimeout(ctx, recordTimeout)
				r.done <- w.svc.store.RecordAttempt(rctx, r.p)
				cancel()
			}
			continue
		}
		for i, r := range batch {
			r.done <- errs[i]
		}
	}
}

// write records one result, through the recorder when one runs. With a
// recorder it waits for the recorder's answer, which always comes, so
// that what it returns is what happened to the result.
func (w *Worker) write(ctx context.Context, p RecordAttemptParams) error {
	if w.results == nil {
		return w.svc.store.RecordAttempt(ctx, p)
	}
	r := recordReq{p: p, done: make(chan error, 1)}
	w.results <- r
	return <-r.done
}

// release hands a claimed delivery back without an outcome, due after
// wait.
func (w *Worker) release(ctx context.Context, c *Claim, wait time.Duration) {
	s := w.svc
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	now := s.clock()
	next := now.Add(wait).Truncate(time.Microsecond)
	err := w.write(rctx, RecordAttemptParams{DeliveryID: c.Delivery.ID, Token: c.Lease.Token, Released: true, NextAttemptAt: next, Now: now})
	if err != nil {
		s.log.WarnContext(rctx, "webhook: handing a delivery back failed; it is retried when its lease expires", "delivery_id", c.Delivery.ID, "error", err)
	}
}

// record stores an attempt's outcome and runs the hooks.
func (w *Worker) record(ctx context.Context, c *Claim, hook *Webhook, res sendResult) {
	s := w.svc
	d := c.Delivery
	now := s.clock()
	p := RecordAttemptParams{DeliveryID: d.ID, Token: c.Lease.Token, Attempt: res.attempt, Now: now}
	switch res.outcome {
	case OutcomeSuccess:
		p.Status = StatusDelivered
	case OutcomeGone:
		p.Status = StatusFailed
		p.DisableWebhook = true
		p.DisabledReason = "the endpoint answered 410 Gone"
	case OutcomeAbort:
		p.Status = StatusFailed
	default:
		if hook != nil && d.Attempt < hook.Retry.MaxAttempts {
			p.Status = StatusRetrying
			p.NextAttemptAt = now.Add(hook.Retry.Backoff(d.Attempt, res.retryAfter)).Truncate(time.Microsecond)
		} else {
			p.Status = StatusFailed
		}
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	log := s.log.With("delivery_id", d.ID, "webhook_id", d.WebhookID, "attempt", d.Attempt, "status", p.Status)
	if err := w.write(rctx, p); err != nil {
		if errors.Is(err, ErrLeaseLost) {
			log.WarnContext(rctx, "webhook: result refused: the lease was lost to another worker")
		} else {
			log.ErrorContext(rctx, "webhook: recording the attempt failed; the delivery will be retried after its lease", "error", err)
		}
		return
	}
	w.settled.Add(1)
	switch p.Status {
	case StatusDelivered:
		log.DebugContext(rctx, "webhook: delivered", "status_code", res.attempt.StatusCode, "duration", res.attempt.Duration)
	case StatusRetrying:
		log.InfoContext(rctx, "webhook: attempt failed; will retry", "error", res.attempt.Error, "next_attempt_at", p.NextAttemptAt)
	case StatusFailed:
		log.WarnContext(rctx, "webhook: delivery failed for good", "error", res.attempt.Error)
	}
	if p.DisableWebhook {
		s.invalidate()
		if s.onDisabled != nil && hook != nil {
			disabled := hook.Clone()
			disabled.Disabled, disabled.DisabledReason, disabled.UpdatedAt = true, p.DisabledReason, now
			s.onDisabled(rctx, disabled)
		}
	}
	if hook != nil && (p.Status == StatusDelivered || (p.Status == StatusFailed && res.outcome == OutcomeRetry)) {
		s.noteHealth(rctx, hook, p.Status == StatusDelivered)
	}
	if p.Status == StatusFailed && s.onFailed != nil {
		failed := *d
		failed.Status = StatusFailed
		failed.StatusCode, failed.ResponseBody, failed.Duration, failed.Error = res.attempt.StatusCode, res.attempt.ResponseBody, res.attempt.Duration, res.attempt.Error
		failed.CompletedAt = now
		failed.NextAttemptAt = time.Time{}
		s.onFailed(rctx, &failed)
	}
}
