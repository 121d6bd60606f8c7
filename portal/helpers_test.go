package portal_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/httpapi"
	"github.com/analytics-webhooks/webhook/memstore"
	"github.com/analytics-webhooks/webhook/portal"
)

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// receiver is the endpoint the tests' webhooks point at: a local
// server answering with status (200 unless set).
type receiver struct {
	srv    *httptest.Server
	status atomic.Int32
	calls  atomic.Int32
}

func newReceiver(t testing.TB) *receiver {
	rc := &receiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.calls.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		st := int(rc.status.Load())
		if st == 0 {
			st = http.StatusOK
		}
		w.WriteHeader(st)
		_, _ = io.WriteString(w, "receiver says "+http.StatusText(st))
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// env is a portal over memstore behind a real HTTP server. The test
// host's authentication is the X-Tenant header: its value is the
// tenant; "forbidden" answers 403, "limited" 429, none 401.
type env struct {
	t      testing.TB
	svc    *webhook.Service
	worker *webhook.Worker
	rc     *receiver
	srv    *httptest.Server
	logs   *syncBuffer
	client *http.Client
}

func testTenant(r *http.Request) (string, error) {
	switch tok := r.Header.Get("X-Tenant"); tok {
	case "":
		if c, err := r.Cookie("tenant"); err == nil {
			return c.Value, nil
		}
		return "", httpapi.ErrUnauthenticated
	case "forbidden":
		return "", httpapi.ErrForbidden
	case "limited":
		return "", &httpapi.RateLimitError{RetryAfter: 1500 * time.Millisecond}
	default:
		return tok, nil
	}
}

func newEnv(t testing.TB, cfg *portal.Config) *env {
	t.Helper()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rc := newReceiver(t)
	svc, err := webhook.NewService(memstore.New(nil), &webhook.Config{Network: webhook.NetworkPolicy{AllowPrivate: true}, Logger: logger})
	require.NoError(t, err)
	worker, err := webhook.NewWorker(svc, nil)
	require.NoError(t, err)
	var c portal.Config
	if cfg != nil {
		c = *cfg
	}
	if c.Tenant == nil {
		c.Tenant = testTenant
	}
	if c.EventTypes == nil {
		c.EventTypes = []webhook.EventType{{Name: "order.paid", Description: "An order was paid."}, {Name: "order.refunded", Description: "An order was refunded."}}
	}
	c.Logger = logger
	h, err := portal.New(svc, &c)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &env{t: t, svc: svc, worker: worker, rc: rc, srv: srv, logs: logs, client: client}
}

// resp is a response read whole.
type resp struct {
	status int
	header http.Header
	body   string
}

// do sends one request as tenant ("" for none) to path below /portal;
// form, when not nil, is sent as a same-origin POST.
func (e *env) do(method, tenant, path string, form url.Values) resp {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, e.srv.URL+"/portal"+path, body)
	require.NoError(e.t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.Header.Set("Origin", e.srv.URL)
	}
	if tenant != "" {
		req.Header.Set("X-Tenant", tenant)
	}
	res, err := e.client.Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	return resp{status: res.StatusCode, header: res.Header, body: string(b)}
}

func (e *env) get(tenant, path string) resp { return e.do("GET", tenant, path, nil) }

func (e *env) post(tenant, path string, form url.Values) resp {
	if form == nil {
		form = url.Values{}
	}
	return e.do("POST", tenant, path, form)
}

// location returns the path below /portal a 303 sends to.
func (e *env) location(r resp) string {
	e.t.Helper()
	require.Equal(e.t, http.StatusSeeOther, r.status, "body: %s", r.body)
	loc := r.header.Get("Location")
	require.True(e.t, strings.HasPrefix(loc, "/portal/"), "Location %q", loc)
	return strings.TrimPrefix(loc, "/portal")
}

// idOf returns the last path segment before the query of a location.
func idOf(loc string) string {
	loc, _, _ = strings.Cut(loc, "?")
	return loc[strings.LastIndexByte(loc, '/')+1:]
}

// endpointForm is a valid create form for the receiver.
func (e *env) endpointForm() url.Values {
	return url.Values{"url": {e.rc.srv.URL + "/hook"}, "name": {"Orders"}, "event": {"order.paid", "$error"}, "max_attempts": {"1"}}
}

// create creates an endpoint of tenant through the form, and returns
// its ID.
func (e *env) create(tenant string) string {
	e.t.Helper()
	return idOf(e.location(e.post(tenant, "/new", e.endpointForm())))
}

// failDelivery triggers one order.paid event for tenant while the
// receiver answers 500, and runs the worker: with one attempt, the
// delivery fails. It returns the delivery's ID.
func (e *env) failDelivery(tenant string) string {
	e.t.Helper()
	e.rc.status.Store(http.StatusInternalServerError)
	defer e.rc.status.Store(0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ids, err := e.svc.TriggerEvent(ctx, "order.paid", map[string]any{"amount": 42}, "production", webhook.WithTenant(tenant))
	require.NoError(e.t, err)
	require.Len(e.t, ids, 1)
	_, err = e.worker.RunOnce(ctx)
	require.NoError(e.t, err)
	d, err := e.svc.Delivery(ctx, ids[0])
	require.NoError(e.t, err)
	require.Equal(e.t, webhook.StatusFailed, d.Status)
	return ids[0]
}

var tagPattern = regexp.MustCompile(`<[^>]+>`)

// text returns a page's text without its tags, spaces collapsed.
func text(html string) string {
	return strings.Join(strings.Fields(tagPattern.ReplaceAllString(html, " ")), " ")
}

func regexpMust(p string) *regexp.Regexp { return regexp.MustCompile(p) }
