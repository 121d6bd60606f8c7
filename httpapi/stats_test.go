package httpapi_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWebhookStats(t *testing.T) {
	e := newEnv(t, nil)
	hook, failed, _ := e.failedDelivery("a", "stats")

	r := e.do(req{method: "GET", path: "/webhooks/" + hook + "/stats", tenant: "a"})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	st := r.json(t)
	assert.Equal(t, hook, st["webhook_id"])
	assert.Equal(t, map[string]any{"pending": 0.0, "delivering": 0.0, "retrying": 0.0, "delivered": 1.0, "failed": 1.0}, st["deliveries"])
	attempts := st["attempts"].(map[string]any)
	assert.Equal(t, 1.0, attempts["success"])
	assert.Equal(t, 1.0, attempts["http_error"])
	assert.Equal(t, 0.5, st["success_rate"])
	assert.Equal(t, 0.5, st["attempt_success_rate"])
	assert.Equal(t, 2.0, st["latency_samples"])
	assert.Equal(t, failed, st["last_failure"].(map[string]any)["delivery_id"])
	assert.Equal(t, "http_error", st["last_failure_outcome"])
	assert.Equal(t, 0.0, st["consecutive_failures"], "the last attempt succeeded")
	assert.Equal(t, false, st["disabled"])
	since, err := time.Parse(time.RFC3339Nano, st["since"].(string))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(-24*time.Hour), since, time.Minute, "the default window is the last 24 hours")

	// A window that starts after the deliveries holds none.
	later := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	r = e.do(req{method: "GET", path: "/webhooks/" + hook + "/stats?since=" + url.QueryEscape(later), tenant: "a"})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	st = r.json(t)
	assert.Equal(t, later, st["since"])
	assert.Equal(t, 0.0, st["deliveries"].(map[string]any)["failed"])
	assert.Equal(t, 0.0, st["latency_samples"])
	assert.NotContains(t, st, "last_failure")

	for _, q := range []string{"?since=yesterday", "?since=2026-01-01", "?window=1h", "?since=2026-01-01T00:00:00Z&since=2026-01-02T00:00:00Z"} {
		r = e.do(req{method: "GET", path: "/webhooks/" + hook + "/stats" + q, tenant: "a", invalid: true})
		assert.Equal(t, http.StatusBadRequest, r.status, "%s: %s", q, r.body)
		assert.NotEmpty(t, r.json(t)["errors"], q)
	}
	r = e.do(req{method: "GET", path: "/webhooks/01a23177-0000-7000-8000-000000000000/stats", tenant: "a"})
	assert.Equal(t, http.StatusNotFound, r.status)
	assert.Contains(t, e.logs.String(), "path=/api/webhooks/01a23177-0000-7000-8000-000000000000/stats tenant_id=a status=404",
		"a refusal is logged with the tenant, as the library's lines are")
	r = e.do(req{method: "POST", path: "/webhooks/" + hook + "/stats", tenant: "a", invalid: true})
	assert.Equal(t, http.StatusMethodNotAllowed, r.status)
	assert.Equal(t, "GET, HEAD", r.header.Get("Allow"))
}
