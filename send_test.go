package webhook_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDeliverHexScheme(t *testing.T) {
	rc := newReceiver(t, nil)
	e := newEnv(t, nil, nil)
	w := e.hook(t, rc.URL, func(w *webhook.Webhook) { w.SignatureScheme = webhook.SchemeHex })
	e.trigger(t)
	e.runOnce(t)
	r := rc.all()[0]
	assert.Equal(t, webhook.SignHex(w.Secret, r.body), r.header.Get("X-Webhook-Signature"))
	require.NoError(t, (&webhook.Verifier{Secrets: []string{w.Secret}, Now: e.clock.Now}).Verify(r.header, r.body), "Standard Webhooks headers are sent too")
}

func TestRedirectNotFollowed(t *testing.T) {
	target := newReceiver(t, nil)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusFound)
	})
	e := newEnv(t, nil, nil)
	e.hook(t, rc.URL)
	id := e.trigger(t)[0]
	e.runOnce(t)
	d := e.delivery(t, id)
	assert.Equal(t, webhook.StatusRetrying, d.Status)
	assert.Equal(t, 302, d.StatusCode)
	assert.Contains(t, d.Error, "redirects are not followed")
	assert.Empty(t, target.all(), "the redirect target is never contacted")
}

func TestHangingReceiverTimesOut(t *testing.T) {
	release := make(chan struct{})
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	e := newEnv(t, &webhook.Config{RequestTimeout: 200 * time.Millisecond}, nil)
	e.hook(t, rc.URL)
	id := e.trigger(t)[0]
	e.runOnce(t)
	d := e.delivery(t, id)
	assert.Equal(t, webhook.StatusRetrying, d.Status)
	assert.Equal(t, "request timed out after 200ms", d.Error)
	assert.Equal(t, 0, d.StatusCode)
}

func TestHugeResponseIsCapped(t *testing.T) {
	chunk := strings.Repeat("x", 64<<10)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		for range 160 { // 10 MiB
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
	})
	e := newEnv(t, &webhook.Config{MaxResponseBodyBytes: 1000}, nil)
	e.hook(t, rc.URL)
	id := e.trigger(t)[0]
	e.runOnce(t)
	d := e.delivery(t, id)
	assert.Equal(t, webhook.StatusDelivered, d.Status)
	assert.Len(t, d.ResponseBody, 1000, "only the configured prefix is kept")
	assert.Len(t, d.Attempts[0].ResponseBody, 1000)
}
