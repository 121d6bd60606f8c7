package webhook_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
)

func TestDefaultRetryPolicy(t *testing.T) {
	p := webhook.DefaultRetryPolicy()
	assert.Equal(t, 5, p.MaxAttempts)
	assert.Equal(t, 5*time.Second, p.InitialDelay)
	assert.Equal(t, time.Hour, p.MaxDelay)
	assert.Equal(t, 2.0, p.Multiplier)
	assert.False(t, p.DisableJitter)
	require.NoError(t, p.Validate())
}

func TestRetryDelay(t *testing.T) {
	p := webhook.DefaultRetryPolicy()
	// The specification's test: 5, 10, 20 seconds before jitter.
	assert.Equal(t, 5*time.Second, p.Delay(1))
	assert.Equal(t, 10*time.Second, p.Delay(2))
	assert.Equal(t, 20*time.Second, p.Delay(3))
	assert.Equal(t, 40*time.Second, p.Delay(4))
	assert.Equal(t, time.Hour, p.Delay(11), "capped at MaxDelay")
	assert.Equal(t, time.Hour, p.Delay(1000), "no overflow")
	assert.Equal(t, time.Duration(0), p.Delay(0))

	flat := webhook.RetryPolicy{MaxAttempts: 3, InitialDelay: time.Minute, MaxDelay: time.Hour, Multiplier: 1}
	assert.Equal(t, time.Minute, flat.Delay(7))
}

func TestRetryBackoffJitter(t *testing.T) {
	p := webhook.DefaultRetryPolicy()
	seen := map[time.Duration]bool{}
	for range 200 {
		d := p.Backoff(3, 0)
		require.GreaterOrEqual(t, d, 15*time.Second, "jitter takes at most a quarter off")
		require.LessOrEqual(t, d, 20*time.Second, "jitter never lengthens the delay")
		seen[d] = true
	}
	assert.Greater(t, len(seen), 10, "jitter must vary the delay")

	p.DisableJitter = true
	for range 10 {
		require.Equal(t, 20*time.Second, p.Backoff(3, 0))
	}
	assert.Equal(t, 90*time.Second, p.Backoff(1, 90*time.Second), "Retry-After raises the delay")
	assert.Equal(t, time.Hour, p.Backoff(1, 5*time.Hour), "and is capped at MaxDelay")
	assert.Equal(t, 20*time.Second, p.Backoff(3, time.Second), "a shorter Retry-After does not shorten backoff")
}

func TestRetryPolicyValidate(t *testing.T) {
	ok := webhook.DefaultRetryPolicy()
	cases := []struct {
		name  string
		mut   func(*webhook.RetryPolicy)
		field string
	}{
		{"zero attempts", func(p *webhook.RetryPolicy) { p.MaxAttempts = 0 }, "max_attempts"},
		{"51 attempts", func(p *webhook.RetryPolicy) { p.MaxAttempts = 51 }, "max_attempts"},
		{"zero delay", func(p *webhook.RetryPolicy) { p.InitialDelay = 0 }, "initial_delay_seconds"},
		{"negative delay", func(p *webhook.RetryPolicy) { p.InitialDelay = -time.Second }, "initial_delay_seconds"},
		{"cap below initial", func(p *webhook.RetryPolicy) { p.MaxDelay = time.Second }, "max_delay_seconds"},
		{"cap too long", func(p *webhook.RetryPolicy) { p.MaxDelay = 30 * 24 * time.Hour }, "max_delay_seconds"},
		{"multiplier below 1", func(p *webhook.RetryPolicy) { p.Multiplier = 0.5 }, "backoff_multiplier"},
		{"multiplier too big", func(p *webhook.RetryPolicy) { p.Multiplier = 100 }, "backoff_multiplier"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := ok
			c.mut(&p)
			err := p.Validate()
			require.ErrorIs(t, err, webhook.ErrInvalid)
			var ve *webhook.ValidationError
			require.ErrorAs(t, err, &ve)
			require.Len(t, ve.Fields, 1)
			assert.Equal(t, c.field, ve.Fields[0].Field)
		})
	}
	for _, attempts := range []int{1, 50} {
		p := ok
		p.MaxAttempts = attempts
		require.NoError(t, p.Validate())
	}
}

func TestRetryPolicyJSON(t *testing.T) {
	var p webhook.RetryPolicy
	require.NoError(t, json.Unmarshal([]byte(`{"max_attempts":3,"initial_delay_seconds":2.5,"max_delay_seconds":600,"backoff_multiplier":3}`), &p))
	assert.Equal(t, webhook.RetryPolicy{MaxAttempts: 3, InitialDelay: 2500 * time.Millisecond, MaxDelay: 10 * time.Minute, Multiplier: 3}, p)
	b, err := json.Marshal(webhook.DefaultRetryPolicy())
	require.NoError(t, err)
	assert.JSONEq(t, `{"max_attempts":5,"initial_delay_seconds":5,"max_delay_seconds":3600,"backoff_multiplier":2}`, string(b))

	// Absurd values stay invalid instead of overflowing into valid ones.
	require.NoError(t, json.Unmarshal([]byte(`{"max_attempts":3,"initial_delay_seconds":1e300,"max_delay_seconds":-1e300,"backoff_multiplier":2}`), &p))
	err = p.Validate()
	var ve *webhook.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Len(t, ve.Fields, 2)
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	limit := time.Hour
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"120", 2 * time.Minute, true},
		{" 0 ", 0, true},
		{"999999999999999999999", time.Hour, true},
		{"86400", time.Hour, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{now.Add(48 * time.Hour).Format(http.TimeFormat), time.Hour, true},
		{"Saturday, 28-Nov-26 09:00:30 GMT", 30 * time.Second, true}, // RFC 850
		{"Sunday, 29-Nov-26 09:01:00 GMT", time.Hour, true},
		{"-5", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{"", 0, false},
	}
	for _, c := range cases {
		got, ok := webhook.ParseRetryAfter(c.in, now, limit)
		assert.Equal(t, c.ok, ok, "%q", c.in)
		if c.ok {
			assert.Equal(t, min(c.want, limit), got, "%q", c.in)
		}
	}
}

func TestClassify(t *testing.T) {
	abort := http.Header{}
	abort.Set("Webhook-Delivery", "abort-message")
	cases := []struct {
		code int
		h    http.Header
		err  error
		want webhook.Outcome
	}{
		{200, nil, nil, webhook.OutcomeSuccess},
		{204, nil, nil, webhook.OutcomeSuccess},
		{299, nil, nil, webhook.OutcomeSuccess},
		{301, nil, nil, webhook.OutcomeRetry},
		{302, nil, nil, webhook.OutcomeRetry},
		{400, nil, nil, webhook.OutcomeRetry},
		{404, nil, nil, webhook.OutcomeRetry},
		{410, nil, nil, webhook.OutcomeGone},
		{410, abort, nil, webhook.OutcomeGone},
		{429, nil, nil, webhook.OutcomeRetry},
		{500, nil, nil, webhook.OutcomeRetry},
		{500, abort, nil, webhook.OutcomeAbort},
		{200, abort, nil, webhook.OutcomeSuccess},
		{0, nil, errors.New("connection refused"), webhook.OutcomeRetry},
		{200, nil, errors.New("body read failed"), webhook.OutcomeRetry},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, webhook.Classify(c.code, c.h, c.err), "%d %v %v", c.code, c.h, c.err)
	}
	assert.Equal(t, "gone", webhook.OutcomeGone.String())
}

// FuzzParseRetryAfter checks that any header value and limit give a wait
// between 0 and the limit, and delay seconds exactly when in range.
func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	f.Add("120", int64(time.Hour))
	f.Add("Sat, 28 Nov 2026 09:01:00 GMT", int64(time.Minute))
	f.Add("18446744073709551616", int64(-1))
	f.Add(" 5 ", int64(0))
	f.Fuzz(func(t *testing.T, value string, limitNs int64) {
		limit := time.Duration(limitNs)
		d, ok := webhook.ParseRetryAfter(value, now, limit)
		if !ok {
			if d != 0 {
				t.Fatalf("ParseRetryAfter(%q) = %v, false", value, d)
			}
			return
		}
		if d < 0 || d > max(limit, 0) {
			t.Fatalf("ParseRetryAfter(%q, limit %v) = %v: outside [0, limit]", value, limit, d)
		}
		if secs, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64); err == nil && secs >= 0 && secs < int64(max(limit, 0)/time.Second) {
			if d != time.Duration(secs)*time.Second {
				t.Fatalf("ParseRetryAfter(%q, limit %v) = %v, want %ds", value, limit, d, secs)
			}
		}
	})
}

// FuzzRetryPolicyJSON checks that decoding any input never panics, and
// that a policy that decodes and validates encodes and decodes to the
// same policy, whose waits all lie between one second and MaxDelay.
func FuzzRetryPolicyJSON(f *testing.F) {
	f.Add(`{"max_attempts":3,"initial_delay_seconds":2.5,"max_delay_seconds":600,"backoff_multiplier":3}`)
	f.Add(`{"max_attempts":50,"initial_delay_seconds":1.000064438,"max_delay_seconds":604800,"backoff_multiplier":10,"disable_jitter":true}`)
	f.Add(`{"max_attempts":1,"max_attempts":2}`)
	f.Add(`{"initial_delay_seconds":1e400}`)
	f.Fuzz(func(t *testing.T, in string) {
		var p webhook.RetryPolicy
		if err := json.Unmarshal([]byte(in), &p); err != nil || p.Validate() != nil {
			return
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("a valid policy %+v does not encode: %v", p, err)
		}
		var back webhook.RetryPolicy
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s does not decode: %v", b, err)
		}
		if back != p {
			t.Fatalf("round trip of %s: %+v, want %+v", b, back, p)
		}
		for n := 1; n <= p.MaxAttempts; n++ {
			if d := p.Backoff(n, 0); d < webhook.MinRetryDelay*3/4 || d > p.MaxDelay {
				t.Fatalf("%+v: Backoff(%d) = %v", p, n, d)
			}
		}
	})
}
