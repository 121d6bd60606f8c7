package webhook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// WorkerConfig configures a Worker. The zero value is valid: every field
// has a default.
type WorkerConfig struct {
	// Concurrency is the most attempts in flight at once. Defaults to 32.
	Concurrency int
	// MaxPerWebhook is the most attempts this worker has in flight to
	// one webhook at once: a slow or hanging endpoint holds no more of
	// the pool than this, and its backlog waits in storage, unclaimed.
	// The cap is per worker and per webhook; several webhooks with the
	// same URL count separately. Defaults to 4.
	MaxPerWebhook int
	// BatchSize is the most deliveries claimed in one storage call.
	// Defaults to Concurrency.
	BatchSize int
	// LeaseDuration is how long a claimed delivery stays leased to this
	// worker. If the worker dies, another claims the delivery after the
	// lease expires. It must exceed the request timeout by at least 10
	// seconds; a request is never allowed to outlive its lease. Defaults
	// to 5 minutes.
	LeaseDuration time.Duration
	// PollInterval is how often an idle worker looks for due deliveries
	// that it was not told about (retries coming due, deliveries enqueued
	// by other processes). Defaults to 1 second.
	PollInterval time.Duration
	// ShutdownTimeout is how long Run lets attempts in flight finish
	// after its context is canceled before it aborts them. Defaults to
	// 30 seconds.
	ShutdownTimeout time.Duration
	// WorkerID names the worker in leases and logs. Defaults to the host
	// name, the process ID and a random suffix.
	WorkerID string
}

// Defaults for WorkerConfig.
const (
	DefaultConcurrency     = 32
	DefaultMaxPerWebhook   = 4
	DefaultLeaseDuration   = 5 * time.Minute
	DefaultPollInterval    = time.Second
	DefaultShutdownTimeout = 30 * time.Second
)

// storageRetryDelay is how long a delivery waits after the storage
// failed to tell the worker about its webhook.
const storageRetryDelay = 5 * time.Second

// leaseMargin is kept free at the end of a lease for recording the result.
const leaseMargin = 10 * time.Second

// recordTimeout bounds each storage call that records results. A result
// is normally recorded well within leaseMargin; one that comes after its
// lease was taken over is refused (ErrLeaseLost) and the delivery is
// attempted again, as at-least-once delivery allows.
const recordTimeout = 8 * time.Second

// ErrWorkerRunning is returned by Run and RunOnce when the worker is
// already running.
var ErrWorkerRunning = errors.New("webhook: worker is already running")

// Worker sends due deliveries: it claims them from Storage with a lease,
// posts each signed payload to its webhook, records the attempt and
// schedules the next one under the webhook's RetryPolicy. Any number of
// workers, in one process or many, may share a Storage; each delivery is
// attempted by one worker at a time.
//
// Delivery is at least once: a worker that dies mid-attempt leaves a
// lease that expires, and another worker attempts the delivery again with
// the same webhook-id, so receivers can drop duplicates.
//
// A Worker is safe for concurrent use, but runs once at a time.
type Worker struct {
	svc     *Service
	cfg     WorkerConfig
	running atomic.Bool

	mu      sync.Mutex
	hooks   map[string]*endpoint // per-webhook state, while it matters
	total   int
	settled atomic.Int64  // deliveries whose outcome was recorded, for RunOnce
	freed   chan struct{} // signalled when an attempt finishes
	wg      sync.WaitGroup
	results chan recordReq // to the recorder, while one runs
}

// recordReq is one result waiting for the recorder.
type recordReq struct {
	p    RecordAttemptParams
	done chan error // buffered: the recorder never waits on it
}

// maxRecordBatch bounds how many results one batch write carries.
const maxRecordBatch = 128

// NewWorker returns a worker that sends the deliveries of svc's Storage
// using svc's Doer, timeouts and hooks. A nil cfg means the defaults. It
// returns an error wrapping ErrInvalid for out-of-range settings. It
// starts no goroutine; call Run or RunOnce.
func NewWorker(svc *Service, cfg *WorkerConfig) (*Worker, error) {
	if svc == nil {
		return nil, fmt.Errorf("%w: NewWorker: nil Service", ErrInvalid)
	}
	var c WorkerConfig
	if cfg != nil {
		c = *cfg
	}
	var ps problems
	setDefault(&ps, "Concurrency", &c.Concurrency, DefaultConcurrency)
	setDefault(&ps, "MaxPerWebhook", &c.MaxPerWebhook, DefaultMaxPerWebhook)
	setDefault(&ps, "BatchSize", &c.BatchSize, c.Concurrency)
	setDefault(&ps, "LeaseDuration", &c.LeaseDuration, DefaultLeaseDuration)
	setDefault(&ps, "PollInterval", &c.PollInterval, DefaultPollInterval)
	setDefault(&ps, "ShutdownTimeout", &c.ShutdownTimeout, DefaultShutdownTimeout)
	if c.LeaseDuration > 0 && c.LeaseDuration < svc.timeout+leaseMargin {
		ps.add("LeaseDuration", fmt.Sprintf("must exceed the request timeout (%v) by at least %v", svc.timeout, leaseMargin))
	}
	if err := ps.err("worker config"); err != nil {
		return nil, err
	}
	if c.WorkerID == "" {
		host, _ := os.Hostname()
		var b [3]byte
		_, _ = rand.Read(b[:])
		c.WorkerID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	return &Worker{svc: svc, cfg: c, hooks: map[string]*endpoint{}, freed: make(chan struct{}, 1)}, nil
}

// ID returns the worker's ID, as recorded in leases.
func (w *Worker) ID() string { return w.cfg.WorkerID }

// Run sends deliveries until ctx is canceled. It wakes at once when
// deliveries are enqueued through the same Service, and otherwise polls
// every PollInterval. When ctx is canceled it stops claiming, lets the
// attempts in flight finish for up to ShutdownTimeout, aborts the rest
// (they are retried), and returns nil after every goroutine it started
// has exited. Storage errors are logged and retried, not returned.
func (w *Worker) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return ErrWorkerRunning
	}
	defer w.running.Store(false)
	wake, unsubscribe := w.svc.subscribe()
	defer unsubscribe()
	sendCtx, abort := context.WithCancel(context.WithoutCancel(ctx))
	defer abort()
	defer w.startRecorder(ctx)() // stops after the attempts: deferred first, runs last
	if n, ok := w.svc.store.(Notifier); ok {
		// Wake on enqueues by other processes too. wake has room for
		// one signal; more would be coalesced anyway.
		listenCtx, stopListening := context.WithCancel(ctx)
		var listening sync.WaitGroup
		listening.Go(func() {
			notify := func() { w.svc.notify() }
			if err := n.Listen(listenCtx, notify); err != nil {
				w.svc.log.ErrorContext(ctx, "webhook: storage notifications stopped; polling only", "error", err)
			}
		})
		defer listening.Wait()
		defer stopListening()
	}

	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		more, token, err := w.fill(ctx, sendCtx)
		if err != nil && ctx.Err() == nil {
			w.svc.log.ErrorContext(ctx, "webhook: claiming deliveries failed; will retry", "worker_id", w.cfg.WorkerID, "error", err)
			more = false
		}
		var freed <-chan struct{}
		if more {
			freed = w.freed
		}
		wait := w.cfg.PollInterval
		if token > 0 {
			wait = min(wait, token) // a rate-limited webhook gets its next token
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			w.shutdown(abort)
			return nil
		case <-wake:
		case <-freed:
		case <-timer.C:
		}
	}
}

// shutdown waits for attempts in flight, aborting them after the
// shutdown timeout.
func (w *Worker) shutdown(abort context.CancelFunc) {
	done := make(chan struct{})
	go func() {
		w.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(w.cfg.ShutdownTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		w.svc.log.Warn("webhook: shutdown timeout reached; aborting attempts in flight", "worker_id", w.cfg.WorkerID)
		abort()
		<-done
	}
}

// RunOnce attempts every delivery that is due, waits for those attempts
// to finish, and returns how many deliveries it settled (attempted, or
// failed without sending). Retries that come due while it runs may be
// attempted too; it returns once nothing is due and nothing is in
// flight. Deliveries that a webhook's rate limit holds back are left for
// a later call. It is meant for tests and batch jobs. It returns ctx's
// error if ctx is canceled, and the Storage's error if claiming fails.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	if !w.running.CompareAndSwap(false, true) {
		return 0, ErrWorkerRunning
	}
	defer w.running.Store(false)
	defer w.startRecorder(ctx)()
	before := w.settled.Load()
	for {
		_, _, err := w.fill(ctx, ctx)
		if err != nil {
			w.wg.Wait()
			return int(w.settled.Load() - before), err
		}
		// fill returns with nothing in flight only when a claim came back
		// empty: what is left is not due, or held back by a rate limit.
		if w.busy() == 0 {
			w.wg.Wait()
			return int(w.settled.Load() - before), nil
		}
		select {
		case <-w.freed:
		case <-ctx.Done():
			w.wg.Wait()
			return int(w.settled.Load() - before), ctx.Err()
		}
	}
}

func (w *Worker) busy() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.total
}

// endpoint is what a worker tracks of one webhook.
type endpoint struct {
	inflight int           // claimed and not yet finished
	sending  int           // admitted by admit and not yet finished
	max      int           // the webhook's MaxInFlight, once seen; 0 for the default
	limiter  *rate.Limiter // the webhook's RateLimit, once seen
}

// learn takes the webhook's current limits.
func (e *endpoint) learn(hook *Webhook) {
	e.max = hook.MaxInFlight
	switch {
	case hook.RateLimit <= 0:
		e.limiter = nil
	case e.limiter == nil || e.limiter.Limit() != rate.Limit(hook.RateLimit):
		e.limiter = rate.NewLimiter(rate.Limit(hook.RateLimit), hook.rateBurst())
	}
}

// fill claims and starts deliveries until the pool is full or nothing
// more is due. It reports whether more work may be waiting for a free
// slot, and how soon a rate-limited webhook gets its next token (0 if
// none is waiting). Claims use ctx; the attempts they start use sendCtx.
func (w *Worker) fill(ctx, sendCtx context.Context) (bool, time.Duration, error) {
	for {
		if err := ctx.Err(); err != nil {
			return false, 0, err
		}
		now := w.svc.clock()
		limit, exclude, token := w.capacity(now)
		if limit <= 0 {
			return true, token, nil
		}
		claims, err := w.svc.store.ClaimDeliveries(ctx, ClaimParams{
			WorkerID:        w.cfg.WorkerID,
			Limit:           limit,
			LeaseDuration:   w.cfg.LeaseDuration,
			Now:             now,
			ExcludeWebhooks: exclude,
			MaxPerWebhook:   1,
		})
		if err != nil {
			return false, 0, err
		}
		if len(claims) == 0 {
			return len(exclude) > 0, token, nil
		}
		idx := w.svc.idx.Load()
		w.mu.Lock()
		for _, c := range claims {
			e := w.hooks[c.Delivery.WebhookID]
			if e == nil {
				e = &endpoint{}
				w.hooks[c.Delivery.WebhookID] = e
				// Learn the webhook's own limits before the next claim.
				if idx != nil {
					if cw, ok := idx.byID[c.Delivery.WebhookID]; ok {
						e.learn(cw.w)
					}
				}
			}
			e.inflight++
			w.total++
		}
		w.mu.Unlock()
		for _, c := range claims {
			w.wg.Go(func() {
				defer w.done(c.Delivery.WebhookID)
				w.process(sendCtx, c)
			})
		}
	}
}

// capacity returns how many deliveries may be claimed now, which
// webhooks must not be claimed (at their in-flight cap, or out of rate
// tokens), and how soon the first rate-limited one gets a token.
func (w *Worker) capacity(now time.Time) (int, []string, time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var exclude []string
	var token time.Duration
	for id, e := range w.hooks {
		limit := w.cfg.MaxPerWebhook
		if e.max > 0 {
			limit = min(limit, e.max)
		}
		tokens := 1.0
		if e.limiter != nil {
			// Deliveries claimed but not yet admitted will take tokens too.
			tokens = e.limiter.TokensAt(now) - float64(e.inflight-e.sending)
		}
		switch {
		case e.inflight >= limit:
			exclude = append(exclude, id)
		case tokens < 1:
			exclude = append(exclude, id)
			wait := time.Duration((1 - tokens) / float64(e.limiter.Limit()) * float64(time.Second))
			if token == 0 || wait < token {
				token = max(wait, time.Millisecond)
			}
		case e.inflight == 0 && (e.limiter == nil || e.limiter.TokensAt(now) >= float64(e.limiter.Burst())):
			delete(w.hooks, id) // nothing left to remember
		}
	}
	return min(w.cfg.Concurrency-w.total, w.cfg.BatchSize), exclude, token
}

// admit applies the webhook's own limits to a claimed delivery. It
// reports whether to send now, or else how long to hold it back. An
// admitted delivery must be let go with unadmit.
func (w *Worker) admit(hook *Webhook, now time.Time) (bool, time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.hooks[hook.ID]
	if e == nil {
		return true, 0 // cannot happen: claimed deliveries are tracked
	}
	e.learn(hook)
	if e.max > 0 && e.sending >= min(e.max, w.cfg.MaxPerWebhook) {
		return false, 0 // claimed before the cap was known: try again soon
	}
	if e.limiter != nil {
		r := e.limiter.ReserveN(now, 1)
		if d := r.DelayFrom(now); d > 0 {
			r.CancelAt(now)
			return false, d
		}
	}
	e.sending++
	return true, 0
}

// unadmit ends what admit allowed.
func (w *Worker) unadmit(webhookID string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e := w.hooks[webhookID]; e != nil {
		e.sending--
	}
}

// done releases a finished attempt's slot.
func (w *Worker) done(webhookID string) {
	w.mu.Lock()
	if e := w.hooks[webhookID]; e != nil {
		e.inflight--
	}
	w.total--
	w.mu.Unlock()
	select {
	case w.freed <- struct{}{}:
	default:
	}
}

// process makes one attempt of a claimed delivery and records it.
func (w *Worker) process(ctx context.Context, c *Claim) {
	s := w.svc
	d := c.Delivery
	log := s.log.With("delivery_id", d.ID, "webhook_id", d.WebhookID, "attempt", d.Attempt)
	hook, err := s.webhookForSend(ctx, d.WebhookID)
	switch {
	case d.EventType == EventTypeTest:
		// Only an interrupted Test leaves a test delivery to claim; a
		// test send is never retried.
		w.record(ctx, c, hook, sendResult{outcome: OutcomeAbort, attempt: Attempt{StartedAt: s.clock(), Error: "not sent: a test send is never retried"}})
		return
	case errors.Is(err, ErrNotFound):
		w.record(ctx, c, nil, sendResult{outcome: OutcomeAbort, attempt: Attempt{StartedAt: s.clock(), Error: "not sent: the webhook was deleted"}})
		return
	case err != nil:
		log.ErrorContext(ctx, "webhook: loading the webhook failed; handing the delivery back", "error", err)
		w.release(ctx, c, storageRetryDelay)
		return
	case hook.Disabled:
		w.record(ctx, c, hook, sendResult{outcome: OutcomeAbort, attempt: Attempt{StartedAt: s.clock(), Error: "not sent: the webhook is disabled"}})
		return
	case d.Attempt > hook.Retry.MaxAttempts:
		msg := fmt.Sprintf("not sent: all %d attempts are used (earlier attempts lost their lease)", hook.Retry.MaxAttempts)
		w.record(ctx, c, hook, sendResult{outcome: OutcomeAbort, attempt: Attempt{StartedAt: s.clock(), Error: msg}})
		return
	}
	if ok, wait := w.admit(hook, s.clock()); !ok {
		w.release(ctx, c, wait) // over the webhook's own limits: try later
		return
	}
	defer w.unadmit(hook.ID)
	timeout := s.timeout
	if hook.Timeout > 0 {
		timeout = hook.Timeout
	}
	// Never let a request outlive its lease: another worker may claim
	// the delivery once the lease expires.
	if left := c.Lease.ExpiresAt.Sub(s.clock()) - leaseMargin; left < timeout {
		if left < time.Second {
			log.WarnContext(ctx, "webhook: lease too short to attempt; handing the delivery back")
			w.release(ctx, c, 0)
			return
		}
		timeout = left
	}
	res := s.send(ctx, hook, c.Payload, d.ID, timeout)
	if ctx.Err() != nil && res.attempt.StatusCode == 0 {
		// The worker is shutting down and aborted the request before an
		// answer came: hand the delivery back; the attempt does not count.
		w.release(ctx, c, 0)
		return
	}
	w.record(ctx, c, hook, res)
}

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

// webhookForSend returns the webhook to send to: from the matching index
// when that is fresh and has it (enabled), else from Storage. It never
// reloads the index, so sends cost at most one lookup.
func (s *Service) webhookForSend(ctx context.Context, id string) (*Webhook, error) {
	if idx := s.idx.Load(); s.fresh(idx) {
		if cw, ok := idx.byID[id]; ok {
			return cw.w, nil
		}
	}
	return s.store.GetWebhook(ctx, id)
}
