package main

import (
	"crypto/rand"
	"encoding/base64"
	"html/template"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/httpapi"
	"github.com/analytics-webhooks/webhook/portal"
)

// The portal signs browsers in with a login form: a browser cannot send
// the API's bearer header, and a token in a URL (?token=) would end up
// in the history, in proxy and server logs and in Referer headers. The
// form takes the same token (a POST, refused from other sites by
// http.CrossOriginProtection, so no page elsewhere can sign a visitor in
// to its own account); the server answers with a random session ID in
// an HttpOnly, SameSite=Lax cookie scoped to /portal (Secure behind
// TLS), and keeps the ID → tenant map in memory for sessionTTL. The
// token itself never reaches the cookie, a page or a log line.
const (
	portalPrefix  = "/portal"
	sessionCookie = "portal_session"
	sessionTTL    = 8 * time.Hour
	// maxSessions bounds the session map; expired sessions are dropped
	// when it is full, and a login beyond it is refused (503).
	maxSessions = 10000
)

// sessions holds the portal's signed-in browsers.
type sessions struct {
	tenantOf func(token string) (string, bool)
	now      func() time.Time
	mu       sync.Mutex
	byID     map[string]session
}

type session struct {
	tenant  string
	expires time.Time
}

func newSessions(tenantOf func(string) (string, bool)) *sessions {
	return &sessions{tenantOf: tenantOf, now: time.Now, byID: map[string]session{}}
}

// start makes a session for tenant and returns its ID; false when the
// map is full.
func (s *sessions) start(tenant string) (string, bool) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	id := base64.RawURLEncoding.EncodeToString(b[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if len(s.byID) >= maxSessions {
		for k, v := range s.byID {
			if !now.Before(v.expires) {
				delete(s.byID, k)
			}
		}
		if len(s.byID) >= maxSessions {
			return "", false
		}
	}
	s.byID[id] = session{tenant: tenant, expires: now.Add(sessionTTL)}
	return id, true
}

// tenant returns the tenant of the request's session cookie.
func (s *sessions) tenant(r *http.Request) (string, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.byID[c.Value]
	if !ok || !s.now().Before(v.expires) {
		delete(s.byID, c.Value)
		return "", false
	}
	return v.tenant, true
}

// end drops the request's session.
func (s *sessions) end(r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		s.mu.Lock()
		delete(s.byID, c.Value)
		s.mu.Unlock()
	}
}

// portalTenant is the portal's Config.Tenant: the session's tenant, or
// httpapi.ErrUnauthenticated (401).
func (s *sessions) portalTenant(r *http.Request) (string, error) {
	if tenant, ok := s.tenant(r); ok {
		return tenant, nil
	}
	return "", httpapi.ErrUnauthenticated
}

// mountPortal adds the portal and its login pages to mux.
func mountPortal(mux *http.ServeMux, svc *webhook.Service, tokens map[string]string, log *slog.Logger) error {
	ss := newSessions(tokenTenant(tokens))
	p, err := portal.New(svc, &portal.Config{Prefix: portalPrefix, Tenant: ss.portalTenant, Logger: log,
		EventTypes: []webhook.EventType{
			{Name: "order.paid", Description: "An order was paid."},
			{Name: "order.refunded", Description: "An order was refunded."},
		}})
	if err != nil {
		return err
	}
	// Signed-out browsers asking for a page are sent to the login form;
	// the style sheet and script need no session.
	mux.Handle(portalPrefix+"/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := ss.tenant(r); !ok && r.Method == http.MethodGet {
			http.Redirect(w, r, portalPrefix+"/login", http.StatusSeeOther)
			return
		}
		p.ServeHTTP(w, r)
	}))
	mux.Handle(portalPrefix+"/static/", p)
	cop := http.NewCrossOriginProtection()
	mux.Handle("GET "+portalPrefix+"/login", http.HandlerFunc(ss.loginPage))
	mux.Handle("POST "+portalPrefix+"/login", cop.Handler(http.HandlerFunc(ss.login)))
	mux.Handle("POST "+portalPrefix+"/logout", cop.Handler(http.HandlerFunc(ss.logout)))
	return nil
}

var loginTemplate = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · Webhooks</title>
<link rel="stylesheet" href="/portal/static/portal.css">
</head>
<body>
<main id="main">
<h1>Webhook portal</h1>
{{- if .Tenant}}
<p>You are signed in to account <strong>{{.Tenant}}</strong>. <a href="/portal/">Open your endpoints</a></p>
<form method="post" action="/portal/logout"><button type="submit">Sign out</button></form>
{{- else}}
{{- with .Error}}<p class="problem" role="alert" id="token-error">{{.}}</p>{{end}}
<form method="post" action="/portal/login">
<div class="field">
<label for="token">API token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required{{if .Error}} aria-invalid="true" aria-describedby="token-error"{{end}}>
<p class="hint">This demo signs in with an API token, such as demo-acme; your product would use its own login.</p>
</div>
<button type="submit">Sign in</button>
</form>
{{- end}}
</main>
</body>
</html>
`))

// loginView is what the login page shows.
type loginView struct{ Tenant, Error string }

func (ss *sessions) render(w http.ResponseWriter, status int, v loginView) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = loginTemplate.Execute(w, v)
}

func (ss *sessions) loginPage(w http.ResponseWriter, r *http.Request) {
	tenant, _ := ss.tenant(r)
	ss.render(w, http.StatusOK, loginView{Tenant: tenant})
}

func (ss *sessions) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		ss.render(w, http.StatusBadRequest, loginView{Error: "The form could not be read."})
		return
	}
	tenant, ok := ss.tenantOf(r.PostForm.Get("token"))
	if !ok {
		ss.render(w, http.StatusUnauthorized, loginView{Error: "That token is not known."})
		return
	}
	// A new sign-in replaces the browser's session: the one it had (of
	// this account or another) ends, so that no old cookie stays valid.
	ss.end(r)
	id, ok := ss.start(tenant)
	if !ok {
		ss.render(w, http.StatusServiceUnavailable, loginView{Error: "Too many sessions; try again later."})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: portalPrefix, MaxAge: int(sessionTTL / time.Second),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, portalPrefix+"/", http.StatusSeeOther)
}

func (ss *sessions) logout(w http.ResponseWriter, r *http.Request) {
	ss.end(r)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: portalPrefix, MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, portalPrefix+"/login", http.StatusSeeOther)
}
