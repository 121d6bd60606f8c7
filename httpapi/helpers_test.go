package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/httpapi"
	"github.com/analytics-webhooks/webhook/memstore"
)

// fakeDoer answers every request with its status, without a network.
type fakeDoer struct {
	status atomic.Int32
	calls  atomic.Int32
}

func (d *fakeDoer) Do(r *http.Request) (*http.Response, error) {
	d.calls.Add(1)
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	st := int(d.status.Load())
	if st == 0 {
		st = http.StatusOK
	}
	return &http.Response{StatusCode: st, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("ok")), Request: r}, nil
}

// env is a handler over memstore behind a real HTTP server, with
// bearer tokens naming tenants ("Bearer a" is tenant a), and its
// exchanges checked against the OpenAPI document.
type env struct {
	t      *testing.T
	svc    *webhook.Service
	store  *memstore.Store
	doer   *fakeDoer
	srv    *httptest.Server
	router routers.Router
	logs   *syncBuffer
}

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

// tokenPattern is what bearerTenant takes for a token.
var tokenPattern = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)

// bearerTenant is the test hosts' authentication: "Bearer <tenant>";
// "Bearer forbidden" is refused with 403, "Bearer limited" with 429.
func bearerTenant(r *http.Request) (string, error) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch {
	case !ok || !tokenPattern.MatchString(tok):
		// A real host looks tokens up; this one takes well-formed
		// tokens as tenants and refuses others.
		return "", httpapi.ErrUnauthenticated
	case tok == "forbidden":
		return "", httpapi.ErrForbidden
	case tok == "limited":
		return "", &httpapi.RateLimitError{RetryAfter: 1500 * time.Millisecond}
	}
	return tok, nil
}

// newEnv returns an env; cfg may set handler options, Tenant defaults
// to bearerTenant.
func newEnv(t *testing.T, cfg *httpapi.Config) *env {
	t.Helper()
	logs := &syncBuffer{}
	logger := newLogger(logs)
	store := memstore.New(nil)
	doer := &fakeDoer{}
	svc, err := webhook.NewService(store, &webhook.Config{Doer: doer, Logger: logger})
	require.NoError(t, err)
	var c httpapi.Config
	if cfg != nil {
		c = *cfg
	}
	if c.Tenant == nil {
		c.Tenant = bearerTenant
	}
	c.Logger = logger
	h, err := httpapi.New(svc, &c)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{t: t, svc: svc, store: store, doer: doer, srv: srv, router: loadRouter(t), logs: logs}
}

var (
	docOnce sync.Once
	doc     *openapi3.T
	docErr  error
)

// loadDoc loads and validates openapi.yaml.
func loadDoc(t testing.TB) *openapi3.T {
	t.Helper()
	docOnce.Do(func() {
		var b []byte
		b, docErr = os.ReadFile("openapi.yaml")
		if docErr != nil {
			return
		}
		doc, docErr = openapi3.NewLoader().LoadFromData(b)
		if docErr == nil {
			docErr = doc.Validate(context.Background())
		}
	})
	require.NoError(t, docErr)
	return doc
}

func loadRouter(t testing.TB) routers.Router {
	t.Helper()
	r, err := gorillamux.NewRouter(loadDoc(t))
	require.NoError(t, err)
	return r
}

// resp is a response read whole.
type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "body: %s", r.body)
	return m
}

// req describes one request of a test.
type req struct {
	method, path string // path below /api, with the query
	tenant       string // the bearer token; "" for none
	body         string
	contentType  string // defaults to application/json with a body
	header       map[string]string
	// invalid marks a request that the document does not allow (it is
	// meant to be refused); its response is still checked.
	invalid bool
}

// do sends the request and checks it (unless invalid) and its response
// against the OpenAPI document.
func (e *env) do(rq req) resp {
	e.t.Helper()
	var body io.Reader
	if rq.body != "" {
		body = strings.NewReader(rq.body)
	}
	r, err := http.NewRequestWithContext(e.t.Context(), rq.method, e.srv.URL+"/api"+rq.path, body)
	require.NoError(e.t, err)
	if rq.tenant != "" {
		r.Header.Set("Authorization", "Bearer "+rq.tenant)
	}
	if rq.body != "" {
		ct := rq.contentType
		if ct == "" {
			ct = "application/json"
		}
		r.Header.Set("Content-Type", ct)
	}
	for k, v := range rq.header {
		r.Header.Set(k, v)
	}
	res, err := e.srv.Client().Do(r)
	require.NoError(e.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	out := resp{status: res.StatusCode, header: res.Header, body: b}
	e.check(rq, r, out)
	return out
}

// check validates one exchange against the document: the request
// unless it is marked invalid, the response always, for every route the
// document has.
func (e *env) check(rq req, r *http.Request, out resp) {
	e.t.Helper()
	if out.status >= 500 {
		e.t.Errorf("%s %s: server error %d: %s", rq.method, rq.path, out.status, out.body)
	}
	if ct := out.header.Get("Content-Type"); out.status >= 400 {
		assert.Equal(e.t, "application/problem+json", ct, "%s %s: errors are problems", rq.method, rq.path)
	}
	// The validator reads the request again: give it the body anew, and
	// the path below the server URL as the document sees it.
	vr := r.Clone(e.t.Context())
	if rq.body != "" {
		vr.Body = io.NopCloser(strings.NewReader(rq.body))
	}
	route, params, err := e.router.FindRoute(vr)
	if err != nil {
		return // not a route of the document (404, 405): nothing to check
	}
	in := &openapi3filter.RequestValidationInput{Request: vr, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if !rq.invalid {
		assert.NoError(e.t, openapi3filter.ValidateRequest(e.t.Context(), in), "%s %s: the request fits the document", rq.method, rq.path)
	}
	rin := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: out.status, Header: out.header,
		Body: io.NopCloser(bytes.NewReader(out.body)), Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	assert.NoError(e.t, openapi3filter.ValidateResponse(e.t.Context(), rin), "%s %s: the response %d fits the document: %s", rq.method, rq.path, out.status, out.body)
}

// hookBody is a valid webhook for create.
func hookBody(name string) string {
	return `{"name":"` + name + `","url":"https://example.com/` + name + `","triggers":[{"trigger_type":"event","events":["purchase"]}]}`
}

// create makes a webhook of the tenant through the API and returns its JSON.
func (e *env) create(tenant, name string) map[string]any {
	e.t.Helper()
	r := e.do(req{method: "POST", path: "/webhooks", tenant: tenant, body: hookBody(name)})
	require.Equal(e.t, http.StatusCreated, r.status, "%s", r.body)
	return r.json(e.t)
}

// failedDelivery makes a webhook of the tenant with one failed and one
// delivered delivery (each with one attempt) and returns the webhook's
// ID and the failed delivery's.
func (e *env) failedDelivery(tenant, name string) (hookID, failedID, deliveredID string) {
	e.t.Helper()
	ctx := e.t.Context()
	w, err := e.svc.Tenant(tenant).Create(ctx, &webhook.Webhook{Name: name, URL: "https://example.com/" + name,
		Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent, Events: []string{"order"}}}, Retry: webhook.RetryPolicy{MaxAttempts: 1}})
	require.NoError(e.t, err)
	worker, err := webhook.NewWorker(e.svc, nil)
	require.NoError(e.t, err)
	send := func(status int) string {
		e.doer.status.Store(int32(status))
		ids, err := e.svc.Tenant(tenant).TriggerEvent(ctx, "order", map[string]any{"n": 1}, "production")
		require.NoError(e.t, err)
		require.Len(e.t, ids, 1)
		_, err = worker.RunOnce(ctx)
		require.NoError(e.t, err)
		return ids[0]
	}
	failedID = send(http.StatusInternalServerError)
	deliveredID = send(http.StatusOK)
	e.doer.status.Store(0)
	return w.ID, failedID, deliveredID
}

func newServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func readAll(t *testing.T, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	return b
}

// newLogger logs everything, debug included, to w.
func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func decodeJSON(res *http.Response, v any) error {
	defer res.Body.Close()
	return json.NewDecoder(res.Body).Decode(v)
}
