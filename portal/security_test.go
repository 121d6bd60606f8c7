package portal_test

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/portal"
)

// TestAnotherTenantsIDsAnswer404 walks every page and form with tenant
// a's endpoint and delivery IDs as tenant b: each answers 404 and
// changes nothing.
func TestAnotherTenantsIDsAnswer404(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	id := e.create("a")
	did := e.failDelivery("a")
	before, err := e.svc.Get(ctx, id)
	require.NoError(t, err)
	beforeDs, err := e.svc.Deliveries(ctx, id, 100)
	require.NoError(t, err)

	// Tenant b has an endpoint of its own, so that a's delivery under
	// b's endpoint is tried too.
	bid := e.create("b")
	since := time.Now().Add(-time.Hour).UTC().Format("2006-01-02T15:04")
	form := e.endpointForm()
	form.Set("version", "1")
	reqs := []struct {
		method, path string
		form         url.Values
	}{
		{"GET", "/endpoints/" + id, nil},
		{"GET", "/endpoints/" + id + "/edit", nil},
		{"POST", "/endpoints/" + id + "/edit", form},
		{"POST", "/endpoints/" + id + "/enable", url.Values{}},
		{"POST", "/endpoints/" + id + "/disable", url.Values{"reason": {"b was here"}}},
		{"GET", "/endpoints/" + id + "/delete", nil},
		{"POST", "/endpoints/" + id + "/delete", url.Values{}},
		{"POST", "/endpoints/" + id + "/secret", url.Values{}},
		{"POST", "/endpoints/" + id + "/rotate", url.Values{"grace_hours": {"1"}}},
		{"POST", "/endpoints/" + id + "/test", url.Values{}},
		{"GET", "/endpoints/" + id + "/deliveries", nil},
		{"GET", "/endpoints/" + id + "/deliveries/" + did, nil},
		{"GET", "/endpoints/" + bid + "/deliveries/" + did, nil},
		{"POST", "/endpoints/" + id + "/deliveries/" + did + "/redeliver", url.Values{}},
		{"POST", "/endpoints/" + bid + "/deliveries/" + did + "/redeliver", url.Values{}},
		{"GET", "/endpoints/" + id + "/replay", nil},
		{"POST", "/endpoints/" + id + "/replay", url.Values{"since": {since}, "confirm": {"yes"}}},
	}
	calls := e.rc.calls.Load()
	for _, rq := range reqs {
		r := e.do(rq.method, "b", rq.path, rq.form)
		assert.Equal(t, http.StatusNotFound, r.status, "%s %s", rq.method, rq.path)
		assert.NotContains(t, html.UnescapeString(r.body), strings.TrimPrefix(before.Secret, "whsec_"))
		assert.NotContains(t, r.body, "Orders", "%s %s shows nothing of a's", rq.method, rq.path)
	}
	after, err := e.svc.Get(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, before.Version, after.Version, "a's endpoint did not change")
	assert.Equal(t, before.Secret, after.Secret)
	afterDs, err := e.svc.Deliveries(ctx, id, 100)
	require.NoError(t, err)
	assert.Len(t, afterDs, len(beforeDs), "no delivery was added")
	assert.Equal(t, calls, e.rc.calls.Load(), "nothing was sent")
	list := e.get("b", "/")
	assert.NotContains(t, list.body, id)
	// b's own endpoint is there, and b's name for it too.
	assert.Contains(t, list.body, bid)
}

func TestCrossOriginFormsAreRefused(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create("a")
	for name, hdr := range map[string]map[string]string{
		"Sec-Fetch-Site cross-site": {"Sec-Fetch-Site": "cross-site"},
		"Sec-Fetch-Site same-site":  {"Sec-Fetch-Site": "same-site"},
		"Origin of another host":    {"Origin": "https://evil.example"},
	} {
		t.Run(name, func(t *testing.T) {
			for _, path := range []string{"/new", "/endpoints/" + id + "/delete", "/endpoints/" + id + "/secret", "/endpoints/" + id + "/disable"} {
				req, err := http.NewRequest("POST", e.srv.URL+"/portal"+path, strings.NewReader(e.endpointForm().Encode()))
				require.NoError(t, err)
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("X-Tenant", "a")
				for k, v := range hdr {
					req.Header.Set(k, v)
				}
				res, err := e.client.Do(req)
				require.NoError(t, err)
				b := readAll(t, res)
				assert.Equal(t, http.StatusForbidden, res.StatusCode, path)
				assert.Contains(t, b, "sent from another site")
				assert.NotEmpty(t, res.Header.Get("Content-Security-Policy"))
			}
		})
	}
	ws, err := e.svc.List(context.Background(), webhook.ListWebhooksParams{})
	require.NoError(t, err)
	require.Len(t, ws, 1, "nothing was created")
	assert.False(t, ws[0].Disabled, "nothing was disabled")
	assert.Contains(t, e.logs.String(), "cross-origin request refused")
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create("a")
	for _, path := range []string{"/", "/new", "/endpoints/" + id, "/endpoints/" + id + "/deliveries", "/endpoints/nope", "/static/portal.css", "/no/such/page"} {
		r := e.get("a", path)
		csp := r.header.Get("Content-Security-Policy")
		assert.Equal(t, "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'", csp, path)
		assert.Equal(t, "DENY", r.header.Get("X-Frame-Options"), path)
		assert.Equal(t, "nosniff", r.header.Get("X-Content-Type-Options"), path)
		if !strings.HasPrefix(path, "/static/") {
			assert.Equal(t, "no-store", r.header.Get("Cache-Control"), path)
			assert.NotContains(t, r.body, "<style", "no inline style")
			assert.NotContains(t, r.body, " style=", "no inline style")
			assert.NotRegexp(t, `<script>|<script [^>]*>[^<]`, r.body, "no inline script")
			assert.NotRegexp(t, ` on[a-z]+=`, r.body, "no inline handlers")
		}
	}

	for _, c := range []struct {
		ancestors []string
		csp, xfo  string
	}{
		{[]string{"'self'"}, "frame-ancestors 'self'", "SAMEORIGIN"},
		{[]string{"https://app.example.com", "'self'"}, "frame-ancestors https://app.example.com 'self'", ""},
	} {
		f := newEnv(t, &portal.Config{FrameAncestors: c.ancestors})
		r := f.get("a", "/")
		assert.True(t, strings.HasSuffix(r.header.Get("Content-Security-Policy"), c.csp), r.header.Get("Content-Security-Policy"))
		assert.Equal(t, c.xfo, r.header.Get("X-Frame-Options"))
	}
}

// TestNoSecretInURLsLogsOrPagesUnlessRevealed drives every page and
// form, capturing the Service's and the portal's logs at debug level,
// and looks for the secret in each.
func TestNoSecretInURLsLogsOrPagesUnlessRevealed(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	id := e.create("a")
	did := e.failDelivery("a")
	w, err := e.svc.Get(ctx, id)
	require.NoError(t, err)
	secrets := []string{w.Secret}
	check := func(what string, r resp) {
		t.Helper()
		for _, s := range secrets {
			assert.NotContains(t, html.UnescapeString(r.body), strings.TrimPrefix(s, "whsec_"), what)
			for k, vs := range r.header {
				assert.NotContains(t, strings.Join(vs, " "), strings.TrimPrefix(s, "whsec_"), "%s: header %s", what, k)
			}
		}
	}
	for _, path := range []string{"/", "/new", "/endpoints/" + id, "/endpoints/" + id + "/edit", "/endpoints/" + id + "/delete", "/endpoints/" + id + "/deliveries", "/endpoints/" + id + "/deliveries/" + did, "/endpoints/" + id + "/replay"} {
		check(path, e.get("a", path))
	}
	check("test", e.post("a", "/endpoints/"+id+"/test", nil))
	check("rotate", e.post("a", "/endpoints/"+id+"/rotate", url.Values{"grace_hours": {"24"}}))
	w, err = e.svc.Get(ctx, id)
	require.NoError(t, err)
	secrets = append(secrets, w.Secret)
	check("after rotation", e.get("a", "/endpoints/"+id))
	check("edit", e.post("a", "/endpoints/"+id+"/edit", url.Values{"url": {"bad"}, "name": {"x"}, "version": {"2"}}))
	check("disable", e.post("a", "/endpoints/"+id+"/disable", nil))
	check("replay", e.post("a", "/endpoints/"+id+"/replay", url.Values{"since": {"2026-01-01T00:00"}}))

	revealed := e.post("a", "/endpoints/"+id+"/secret", nil)
	assert.Contains(t, html.UnescapeString(revealed.body), w.Secret, "revealed on request")
	assert.NotContains(t, html.UnescapeString(revealed.body), strings.TrimPrefix(secrets[0], "whsec_"), "the retired secret is not shown")

	logs := e.logs.String()
	require.Contains(t, logs, "level=DEBUG", "debug logs were captured")
	for _, s := range secrets {
		assert.NotContains(t, logs, strings.TrimPrefix(s, "whsec_"))
	}
}

func TestTenantErrors(t *testing.T) {
	e := newEnv(t, nil)
	r := e.get("", "/")
	assert.Equal(t, http.StatusUnauthorized, r.status)
	assert.Contains(t, text(r.body), "Please sign in first.")
	assert.Equal(t, http.StatusForbidden, e.get("forbidden", "/").status)
	r = e.get("limited", "/")
	assert.Equal(t, http.StatusTooManyRequests, r.status)
	assert.Equal(t, "2", r.header.Get("Retry-After"))

	f := newEnv(t, &portal.Config{Tenant: func(*http.Request) (string, error) { return "", nil }})
	assert.Equal(t, http.StatusInternalServerError, f.get("a", "/").status)
}

func TestStaticAssets(t *testing.T) {
	e := newEnv(t, nil)
	page := e.get("a", "/")
	css := regexpFind(t, `href="/portal(/static/portal\.css\?v=[0-9a-f]+)"`, page.body)
	js := regexpFind(t, `src="/portal(/static/portal\.js\?v=[0-9a-f]+)"`, page.body)
	r := e.get("", css)
	assert.Equal(t, http.StatusOK, r.status, "assets need no tenant")
	assert.Equal(t, "text/css; charset=utf-8", r.header.Get("Content-Type"))
	assert.Contains(t, r.header.Get("Cache-Control"), "immutable")
	r = e.get("", js)
	assert.Equal(t, "text/javascript; charset=utf-8", r.header.Get("Content-Type"))
	assert.Contains(t, r.body, "navigator.clipboard")
	r = e.get("", "/static/portal.css?v=old")
	assert.Equal(t, "no-cache", r.header.Get("Cache-Control"))
	assert.Equal(t, http.StatusNotFound, e.get("", "/static/nope.js").status)
}

func TestMountedAnywhere(t *testing.T) {
	e := newEnv(t, nil)
	h, err := portal.New(e.svc, &portal.Config{Prefix: "/", Tenant: testTenant})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, err := http.NewRequest("GET", srv.URL+"/new", nil)
	require.NoError(t, err)
	req.Header.Set("X-Tenant", "a")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	b := readAll(t, res)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, b, `action="/new"`)
	assert.Contains(t, b, `href="/static/portal.css?v=`)

	// The prefix without its slash goes to the list.
	r := e.get("a", "")
	assert.Contains(t, []int{http.StatusMovedPermanently, http.StatusTemporaryRedirect}, r.status)
	assert.Equal(t, "/portal/", r.header.Get("Location"))
	// A form posted to a page that is not one: 404, nothing else.
	assert.Equal(t, http.StatusNotFound, e.post("a", "/endpoints", nil).status)
}

func readAll(t *testing.T, res *http.Response) string {
	t.Helper()
	defer res.Body.Close()
	var b strings.Builder
	_, err := io.Copy(&b, res.Body)
	require.NoError(t, err)
	return b.String()
}

// TestWrongMethodAnswers405 sends each kind of page the method it does
// not serve: 405 with Allow, not 404; an unknown path stays 404.
func TestWrongMethodAnswers405(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create("a")
	for _, c := range []struct{ method, path, allow string }{
		{"POST", "/endpoints/" + id + "/deliveries", "GET, HEAD"},
		{"GET", "/endpoints/" + id + "/test", "POST"},
		{"DELETE", "/endpoints/" + id, "GET, HEAD"},
		{"PUT", "/new", "GET, HEAD, POST"},
	} {
		var form url.Values
		if c.method != "GET" {
			form = url.Values{}
		}
		r := e.do(c.method, "a", c.path, form)
		assert.Equal(t, http.StatusMethodNotAllowed, r.status, "%s %s", c.method, c.path)
		assert.Equal(t, c.allow, r.header.Get("Allow"), "%s %s", c.method, c.path)
		assert.NotEmpty(t, r.header.Get("Content-Security-Policy"))
	}
	r := e.do("POST", "a", "/no/such/page", url.Values{})
	assert.Equal(t, http.StatusNotFound, r.status)
	assert.Empty(t, r.header.Get("Allow"))
}

// TestFormTooLargeAnswers413 sends every form a body above the limit:
// 413, as the endpoint form does, and nothing changes.
func TestFormTooLargeAnswers413(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create("a")
	big := strings.Repeat("x", 70<<10)
	for _, c := range []struct {
		path string
		form url.Values
	}{
		{"/new", url.Values{"name": {big}}},
		{"/endpoints/" + id + "/edit", url.Values{"name": {big}}},
		{"/endpoints/" + id + "/disable", url.Values{"reason": {big}}},
		{"/endpoints/" + id + "/rotate", url.Values{"grace_hours": {"1"}, "pad": {big}}},
		{"/endpoints/" + id + "/replay", url.Values{"since": {"2026-01-01T00:00"}, "pad": {big}}},
	} {
		r := e.post("a", c.path, c.form)
		assert.Equal(t, http.StatusRequestEntityTooLarge, r.status, c.path)
	}
	w, err := e.svc.Get(context.Background(), id)
	require.NoError(t, err)
	assert.False(t, w.Disabled)
	assert.Empty(t, w.PreviousSecrets)
}
