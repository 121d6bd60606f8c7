package webhook

import (
	"context"
	"maps"
	"math"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// admitWait is how long a claimed delivery over an in-flight cap waits
// for a slot before it is handed back: long enough for a healthy host's
// requests to end, short enough that a hanging host's deliveries, claimed
// before the worker knew where they go, soon leave the pool.
const admitWait = 250 * time.Millisecond

// minTokenWait is the least time a worker waits for a rate-limited
// webhook's next token, however high its rate, so that it never claims
// in a tight loop.
const minTokenWait = 50 * time.Millisecond

// endpoint is what a worker tracks of one webhook.
type endpoint struct {
	id       string        // the webhook's
	idx      int           // index in Worker.tracked
	inflight int           // claimed and not yet finished
	sending  int           // admitted by admit, its request not yet over
	writing  int           // its request over, its result not yet written
	max      int           // the webhook's MaxInFlight, once seen; 0 for the default
	limiter  *rate.Limiter // the webhook's RateLimit, once seen
	url      string        // the webhook's URL, once seen
	host     string        // the destination host of url; "" until seen
	hl       *hostLoad     // host's load, as capacity last found it
	room     int           // how many the claim capacity prepares may take of it
}

// hostLoad is capacity's count of the requests to one destination
// host (see Worker.capacity), kept from call to call so that it need
// not be looked up by the host's name for each webhook.
type hostLoad struct {
	host  string
	load  int
	given int    // the claim's share of the cap so far (see capacity)
	epoch uint64 // the call of capacity load and given are of
}

// add adds n to the load of the call epoch.
func (hl *hostLoad) add(epoch uint64, n int) {
	if hl.epoch != epoch {
		hl.load, hl.given, hl.epoch = 0, 0, epoch
	}
	hl.load += n
}

// get returns the load of the call epoch.
func (hl *hostLoad) get(epoch uint64) int {
	if hl.epoch != epoch {
		return 0
	}
	return hl.load
}

// hostLoad returns the hostLoad of host, made on first need. w.mu is
// held.
func (w *Worker) hostLoad(host string) *hostLoad {
	hl := w.hostLoads[host]
	if hl == nil {
		if w.hostLoads == nil {
			w.hostLoads = make(map[string]*hostLoad)
		}
		hl = &hostLoad{host: host}
		w.hostLoads[host] = hl
	}
	return hl
}

// learn takes the webhook's current limits and destination.
func (e *endpoint) learn(hook *Webhook) {
	e.max = hook.MaxInFlight
	switch r := rate.Limit(max(hook.RateLimit, MinRateLimit)); {
	case hook.RateLimit <= 0:
		e.limiter = nil
	case e.limiter == nil || e.limiter.Limit() != r:
		e.limiter = rate.NewLimiter(r, hook.rateBurst())
	}
	if hook.URL != e.url {
		e.url, e.host = hook.URL, destination(hook.URL)
	}
}

// destination returns the host and port a URL's requests go to, the key
// of the per-host cap. Host names are compared without case; a missing
// port is the scheme's default.
func destination(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if strings.EqualFold(u.Scheme, "https") {
			port = "443"
		}
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// track counts claimed deliveries as in flight, learning the limits of
// webhooks seen for the first time from the matching index.
func (w *Worker) track(claims []*Claim) {
	idx := w.svc.idx.Load()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range claims {
		e := w.hooks[c.Delivery.WebhookID]
		if e == nil {
			e = &endpoint{id: c.Delivery.WebhookID, idx: len(w.tracked)}
			w.hooks[c.Delivery.WebhookID] = e
			w.tracked = append(w.tracked, e)
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
}

// capacity returns how many deliveries may be claimed now, which
// webhooks must not be claimed (at their own in-flight cap, on a host at
// its cap, or out of rate tokens; in a slice the next call reuses), how
// many may be claimed of those known to have room for more than one (in
// a map the next call reuses), how soon the first rate-limited one gets
// a token, and whether nothing is in flight.
//
// The claim cannot exclude a host, only webhooks: a saturated host's
// webhooks that this worker has seen are excluded, and one it has not
// seen yet is held back by admit once claimed, and remembered.
func (w *Worker) capacity(now time.Time) (limit int, exclude []string, maxBy map[string]int, token time.Duration, idle bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	// Requests per host: admitted attempts by the host each went to
	// (a webhook's URL may have moved since), those not yet admitted by
	// the host their webhook has now. Attempts whose request is over and
	// whose result is being written do not count: the host is done
	// with them.
	w.epoch++
	for host, n := range w.sending {
		w.hostLoad(host).add(w.epoch, n)
	}
	for _, e := range w.tracked {
		if e.host != "" {
			if e.hl == nil || e.hl.host != e.host {
				e.hl = w.hostLoad(e.host)
			}
			e.hl.add(w.epoch, e.inflight-e.sending-e.writing)
		}
	}
	load := func(e *endpoint) int { return e.hl.get(w.epoch) } // for e.host != ""
	exclude = w.exclude[:0]                                    // reused: the claim reads it only during the call
	if w.maxBy == nil {
		w.maxBy = map[string]int{}
	}
	maxBy = w.maxBy // likewise
	clear(maxBy)
	// Deliveries claimed ahead count against the caps, as those waiting
	// in admit do; but a cap of Concurrency or more cannot bind what is
	// sent, and does not bound what is claimed ahead either (so that
	// MaxPerHost at Concurrency turns the per-host cap off).
	hostCap := w.cfg.MaxPerHost
	if hostCap >= w.cfg.Concurrency {
		hostCap = math.MaxInt
	}
	for i := len(w.tracked) - 1; i >= 0; i-- { // backwards: forgetting moves the last one to i
		e := w.tracked[i]
		limit := w.cfg.MaxPerWebhook
		if e.max > 0 {
			limit = min(limit, e.max)
		}
		if limit >= w.cfg.Concurrency {
			limit = math.MaxInt
		}
		tokens := 1.0
		if e.limiter != nil {
			// Deliveries claimed but not yet admitted will take tokens
			// too (not those whose results are being written: they took
			// theirs when admitted).
			tokens = e.limiter.TokensAt(now) - float64(e.inflight-e.sending-e.writing)
		}
		room := limit - e.inflight
		if e.host != "" && hostCap != math.MaxInt {
			room = min(room, hostCap-load(e))
		}
		e.room = 0
		switch {
		case room <= 0:
			exclude = append(exclude, e.id)
		case tokens < 1:
			exclude = append(exclude, e.id)
			// The limiter's rate is at least MinRateLimit, so the wait
			// stays within hours; never wake sooner than minTokenWait.
			secs := (1 - tokens) / float64(e.limiter.Limit())
			wait := max(time.Duration(min(secs, 1/MinRateLimit)*float64(time.Second)), minTokenWait)
			if token == 0 || wait < token {
				token = wait
			}
		case e.inflight == 0 && (e.host == "" || load(e) == 0) &&
			(e.limiter == nil || e.limiter.TokensAt(now) >= float64(e.limiter.Burst())):
			w.forget(e) // nothing left to remember
		default:
			if e.limiter != nil {
				room = min(room, int(min(tokens, float64(w.cfg.Concurrency))))
			}
			e.room = min(room, w.cfg.Concurrency)
			if e.host != "" {
				e.hl.given++ // the one a claim may take of each webhook
			}
		}
	}
	// Up to Prefetch deliveries are claimed beyond the slots, to wait
	// for one. Results waiting for their write no longer hold a slot,
	// but at most as many of them as may be claimed are waited for
	// beyond the claims (a batch of results may wait to fill: see
	// recordLinger).
	claims := w.cfg.Concurrency + w.cfg.Prefetch
	limit = min(claims-w.total, 2*claims-w.total-w.writing, w.cfg.BatchSize)
	if p := &w.pool; p.free == 0 && p.head < len(p.waiting) && limit < w.refillAt() {
		// Every slot is busy and deliveries claimed ahead wait for
		// them: claim when the line is half gone, in one claim, not a
		// claim for each slot freed.
		limit = 0
	}
	// Room for more than the one delivery a claim takes of each webhook
	// it may: say how much, the webhooks on a host at a cap sharing
	// what is left of it once each has its one. The share starts at
	// another webhook each claim, so that none waits for the others
	// (each claim, not each call: a busy worker's fill calls capacity
	// again after each claim only to find the pool full, and a share
	// that moved on each call would skip every other webhook).
	if n := len(w.tracked); limit > 0 && n > 0 { // no claim, no share
		w.shares++
		for i := range n {
			e := w.tracked[(i+int(w.shares%uint64(n)))%n]
			room := e.room
			if room > 1 && e.host != "" && hostCap != math.MaxInt {
				extra := min(room-1, hostCap-load(e)-e.hl.given)
				if extra < 1 {
					continue
				}
				e.hl.given += extra
				room = 1 + extra
			}
			if room > 1 {
				maxBy[e.id] = room
			}
		}
	}
	w.exclude = exclude
	if len(w.hostLoads) > 2*(len(w.hooks)+len(w.sending))+16 {
		// Forget the hosts no webhook or attempt counts on any more.
		maps.DeleteFunc(w.hostLoads, func(_ string, hl *hostLoad) bool { return hl.epoch != w.epoch })
	}
	return limit, exclude, maxBy, token, w.total == 0 && w.writing == 0
}

// refillAt is the least a claim asks for while the line of deliveries
// claimed ahead (see WorkerConfig.Prefetch) is not empty: half of
// Prefetch, at most BatchSize.
func (w *Worker) refillAt() int {
	return min(max(w.cfg.Prefetch/2, 1), w.cfg.BatchSize)
}

// forget stops tracking e. w.mu is held.
func (w *Worker) forget(e *endpoint) {
	delete(w.hooks, e.id)
	last := w.tracked[len(w.tracked)-1]
	w.tracked[e.idx], last.idx = last, e.idx
	w.tracked[len(w.tracked)-1] = nil
	w.tracked = w.tracked[:len(w.tracked)-1]
}

// stillFruitless reports whether a claim excluding exclude is not worth
// making: every webhook the last claim excluded or returned is excluded
// now. A slot freed while the host they share is at its cap then brings
// back at best deliveries of webhooks this worker has not seen, and
// usually nothing, at the price of a claim (two statements in pgstore)
// for each delivery sent. The worker waits instead until one of those
// webhooks leaves its cap, its host falls below its cap or a rate token
// comes, or, in Run, until an enqueue or the poll wakes it; with
// nothing in flight it always claims.
func (w *Worker) stillFruitless(exclude []string) bool {
	if w.fruitless == nil {
		return false
	}
	n := 0
	for _, id := range exclude {
		if w.fruitless[id] {
			n++
		}
	}
	return n == len(w.fruitless)
}

// dropFruitless forgets the webhooks of the last claim (see
// stillFruitless), keeping the emptied map for the next claim.
func (w *Worker) dropFruitless() {
	if w.fruitless != nil {
		clear(w.fruitless)
		w.spare, w.fruitless = w.fruitless, nil
	}
}

// admit applies the webhook's own limits and its host's cap to a claimed
// delivery. It reports whether to send now, or else how long to hold it
// back. A delivery over an in-flight cap (claimed in the same batch as
// others of its webhook or host, before the cap was reached) waits up to
// admitWait for a slot to free, so that a busy but healthy host
// keeps its pace; one out of rate tokens is held back at once. Nothing
// is admitted once ctx is done. An admitted delivery must be let go by
// calling unadmit.
func (w *Worker) admit(ctx context.Context, hook *Webhook) (unadmit func(), wait time.Duration, ok bool) {
	var timeout <-chan time.Time
	for {
		if ctx.Err() != nil {
			return nil, 0, false
		}
		unadmit, wait, ok, freed := w.tryAdmit(hook, w.svc.clock())
		if freed == nil {
			return unadmit, wait, ok
		}
		if timeout == nil {
			t := time.NewTimer(admitWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-freed:
		case <-timeout:
			return nil, 0, false
		case <-ctx.Done():
			return nil, 0, false
		}
	}
}

// tryAdmit is one try of admit. When an in-flight cap holds the
// delivery back, it returns a channel closed when a slot frees.
func (w *Worker) tryAdmit(hook *Webhook, now time.Time) (unadmit func(), wait time.Duration, ok bool, freed <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.hooks[hook.ID]
	if e == nil {
		return func() {}, 0, true, nil // cannot happen: claimed deliveries are tracked
	}
	e.learn(hook)
	host := e.host
	if (e.max > 0 && e.sending >= min(e.max, w.cfg.MaxPerWebhook)) || w.sending[host] >= w.cfg.MaxPerHost {
		if w.slotFreed == nil {
			w.slotFreed = make(chan struct{})
		}
		return nil, 0, false, w.slotFreed
	}
	if e.limiter != nil {
		r := e.limiter.ReserveN(now, 1)
		if d := r.DelayFrom(now); d > 0 {
			r.CancelAt(now)
			return nil, min(d, time.Duration(float64(time.Second)/MinRateLimit)), false, nil
		}
	}
	e.sending++
	w.sending[host]++
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if e := w.hooks[hook.ID]; e != nil {
			e.sending--
			e.writing++
		}
		if w.sending[host]--; w.sending[host] <= 0 {
			delete(w.sending, host)
		}
		if w.slotFreed != nil {
			close(w.slotFreed) // wake the deliveries waiting in admit
			w.slotFreed = nil
		}
	}, 0, true, nil
}

// resultWritten ends the writing of an admitted attempt's result (see
// tryAdmit's unadmit).
func (w *Worker) resultWritten(webhookID string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e := w.hooks[webhookID]; e != nil && e.writing > 0 {
		e.writing--
	}
}

// done releases a finished attempt's place in the pool (see end).
func (w *Worker) done(webhookID string) { w.finish(webhookID, nil) }

// finish releases a finished attempt's place in the pool and, if s is
// not nil, the slot s holds.
func (w *Worker) finish(webhookID string, s *slot) {
	w.mu.Lock()
	if e := w.hooks[webhookID]; e != nil {
		e.inflight--
		e.writing = min(e.writing, e.inflight) // a finished attempt writes nothing more
	}
	w.total--
	if s != nil {
		w.leave(s)
	}
	w.mu.Unlock()
	w.signalFreed()
}

// slot is a claimed delivery's place in the worker's pool. Its share of
// Concurrency goes to the next claim as soon as the attempt's result is
// queued for the batch write: the lease, not the slot, protects the
// outcome while the write is under way. Its webhook's in-flight count
// is kept until the write is answered, though, so that the webhook stays
// at its cap (and excluded from claims) meanwhile: otherwise a claim
// could take back this very delivery once its lease ran out before the
// write, and the attempt made would be lost.
type slot struct {
	w         *Worker
	webhookID string
	admitted  bool // its request was admitted: its result's writing is counted (see tryAdmit)
	holds     bool // it holds one of the Concurrency slots (see sendPool); guarded by Worker.mu
	once      sync.Once
	early     bool // its pool share was freed before its attempt ended: counted in Worker.writing
}

// queued frees the slot's share of the pool once the attempt's result is
// queued for the batch write; its goroutine still runs until the write
// is answered (Worker.writing counts those), and its webhook still
// counts it as in flight.
func (s *slot) queued() {
	s.once.Do(func() {
		s.w.mu.Lock()
		s.w.writing++
		s.w.total--
		s.w.leave(s)
		s.early = true
		s.w.mu.Unlock()
		s.w.signalFreed()
	})
}

// end frees the slot, or what queued left of it, when the attempt's
// goroutine ends.
func (s *slot) end() {
	s.once.Do(s.release)
	if !s.early {
		return
	}
	if s.admitted {
		s.w.resultWritten(s.webhookID)
	}
	s.w.mu.Lock()
	if e := s.w.hooks[s.webhookID]; e != nil {
		e.inflight--
		e.writing = min(e.writing, e.inflight)
	}
	s.w.writing--
	s.w.mu.Unlock()
	s.w.signalFreed()
}

// release gives the slot back.
func (s *slot) release() {
	if s.admitted {
		s.w.resultWritten(s.webhookID)
	}
	s.w.finish(s.webhookID, s)
}

// signalFreed wakes a worker waiting for a slot or for its results.
func (w *Worker) signalFreed() {
	select {
	case w.freed <- struct{}{}:
	default:
	}
}

// attempt is a claimed delivery to attempt, with its slot, as fill
// starts it: process's arguments.
type attempt struct {
	sl                      slot
	c                       *Claim
	stop, sendCtx, storeCtx context.Context
	ready                   chan struct{} // closed when it gets its slot; nil if it had one at once (see enter)
}

// run makes the attempt once it has a slot, or hands the delivery back
// if the run ends first.
func (a *attempt) run(w *Worker) {
	defer a.sl.end()
	if !w.await(a) {
		w.release(a.storeCtx, a.c, 0) // not attempted: due at once
		return
	}
	sctx, wctx, span := w.svc.tel.startDelivery(a.sendCtx, a.storeCtx, a.c)
	defer span.End()
	w.process(a.stop, sctx, wctx, a.c, &a.sl)
}

// runners are the goroutines that run a worker's attempts while Run or
// RunOnce runs: a goroutine whose attempt ended waits for the next one,
// so that each attempt does not start a goroutine (and grow its stack)
// anew.
type runners struct {
	jobs chan *attempt  // to an idle runner; unbuffered
	stop chan struct{}  // closed when the run ends; nil between runs
	wg   sync.WaitGroup // the runners
}

// startRunners prepares the runners of a run and returns the function
// that ends them once every attempt has finished.
func (w *Worker) startRunners() (stop func()) {
	r := &w.runners
	// Made anew for each run, like the goroutines: a run may be in a
	// testing/synctest bubble of its own.
	r.jobs, r.stop = make(chan *attempt), make(chan struct{})
	return func() {
		w.wg.Wait()
		close(r.stop)
		r.wg.Wait()
		r.jobs, r.stop = nil, nil
	}
}

// spawn runs a, counted in w.wg, on an idle runner or a new one. Only
// the claiming loop calls it.
func (w *Worker) spawn(a *attempt) {
	r := &w.runners
	if r.stop == nil {
		w.wg.Go(func() { a.run(w) }) // not within a run: cannot happen
		return
	}
	w.wg.Add(1)
	select {
	case r.jobs <- a:
	default:
		r.wg.Add(1)
		go w.runner(a, r.jobs, r.stop)
	}
}

// runner runs a and then the attempts it is given on jobs, until stop
// is closed.
func (w *Worker) runner(a *attempt, jobs <-chan *attempt, stop <-chan struct{}) {
	defer w.runners.wg.Done()
	for {
		a.run(w)
		w.wg.Done()
		select {
		case a = <-jobs:
		case <-stop:
			return
		}
	}
}
