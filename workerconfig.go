package webhook

import (
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"time"
)

// WorkerConfig configures a Worker. The zero value is valid: every field
// has a default.
type WorkerConfig struct {
	// Concurrency is the most attempts in flight at once. Defaults to 32.
	Concurrency int
	// Prefetch is how many deliveries beyond Concurrency the worker
	// claims ahead, so that a slot freed by an attempt goes at once to a
	// delivery already claimed instead of waiting for the next claim's
	// round trip to the storage. A delivery claimed ahead waits, in
	// claim order, for a slot before its attempt starts; it counts
	// against the per-webhook and per-host caps and the rate limits
	// from its claim, and one still waiting when Run's context ends is
	// handed back unattempted, due at once. Its lease runs while it
	// waits (the request is shortened to fit, as after a slow claim).
	// While deliveries wait in line and every slot is busy, the worker
	// claims again once half of Prefetch has gone from the line, in one
	// claim, rather than once for each slot freed.
	// Defaults to Concurrency: a claim takes a round trip to the
	// storage (a few milliseconds on a busy database), in which a busy
	// pool finishes many attempts, and a line as long as the pool keeps
	// its slots full meanwhile. The price is that up to Prefetch
	// deliveries wait here, while every slot is busy, rather than in
	// storage for another worker; lower it when attempts are slow and
	// other workers are idle. A negative value claims nothing ahead.
	Prefetch int
	// MaxPerWebhook is the most attempts this worker has in flight to
	// one webhook at once: a slow or hanging endpoint holds no more of
	// the pool than this, and its backlog waits in storage, unclaimed.
	// The cap is per worker and per webhook. Defaults to 4.
	MaxPerWebhook int
	// MaxPerHost is the most attempts this worker has in flight to one
	// destination host (the host and port of the webhooks' URLs) at
	// once, over all the webhooks that share it, so that many webhooks
	// on one slow host cannot fill the pool either. Defaults to a
	// quarter of Concurrency (at least 1); set it to Concurrency to
	// turn the per-host cap off.
	MaxPerHost int
	// BatchSize is the most deliveries claimed in one storage call.
	// Defaults to Concurrency.
	BatchSize int
	// LeaseDuration is how long a claimed delivery stays leased to this
	// worker. If the worker dies, another claims the delivery after the
	// lease expires. It must exceed the service's request timeout by at
	// least MinLeaseMargin, so that a request made within a second of
	// the claim runs for its full timeout and leaves 10 seconds to record
	// its result. A request is never allowed to outlive its lease,
	// measured on this worker's clock from the claim (the Storage may
	// keep leases on a clock of its own, as pgstore does): after a slow
	// claim it is shortened, or, with less than a second left, handed
	// back to be claimed afresh a second later. Defaults to 5 minutes.
	LeaseDuration time.Duration
	// PollInterval is how often an idle worker looks for due deliveries
	// that it was not told about (retries coming due, deliveries enqueued
	// by other processes). While claiming fails, the worker waits longer
	// between claims, up to a minute (or twice PollInterval, if longer),
	// and back to PollInterval after the first claim that works. Defaults
	// to 1 second.
	PollInterval time.Duration
	// ShutdownTimeout bounds the drain after Run's context is canceled:
	// Run returns within it, as long as the Storage returns once the
	// context it is given is done (memstore and pgstore do). Attempts in
	// flight may finish for its first part; those still running are then
	// aborted and handed back (they do not count against the retry
	// policy), and the rest of the time is left for writing results, half
	// the timeout or 8 seconds, whichever is less. Results still
	// unwritten at the end are abandoned: their deliveries are attempted
	// again once their leases expire. Defaults to 30 seconds.
	ShutdownTimeout time.Duration
	// WorkerID names the worker in leases and logs. Defaults to the host
	// name, the process ID and a random suffix.
	WorkerID string
}

// MaxConcurrency bounds WorkerConfig.Concurrency and Prefetch: far
// beyond any pool a process can run, low enough that their sums never
// overflow.
const MaxConcurrency = 1 << 20

// Defaults for WorkerConfig.
const (
	DefaultConcurrency     = 32
	DefaultMaxPerWebhook   = 4
	DefaultLeaseDuration   = 5 * time.Minute
	DefaultPollInterval    = time.Second
	DefaultShutdownTimeout = 30 * time.Second
)

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
	setDefault(&ps, "MaxPerHost", &c.MaxPerHost, max(1, c.Concurrency/4))
	switch {
	case c.Prefetch < 0:
		c.Prefetch = 0
	case c.Prefetch == 0:
		c.Prefetch = max(c.Concurrency, 0)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"Concurrency", c.Concurrency}, {"Prefetch", c.Prefetch}} {
		if f.v > MaxConcurrency {
			ps.add(f.name, fmt.Sprintf("must not exceed %d", MaxConcurrency))
		}
	}
	setDefault(&ps, "BatchSize", &c.BatchSize, c.Concurrency)
	setDefault(&ps, "LeaseDuration", &c.LeaseDuration, DefaultLeaseDuration)
	setDefault(&ps, "PollInterval", &c.PollInterval, DefaultPollInterval)
	setDefault(&ps, "ShutdownTimeout", &c.ShutdownTimeout, DefaultShutdownTimeout)
	if c.LeaseDuration > 0 && c.LeaseDuration < svc.timeout+MinLeaseMargin {
		ps.add("LeaseDuration", fmt.Sprintf("must exceed the request timeout (%v) by at least %v", svc.timeout, MinLeaseMargin))
	}
	if err := ps.err("worker config"); err != nil {
		return nil, err
	}
	if c.WorkerID == "" {
		host, _ := os.Hostname()
		var b [3]byte
		_, _ = crand.Read(b[:])
		c.WorkerID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	return &Worker{svc: svc, cfg: c, hooks: map[string]*endpoint{}, sending: map[string]int{}, freed: make(chan struct{}, 1),
		pool: sendPool{free: c.Concurrency}}, nil
}
