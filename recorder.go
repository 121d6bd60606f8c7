package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
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

// While results come fast (the previous batch carried at least
// busyRecordBatch), the recorder lets a batch fill for up to
// recordLinger, or until it holds fullRecordBatch results, before
// writing it. Each write is a transaction with a commit, which costs
// PostgreSQL about as much CPU as recording five results (some 80 µs
// against 16 µs a result, measured), so fewer, fuller batches leave it
// more time for claims; the wait delays only
// the write, not the next attempt (an attempt's slot is freed once its
// result is queued). At an idle worker's pace every result is written
// at once. Measured with the harness in bench/: batches went from about
// 15 results to 35–43, and a longer wait (5 ms, 64) gained nothing more.
const (
	recordLinger    = 2 * time.Millisecond
	busyRecordBatch = 8
	fullRecordBatch = 48
)

// Retrying a result that failed to be written: the first wait, and the
// longest.
const (
	firstWriteRetry = 100 * time.Millisecond
	maxWriteRetry   = 5 * time.Second
)

// writeSlack is how long before a claim's lease ends (on the worker's
// clock) the worker stops writing its result.
const writeSlack = time.Second

// startRecorder starts the goroutine that writes results in batches, if
// the Storage can, and returns the function that stops it once every
// attempt has finished. Its writes run under ctx.
func (w *Worker) startRecorder(ctx context.Context) (stop func()) {
	br, ok := w.svc.store.(BatchRecorder)
	if !ok {
		return func() {}
	}
	w.results = make(chan recordReq, w.cfg.Concurrency)
	var wg sync.WaitGroup
	wg.Go(func() { w.recordLoop(ctx, br) })
	return func() {
		w.wg.Wait() // no attempt is left to send a result
		close(w.results)
		wg.Wait()
		w.results = nil
	}
}

// recordLoop writes the results that arrive, each batch holding all that
// queued up while the previous write was under way (and, while results
// come fast, those that come within recordLinger).
func (w *Worker) recordLoop(ctx context.Context, br BatchRecorder) {
	var batch []recordReq        // reused from batch to batch
	var ps []RecordAttemptParams // likewise: the Storage reads it only during the call
	linger := time.NewTimer(recordLinger)
	linger.Stop()
	for first := range w.results {
		busy := len(batch) >= busyRecordBatch
		clear(batch) // let the answered requests go
		batch = append(batch[:0], first)
		batch = w.collect(batch, busy, linger)
		clear(ps)
		ps = ps[:0]
		for _, r := range batch {
			ps = append(ps, r.p)
		}
		rctx, cancel := context.WithTimeout(ctx, recordTimeout)
		errs, err := br.RecordAttempts(rctx, ps)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			// Out of time: writing one by one would wait as long again.
			// The writers retry while their leases allow.
			for _, r := range batch {
				r.done <- err
			}
			continue
		}
		if err != nil || len(errs) != len(batch) {
			// The batch failed as a whole, and recorded nothing: record
			// one by one, in parallel, each with time of its own.
			var each sync.WaitGroup
			for _, r := range batch {
				each.Go(func() {
					rctx, cancel := context.WithTimeout(ctx, recordTimeout)
					defer cancel()
					r.done <- w.svc.store.RecordAttempt(rctx, r.p)
				})
			}
			each.Wait()
			continue
		}
		for i, r := range batch {
			r.done <- errs[i]
		}
	}
}

// collect adds to batch the results queued meanwhile, and, if busy,
// those that come within recordLinger, up to fullRecordBatch; linger is
// the timer it uses, stopped. The wait ends, too, once the batch holds
// Concurrency + Prefetch results: the worker may stop claiming while
// more than that wait for their write (see capacity), and would sit
// idle for the rest of the wait.
func (w *Worker) collect(batch []recordReq, busy bool, linger *time.Timer) []recordReq {
	full := fullRecordBatch
	if c := w.cfg.Concurrency + w.cfg.Prefetch; c > 0 {
		full = min(full, c)
	}
	var expired <-chan time.Time
	if busy {
		linger.Reset(recordLinger)
		defer linger.Stop()
		expired = linger.C
	}
	for len(batch) < maxRecordBatch {
		select {
		case r, ok := <-w.results:
			if !ok {
				return batch
			}
			batch = append(batch, r)
			continue
		default:
		}
		if expired == nil || len(batch) >= full {
			return batch
		}
		select {
		case r, ok := <-w.results:
			if !ok {
				return batch
			}
			batch = append(batch, r)
		case <-expired:
			return batch
		}
	}
	return batch
}

// write records one result once, through the recorder when one runs,
// by deadline: with a recorder it waits for the recorder's answer until
// then, or until ctx is done.
func (w *Worker) write(ctx context.Context, deadline time.Time, p RecordAttemptParams, queued func()) error {
	if w.results == nil {
		rctx, cancel := context.WithDeadline(ctx, earlier(deadline, time.Now().Add(recordTimeout)))
		defer cancel()
		return w.svc.store.RecordAttempt(rctx, p)
	}
	// A timer, not a context: the wait need not be a child of ctx.
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	over := func() error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("record attempt: %w", err)
		}
		return fmt.Errorf("record attempt: %w", context.DeadlineExceeded)
	}
	r := recordReq{p: p, done: make(chan error, 1)}
	select {
	case w.results <- r:
		if queued != nil {
			queued()
		}
	case <-ctx.Done():
		return over()
	case <-t.C:
		return over()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return over()
	case <-t.C:
		return over()
	}
}

// writeClaim records a claim's result, retrying with backoff while the
// claim's lease holds: a write that fails in a database blip is not
// left for the lease to expire and the delivery to be sent again. The
// writes end writeSlack before the lease does (the first write gets
// recordTimeout in any case), so the worker is done with the delivery by
// the time anyone can claim it again. It gives up at once on a refusal
// (lost lease, unknown delivery, invalid result) and when ctx is done.
func (w *Worker) writeClaim(ctx context.Context, c *Claim, p RecordAttemptParams, queued func()) error {
	until := time.Now().Add(c.Lease.ExpiresAt.Sub(w.svc.clock()) - writeSlack) // on the real clock
	delay := firstWriteRetry
	for deadline := later(until, time.Now().Add(recordTimeout)); ; deadline = until {
		err := w.write(ctx, deadline, p, queued)
		if err == nil || errors.Is(err, ErrLeaseLost) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalid) || ctx.Err() != nil {
			return err
		}
		wait := delay/2 + rand.N(delay/2+1)
		if time.Until(until) < wait {
			return err
		}
		deliveryLog(w.svc.log, c.Delivery, nil).WarnContext(ctx, "webhook: recording the attempt failed; retrying", slog.Duration("retry_in", wait), "error", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		delay = min(2*delay, maxWriteRetry)
	}
}

// earlier returns the earlier of a and b.
func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// written reports whether the attempt a was stored as the claimed
// attempt of c's delivery: the storage refused a write of it as coming
// from a lost lease, which it also does when an earlier write of the same
// result was stored but its answer never arrived. An attempt number is
// recorded once per claim, so the number and start time identify it.
func (w *Worker) written(ctx context.Context, c *Claim, a Attempt) bool {
	rctx, cancel := context.WithTimeout(ctx, recordTimeout)
	defer cancel()
	attempts, err := w.svc.store.ListAttempts(rctx, c.Delivery.ID)
	if err != nil {
		return false
	}
	for _, got := range attempts {
		if got.Number == c.Delivery.Attempt && got.StartedAt.Equal(a.StartedAt) && got.StatusCode == a.StatusCode && got.Error == a.Error {
			return true
		}
	}
	return false
}

// release hands a claimed delivery back without an outcome, due after
// wait. Its writes run under ctx.
func (w *Worker) release(ctx context.Context, c *Claim, wait time.Duration) {
	s := w.svc
	now := s.clock()
	next := now.Add(wait).Truncate(time.Microsecond)
	s.tel.released(ctx)
	err := w.writeClaim(ctx, c, RecordAttemptParams{DeliveryID: c.Delivery.ID, Token: c.Lease.Token, Released: true, NextAttemptAt: next, Now: now}, nil)
	if err != nil {
		deliveryLog(s.log, c.Delivery, nil).WarnContext(ctx, "webhook: handing a delivery back failed; it is retried when its lease expires", "error", err)
	}
}

// record stores an attempt's outcome and runs the hooks. A 410 Gone
// disables the webhook before the outcome is stored. Its writes run under
// ctx. Its slot, sl, is freed once the result is queued for the batch
// write.
func (w *Worker) record(ctx context.Context, c *Claim, hook *Webhook, res sendResult, sl *slot) {
	s := w.svc
	d := c.Delivery
	now := s.clock()
	p := RecordAttemptParams{DeliveryID: d.ID, Token: c.Lease.Token, Attempt: res.attempt, Now: now}
	switch res.outcome {
	case OutcomeSuccess:
		p.Status = StatusDelivered
	case OutcomeGone, OutcomeAbort:
		p.Status = StatusFailed
	default:
		if hook != nil && d.Attempt < hook.Retry.MaxAttempts {
			p.Status = StatusRetrying
			p.NextAttemptAt = now.Add(hook.Retry.Backoff(d.Attempt, res.retryAfter)).Truncate(time.Microsecond)
		} else {
			p.Status = StatusFailed
		}
	}
	log := func() *slog.Logger { return deliveryLog(s.log, d, hook).With("status", p.Status) } // built only to log
	if res.outcome == OutcomeGone {
		// Disable first: a worker that stops before the result is
		// written leaves the webhook disabled (the delivery then fails
		// without being sent), not a result that claims a disable that
		// never happened.
		dctx, cancel := context.WithTimeout(ctx, recordTimeout)
		s.disable(dctx, d.WebhookID, disabledGone, "the endpoint answered 410 Gone")
		cancel()
	}
	err := w.writeClaim(ctx, c, p, sl.queued)
	if errors.Is(err, ErrLeaseLost) && w.written(ctx, c, p.Attempt) {
		// A write whose answer was lost (the connection dropped after
		// the commit) was stored; the retry found the lease ended by it.
		err = nil
	}
	if err != nil {
		if errors.Is(err, ErrLeaseLost) {
			log().WarnContext(ctx, "webhook: result refused: the lease was lost to another worker")
		} else {
			log().ErrorContext(ctx, "webhook: recording the attempt failed; the delivery will be retried after its lease", "error", err)
		}
		return
	}
	w.settled.Add(1)
	s.tel.recordAttempt(ctx, d, res, p.Status, now)
	if p.Status == StatusDelivered && (hook == nil || hook.ConsecutiveFailures == 0) && !s.log.Enabled(ctx, slog.LevelDebug) {
		return // nothing to log, no health to reset (see noteHealth), no hook to run
	}
	hctx, cancel := context.WithTimeout(ctx, recordTimeout) // for the hooks and the health policy
	defer cancel()
	switch p.Status {
	case StatusDelivered:
		if s.log.Enabled(hctx, slog.LevelDebug) {
			log().DebugContext(hctx, "webhook: delivered", "status_code", res.attempt.StatusCode, slog.Duration("duration", res.attempt.Duration))
		}
	case StatusRetrying:
		log().InfoContext(hctx, "webhook: attempt failed; will retry", "error", res.attempt.Error, "next_attempt_at", p.NextAttemptAt)
	case StatusFailed:
		log().WarnContext(hctx, "webhook: delivery failed for good", "error", res.attempt.Error)
	}
	if hook != nil && (p.Status == StatusDelivered || (p.Status == StatusFailed && res.outcome == OutcomeRetry)) {
		s.noteHealth(hctx, hook, p.Status == StatusDelivered)
	}
	if p.Status == StatusFailed && s.onFailed != nil {
		failed := *d
		failed.Status = StatusFailed
		failed.StatusCode, failed.ResponseBody, failed.Duration, failed.Error = res.attempt.StatusCode, res.attempt.ResponseBody, res.attempt.Duration, res.attempt.Error
		failed.CompletedAt = now
		failed.NextAttemptAt = time.Time{}
		s.onFailed(hctx, &failed)
	}
}
