package webhooktest

import (
	"sync"
	"time"
)

// DefaultClockStart returns where a Clock made with a zero start begins,
// 2030-01-01 00:00:00 UTC: a fixed time, so that tests see the same times
// on every run.
func DefaultClockStart() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }

// Clock is a settable clock for webhook.Config.Now (pass its Now method)
// and for Receiver.SetNow. It stands still until Advance or Set moves it,
// so retries come due when a test says so, not after real waiting. The
// zero value is not usable; call NewClock. It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock that reads start, or DefaultClockStart for a
// zero start.
func NewClock(start time.Time) *Clock {
	if start.IsZero() {
		start = DefaultClockStart()
	}
	return &Clock{now: start}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d (backward for a negative d).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
