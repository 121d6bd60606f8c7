package webhook

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RetryPolicy says how often and how far apart a delivery is attempted.
// Its JSON form is the specification's RetryConfig: max_attempts,
// initial_delay_seconds, max_delay_seconds, backoff_multiplier, plus
// disable_jitter.
//
// A zero field takes its default when a webhook is saved, so a partly
// filled policy is completed rather than rejected.
type RetryPolicy struct {
	// MaxAttempts is the total number of attempts, the first included,
	// 1 to 50. Defaults to 5.
	MaxAttempts int
	// InitialDelay is the wait after the first failed attempt, from one
	// second to MaxDelay. Defaults to 5 seconds.
	InitialDelay time.Duration
	// MaxDelay caps every wait, Retry-After included; at most 7 days.
	// Defaults to 1 hour.
	MaxDelay time.Duration
	// Multiplier grows the wait after each failed attempt, 1 to 10.
	// Defaults to 2.
	Multiplier float64
	// DisableJitter turns off the randomisation of delays, for a
	// deterministic schedule. With jitter (the default), each delay is
	// drawn uniformly from [¾·d, d], where d is the deterministic delay,
	// so that retries of many deliveries that failed together spread out.
	DisableJitter bool
}

// Limits on RetryPolicy fields.
const (
	MaxRetryAttempts = 50
	MinRetryDelay    = time.Second
	MaxRetryDelay    = 7 * 24 * time.Hour
	MaxMultiplier    = 10
)

// DefaultRetryPolicy returns the specification's defaults: 5 attempts, 5 s initial
// delay, ×2 multiplier, 1 h cap, with jitter.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: 5, InitialDelay: 5 * time.Second, MaxDelay: time.Hour, Multiplier: 2}
}

// withDefaults returns p with every zero field set to its default.
func (p RetryPolicy) withDefaults() RetryPolicy {
	d := DefaultRetryPolicy()
	if p.MaxAttempts == 0 {
		p.MaxAttempts = d.MaxAttempts
	}
	if p.InitialDelay == 0 {
		p.InitialDelay = d.InitialDelay
	}
	if p.MaxDelay == 0 {
		p.MaxDelay = max(d.MaxDelay, p.InitialDelay)
	}
	if p.Multiplier == 0 {
		p.Multiplier = d.Multiplier
	}
	return p
}

// Validate returns a *ValidationError (errors.Is ErrInvalid) listing every
// field out of range by its JSON name ("max_attempts"), or nil.
func (p RetryPolicy) Validate() error {
	var ps problems
	p.validate(&ps, "")
	return ps.err("retry policy")
}

func (p RetryPolicy) validate(ps *problems, prefix string) {
	if p.MaxAttempts < 1 || p.MaxAttempts > MaxRetryAttempts {
		ps.add(joinPath(prefix, "max_attempts"), fmt.Sprintf("must be between 1 and %d", MaxRetryAttempts))
	}
	if p.InitialDelay < MinRetryDelay || p.InitialDelay > MaxRetryDelay {
		ps.add(joinPath(prefix, "initial_delay_seconds"), fmt.Sprintf("must be between %v and %v", MinRetryDelay, MaxRetryDelay))
	}
	if p.MaxDelay < MinRetryDelay || p.MaxDelay > MaxRetryDelay {
		ps.add(joinPath(prefix, "max_delay_seconds"), fmt.Sprintf("must be between %v and %v", MinRetryDelay, MaxRetryDelay))
	} else if p.MaxDelay < p.InitialDelay {
		ps.add(joinPath(prefix, "max_delay_seconds"), "must not be less than initial_delay_seconds")
	}
	if math.IsNaN(p.Multiplier) || p.Multiplier < 1 || p.Multiplier > MaxMultiplier {
		ps.add(joinPath(prefix, "backoff_multiplier"), fmt.Sprintf("must be between 1 and %d", MaxMultiplier))
	}
}

// Delay returns the deterministic wait after failed attempt n (1-based):
// InitialDelay × Multiplier^(n-1), capped at MaxDelay. With the defaults
// that is 5 s, 10 s, 20 s, 40 s. Delay returns 0 for n < 1.
func (p RetryPolicy) Delay(n int) time.Duration {
	if n < 1 {
		return 0
	}
	d := float64(p.InitialDelay) * math.Pow(p.Multiplier, float64(n-1))
	if math.IsNaN(d) || d >= float64(p.MaxDelay) {
		return p.MaxDelay
	}
	return time.Duration(d)
}

// Backoff returns the wait before the attempt after failed attempt n:
// Delay(n) with jitter unless disabled, then raised to retryAfter (a
// receiver's Retry-After; pass 0 when there is none), and capped at
// MaxDelay.
func (p RetryPolicy) Backoff(n int, retryAfter time.Duration) time.Duration {
	d := p.Delay(n)
	if !p.DisableJitter && d > 0 {
		d -= time.Duration(rand.Int64N(int64(d)/4 + 1))
	}
	d = max(d, retryAfter)
	return min(d, p.MaxDelay)
}

// retryPolicyJSON is the specification's wire form of RetryPolicy.
type retryPolicyJSON struct {
	MaxAttempts         int     `json:"max_attempts"`
	InitialDelaySeconds float64 `json:"initial_delay_seconds"`
	MaxDelaySeconds     float64 `json:"max_delay_seconds"`
	BackoffMultiplier   float64 `json:"backoff_multiplier"`
	DisableJitter       bool    `json:"disable_jitter,omitempty"`
}

// MarshalJSON encodes the policy in the specification's form, delays in seconds.
func (p RetryPolicy) MarshalJSON() ([]byte, error) {
	return json.Marshal(retryPolicyJSON{
		MaxAttempts:         p.MaxAttempts,
		InitialDelaySeconds: p.InitialDelay.Seconds(),
		MaxDelaySeconds:     p.MaxDelay.Seconds(),
		BackoffMultiplier:   p.Multiplier,
		DisableJitter:       p.DisableJitter,
	})
}

// UnmarshalJSON decodes the specification's form strictly, as
// Webhook.UnmarshalJSON does: an unknown or repeated key, or a value of
// the wrong type, is a *ValidationError (errors.Is ErrInvalid) naming it.
// Delays may be fractional seconds; absurdly large ones are kept out of
// range for Validate to report rather than overflowing.
func (p *RetryPolicy) UnmarshalJSON(b []byte) error {
	return unmarshalStrict(b, "retry policy", p, decodeRetryPolicy)
}

func decodeRetryPolicy(p *RetryPolicy, raw json.RawMessage, path string, ps *problems) {
	seconds := func(dst *time.Duration) jsonField {
		return func(raw json.RawMessage, path string, ps *problems) {
			var s float64
			into(&s, "a number")(raw, path, ps)
			*dst = secondsToDuration(s)
		}
	}
	decodeObject(raw, path, ps, map[string]jsonField{
		"max_attempts":          into(&p.MaxAttempts, "an integer"),
		"initial_delay_seconds": seconds(&p.InitialDelay),
		"max_delay_seconds":     seconds(&p.MaxDelay),
		"backoff_multiplier":    into(&p.Multiplier, "a number"),
		"disable_jitter":        into(&p.DisableJitter, "true or false"),
	})
}

// secondsToDuration converts seconds to a Duration, rounded to the
// nearest nanosecond (so that a Duration survives its JSON round trip),
// saturating instead of overflowing so that validation sees an
// out-of-range value.
func secondsToDuration(s float64) time.Duration {
	switch {
	case math.IsNaN(s):
		return -1
	case s >= float64(math.MaxInt64)/float64(time.Second):
		return math.MaxInt64
	case s <= float64(math.MinInt64)/float64(time.Second):
		return math.MinInt64
	}
	return time.Duration(math.Round(s * float64(time.Second)))
}

// ParseRetryAfter parses a Retry-After header value, either delay seconds
// ("120") or an HTTP-date, relative to now. It returns the wait, at most
// limit (a negative limit counts as 0), and false if the value is empty
// or malformed. A date in the past gives 0.
func ParseRetryAfter(value string, now time.Time, limit time.Duration) (time.Duration, bool) {
	limit = max(limit, 0)
	value = strings.TrimSpace(value)
	if value == "" {
		return 0, false
	}
	var d time.Duration
	if isDigits(value) {
		secs, err := strconv.ParseUint(value, 10, 64)
		if err != nil || secs > uint64(limit/time.Second) {
			return limit, true // beyond any limit, even beyond uint64
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(value); err == nil {
		d = t.Sub(now)
	} else {
		return 0, false
	}
	return min(max(d, 0), limit), true
}

func isDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
