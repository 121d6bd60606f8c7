package webhook_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRetryThenSuccess(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			http.Error(w, "db down", http.StatusInternalServerError)
		}
	})
	e := newEnv(t, nil, nil)
	e.hook(t, rc.URL)
	id := e.trigger(t)[0]
	start := e.clock.Now().UTC().Truncate(time.Microsecond)

	require.Equal(t, 1, e.runOnce(t))
	d := e.delivery(t, id)
	assert.Equal(t, webhook.StatusRetrying, d.Status)
	assert.Equal(t, 500, d.StatusCode)
	assert.Equal(t, "HTTP 500 Internal Server Error", d.Error)
	assert.Equal(t, start.Add(5*time.Second), d.NextAttemptAt, "the policy's first delay")

	e.clock.Advance(4 * time.Second)
	require.Equal(t, 0, e.runOnce(t), "not due before the delay")
	e.clock.Advance(time.Second)
	require.Equal(t, 1, e.runOnce(t))
	d = e.delivery(t, id)
	assert.Equal(t, webhook.StatusDelivered, d.Status)
	require.Len(t, d.Attempts, 2)
	assert.Equal(t, 500, d.Attempts[0].StatusCode)
	assert.Equal(t, "db down\n", d.Attempts[0].ResponseBody)
	assert.Equal(t, 200, d.Attempts[1].StatusCode)
	reqs := rc.all()
	assert.Equal(t, reqs[0].header.Get("webhook-id"), reqs[1].header.Get("webhook-id"), "the webhook-id is stable across retries")
	assert.NotEqual(t, reqs[0].header.Get("webhook-timestamp"), reqs[1].header.Get("webhook-timestamp"), "each attempt is signed anew")
}

func TestRetriesExhausted(t *testing.T) {
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	var failed []*webhook.Delivery
	var mu sync.Mutex
	e := newEnv(t, &webhook.Config{OnDeliveryFailed: func(_ context.Context, d *webhook.Delivery) {
		mu.Lock()
		defer mu.Unlock()
		failed = append(failed, d)
	}}, nil)
	e.hook(t, rc.URL)
	id := e.trigger(t)[0]
	var schedule []time.Duration
	prev := e.clock.Now().UTC().Truncate(time.Microsecond)
	for range 3 {
		require.Equal(t, 1, e.runOnce(t))
		d := e.delivery(t, id)
		if d.Status == webhook.StatusRetrying {
			schedule = append(schedule, d.NextAttemptAt.Sub(prev))
			e.clock.Advance(d.NextAttemptAt.Sub(e.clock.Now()))
			prev = d.NextAttemptAt
		}
	}
	assert.Equal(t, []time.Duration{5 * time.Second, 10 * time.Second}, schedule)
	d := e.delivery(t, id)
	assert.Equal(t, webhook.StatusFailed, d.Status, "failed for good after max_attempts")
	assert.Len(t, d.Attempts, 3)
	e.clock.Advance(24 * time.Hour)
	assert.Equal(t, 0, e.runOnce(t))
	require.Len(t, failed, 1)
	assert.Equal(t, id, failed[0].ID)
	assert.Equal(t, webhook.StatusFailed, failed[0].Status)
}

func TestGoneDisablesWebhook(t *testing.T) {
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) })
	disabled := make(chan *webhook.Webhook, 10)
	e := newEnv(t, &webhook.Config{OnWebhookDisabled: func(_ context.Context, w *webhook.Webhook) { disabled <- w }}, nil)
	w := e.hook(t, rc.URL)
	id := e.trigger(t)[0]
	e.runOnce(t)
	d := e.delivery(t, id)
	assert.Equal(t, webhook.StatusFailed, d.Status)
	assert.Len(t, d.Attempts, 1, "410 is not retried")
	got, err := e.svc.Get(t.Context(), w.ID)
	require.NoError(t, err)
	assert.True(t, got.Disabled)
	assert.Contains(t, got.DisabledReason, "410")
	hw := recv(t, disabled, "OnWebhookDisabled")
	assert.Equal(t, w.ID, hw.ID)
	assert.True(t, hw.Disabled)
	assert.Contains(t, hw.DisabledReason, "410")
	assert.Equal(t, got.Version, hw.Version, "the hook sees the webhook as stored")
	ids, err := e.svc.TriggerEvent(t.Context(), "purchase", nil, "")
	require.NoError(t, err)
	assert.Empty(t, ids, "a disabled webhook gets no new deliveries")
}

func TestAbortHeader(t *testing.T) {
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("webhook-delivery", "abort-message")
		w.WriteHeader(http.StatusUnprocessableEntity)
	})
	e := newEnv(t, nil, nil)
	w := e.hook(t, rc.URL)
	id := e.trigger(t)[0]
	e.runOnce(t)
	d := e.delivery(t, id)
	assert.Equal(t, webhook.StatusFailed, d.Status)
	assert.Contains(t, d.Error, "abort-message")
	got, err := e.svc.Get(t.Context(), w.ID)
	require.NoError(t, err)
	assert.False(t, got.Disabled, "abort stops one delivery, not the webhook")
}

func TestRetryAfterHonoured(t *testing.T) {
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	e := newEnv(t, nil, nil)
	e.hook(t, rc.URL)
	id := e.trigger(t)[0]
	start := e.clock.Now().UTC().Truncate(time.Microsecond)
	e.runOnce(t)
	d := e.delivery(t, id)
	assert.Equal(t, webhook.StatusRetrying, d.Status)
	assert.Equal(t, start.Add(120*time.Second), d.NextAttemptAt, "Retry-After beats the 5 s backoff")
}
