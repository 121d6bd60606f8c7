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
	// seconds; a request is never allowed to outlive its lease, measured
	// on this worker's clock from the claim (the Storage may keep leases
	// on a clock of its own, as pgstore does). Defaults to 5 minutes.
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
// has exited. Storage errors are logged and retried, not returned. While
// it runs, it watches webhook changes made elsewhere, as Service.Watch
// does.
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
	defer w.svc.watchDuring(ctx)() // learn of webhook changes in other processes

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
				w.process(sendCtx, c, now.Add(w.cfg.LeaseDuration))
			})
		}
	}
}

// process makes one attempt of a claimed delivery and records it.
// leaseEnd is when the lease ends by this worker's clock: the claim's
// start plus the lease duration, never the Storage's ExpiresAt, which
// may be on another clock.
func (w *Worker) process(ctx context.Context, c *Claim, leaseEnd time.Time) {
	s := w.svc
	d := c.Delivery
	log := s.log.With("delivery_id", d.ID, "webhook_id", d.WebhookID, "attempt", d.Attempt)
	hook, err := s.webhookForSend(ctx, d.WebhookID, c.WebhookVersion)
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
	if left := leaseEnd.Sub(s.clock()) - leaseMargin; left < timeout {
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
