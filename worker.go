package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MinLeaseMargin is how much longer than the service's request timeout a
// worker's LeaseDuration must be: 10 seconds kept for recording the
// result, and a second for the claim itself (11 seconds in all).
const MinLeaseMargin = leaseMargin + claimAllowance

// storageRetryDelay is how long a delivery waits after the storage
// failed to tell the worker about its webhook, or left out its payload.
const storageRetryDelay = 5 * time.Second

// leaseMargin is kept free at the end of a lease for recording the result.
const leaseMargin = 10 * time.Second

// claimAllowance is the time a claim may take (from the time it passes
// as Now to the request's start) before a request gets less than its
// full timeout. A slower claim shortens the request, down to
// minAttemptTime.
const claimAllowance = time.Second

// minAttemptTime is the shortest time a request is given: a lease with
// less than this left (after leaseMargin) is handed back unattempted.
const minAttemptTime = time.Second

// minReleaseDelay is the least time a delivery handed back unattempted
// (out of rate tokens, or with too little lease left) waits before it is
// due again, so that nothing claims and hands back in a loop. Deliveries
// handed back by a worker that shuts down are due again at once, and so
// are those over an in-flight cap: the worker does not claim their
// webhook while the cap holds, so they go to another worker, or to this
// one once a slot frees (RunOnce sends them too).
const minReleaseDelay = time.Second

// claimTimeout bounds each claim. A claim does not end when Run's
// context is canceled: what it claimed is handed back instead.
const claimTimeout = 30 * time.Second

// contendedRetry is how soon a worker claims again after a claim that
// found nothing right after one that found deliveries. Concurrent
// claims skip the rows other claims are locking, so under contention a
// claim can come back empty while much is due; waiting a PollInterval
// then would idle the worker, and at the end of a backlog the retry
// costs one claim.
const contendedRetry = 2 * time.Millisecond

// maxClaimBackoff caps the wait between claims while claiming fails,
// unless twice the poll interval is longer.
const maxClaimBackoff = time.Minute

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
	tracked []*endpoint          // hooks' endpoints, for iterating
	sending map[string]int       // admitted attempts per destination host
	// slotFreed is closed whenever an admitted attempt ends, and made
	// anew by the next delivery that must wait in admit for a slot:
	// deliveries waiting for one look again. It is nil while none waits.
	slotFreed chan struct{}
	total     int           // claimed deliveries holding a slot or waiting for one (see Prefetch)
	pool      sendPool      // the Concurrency slots attempts run in, and the deliveries waiting for one
	writing   int           // attempts whose slot was freed once their result was queued, not yet answered
	settled   atomic.Int64  // deliveries whose outcome was recorded, for RunOnce
	freed     chan struct{} // signalled when an attempt finishes
	wg        sync.WaitGroup
	results   chan recordReq // to the recorder, while one runs
	runners   runners        // the attempts' goroutines (see spawn)
	webhooks  sendCache      // webhooks read to send, by version
	// fruitless holds the webhooks the last claim excluded or returned
	// (see stillFruitless); nil after an idle claim that found nothing,
	// or once a wake-up other than a freed slot comes. Only the
	// claiming loop uses it.
	fruitless map[string]bool
	// claimedLast says whether the last claim found deliveries. Only
	// the claiming loop uses it.
	claimedLast bool
	spare       map[string]bool // an emptied fruitless, for reuse
	// hostLoads, epoch, shares, exclude and maxBy are capacity's, kept
	// from call to call (see hostLoad).
	hostLoads map[string]*hostLoad
	epoch     uint64
	shares    uint64 // the claims capacity shared hosts' caps for
	exclude   []string
	maxBy     map[string]int
}

// ID returns the worker's ID, as recorded in leases.
func (w *Worker) ID() string { return w.cfg.WorkerID }

// Run sends deliveries until ctx is canceled. It wakes at once when
// deliveries are enqueued through the same Service, and otherwise polls
// every PollInterval. When ctx is canceled it stops claiming, hands back
// what a claim under way returns, drains within ShutdownTimeout (see
// WorkerConfig), and returns nil after every goroutine it started has
// exited. Storage errors are logged and retried with backoff, not
// returned. While it runs, it watches webhook changes made elsewhere, as
// Service.Watch does, and evaluates the threshold, anomaly and scheduled
// triggers every Config.EvaluationInterval (see Service.Evaluate).
func (w *Worker) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return ErrWorkerRunning
	}
	defer w.running.Store(false)
	wake, unsubscribe := w.svc.subscribe()
	defer unsubscribe()
	// Storage work (claims under way, results) outlives ctx until the
	// drain's deadline; attempts until a little earlier.
	storeCtx, cutOff := context.WithCancel(context.WithoutCancel(ctx))
	defer cutOff()
	sendCtx, abort := context.WithCancel(storeCtx)
	defer abort()
	defer w.startRecorder(storeCtx)() // stops after the attempts: deferred first, runs last
	defer w.startRunners()()
	// The drain's deadlines count from ctx's end, also while a claim is
	// under way.
	drained, deadlined := make(chan struct{}), make(chan struct{})
	context.AfterFunc(ctx, func() {
		defer close(deadlined)
		w.enforceDeadlines(drained, abort, cutOff)
	})
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
	defer w.svc.observeQueue()()   // report the queue gauges while running
	// Evaluate the stateful triggers; the last flush of recorded metrics
	// at shutdown may use the drain's time.
	defer w.svc.evaluateDuring(ctx, storeCtx)()

	timer := time.NewTimer(0)
	defer timer.Stop()
	var backoff time.Duration // while claiming fails
	for {
		res, err := w.fill(ctx, sendCtx, storeCtx)
		wait := w.cfg.PollInterval
		woken, freed := wake, (<-chan struct{})(nil)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			backoff = claimBackoff(backoff, w.cfg.PollInterval)
			wait = backoff/2 + rand.N(backoff/2+1)
			woken = nil // enqueues do not cut the backoff short
			w.svc.log.ErrorContext(ctx, "webhook: claiming deliveries failed; will retry", "worker_id", w.cfg.WorkerID, slog.Duration("retry_in", wait), "error", err)
		default:
			backoff = 0
			if res.more {
				freed = w.freed
			}
			if res.token > 0 {
				wait = min(wait, res.token) // a rate-limited webhook gets its next token
			}
			if res.soon {
				wait = min(wait, contendedRetry)
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			w.wg.Wait() // within ShutdownTimeout: enforceDeadlines cuts off what is left
			close(drained)
			<-deadlined
			return nil
		case <-woken:
			w.dropFruitless() // something new may be due
		case <-freed:
			runtime.Gosched() // let attempts ending now free their slots too, for one claim
		case <-timer.C:
			w.dropFruitless()
		}
	}
}

// claimBackoff returns the bound b on the next wait after a failed
// claim, given the bound after the previous failure (0 after a claim
// that worked): twice the poll interval, doubling up to a minute or
// twice the poll interval, whichever is longer. Each wait is drawn from
// [½·b, b], so that workers do not retry in step, and is never shorter
// than the poll interval.
func claimBackoff(prev, poll time.Duration) time.Duration {
	return min(max(2*prev, 2*poll), max(maxClaimBackoff, 2*poll))
}

// shutdownWriteTime returns the part of the shutdown timeout kept for
// writing results after the attempts still running are aborted.
func (w *Worker) shutdownWriteTime() time.Duration {
	return min(w.cfg.ShutdownTimeout/2, recordTimeout)
}

// enforceDeadlines bounds the drain that starts when Run's context
// ends: it aborts the attempts still running when only the time for
// writing results is left, and cuts off storage work at the end. It
// returns when drained is closed or the drain is cut off.
func (w *Worker) enforceDeadlines(drained <-chan struct{}, abort, cutOff context.CancelFunc) {
	end := time.NewTimer(w.cfg.ShutdownTimeout)
	defer end.Stop()
	sends := time.NewTimer(w.cfg.ShutdownTimeout - w.shutdownWriteTime())
	defer sends.Stop()
	select {
	case <-drained:
		return
	case <-sends.C:
		w.svc.log.Warn("webhook: shutdown: aborting attempts in flight; they are handed back", "worker_id", w.cfg.WorkerID)
		abort()
	}
	select {
	case <-drained:
	case <-end.C:
		w.svc.log.Warn("webhook: shutdown timeout reached; results not yet written are abandoned and their deliveries retried after their leases", "worker_id", w.cfg.WorkerID)
		cutOff()
	}
}

// RunOnce attempts every delivery that is due, waits for those attempts
// to finish, and returns how many deliveries it settled (attempted, or
// failed without sending). Retries that come due while it runs may be
// attempted too; it returns once a claim made with nothing in flight
// finds nothing to claim. Deliveries that a webhook's rate limit holds
// back are left for a later call. A result that fails to be written is
// retried while its lease lasts, so with a Storage whose writes keep
// failing RunOnce can take up to LeaseDuration. It is meant for tests
// and batch jobs.
// It returns ctx's error if ctx is canceled: attempts under way are
// aborted and handed back, and a claim under way and the results still
// to write get up to ShutdownTimeout more. It returns the Storage's
// error if claiming fails.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	if !w.running.CompareAndSwap(false, true) {
		return 0, ErrWorkerRunning
	}
	defer w.running.Store(false)
	storeCtx, cutOff := context.WithCancel(context.WithoutCancel(ctx))
	defer cutOff()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(w.cfg.ShutdownTimeout, cutOff) })
	defer stop()
	defer w.startRecorder(storeCtx)()
	defer w.startRunners()()
	before := w.settled.Load()
	settled := func() int { return int(w.settled.Load() - before) }
	for {
		res, err := w.fill(ctx, ctx, storeCtx)
		if err != nil {
			w.wg.Wait()
			return settled(), err
		}
		if res.drained {
			w.wg.Wait()
			return settled(), nil
		}
		if w.busy() == 0 {
			continue // claim again, now with nothing in flight
		}
		select {
		case <-w.freed:
			runtime.Gosched() // as in Run
		case <-ctx.Done():
			w.wg.Wait()
			return settled(), ctx.Err()
		}
	}
}

func (w *Worker) busy() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.total + w.writing
}

// fillResult is what fill reports.
type fillResult struct {
	more    bool          // more work may be waiting for a free slot
	token   time.Duration // how soon a rate-limited webhook gets a token; 0 if none waits
	drained bool          // a claim made with nothing in flight claimed nothing
	// soon is set when a claim found nothing right after one that
	// found deliveries: more may be due, held for a moment by another
	// worker's claim (see contendedRetry).
	soon bool
}

// fill claims and starts deliveries until the pool is full or nothing
// more is due. Claims start only while ctx is live, run under storeCtx,
// and hand back what they claimed if ctx ended meanwhile; the attempts
// they start use sendCtx, and write their results under storeCtx.
func (w *Worker) fill(ctx, sendCtx, storeCtx context.Context) (fillResult, error) {
	for {
		if err := ctx.Err(); err != nil {
			return fillResult{}, err
		}
		now := w.svc.clock()
		limit, exclude, maxBy, token, idle := w.capacity(now)
		if limit <= 0 || !idle && w.stillFruitless(exclude) {
			return fillResult{more: true, token: token}, nil
		}
		cctx, cancel := context.WithTimeout(storeCtx, claimTimeout)
		claims, err := w.svc.store.ClaimDeliveries(cctx, ClaimParams{
			WorkerID:        w.cfg.WorkerID,
			Limit:           limit,
			LeaseDuration:   w.cfg.LeaseDuration,
			Now:             now,
			ExcludeWebhooks: exclude,
			// One of each webhook the worker does not know (its caps
			// and rate limit come with its first claim), as many as
			// there is room for of those it knows.
			MaxPerWebhook: 1,
			MaxByWebhook:  maxBy,
		})
		cancel()
		if err != nil {
			return fillResult{}, fmt.Errorf("claim deliveries: %w", err)
		}
		claims = w.usable(claims)
		// A Storage may keep leases on a clock of its own (pgstore uses
		// the database's): from here on a lease ends, for this worker,
		// LeaseDuration after the claim began by its own clock, which
		// every wait on the lease (the request's bound, retried writes)
		// compares with.
		for _, c := range claims {
			c.Lease.ExpiresAt = now.Add(w.cfg.LeaseDuration)
		}
		if err := ctx.Err(); err != nil {
			w.handBack(storeCtx, claims) // claimed while shutting down
			return fillResult{}, err
		}
		w.dropFruitless()
		if len(claims) > 0 || !idle {
			w.fruitless, w.spare = w.spare, nil
			if w.fruitless == nil {
				w.fruitless = make(map[string]bool, len(exclude)+len(claims))
			}
			for _, id := range exclude {
				w.fruitless[id] = true
			}
			for _, c := range claims {
				w.fruitless[c.Delivery.WebhookID] = true
			}
		}
		after := w.claimedLast
		w.claimedLast = len(claims) > 0
		if len(claims) == 0 {
			return fillResult{more: len(exclude) > 0, token: token, drained: idle, soon: after}, nil
		}
		w.track(claims)
		for _, c := range claims {
			a := &attempt{sl: slot{w: w, webhookID: c.Delivery.WebhookID}, c: c, stop: ctx, sendCtx: sendCtx, storeCtx: storeCtx}
			w.enter(a) // in claim order
			w.spawn(a)
		}
	}
}

// usable drops the claims a faulty Storage returned without a delivery,
// which cannot be attempted or handed back: they wait for their leases.
func (w *Worker) usable(claims []*Claim) []*Claim {
	return slices.DeleteFunc(claims, func(c *Claim) bool {
		if c == nil || c.Delivery == nil {
			w.svc.log.Error("webhook: the storage returned a claim without a delivery; ignoring it", "worker_id", w.cfg.WorkerID)
			return true
		}
		return false
	})
}

// handBack releases claims that will not be attempted, due at once and
// without using an attempt.
func (w *Worker) handBack(ctx context.Context, claims []*Claim) {
	var wg sync.WaitGroup
	for _, c := range claims {
		wg.Go(func() { w.release(ctx, c, 0) })
	}
	wg.Wait()
}

// process makes one attempt of a claimed delivery and records it. A
// delivery not yet admitted when stop ends is handed back, due at once.
// The request runs under ctx; storage writes under wctx. c.Lease.ExpiresAt
// is on this worker's clock (see fill).
func (w *Worker) process(stop, ctx, wctx context.Context, c *Claim, sl *slot) {
	s := w.svc
	d := c.Delivery
	log := func() *slog.Logger { return deliveryLog(s.log, d, nil) } // built only to log
	hook, err := s.webhookForSend(ctx, d.WebhookID, c.WebhookVersion, &w.webhooks)
	switch {
	case c.Payload == nil:
		log().ErrorContext(ctx, "webhook: the storage returned a claim without its payload; handing the delivery back")
		w.release(wctx, c, storageRetryDelay)
		return
	case d.EventType == EventTypeTest:
		// Only an interrupted Test leaves a test delivery to claim; a
		// test send is never retried.
		w.record(wctx, c, hook, sendResult{outcome: OutcomeAbort, attempt: Attempt{StartedAt: s.clock(), Error: "not sent: a test send is never retried"}}, sl)
		return
	case errors.Is(err, ErrNotFound):
		w.record(wctx, c, nil, sendResult{outcome: OutcomeAbort, attempt: Attempt{StartedAt: s.clock(), Error: "not sent: the webhook was deleted"}}, sl)
		return
	case err != nil:
		log().ErrorContext(ctx, "webhook: loading the webhook failed; handing the delivery back", "error", err)
		w.release(wctx, c, storageRetryDelay)
		return
	case hook.Disabled:
		w.record(wctx, c, hook, sendResult{outcome: OutcomeAbort, attempt: Attempt{StartedAt: s.clock(), Error: "not sent: the webhook is disabled"}}, sl)
		return
	case d.Attempt > hook.Retry.MaxAttempts:
		msg := fmt.Sprintf("not sent: all %d attempts are used (earlier attempts lost their lease)", hook.Retry.MaxAttempts)
		w.record(wctx, c, hook, sendResult{outcome: OutcomeAbort, attempt: Attempt{StartedAt: s.clock(), Error: msg}}, sl)
		return
	}
	unadmit, wait, ok := w.admit(stop, hook)
	if !ok {
		if wait > 0 {
			wait = max(wait, minReleaseDelay) // out of rate tokens: try later
		}
		if stop.Err() != nil {
			wait = 0 // shutting down: let another worker have it
		}
		w.release(wctx, c, wait)
		return
	}
	// The admission is for the request: its result's write must not keep
	// the webhook's or the host's slot, or a busy shared host would go
	// at the pace of the storage.
	sl.admitted = true
	over := false
	requestOver := func() { // once: at the end of the request, or on return
		if !over {
			over = true
			unadmit()
		}
	}
	defer requestOver()
	timeout := s.timeout
	if hook.Timeout > 0 {
		timeout = hook.Timeout
	}
	configured := timeout
	// Never let a request outlive its lease: another worker may claim
	// the delivery once the lease expires.
	if left := c.Lease.ExpiresAt.Sub(s.clock()) - leaseMargin; left < timeout {
		if left < minAttemptTime {
			log().WarnContext(ctx, "webhook: lease too short to attempt; handing the delivery back", slog.Duration("lease_left", left+leaseMargin))
			w.release(wctx, c, minReleaseDelay)
			return
		}
		timeout = left
	}
	res := s.send(ctx, hook, c.Payload, d.ID, d.Attempt, timeout)
	if timeout < configured && res.attempt.StatusCode == 0 && ctx.Err() == nil &&
		strings.HasPrefix(res.attempt.Error, "request timed out") {
		// Say why the request had less time than the webhook asks for.
		res.attempt.Error += fmt.Sprintf(" (the webhook's timeout of %v was shortened to fit the worker's lease; raise WorkerConfig.LeaseDuration)", configured)
	}
	requestOver()
	if ctx.Err() != nil && res.attempt.StatusCode == 0 {
		// The worker is shutting down and aborted the request before an
		// answer came: hand the delivery back; the attempt does not count.
		s.tel.abortedAttempt(wctx, d.WebhookID)
		w.release(wctx, c, 0)
		return
	}
	w.record(wctx, c, hook, res, sl)
}
