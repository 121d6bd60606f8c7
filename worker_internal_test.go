package webhook

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClaimBackoffNeverWaitsLessThanThePollInterval(t *testing.T) {
	for _, poll := range []time.Duration{10 * time.Millisecond, time.Second, 45 * time.Second, time.Minute, 2 * time.Minute, time.Hour} {
		var b time.Duration
		for i := range 12 {
			prev := b
			b = claimBackoff(b, poll)
			assert.GreaterOrEqual(t, b/2, poll, "poll %v, failure %d: the shortest wait", poll, i+1)
			assert.GreaterOrEqual(t, b, prev, "poll %v, failure %d: waits do not shrink", poll, i+1)
			assert.LessOrEqual(t, b, max(maxClaimBackoff, 2*poll), "poll %v, failure %d: the longest wait", poll, i+1)
		}
	}
}

func TestAdmissionCountsFollowTheHostAnAttemptWentTo(t *testing.T) {
	// A webhook's URL moves to another host while an attempt to the old
	// one runs: each attempt gives its slot back to the host it took it
	// from, and nothing is left counted once both end.
	svc, err := NewService(&hookMap{}, nil)
	require.NoError(t, err)
	w, err := NewWorker(svc, &WorkerConfig{Concurrency: 8, MaxPerHost: 1})
	require.NoError(t, err)
	v1 := &Webhook{ID: "w1", URL: "https://a.example/hook"}
	v2 := &Webhook{ID: "w1", URL: "https://B.example:443/other"}
	claim := func() { w.track([]*Claim{{Delivery: &Delivery{WebhookID: "w1"}}}) }
	now := time.Now()

	claim()
	unadmit1, _, ok, _ := w.tryAdmit(v1, now)
	require.True(t, ok)
	claim()
	_, _, ok, freed := w.tryAdmit(v1, now)
	assert.False(t, ok, "a.example:443 is at its cap")
	assert.NotNil(t, freed)
	unadmit2, _, ok, _ := w.tryAdmit(v2, now)
	require.True(t, ok, "b.example:443 has room")
	assert.Equal(t, map[string]int{"a.example:443": 1, "b.example:443": 1}, w.sending)

	unadmit1()
	assert.Equal(t, map[string]int{"b.example:443": 1}, w.sending)
	unadmit2()
	assert.Empty(t, w.sending)
	w.done("w1")
	w.done("w1")
	limit, exclude, _, _, idle := w.capacity(now)
	assert.True(t, idle)
	assert.Empty(t, exclude)
	assert.Equal(t, 8, limit)
	assert.Empty(t, w.hooks, "nothing left to remember")
	assert.Zero(t, w.total)
}

func TestDestinationOfOddURLs(t *testing.T) {
	for raw, want := range map[string]string{
		"https://Example.COM/x":     "example.com:443",
		"http://example.com:8080/x": "example.com:8080",
		"HTTP://example.com":        "example.com:80",
		"https://[2001:db8::1]/x":   "[2001:db8::1]:443",
		"https://[::1":              "https://[::1",
		"not a url":                 "not a url",
		"":                          "",
	} {
		assert.Equal(t, want, destination(raw), raw)
	}
}

func TestHostLoadCountsAttemptsToAWebhooksFormerHost(t *testing.T) {
	// w1's attempt to a.example runs on after w1 moved to b.example:
	// a.example stays at its cap, so w2, also on a.example, is not
	// claimed (it would only wait for admission and be handed back).
	svc, err := NewService(&hookMap{}, nil)
	require.NoError(t, err)
	w, err := NewWorker(svc, &WorkerConfig{Concurrency: 8, MaxPerHost: 1})
	require.NoError(t, err)
	now := time.Now()
	w.track([]*Claim{{Delivery: &Delivery{WebhookID: "w1"}}})
	_, _, ok, _ := w.tryAdmit(&Webhook{ID: "w1", URL: "https://a.example/"}, now)
	require.True(t, ok)
	w.hooks["w1"].learn(&Webhook{ID: "w1", URL: "https://b.example/"}) // the next claim's copy
	w.track([]*Claim{{Delivery: &Delivery{WebhookID: "w2"}}})
	_, _, ok, _ = w.tryAdmit(&Webhook{ID: "w2", URL: "https://a.example/2"}, now)
	require.False(t, ok, "a.example is at its cap")
	w.done("w2") // handed back

	_, exclude, _, _, _ := w.capacity(now)
	assert.Contains(t, exclude, "w2", "a.example is still at its cap")
	assert.NotContains(t, exclude, "w1", "b.example has room")
}

func TestHostLoadLeavesOutResultsBeingWritten(t *testing.T) {
	// w1's request to a.example is over and its result is being written:
	// a.example has room again, so w2, on the same host, is claimed.
	svc, err := NewService(&hookMap{}, nil)
	require.NoError(t, err)
	w, err := NewWorker(svc, &WorkerConfig{Concurrency: 8, MaxPerHost: 1})
	require.NoError(t, err)
	now := time.Now()
	w.track([]*Claim{{Delivery: &Delivery{WebhookID: "w1"}}, {Delivery: &Delivery{WebhookID: "w2"}}})
	w.hooks["w2"].learn(&Webhook{ID: "w2", URL: "https://a.example/2"})
	unadmit, _, ok, _ := w.tryAdmit(&Webhook{ID: "w1", URL: "https://a.example/1"}, now)
	require.True(t, ok)
	w.done("w2") // handed back, to be claimed again
	_, exclude, _, _, _ := w.capacity(now)
	assert.Contains(t, exclude, "w2", "a.example's request is running")

	unadmit() // the request is over; its result is being written
	_, exclude, _, _, _ = w.capacity(now)
	assert.NotContains(t, exclude, "w2", "a.example has no request running")
	w.resultWritten("w1")
	w.done("w1")
	assert.Zero(t, w.total)
}

// Webhooks on a host at a cap share what is left of it, the share
// starting at another webhook each claim. A busy worker's fill calls
// capacity twice for each claim (once to claim, once more to find the
// pool full after it): the share must still go round, not stay with
// every other webhook.
func TestHostShareGoesRoundClaimByClaim(t *testing.T) {
	svc, err := NewService(&hookMap{}, nil)
	require.NoError(t, err)
	w, err := NewWorker(svc, &WorkerConfig{Concurrency: 16, Prefetch: -1, MaxPerHost: 6, MaxPerWebhook: 4})
	require.NoError(t, err)
	now := time.Now()
	// a and b, on one host, each with one in flight: 4 left of the
	// host's cap, one for each, and 2 for one of them.
	for _, id := range []string{"a", "b"} {
		w.track([]*Claim{{Delivery: &Delivery{WebhookID: id}}})
		w.hooks[id].learn(&Webhook{ID: id, URL: "https://h.example/" + id})
	}
	first := map[string]int{}
	for range 6 {
		limit, _, maxBy, _, _ := w.capacity(now) // the claim
		require.Positive(t, limit)
		require.Len(t, maxBy, 1, "one of them has the extra")
		for id, n := range maxBy {
			assert.Equal(t, 3, n)
			first[id]++
		}
		// What the claim took of another host fills the pool: the next
		// call finds it full, and fill returns.
		claimed := make([]*Claim, limit)
		for i := range claimed {
			claimed[i] = &Claim{Delivery: &Delivery{WebhookID: "c"}}
		}
		w.track(claimed)
		limit, _, _, _, _ = w.capacity(now)
		require.Zero(t, limit)
		for range claimed {
			w.done("c")
		}
	}
	assert.Equal(t, map[string]int{"a": 3, "b": 3}, first, "claims in which each had the extra")
}

// An attempt whose request is over took its rate token when it was
// admitted: while its result waits for its write (a batch may wait to
// fill), it takes none of the tokens left, and the webhook is claimed
// as far as they go.
func TestResultsBeingWrittenTakeNoMoreRateTokens(t *testing.T) {
	svc, err := NewService(&hookMap{}, nil)
	require.NoError(t, err)
	w, err := NewWorker(svc, &WorkerConfig{Concurrency: 8, MaxPerHost: 8, MaxPerWebhook: 8})
	require.NoError(t, err)
	now := time.Now()
	for _, hook := range []*Webhook{
		{ID: "w1", URL: "https://a.example/", RateLimit: 2}, // a burst of 2
		{ID: "w2", URL: "https://b.example/", RateLimit: 3},
	} {
		w.track([]*Claim{{Delivery: &Delivery{WebhookID: hook.ID}}})
		unadmit, _, ok, _ := w.tryAdmit(hook, now)
		require.True(t, ok)
		unadmit() // the request is over; its result is being written
	}
	_, exclude, maxBy, _, _ := w.capacity(now)
	assert.NotContains(t, exclude, "w1", "a token is left")
	assert.Equal(t, map[string]int{"w2": 2}, maxBy, "as many as the tokens left")
}
