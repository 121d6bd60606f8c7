package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/httpapi"
	"github.com/analytics-webhooks/webhook/memstore"
)

func TestCreateWebhook(t *testing.T) {
	e := newEnv(t, nil)
	r := e.do(req{method: "POST", path: "/webhooks", tenant: "a", body: hookBody("orders")})
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	w := r.json(t)
	id := w["id"].(string)
	assert.Equal(t, "/api/webhooks/"+id, r.header.Get("Location"))
	assert.Equal(t, `"1"`, r.header.Get("ETag"))
	assert.Equal(t, "no-store", r.header.Get("Cache-Control"))
	assert.Empty(t, r.header.Get("Idempotent-Replayed"))
	assert.True(t, strings.HasPrefix(w["secret"].(string), "whsec_"), "the create response shows the secret")
	assert.Equal(t, true, w["enabled"])
	assert.Equal(t, "a", w["tenant_id"])

	stored, err := e.svc.Get(t.Context(), id)
	require.NoError(t, err)
	assert.Equal(t, "a", stored.TenantID)
	assert.Equal(t, w["secret"], stored.Secret)

	// Read-only fields are ignored, a given secret is kept.
	secret := "whsec_" + strings.Repeat("A", 43) + "="
	r = e.do(req{method: "POST", path: "/webhooks", tenant: "a", body: `{"id":"mine","tenant_id":"b","version":9,"created_at":"2020-01-01T00:00:00Z","secret":"` + secret + `","name":"x","url":"https://example.com/x","enabled":false,"disabled_reason":"later","triggers":[{"trigger_type":"error"}]}`})
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	w = r.json(t)
	assert.NotEqual(t, "mine", w["id"])
	assert.Equal(t, "a", w["tenant_id"], "a body cannot choose the tenant")
	assert.Equal(t, float64(1), w["version"])
	assert.Equal(t, secret, w["secret"])
	assert.Equal(t, false, w["enabled"])
	assert.Equal(t, "later", w["disabled_reason"])
}

func TestCreateWebhookErrors(t *testing.T) {
	e := newEnv(t, &httpapi.Config{MaxBodyBytes: 4096})
	cases := []struct {
		name, body, contentType string
		status                  int
		pointers                []string
	}{
		{"typo", `{"name":"a","url":"https://example.com/a","triggers":[{"trigger_type":"event","event":["purchase"]}]}`, "", 400, []string{"/triggers/0/event"}},
		{"case", `{"Name":"a","url":"https://example.com/a","triggers":[{"trigger_type":"event"}]}`, "", 400, []string{"/Name"}},
		{"wrong type", `{"name":1,"url":"https://example.com/a","triggers":[]}`, "", 400, []string{"/name"}},
		{"header key", `{"name":"a","url":"https://example.com/a","headers":{"X-A":1},"triggers":[{"trigger_type":"event"}]}`, "", 400, []string{"/headers/X-A"}},
		{"malformed", `{"name":`, "", 400, nil},
		{"not an object", `[1,2]`, "", 400, []string{""}},
		{"empty", ``, "", 400, nil},
		{"invalid", `{"name":"","url":"ftp://x","triggers":[{"trigger_type":"event","filters":[{"property":"p","operator":"equals","value":1},{"property":"q","operator":"regex","value":"("}]}]}`, "", 422,
			[]string{"/name", "/url", "/triggers/0/filters/1/value"}},
		{"bad header name", `{"name":"a","url":"https://example.com/a","headers":{"Content-Type":"x"},"triggers":[{"trigger_type":"event"}]}`, "", 422, []string{"/headers/Content-Type"}},
		{"no triggers", `{"name":"a","url":"https://example.com/a","triggers":[]}`, "", 422, []string{"/triggers"}},
		{"media type", hookBody("a"), "text/plain", 415, nil},
		{"charset", hookBody("a"), "application/json; charset=latin1", 415, nil},
		{"too large", `{"name":"` + strings.Repeat("a", 5000) + `"}`, "", 413, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(req{method: "POST", path: "/webhooks", tenant: "a", body: c.body, contentType: c.contentType, invalid: true})
			require.Equal(t, c.status, r.status, "%s", r.body)
			p := r.json(t)
			assert.Equal(t, float64(c.status), p["status"])
			assert.Equal(t, http.StatusText(c.status), p["title"])
			assert.Equal(t, "about:blank", p["type"])
			assert.NotEmpty(t, p["detail"])
			var got []string
			if errs, ok := p["errors"].([]any); ok {
				for _, fe := range errs {
					got = append(got, fe.(map[string]any)["pointer"].(string))
					assert.NotEmpty(t, fe.(map[string]any)["detail"])
				}
			}
			for _, want := range c.pointers {
				assert.Contains(t, got, want)
			}
		})
	}
	list := e.do(req{method: "GET", path: "/webhooks", tenant: "a"})
	assert.Empty(t, list.json(t)["data"], "nothing was created")

	r := e.do(req{method: "POST", path: "/webhooks?x=1", tenant: "a", body: hookBody("a"), invalid: true})
	assert.Equal(t, http.StatusBadRequest, r.status, "an unknown query parameter")
}

func TestCreateWebhookIdempotencyKey(t *testing.T) {
	e := newEnv(t, nil)
	key := map[string]string{"Idempotency-Key": "order-42"}
	first := e.do(req{method: "POST", path: "/webhooks", tenant: "a", body: hookBody("orders"), header: key})
	require.Equal(t, http.StatusCreated, first.status, "%s", first.body)
	again := e.do(req{method: "POST", path: "/webhooks", tenant: "a", body: hookBody("orders"), header: key})
	require.Equal(t, http.StatusCreated, again.status, "%s", again.body)
	assert.Equal(t, "true", again.header.Get("Idempotent-Replayed"))
	assert.Equal(t, first.json(t)["id"], again.json(t)["id"], "the same key returns the same webhook")
	assert.Equal(t, first.json(t)["secret"], again.json(t)["secret"])

	other := e.do(req{method: "POST", path: "/webhooks", tenant: "a", body: hookBody("other"), header: key})
	require.Equal(t, http.StatusUnprocessableEntity, other.status, "%s", other.body)
	assert.Contains(t, string(other.body), `"header":"Idempotency-Key"`)

	b := e.do(req{method: "POST", path: "/webhooks", tenant: "b", body: hookBody("orders"), header: key})
	require.Equal(t, http.StatusCreated, b.status)
	assert.Empty(t, b.header.Get("Idempotent-Replayed"), "keys of tenants never meet")
	assert.NotEqual(t, first.json(t)["id"], b.json(t)["id"])

	list := e.do(req{method: "GET", path: "/webhooks", tenant: "a"})
	assert.Len(t, list.json(t)["data"], 1)

	bad := e.do(req{method: "POST", path: "/webhooks", tenant: "a", body: hookBody("x"), header: map[string]string{"Idempotency-Key": strings.Repeat("k", 300)}, invalid: true})
	assert.Equal(t, http.StatusBadRequest, bad.status)
}

func TestGetAndDeleteWebhook(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create("a", "one")["id"].(string)
	r := e.do(req{method: "GET", path: "/webhooks/" + id, tenant: "a"})
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, id, r.json(t)["id"])
	assert.Equal(t, `"1"`, r.header.Get("ETag"))

	r = e.do(req{method: "DELETE", path: "/webhooks/" + id, tenant: "a"})
	require.Equal(t, http.StatusNoContent, r.status)
	assert.Empty(t, r.body)
	r = e.do(req{method: "GET", path: "/webhooks/" + id, tenant: "a"})
	assert.Equal(t, http.StatusNotFound, r.status)
	r = e.do(req{method: "DELETE", path: "/webhooks/" + id, tenant: "a"})
	assert.Equal(t, http.StatusNotFound, r.status)
	r = e.do(req{method: "GET", path: "/webhooks/" + id + "?verbose=1", tenant: "a", invalid: true})
	assert.Equal(t, http.StatusBadRequest, r.status)
}

func TestListWebhooksPages(t *testing.T) {
	e := newEnv(t, nil)
	var ids []string
	for i := range 7 {
		ids = append(ids, e.create("a", fmt.Sprintf("w%d", i))["id"].(string))
	}
	e.create("b", "other")
	var got []string
	cursor := ""
	pages := 0
	for {
		path := "/webhooks?limit=3"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := e.do(req{method: "GET", path: path, tenant: "a"})
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		assert.NotContains(t, string(r.body), "whsec_", "lists never show secrets")
		p := r.json(t)
		pages++
		for _, w := range p["data"].([]any) {
			got = append(got, w.(map[string]any)["id"].(string))
		}
		if !p["has_more"].(bool) {
			assert.Nil(t, p["next_cursor"])
			break
		}
		cursor = p["next_cursor"].(string)
		require.NotEmpty(t, cursor)
		require.Less(t, pages, 5)
	}
	assert.Equal(t, ids, got, "every webhook once, in creation order")
	assert.Equal(t, 3, pages)

	// A page that ends exactly at the last webhook says there is no more.
	r := e.do(req{method: "GET", path: "/webhooks?limit=7", tenant: "a"})
	assert.Equal(t, false, r.json(t)["has_more"])

	for _, bad := range []string{"?limit=0", "?limit=1001", "?limit=x", "?cursor=nope", "?limit=1&limit=2", "?cursor=" + deliveryCursorOf(t, e)} {
		r := e.do(req{method: "GET", path: "/webhooks" + bad, tenant: "a", invalid: true})
		assert.Equal(t, http.StatusBadRequest, r.status, bad)
	}
}

// deliveryCursorOf returns a cursor of a delivery history, which the
// webhook list must refuse.
func deliveryCursorOf(t *testing.T, e *env) string {
	t.Helper()
	hook, _, _ := e.failedDelivery("c", "cursor")
	r := e.do(req{method: "GET", path: "/webhooks/" + hook + "/deliveries?limit=1", tenant: "c"})
	require.Equal(t, http.StatusOK, r.status)
	return r.json(t)["next_cursor"].(string)
}

func TestReplaceWebhook(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	w := e.create("a", "one")
	id := w["id"].(string)
	_, err := e.svc.Disable(ctx, id, "paused by support")
	require.NoError(t, err)

	// A PUT without "enabled" keeps the webhook disabled; omitted
	// fields take their defaults.
	r := e.do(req{method: "PUT", path: "/webhooks/" + id, tenant: "a", body: `{"name":"renamed","url":"https://example.com/new","triggers":[{"trigger_type":"error"}]}`})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	got := r.json(t)
	assert.Equal(t, "renamed", got["name"])
	assert.Equal(t, false, got["enabled"], "a PUT without enabled does not re-enable")
	assert.Equal(t, "paused by support", got["disabled_reason"])
	assert.Equal(t, `"3"`, r.header.Get("ETag"))
	assert.NotContains(t, string(r.body), "whsec_")

	// GET, change, PUT back: read-only fields are accepted.
	back := strings.Replace(string(e.do(req{method: "GET", path: "/webhooks/" + id, tenant: "a"}).body), `"enabled":false`, `"enabled":true`, 1)
	r = e.do(req{method: "PUT", path: "/webhooks/" + id, tenant: "a", body: back})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, true, r.json(t)["enabled"])
	_, hasReason := r.json(t)["disabled_reason"]
	assert.False(t, hasReason)

	// The body's version is a precondition: 409 when stale.
	r = e.do(req{method: "PUT", path: "/webhooks/" + id, tenant: "a", body: back})
	assert.Equal(t, http.StatusConflict, r.status, "%s", r.body)
	assert.Contains(t, string(r.body), `"pointer":"/version"`)

	// If-Match likewise, with 412.
	body := `{"name":"n","url":"https://example.com/n","triggers":[{"trigger_type":"event"}]}`
	r = e.do(req{method: "PUT", path: "/webhooks/" + id, tenant: "a", body: body, header: map[string]string{"If-Match": `"1"`}})
	assert.Equal(t, http.StatusPreconditionFailed, r.status)
	r = e.do(req{method: "PUT", path: "/webhooks/" + id, tenant: "a", body: body, header: map[string]string{"If-Match": `W/"4"`}})
	assert.Equal(t, http.StatusPreconditionFailed, r.status, "a weak tag never matches")
	r = e.do(req{method: "PUT", path: "/webhooks/" + id, tenant: "a", body: body, header: map[string]string{"If-Match": `"2", "4"`}})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, `"5"`, r.header.Get("ETag"))
	r = e.do(req{method: "PUT", path: "/webhooks/" + id, tenant: "a", body: body, header: map[string]string{"If-Match": "*"}})
	require.Equal(t, http.StatusOK, r.status)

	for name, bad := range map[string]struct {
		body   string
		status int
	}{
		"secret":    {`{"name":"n","url":"https://example.com/n","secret":"whsec_x","triggers":[{"trigger_type":"event"}]}`, 400},
		"other id":  {`{"id":"x","name":"n","url":"https://example.com/n","triggers":[{"trigger_type":"event"}]}`, 400},
		"unknown":   {`{"name":"n","url":"https://example.com/n","trigers":[]}`, 400},
		"invalid":   {`{"name":"n","url":"https://example.com/n","triggers":[{"trigger_type":"nope"}]}`, 422},
		"no body":   {``, 400},
		"malformed": {`{`, 400},
	} {
		r := e.do(req{method: "PUT", path: "/webhooks/" + id, tenant: "a", body: bad.body, invalid: true})
		assert.Equal(t, bad.status, r.status, "%s: %s", name, r.body)
	}
	r = e.do(req{method: "PUT", path: "/webhooks/missing", tenant: "a", body: body})
	assert.Equal(t, http.StatusNotFound, r.status)
}

func TestPatchWebhook(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	id := e.create("a", "one")["id"].(string)
	_, err := e.svc.Update(ctx, &webhook.Webhook{ID: id, Name: "one", URL: "https://example.com/one",
		Headers: map[string]string{"X-A": "1", "X-B": "2"}, Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
	require.NoError(t, err)

	patch := func(body, ct string) resp {
		return e.do(req{method: "PATCH", path: "/webhooks/" + id, tenant: "a", body: body, contentType: ct})
	}
	r := patch(`{"name":"patched","headers":{"X-A":null,"X-C":"3"},"retry":{"max_attempts":2}}`, "application/merge-patch+json")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	got := r.json(t)
	assert.Equal(t, "patched", got["name"])
	assert.Equal(t, "https://example.com/one", got["url"], "members left out stay")
	assert.Equal(t, map[string]any{"X-B": "2", "X-C": "3"}, got["headers"], "null removes a member, others merge")
	retry := got["retry"].(map[string]any)
	assert.Equal(t, float64(2), retry["max_attempts"])
	assert.Equal(t, float64(5), retry["initial_delay_seconds"], "nested objects merge")

	r = patch(`{"enabled":false,"disabled_reason":"vacation"}`, "application/json")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, false, r.json(t)["enabled"])
	r = patch(`{"enabled":null,"name":"still off"}`, "")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, false, r.json(t)["enabled"], "enabled: null leaves the state as it is")
	assert.Equal(t, "vacation", r.json(t)["disabled_reason"])

	stored, err := e.svc.Get(ctx, id)
	require.NoError(t, err)
	r = e.do(req{method: "PATCH", path: "/webhooks/" + id, tenant: "a", body: `{"name":"x"}`, contentType: typeMergePatch, header: map[string]string{"If-Match": `"1"`}})
	assert.Equal(t, http.StatusPreconditionFailed, r.status)
	r = e.do(req{method: "PATCH", path: "/webhooks/" + id, tenant: "a", body: fmt.Sprintf(`{"name":"x","version":%d}`, stored.Version-1), contentType: typeMergePatch})
	assert.Equal(t, http.StatusConflict, r.status)
	r = e.do(req{method: "PATCH", path: "/webhooks/" + id, tenant: "a", body: fmt.Sprintf(`{"name":"x","version":%d}`, stored.Version), contentType: typeMergePatch})
	assert.Equal(t, http.StatusOK, r.status, "%s", r.body)

	for name, bad := range map[string]struct {
		body, ct string
		status   int
	}{
		"unknown":          {`{"nmae":"x"}`, typeMergePatch, 400},
		"unknown null":     {`{"nmae":null}`, typeMergePatch, 400},
		"nested unknown":   {`{"retry":{"max_attempt":3}}`, typeMergePatch, 400},
		"secret":           {`{"secret":"whsec_x"}`, typeMergePatch, 400},
		"not an object":    {`[]`, typeMergePatch, 400},
		"wrong type":       {`{"name":5}`, typeMergePatch, 400},
		"invalid":          {`{"url":"notaurl"}`, typeMergePatch, 422},
		"triggers removed": {`{"triggers":null}`, typeMergePatch, 422},
		"media type":       {`{"name":"x"}`, "application/xml", 415},
	} {
		r := e.do(req{method: "PATCH", path: "/webhooks/" + id, tenant: "a", body: bad.body, contentType: bad.ct, invalid: true})
		assert.Equal(t, bad.status, r.status, "%s: %s", name, r.body)
		if bad.status == 415 {
			assert.Contains(t, r.header.Get("Accept-Patch"), typeMergePatch)
		}
	}
}

const typeMergePatch = "application/merge-patch+json"

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create("a", "one")["id"].(string)
	for _, c := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/nothing", 404, ""},
		{"GET", "/webhooks/" + id + "/nothing", 404, ""},
		{"DELETE", "/webhooks", 405, "GET, HEAD, POST"},
		{"POST", "/webhooks/" + id, 405, "DELETE, GET, HEAD, PATCH, PUT"},
		{"GET", "/webhooks/" + id + "/test", 405, "POST"},
		{"PUT", "/event-types", 405, "GET, HEAD"},
	} {
		r := e.do(req{method: c.method, path: c.path, tenant: "a", invalid: true})
		assert.Equal(t, c.status, r.status, "%s %s", c.method, c.path)
		assert.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
		assert.Equal(t, float64(c.status), r.json(t)["status"])
		assert.Equal(t, c.allow, r.header.Get("Allow"), "%s %s", c.method, c.path)
	}
}

func TestPointer(t *testing.T) {
	for in, want := range map[string]string{
		"url":                             "/url",
		"(input)":                         "",
		"":                                "",
		"triggers[0].filters[1].value":    "/triggers/0/filters/1/value",
		"retry.max_attempts":              "/retry/max_attempts",
		`headers["X-Team"]`:               "/headers/X-Team",
		`headers["a/b~c"]`:                "/headers/a~1b~0c",
		`headers["with \"quote\" and ]"]`: `/headers/with "quote" and ]`,
		"previous_secrets[0].secret":      "/previous_secrets/0/secret",
		"triggers[0":                      "/triggers/0",
		`headers["unterminated`:           `/headers/"unterminated`,
	} {
		assert.Equal(t, want, httpapi.Pointer(in), in)
	}
}

func TestNewConfig(t *testing.T) {
	svc, err := webhook.NewService(memstore.New(nil), nil)
	require.NoError(t, err)
	_, err = httpapi.New(nil, nil)
	require.ErrorIs(t, err, webhook.ErrInvalid)
	for _, cfg := range []httpapi.Config{
		{Prefix: "api"},
		{Prefix: "/a{b}"},
		{Prefix: "/a b"},
		{MaxBodyBytes: -1},
		{EventTypes: []webhook.EventType{{Name: "$mine"}}},
		{EventTypes: []webhook.EventType{{Name: "a"}, {Name: "a"}}},
		{EventTypes: []webhook.EventType{{Name: ""}}},
		{EventTypes: []webhook.EventType{{Name: "a", Schema: []byte("{")}}},
	} {
		_, err := httpapi.New(svc, &cfg)
		assert.ErrorIs(t, err, webhook.ErrInvalid, "%+v", cfg)
	}
	h, err := httpapi.New(svc, nil)
	require.NoError(t, err)
	require.NotNil(t, h)
}
