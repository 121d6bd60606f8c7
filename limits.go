package webhook

import (
	"time"

	"golang.org/x/time/rate"
)

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
