package webhooktest

import (
	"testing"
	"time"

	"github.com/analytics-webhooks/webhook"
)

// DefaultMaxRounds is how many times Drain moves its Clock at most
// unless DrainConfig.MaxRounds says otherwise.
const DefaultMaxRounds = 1000

// DrainConfig configures Drain. The zero value (or nil) sends what is due
// now, once.
type DrainConfig struct {
	// Clock is the clock the Service reads (its Config.Now must be
	// Clock.Now). When set, Drain moves it forward to each retry's due
	// time and sends again, until no delivery is pending or retrying, so
	// that a test sees every attempt of every delivery without waiting.
	// The Storage must implement webhook.QueueStatsReader (memstore and
	// pgstore do). When nil, Drain sends only what is due now.
	Clock *Clock
	// Worker configures the worker Drain sends with; nil means the
	// defaults.
	Worker *webhook.WorkerConfig
	// MaxRounds bounds how many times Drain moves the Clock before it
	// fails the test; a negative value fails the test at once. Defaults
	// to DefaultMaxRounds.
	MaxRounds int
}

// Drain sends svc's due deliveries synchronously, as Worker.RunOnce does,
// with svc's Doer and retry policies, and returns how many deliveries it
// settled (attempted, or failed without sending). With cfg.Clock, it
// goes on through the retries (see DrainConfig) and returns once every
// delivery is delivered or failed, or leased by another worker. It fails
// the test on a storage error, or when deliveries stay unfinished after
// cfg.MaxRounds moves of the clock.
func Drain(t testing.TB, svc *webhook.Service, cfg *DrainConfig) int {
	t.Helper()
	var c DrainConfig
	if cfg != nil {
		c = *cfg
	}
	switch {
	case c.MaxRounds < 0:
		t.Fatalf("webhooktest: Drain: MaxRounds must not be negative")
		return 0
	case c.MaxRounds == 0:
		c.MaxRounds = DefaultMaxRounds
	}
	w, err := webhook.NewWorker(svc, c.Worker)
	if err != nil {
		t.Fatalf("webhooktest: Drain: %v", err)
		return 0
	}
	ctx := t.Context()
	total := 0
	for round := 0; ; round++ {
		n, err := w.RunOnce(ctx)
		total += n
		if err != nil {
			t.Fatalf("webhooktest: Drain: %v", err)
			return total
		}
		if c.Clock == nil {
			return total
		}
		q, err := svc.QueueStats(ctx, 0)
		if err != nil {
			t.Fatalf("webhooktest: Drain with a Clock needs a Storage that implements webhook.QueueStatsReader: %v", err)
			return total
		}
		waiting := q.Depth[webhook.StatusPending] + q.Depth[webhook.StatusRetrying]
		switch {
		case waiting == 0:
			return total // the rest, if any, is another worker's
		case round == c.MaxRounds:
			t.Fatalf("webhooktest: Drain: %d deliveries still pending or retrying after moving the clock %d times (held back by a rate limit, or the Service does not read the Clock: set Config.Now to Clock.Now)", waiting, c.MaxRounds)
			return total
		case q.OldestDue.After(c.Clock.Now()):
			c.Clock.Set(q.OldestDue)
		default:
			// Due, but not sent: held back (a rate limit); let time pass.
			c.Clock.Advance(time.Second)
		}
	}
}
