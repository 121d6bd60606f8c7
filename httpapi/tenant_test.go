package httpapi_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/httpapi"
)

// TestTenantIsolation runs every route as tenant b on tenant a's
// webhook and deliveries: b gets 404, exactly as for IDs that do not
// exist, and changes nothing; a then gets the route's success.
func TestTenantIsolation(t *testing.T) {
	e := newEnv(t, nil)
	hook, failed, delivered := e.failedDelivery("a", "a-hook")
	own := e.create("b", "b-hook")["id"].(string) // b's own webhook
	before, err := e.svc.Get(t.Context(), hook)
	require.NoError(t, err)
	callsBefore := e.doer.calls.Load()

	put := `{"name":"x","url":"https://example.com/x","triggers":[{"trigger_type":"event"}]}`
	type route struct {
		key       string // method and pattern, as httpapi.Routes lists them
		method    string
		path      string // with a's IDs
		body, ct  string
		success   int    // a's status
		otherPath string // b's request, when not path
		// shared routes show no tenant's data: b gets the same success
		shared bool
	}
	hp := "/webhooks/" + hook
	routes := []route{
		{key: "GET /webhooks", method: "GET", path: "/webhooks", success: 200, shared: true},
		{key: "POST /webhooks", method: "POST", path: "/webhooks", body: hookBody("new"), success: 201, shared: true},
		{key: "GET /webhooks/{id}", method: "GET", path: hp, success: 200},
		{key: "PUT /webhooks/{id}", method: "PUT", path: hp, body: put, success: 200},
		{key: "PATCH /webhooks/{id}", method: "PATCH", path: hp, body: `{"name":"patched"}`, ct: typeMergePatch, success: 200},
		{key: "POST /webhooks/{id}/test", method: "POST", path: hp + "/test", success: 200},
		{key: "GET /webhooks/{id}/stats", method: "GET", path: hp + "/stats", success: 200},
		{key: "GET /webhooks/{id}/deliveries", method: "GET", path: hp + "/deliveries", success: 200},
		{key: "GET /webhooks/{id}/deliveries/{delivery_id}", method: "GET", path: hp + "/deliveries/" + failed, success: 200,
			otherPath: "/webhooks/" + own + "/deliveries/" + failed},
		{key: "POST /webhooks/{id}/deliveries/{delivery_id}/redeliver", method: "POST", path: hp + "/deliveries/" + delivered + "/redeliver", success: 202,
			otherPath: "/webhooks/" + own + "/deliveries/" + delivered + "/redeliver"},
		{key: "POST /webhooks/{id}/replay", method: "POST", path: hp + "/replay", body: `{"dry_run":true}`, success: 200},
		{key: "POST /webhooks/{id}/disable", method: "POST", path: hp + "/disable", body: `{"reason":"b was here"}`, success: 200},
		{key: "POST /webhooks/{id}/enable", method: "POST", path: hp + "/enable", success: 200},
		{key: "GET /webhooks/{id}/secret", method: "GET", path: hp + "/secret", success: 200},
		{key: "POST /webhooks/{id}/secret/rotate", method: "POST", path: hp + "/secret/rotate", success: 200},
		{key: "GET /event-types", method: "GET", path: "/event-types", success: 200, shared: true},
		{key: "GET /openapi.yaml", method: "GET", path: "/openapi.yaml", success: 200, shared: true},
		{key: "DELETE /webhooks/{id}", method: "DELETE", path: hp, success: 204},
	}
	var keys []string
	for _, r := range routes {
		keys = append(keys, r.key)
	}
	var all []string
	for _, r := range httpapi.Routes() {
		all = append(all, r[0]+" "+r[1])
	}
	require.ElementsMatch(t, all, keys, "the table covers every route of the handler")

	// What a missing webhook and a missing delivery answer.
	missing := e.do(req{method: "GET", path: "/webhooks/01a23177-0000-7000-8000-000000000000", tenant: "b"})
	require.Equal(t, http.StatusNotFound, missing.status)

	for _, r := range routes {
		t.Run(r.key, func(t *testing.T) {
			path := r.path
			if r.otherPath != "" {
				path = r.otherPath
			}
			b := e.do(req{method: r.method, path: path, tenant: "b", body: r.body, contentType: r.ct})
			if r.shared {
				assert.Equal(t, r.success, b.status, "%s", b.body)
				assert.NotContains(t, string(b.body), hook, "b never sees a's webhook")
			} else {
				assert.Equal(t, http.StatusNotFound, b.status, "%s", b.body)
				assert.JSONEq(t, string(missing.body), string(b.body), "another tenant's ID answers as a missing one")
				if r.otherPath != "" {
					b = e.do(req{method: r.method, path: r.path, tenant: "b", body: r.body, contentType: r.ct})
					assert.Equal(t, http.StatusNotFound, b.status, "%s", b.body)
				}
				// Nothing of a's changed or was sent.
				now, err := e.svc.Get(t.Context(), hook)
				require.NoError(t, err, "b deleted nothing")
				assert.Equal(t, before.Version, now.Version, "b changed nothing")
				assert.Equal(t, before.Secret, now.Secret)
				assert.Equal(t, callsBefore, e.doer.calls.Load(), "b sent nothing")
				assert.NotContains(t, string(b.body), before.Secret)
			}

			a := e.do(req{method: r.method, path: r.path, tenant: "a", body: r.body, contentType: r.ct})
			assert.Equal(t, r.success, a.status, "a still can: %s", a.body)
			if r.key == "GET /webhooks" {
				assert.Contains(t, string(a.body), hook)
			}
			// a's successes change a's webhook; b's view is taken anew.
			if now, err := e.svc.Get(t.Context(), hook); err == nil {
				before = now
			}
			callsBefore = e.doer.calls.Load()
		})
	}
	// b's own webhook and the one b created are b's.
	r := e.do(req{method: "GET", path: "/webhooks", tenant: "b"})
	require.Equal(t, http.StatusOK, r.status)
	for _, w := range r.json(t)["data"].([]any) {
		assert.Equal(t, "b", w.(map[string]any)["tenant_id"])
	}
}

func TestAuthErrors(t *testing.T) {
	e := newEnv(t, nil)
	for _, c := range []struct {
		token  string
		status int
	}{{"", 401}, {"forbidden", 403}, {"limited", 429}} {
		r := e.do(req{method: "GET", path: "/webhooks", tenant: c.token, invalid: true})
		assert.Equal(t, c.status, r.status, c.token)
		assert.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
		if c.status == 429 {
			assert.Equal(t, "2", r.header.Get("Retry-After"), "whole seconds, rounded up")
		}
	}
	r := e.do(req{method: "POST", path: "/webhooks", body: hookBody("x"), invalid: true})
	assert.Equal(t, http.StatusUnauthorized, r.status, "authentication comes before the body")

	limited := 0
	e2 := newEnv(t, &httpapi.Config{
		Tenant: func(r *http.Request) (string, error) {
			switch r.Header.Get("Authorization") {
			case "Bearer teapot":
				return "", &httpapi.StatusError{Status: 401, Detail: "the token expired", Header: http.Header{"WWW-Authenticate": {"Bearer"}}, Err: errors.New("expired at 12:00")}
			case "Bearer weird":
				return "", errors.New("token store says no")
			case "Bearer blank":
				return "", nil
			}
			return bearerTenant(r)
		},
		RateLimit: func(r *http.Request, tenant string) error {
			if tenant == "busy" {
				limited++
				return &httpapi.RateLimitError{RetryAfter: 30 * time.Second}
			}
			return nil
		},
	})
	r = e2.do(req{method: "GET", path: "/webhooks", tenant: "teapot", invalid: true})
	assert.Equal(t, http.StatusUnauthorized, r.status)
	assert.Equal(t, "the token expired", r.json(t)["detail"])
	assert.NotContains(t, string(r.body), "12:00", "the cause is never shown")
	assert.Equal(t, "Bearer", r.header.Get("WWW-Authenticate"))
	r = e2.do(req{method: "GET", path: "/webhooks", tenant: "weird", invalid: true})
	assert.Equal(t, http.StatusUnauthorized, r.status, "an error the host did not classify refuses")
	assert.NotContains(t, string(r.body), "token store", "the host's error text is never shown")
	r = e2.do(req{method: "GET", path: "/webhooks", tenant: "busy", invalid: true})
	assert.Equal(t, http.StatusTooManyRequests, r.status)
	assert.Equal(t, "30", r.header.Get("Retry-After"))
	assert.Equal(t, 1, limited)
	r = e2.do(req{method: "GET", path: "/webhooks", tenant: "ok"})
	assert.Equal(t, http.StatusOK, r.status)

	// A host that returns no tenant is a server fault, never another
	// tenant's view.
	res, err := e2.srv.Client().Do(mustRequest(t, "GET", e2.srv.URL+"/api/webhooks", "Bearer blank"))
	require.NoError(t, err)
	_ = res.Body.Close()
	assert.Equal(t, http.StatusInternalServerError, res.StatusCode)
	assert.Contains(t, e2.logs.String(), "Config.Tenant returned")
}

func mustRequest(t *testing.T, method, url, auth string) *http.Request {
	t.Helper()
	r, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	require.NoError(t, err)
	r.Header.Set("Authorization", auth)
	return r
}

// TestSingleTenant mounts the API without Config.Tenant: it manages
// the Service's webhooks itself.
func TestSingleTenant(t *testing.T) {
	svcEnv := newEnv(t, nil)
	h, err := httpapi.New(svcEnv.svc, &httpapi.Config{Prefix: "/"})
	require.NoError(t, err)
	srv := newServer(t, h)
	res, err := srv.Client().Post(srv.URL+"/webhooks", "application/json", strings.NewReader(`{"tenant_id":"x",`+hookBody("solo")[1:]))
	require.NoError(t, err)
	body := readAll(t, res.Body)
	_ = res.Body.Close()
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", body)
	assert.NotContains(t, string(body), `"tenant_id"`, "a body cannot choose a tenant")
	list, err := svcEnv.svc.List(t.Context(), webhook.ListWebhooksParams{})
	require.NoError(t, err)
	require.Len(t, list, 1)
	res, err = srv.Client().Get(srv.URL + "/webhooks/" + list[0].ID + "/deliveries")
	require.NoError(t, err)
	_ = res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode)
	res, err = srv.Client().Get(srv.URL + "/webhooks/missing/deliveries")
	require.NoError(t, err)
	_ = res.Body.Close()
	assert.Equal(t, http.StatusNotFound, res.StatusCode, "the history of no webhook is 404, as with tenants")
}
