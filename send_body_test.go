package webhook_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
)

// TestStoredResponseBodyStaysWithinItsLimit checks that replacing invalid
// bytes (one byte each) with U+FFFD (three bytes each) cannot make the
// stored response body longer than MaxResponseBodyBytes.
func TestStoredResponseBodyStaysWithinItsLimit(t *testing.T) {
	for name, body := range map[string][]byte{
		"invalid UTF-8": bytes.Repeat([]byte{0xff, 'x'}, 2500),
		"NUL bytes":     bytes.Repeat([]byte{0}, 5000),
		"mixed":         []byte(strings.Repeat("ok\xffé\x00", 1000)),
	} {
		t.Run(name, func(t *testing.T) {
			rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) })
			e := newEnv(t, &webhook.Config{MaxResponseBodyBytes: 1000}, nil)
			e.hook(t, rc.URL)
			id := e.trigger(t)[0]
			e.runOnce(t)
			d := e.delivery(t, id)
			require.Equal(t, webhook.StatusDelivered, d.Status)
			stored := d.Attempts[0].ResponseBody
			assert.LessOrEqual(t, len(stored), 1000)
			assert.GreaterOrEqual(t, len(stored), 1000-utf8.UTFMax, "the body is cut at the limit, not earlier")
			assert.True(t, utf8.ValidString(stored))
			assert.NotContains(t, stored, "\x00")
		})
	}
}

// TestUserAgentIsAsDocumented checks the User-Agent against the README's
// "analytics-webhooks/<version>".
func TestUserAgentIsAsDocumented(t *testing.T) {
	rc := newReceiver(t, nil)
	e := newEnv(t, nil, nil)
	e.hook(t, rc.URL)
	e.trigger(t)
	e.runOnce(t)
	assert.Equal(t, "analytics-webhooks/"+webhook.Version, rc.all()[0].header.Get("User-Agent"))
}
