package main

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// browserClient is an HTTP client with cookies that does not follow
// redirects, sending forms as a same-origin browser page would.
type browserClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newBrowserClient(t *testing.T, addr string) *browserClient {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &browserClient{t: t, base: "http://" + addr, c: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browserClient) do(method, path string, form url.Values, site string) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(context.Background(), method, b.base+path, body)
	require.NoError(b.t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", site)
	}
	res, err := b.c.Do(req)
	require.NoError(b.t, err)
	defer res.Body.Close()
	bs, err := io.ReadAll(res.Body)
	require.NoError(b.t, err)
	return res, string(bs)
}

func TestPortalSignsInWithATokenAndShowsTheTenantsEndpoints(t *testing.T) {
	addr := startServer(t, options{})
	// acme has an endpoint, made through the API.
	req, err := http.NewRequest("POST", "http://"+addr+"/api/webhooks", strings.NewReader(`{"name":"acme orders","url":"http://`+addr+`/receiver/orders","triggers":[{"trigger_type":"event","events":["order.*"]}]}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer demo-acme")
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = res.Body.Close()
	require.Equal(t, http.StatusCreated, res.StatusCode)

	b := newBrowserClient(t, addr)
	res, _ = b.do("GET", "/portal/", nil, "")
	assert.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, "/portal/login", res.Header.Get("Location"), "signed out: to the login form")
	res, page := b.do("GET", "/portal/login", nil, "")
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, page, `<label for="token">`)
	assert.NotEmpty(t, res.Header.Get("Content-Security-Policy"))

	res, page = b.do("POST", "/portal/login", url.Values{"token": {"wrong"}}, "same-origin")
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Contains(t, page, "That token is not known.")
	res, _ = b.do("POST", "/portal/login", url.Values{"token": {"demo-acme"}}, "cross-site")
	assert.Equal(t, http.StatusForbidden, res.StatusCode, "a page of another site cannot sign a visitor in")

	res, _ = b.do("POST", "/portal/login", url.Values{"token": {"demo-acme"}}, "same-origin")
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, "/portal/", res.Header.Get("Location"))
	cookie := res.Header.Get("Set-Cookie")
	assert.Contains(t, cookie, "portal_session=")
	assert.Contains(t, cookie, "Path=/portal")
	assert.Contains(t, cookie, "HttpOnly")
	assert.Contains(t, cookie, "SameSite=Lax")
	assert.NotContains(t, cookie, "demo-acme", "the cookie is a session ID, not the token")

	res, page = b.do("GET", "/portal/", nil, "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, page, "acme orders")
	assert.Contains(t, page, "Account <span>acme</span>")
	assert.NotContains(t, page, "demo-acme")
	res, _ = b.do("GET", "/portal/static/portal.css", nil, "")
	assert.Equal(t, http.StatusOK, res.StatusCode)

	// globex sees none of acme's endpoints.
	g := newBrowserClient(t, addr)
	res, _ = g.do("POST", "/portal/login", url.Values{"token": {"demo-globex"}}, "same-origin")
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	_, page = g.do("GET", "/portal/", nil, "")
	assert.NotContains(t, page, "acme orders")
	assert.Contains(t, page, "You have no endpoints yet.")

	// Signing out ends the session.
	res, _ = b.do("POST", "/portal/logout", url.Values{}, "same-origin")
	assert.Equal(t, http.StatusSeeOther, res.StatusCode)
	res, _ = b.do("GET", "/portal/", nil, "")
	assert.Equal(t, "/portal/login", res.Header.Get("Location"))
	res, _ = b.do("POST", "/portal/new", url.Values{"url": {"http://x"}}, "same-origin")
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
}

func TestSessionsAreBounded(t *testing.T) {
	ss := newSessions(func(string) (string, bool) { return "t", true })
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ss.now = func() time.Time { return now }
	for range maxSessions {
		_, ok := ss.start("t")
		require.True(t, ok)
	}
	_, ok := ss.start("t")
	assert.False(t, ok, "full")
	now = now.Add(sessionTTL)
	id, ok := ss.start("t")
	assert.True(t, ok, "expired sessions make room")
	assert.Len(t, ss.byID, 1)
	r, err := http.NewRequest("GET", "/", nil)
	require.NoError(t, err)
	r.AddCookie(&http.Cookie{Name: sessionCookie, Value: id})
	tenant, ok := ss.tenant(r)
	assert.True(t, ok)
	assert.Equal(t, "t", tenant)
	now = now.Add(sessionTTL)
	_, ok = ss.tenant(r)
	assert.False(t, ok, "expired")
}

// Signing in again ends the session the browser had: its old cookie
// no longer signs anyone in.
func TestSignInAgainEndsTheOldSession(t *testing.T) {
	addr := startServer(t, options{})
	b := newBrowserClient(t, addr)
	session := func(res *http.Response) string {
		for _, c := range res.Cookies() {
			if c.Name == sessionCookie {
				return c.Value
			}
		}
		t.Fatal("no session cookie")
		return ""
	}
	res, _ := b.do("POST", "/portal/login", url.Values{"token": {"demo-acme"}}, "same-origin")
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	old := session(res)
	res, _ = b.do("POST", "/portal/login", url.Values{"token": {"demo-globex"}}, "same-origin")
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.NotEqual(t, old, session(res))
	_, page := b.do("GET", "/portal/", nil, "")
	assert.Contains(t, page, "Account <span>globex</span>")

	req, err := http.NewRequest("GET", "http://"+addr+"/portal/", nil)
	require.NoError(t, err)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: old})
	// A client without the jar, so that the old cookie is the only one.
	plain := &http.Client{Timeout: 10 * time.Second, CheckRedirect: b.c.CheckRedirect}
	res, err = plain.Do(req)
	require.NoError(t, err)
	_ = res.Body.Close()
	assert.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, "/portal/login", res.Header.Get("Location"), "the old session ended")
}
