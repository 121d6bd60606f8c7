package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/httpapi"
)

func TestTestWebhook(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create("a", "one")["id"].(string)
	r := e.do(req{method: "POST", path: "/webhooks/" + id + "/test", tenant: "a"})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	d := r.json(t)
	assert.Equal(t, "$test", d["event_type"])
	assert.Equal(t, "delivered", d["status"])
	assert.Len(t, d["attempts"], 1, "the delivery comes with its attempt")
	assert.Equal(t, "/api/webhooks/"+id+"/deliveries/"+d["id"].(string), r.header.Get("Location"))
	assert.Equal(t, int32(1), e.doer.calls.Load(), "sent synchronously")

	e.doer.status.Store(http.StatusServiceUnavailable)
	r = e.do(req{method: "POST", path: "/webhooks/" + id + "/test", tenant: "a", body: `{}`})
	require.Equal(t, http.StatusOK, r.status, "an endpoint's failure is a failed delivery, not an API error")
	assert.Equal(t, "failed", r.json(t)["status"])
	e.doer.status.Store(0)

	r = e.do(req{method: "POST", path: "/webhooks/" + id + "/test", tenant: "a", body: `{"x":1}`, invalid: true})
	assert.Equal(t, http.StatusBadRequest, r.status)
	r = e.do(req{method: "POST", path: "/webhooks/" + id + "/test", tenant: "a", body: `{}`, contentType: "text/plain", invalid: true})
	assert.Equal(t, http.StatusUnsupportedMediaType, r.status)
	r = e.do(req{method: "POST", path: "/webhooks/missing/test", tenant: "a"})
	assert.Equal(t, http.StatusNotFound, r.status)
}

func TestDeliveryHistory(t *testing.T) {
	e := newEnv(t, nil)
	hook, failed, delivered := e.failedDelivery("a", "h")
	r := e.do(req{method: "POST", path: "/webhooks/" + hook + "/test", tenant: "a"})
	require.Equal(t, http.StatusOK, r.status)
	test := r.json(t)["id"].(string)

	ids := func(r resp) []string {
		t.Helper()
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		var out []string
		for _, d := range r.json(t)["data"].([]any) {
			dm := d.(map[string]any)
			assert.NotEmpty(t, dm["attempts"], "each delivery comes with its attempts")
			out = append(out, dm["id"].(string))
		}
		return out
	}
	list := func(query string) resp {
		return e.do(req{method: "GET", path: "/webhooks/" + hook + "/deliveries" + query, tenant: "a"})
	}
	assert.Equal(t, []string{test, delivered, failed}, ids(list("")), "newest first")
	assert.Equal(t, []string{failed}, ids(list("?status=failed")))
	assert.Equal(t, []string{test, delivered}, ids(list("?status=delivered")))
	assert.Equal(t, []string{test, delivered, failed}, ids(list("?status=failed&status=delivered")), "status repeats")
	assert.Equal(t, []string{test}, ids(list("?event_type=%24test")))
	assert.Equal(t, []string{test, delivered, failed}, ids(list("?event_type=%24test&event_type=order")))
	future := url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	past := url.QueryEscape(time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
	assert.Empty(t, ids(list("?since="+future)))
	assert.Equal(t, []string{test, delivered, failed}, ids(list("?since="+past+"&until="+future)))
	assert.Empty(t, ids(list("?until="+past)))

	// Pages of one, with the filters kept.
	var got []string
	q := "?limit=1&status=delivered&status=failed"
	for range 4 {
		r := list(q)
		got = append(got, ids(r)...)
		p := r.json(t)
		if !p["has_more"].(bool) {
			break
		}
		q = "?limit=1&status=delivered&status=failed&cursor=" + p["next_cursor"].(string)
	}
	assert.Equal(t, []string{test, delivered, failed}, got)

	for _, bad := range []string{"?status=lost", "?since=yesterday", "?until=2026-01-01", "?since=" + future + "&until=" + past, "?event_type=", "?limit=0", "?cursor=abc", "?sort=asc", "?since=a&since=b"} {
		r := e.do(req{method: "GET", path: "/webhooks/" + hook + "/deliveries" + bad, tenant: "a", invalid: true})
		assert.Equal(t, http.StatusBadRequest, r.status, "%s: %s", bad, r.body)
	}
	r = e.do(req{method: "GET", path: "/webhooks/missing/deliveries", tenant: "a"})
	assert.Equal(t, http.StatusNotFound, r.status)
}

func TestGetDelivery(t *testing.T) {
	e := newEnv(t, nil)
	hook, failed, _ := e.failedDelivery("a", "h")
	r := e.do(req{method: "GET", path: "/webhooks/" + hook + "/deliveries/" + failed, tenant: "a"})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	d := r.json(t)
	assert.Equal(t, failed, d["id"])
	assert.Equal(t, "failed", d["status"])
	attempts := d["attempts"].([]any)
	require.Len(t, attempts, 1)
	assert.Equal(t, float64(500), attempts[0].(map[string]any)["status_code"])
	body := d["request_body"].(map[string]any)
	assert.Equal(t, "order", body["event_type"])
	assert.Equal(t, map[string]any{"n": float64(1)}, body["data"], "the request body sent")

	other := e.create("a", "other")["id"].(string)
	r = e.do(req{method: "GET", path: "/webhooks/" + other + "/deliveries/" + failed, tenant: "a"})
	assert.Equal(t, http.StatusNotFound, r.status, "a delivery of another webhook of the tenant")
	r = e.do(req{method: "GET", path: "/webhooks/" + hook + "/deliveries/missing", tenant: "a"})
	assert.Equal(t, http.StatusNotFound, r.status)
}

func TestRedeliver(t *testing.T) {
	e := newEnv(t, nil)
	hook, failed, _ := e.failedDelivery("a", "h")
	r := e.do(req{method: "POST", path: "/webhooks/" + hook + "/deliveries/" + failed + "/redeliver", tenant: "a"})
	require.Equal(t, http.StatusAccepted, r.status, "%s", r.body)
	nd := r.json(t)
	assert.Equal(t, "pending", nd["status"])
	assert.Equal(t, failed, nd["redelivery_of"])
	assert.Equal(t, "/api/webhooks/"+hook+"/deliveries/"+nd["id"].(string), r.header.Get("Location"))

	r = e.do(req{method: "POST", path: "/webhooks/" + hook + "/deliveries/" + nd["id"].(string) + "/redeliver", tenant: "a"})
	assert.Equal(t, http.StatusConflict, r.status, "a pending delivery cannot be redelivered: %s", r.body)
	test := e.do(req{method: "POST", path: "/webhooks/" + hook + "/test", tenant: "a"}).json(t)["id"].(string)
	r = e.do(req{method: "POST", path: "/webhooks/" + hook + "/deliveries/" + test + "/redeliver", tenant: "a"})
	assert.Equal(t, http.StatusConflict, r.status, "a test send cannot be redelivered")
	_, err := e.svc.Disable(t.Context(), hook, "")
	require.NoError(t, err)
	r = e.do(req{method: "POST", path: "/webhooks/" + hook + "/deliveries/" + failed + "/redeliver", tenant: "a"})
	assert.Equal(t, http.StatusConflict, r.status, "a disabled webhook")
	r = e.do(req{method: "POST", path: "/webhooks/" + hook + "/deliveries/missing/redeliver", tenant: "a"})
	assert.Equal(t, http.StatusNotFound, r.status)
	r = e.do(req{method: "POST", path: "/webhooks/" + hook + "/deliveries/" + failed + "/redeliver", tenant: "a", body: `{"now":true}`, invalid: true})
	assert.Equal(t, http.StatusBadRequest, r.status)
}

func TestReplay(t *testing.T) {
	e := newEnv(t, nil)
	hook, failed, _ := e.failedDelivery("a", "h")
	path := "/webhooks/" + hook + "/replay"
	r := e.do(req{method: "POST", path: path, tenant: "a", body: `{"dry_run":true}`})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, float64(1), r.json(t)["count"])
	assert.Empty(t, r.json(t)["delivery_ids"])

	r = e.do(req{method: "POST", path: path, tenant: "a", body: `{"dryRun":true}`, invalid: true})
	assert.Equal(t, http.StatusBadRequest, r.status, "a misspelt dry run never replays")
	assert.Contains(t, string(r.body), `"pointer":"/dryRun"`)
	r = e.do(req{method: "POST", path: path, tenant: "a", body: `{"since":"` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `"}`})
	require.Equal(t, http.StatusAccepted, r.status)
	assert.Equal(t, float64(0), r.json(t)["count"], "since selects")

	r = e.do(req{method: "POST", path: path, tenant: "a"})
	require.Equal(t, http.StatusAccepted, r.status, "%s", r.body)
	assert.Equal(t, float64(1), r.json(t)["count"])
	nd, err := e.svc.Delivery(t.Context(), r.json(t)["delivery_ids"].([]any)[0].(string))
	require.NoError(t, err)
	assert.Equal(t, failed, nd.RedeliveryOf)
	r = e.do(req{method: "POST", path: path, tenant: "a", body: `{}`})
	assert.Equal(t, float64(0), r.json(t)["count"], "replaying twice queues once")

	_, err = e.svc.Disable(t.Context(), hook, "")
	require.NoError(t, err)
	r = e.do(req{method: "POST", path: path, tenant: "a"})
	assert.Equal(t, http.StatusConflict, r.status)
	r = e.do(req{method: "POST", path: "/webhooks/missing/replay", tenant: "a"})
	assert.Equal(t, http.StatusNotFound, r.status)
}

func TestEnableDisable(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create("a", "one")["id"].(string)
	r := e.do(req{method: "POST", path: "/webhooks/" + id + "/disable", tenant: "a", body: `{"reason":"maintenance"}`})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, false, r.json(t)["enabled"])
	assert.Equal(t, "maintenance", r.json(t)["disabled_reason"])
	etag := r.header.Get("ETag")
	r = e.do(req{method: "POST", path: "/webhooks/" + id + "/disable", tenant: "a"})
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, "maintenance", r.json(t)["disabled_reason"], "disabling again changes nothing")
	assert.Equal(t, etag, r.header.Get("ETag"))

	r = e.do(req{method: "POST", path: "/webhooks/" + id + "/enable", tenant: "a", body: `{}`})
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, true, r.json(t)["enabled"])

	r = e.do(req{method: "POST", path: "/webhooks/" + id + "/disable", tenant: "a", body: `{"reason":"` + strings.Repeat("x", 2000) + `"}`, invalid: true})
	assert.Equal(t, http.StatusUnprocessableEntity, r.status)
	assert.Contains(t, string(r.body), `"pointer":"/reason"`)
	r = e.do(req{method: "POST", path: "/webhooks/" + id + "/disable", tenant: "a", body: `{"reason":1}`, invalid: true})
	assert.Equal(t, http.StatusBadRequest, r.status)
	r = e.do(req{method: "POST", path: "/webhooks/" + id + "/disable", tenant: "a", body: `{"reson":"x"}`, invalid: true})
	assert.Equal(t, http.StatusBadRequest, r.status)
	r = e.do(req{method: "POST", path: "/webhooks/" + id + "/enable", tenant: "a", body: `{"force":true}`, invalid: true})
	assert.Equal(t, http.StatusBadRequest, r.status)
	r = e.do(req{method: "POST", path: "/webhooks/missing/enable", tenant: "a"})
	assert.Equal(t, http.StatusNotFound, r.status)
}

func TestSecretAndRotate(t *testing.T) {
	e := newEnv(t, nil)
	w := e.create("a", "one")
	id, secret := w["id"].(string), w["secret"].(string)
	r := e.do(req{method: "GET", path: "/webhooks/" + id + "/secret", tenant: "a"})
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, secret, r.json(t)["secret"])
	assert.Equal(t, "no-store", r.header.Get("Cache-Control"))
	assert.Empty(t, r.json(t)["previous_secrets"])

	r = e.do(req{method: "POST", path: "/webhooks/" + id + "/secret/rotate", tenant: "a", body: `{"grace_seconds":60}`})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	rotated := r.json(t)
	assert.NotEqual(t, secret, rotated["secret"])
	prev := rotated["previous_secrets"].([]any)
	require.Len(t, prev, 1)
	assert.Equal(t, secret, prev[0].(map[string]any)["secret"])
	exp, err := time.Parse(time.RFC3339Nano, prev[0].(map[string]any)["expires_at"].(string))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(time.Minute), exp, 10*time.Second, "the grace asked for")

	r = e.do(req{method: "POST", path: "/webhooks/" + id + "/secret/rotate", tenant: "a"})
	require.Equal(t, http.StatusOK, r.status)
	prev = r.json(t)["previous_secrets"].([]any)
	require.Len(t, prev, 2)
	exp, err = time.Parse(time.RFC3339Nano, prev[0].(map[string]any)["expires_at"].(string))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(webhook.DefaultSecretRotationGrace), exp, 10*time.Second, "the service's grace by default")

	r = e.do(req{method: "POST", path: "/webhooks/" + id + "/secret/rotate", tenant: "a", body: `{"grace_seconds":0}`})
	require.Equal(t, http.StatusOK, r.status)
	assert.Empty(t, r.json(t)["previous_secrets"], "no grace: every old secret stops at once")
	current := r.json(t)["secret"]
	stored, err := e.svc.Get(t.Context(), id)
	require.NoError(t, err)
	assert.Equal(t, current, stored.Secret)

	for _, bad := range []struct {
		body   string
		status int
	}{{`{"grace_seconds":-1}`, 422}, {`{"grace_seconds":99999999}`, 422}, {`{"grace_seconds":1.5}`, 400}, {`{"grace":1}`, 400}} {
		r := e.do(req{method: "POST", path: "/webhooks/" + id + "/secret/rotate", tenant: "a", body: bad.body, invalid: true})
		assert.Equal(t, bad.status, r.status, bad.body)
	}
	stored2, err := e.svc.Get(t.Context(), id)
	require.NoError(t, err)
	assert.Equal(t, stored.Secret, stored2.Secret, "refused rotations rotate nothing")
	r = e.do(req{method: "GET", path: "/webhooks/missing/secret", tenant: "a"})
	assert.Equal(t, http.StatusNotFound, r.status)
	r = e.do(req{method: "POST", path: "/webhooks/missing/secret/rotate", tenant: "a"})
	assert.Equal(t, http.StatusNotFound, r.status)
}

func TestEventTypesRoute(t *testing.T) {
	e := newEnv(t, &httpapi.Config{EventTypes: []webhook.EventType{
		{Name: "purchase", Description: "A purchase.", Schema: json.RawMessage(`{"type":"object","required":["amount"]}`)},
		{Name: "signup", Description: "A signup."},
	}})
	r := e.do(req{method: "GET", path: "/event-types", tenant: "a"})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var p struct {
		Data    []webhook.EventType `json:"data"`
		HasMore bool                `json:"has_more"`
	}
	require.NoError(t, json.Unmarshal(r.body, &p))
	var names []string
	for _, et := range p.Data {
		names = append(names, et.Name)
	}
	lib := webhook.EventTypes()
	require.Len(t, names, len(lib)+2)
	assert.Equal(t, "$test", names[0])
	assert.Equal(t, []string{"purchase", "signup"}, names[len(lib):], "the host's after the library's")
	assert.JSONEq(t, `{"type":"object","required":["amount"]}`, string(p.Data[len(lib)].Schema))
	assert.False(t, p.HasMore)

	r = e.do(req{method: "GET", path: "/event-types", invalid: true})
	assert.Equal(t, http.StatusUnauthorized, r.status)
}

func TestOpenAPIRoute(t *testing.T) {
	e := newEnv(t, nil)
	r := e.do(req{method: "GET", path: "/openapi.yaml"})
	require.Equal(t, http.StatusOK, r.status, "no tenant needed")
	assert.Equal(t, "application/yaml", r.header.Get("Content-Type"))
	assert.Contains(t, string(r.body), "openapi: 3.1.0")
	assert.Contains(t, string(r.body), "\n  - url: /api\n")

	svc, err := webhook.NewService(e.store, nil)
	require.NoError(t, err)
	h, err := httpapi.New(svc, &httpapi.Config{Prefix: "/v1/hooks/"})
	require.NoError(t, err)
	srv := newServer(t, h)
	res, err := srv.Client().Get(srv.URL + "/v1/hooks/openapi.yaml")
	require.NoError(t, err)
	defer res.Body.Close()
	b := readAll(t, res.Body)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, string(b), "\n  - url: /v1/hooks\n", "the server URL is the prefix")
}
