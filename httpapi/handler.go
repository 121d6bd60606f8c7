package httpapi

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/analytics-webhooks/webhook"
)

// Config configures a Handler. A nil *Config and the zero value are
// valid: a single-tenant API under /api.
type Config struct {
	// Prefix is the path the API is mounted under: "/api" serves
	// "/api/webhooks". It must start with "/"; a trailing "/" is
	// dropped, and "/" mounts the API at the root. Defaults to "/api".
	Prefix string
	// Tenant returns the tenant of a request, from the host's own
	// authentication. Every route but GET {prefix}/openapi.yaml calls
	// it first and sees only that tenant's webhooks and deliveries
	// (through webhook.Service.Tenant): another tenant's IDs answer 404.
	// Its error decides the response: ErrUnauthenticated 401,
	// ErrForbidden 403, a *RateLimitError 429 with Retry-After, a
	// *StatusError its status; any other error 401. Nil means a
	// single-tenant host: the API manages the Service's webhooks
	// itself, of every tenant, and every request is allowed (put the
	// host's authentication in front of the Handler).
	Tenant func(r *http.Request) (string, error)
	// RateLimit, if set, is called after Tenant with the request's
	// tenant ("" for a single-tenant host) and may refuse the request:
	// return nil to serve it, a *RateLimitError for 429 with
	// Retry-After; ErrUnauthenticated, ErrForbidden and a *StatusError
	// answer as from Tenant, and any other error 429 without
	// Retry-After. Defaults to no limit.
	RateLimit func(r *http.Request, tenant string) error
	// MaxBodyBytes bounds request bodies; a larger one is answered
	// with 413. Defaults to 1 MiB.
	MaxBodyBytes int64
	// EventTypes are the host's own event types (the events its event
	// triggers hear), listed by GET {prefix}/event-types after the
	// library's. Names must be printable, at most
	// webhook.MaxEventNameLength bytes, unique, and not start with "$"
	// (the library's); a Schema, if set, must be JSON.
	EventTypes []webhook.EventType
	// Logger receives the API's logs: refused requests at debug level,
	// server faults at error level. Request bodies and secrets never
	// appear in them. Defaults to a logger that discards everything.
	Logger *slog.Logger
}

// DefaultMaxBodyBytes is the default of Config.MaxBodyBytes.
const DefaultMaxBodyBytes = 1 << 20

// DefaultPrefix is the default of Config.Prefix.
const DefaultPrefix = "/api"

// Handler serves the REST API. It is an http.Handler, safe for
// concurrent use; get one with New.
type Handler struct {
	svc        *webhook.Service
	mux        *http.ServeMux
	prefix     string
	tenant     func(*http.Request) (string, error)
	rateLimit  func(*http.Request, string) error
	maxBody    int64
	eventTypes []byte // the response of GET /event-types
	openapi    []byte // the document, with the server URL set to prefix
	log        *slog.Logger
}

//go:embed openapi.yaml
var openapiYAML []byte

// New returns the Handler of the REST API over svc. A nil cfg means the
// defaults. It returns an error wrapping webhook.ErrInvalid for a nil
// svc or a bad cfg field.
func New(svc *webhook.Service, cfg *Config) (*Handler, error) {
	if svc == nil {
		return nil, fmt.Errorf("%w: httpapi.New: nil Service", webhook.ErrInvalid)
	}
	var c Config
	if cfg != nil {
		c = *cfg
	}
	var problems []string
	prefix, err := cleanPrefix(c.Prefix)
	if err != nil {
		problems = append(problems, err.Error())
	}
	switch {
	case c.MaxBodyBytes == 0:
		c.MaxBodyBytes = DefaultMaxBodyBytes
	case c.MaxBodyBytes < 0:
		problems = append(problems, "MaxBodyBytes: must not be negative")
	}
	types, err := eventTypesBody(c.EventTypes)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: httpapi config: %s", webhook.ErrInvalid, strings.Join(problems, "; "))
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{
		svc: svc, mux: http.NewServeMux(), prefix: prefix,
		tenant: c.Tenant, rateLimit: c.RateLimit, maxBody: c.MaxBodyBytes,
		eventTypes: types, openapi: documentFor(prefix), log: c.Logger,
	}
	for _, rt := range routeTable {
		h.mux.Handle(rt.method+" "+prefix+rt.path, h.wrap(rt))
	}
	return h, nil
}

// cleanPrefix checks and normalises Config.Prefix.
func cleanPrefix(p string) (string, error) {
	if p == "" {
		return DefaultPrefix, nil
	}
	p = strings.TrimRight(p, "/")
	if p == "" {
		return "", nil // the root
	}
	bad := !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "{}?#%") || strings.Contains(p, "//")
	for _, r := range p {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			bad = true
		}
	}
	if bad || !utf8.ValidString(p) {
		return "", fmt.Errorf("prefix %q: must be a path starting with \"/\", without {}, ?, #, %%, \"//\" or spaces", p)
	}
	return p, nil
}

// route is one route of the API: its method and its path below the
// prefix (a ServeMux pattern), and what serves it.
type route struct {
	method, path string
	serve        func(h *Handler, rq *request) error
	// public routes do not ask Config.Tenant.
	public bool
}

// routeTable lists every route the Handler serves; the tests check the
// OpenAPI document against it.
var routeTable = []route{
	{method: "GET", path: "/webhooks", serve: (*Handler).listWebhooks},
	{method: "POST", path: "/webhooks", serve: (*Handler).createWebhook},
	{method: "GET", path: "/webhooks/{id}", serve: (*Handler).getWebhook},
	{method: "PUT", path: "/webhooks/{id}", serve: (*Handler).replaceWebhook},
	{method: "PATCH", path: "/webhooks/{id}", serve: (*Handler).patchWebhook},
	{method: "DELETE", path: "/webhooks/{id}", serve: (*Handler).deleteWebhook},
	{method: "POST", path: "/webhooks/{id}/test", serve: (*Handler).testWebhook},
	{method: "GET", path: "/webhooks/{id}/stats", serve: (*Handler).webhookStats},
	{method: "GET", path: "/webhooks/{id}/deliveries", serve: (*Handler).listDeliveries},
	{method: "GET", path: "/webhooks/{id}/deliveries/{delivery_id}", serve: (*Handler).getDelivery},
	{method: "POST", path: "/webhooks/{id}/deliveries/{delivery_id}/redeliver", serve: (*Handler).redeliver},
	{method: "POST", path: "/webhooks/{id}/replay", serve: (*Handler).replay},
	{method: "POST", path: "/webhooks/{id}/enable", serve: (*Handler).enable},
	{method: "POST", path: "/webhooks/{id}/disable", serve: (*Handler).disable},
	{method: "GET", path: "/webhooks/{id}/secret", serve: (*Handler).getSecret},
	{method: "POST", path: "/webhooks/{id}/secret/rotate", serve: (*Handler).rotateSecret},
	{method: "GET", path: "/event-types", serve: (*Handler).listEventTypes},
	{method: "GET", path: "/openapi.yaml", serve: (*Handler).openAPI, public: true},
}

// ServeHTTP serves one request of the API. Paths outside the API answer
// 404, and methods a path does not have 405 with Allow, both as
// problem+json.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd, pattern := h.mux.Handler(r)
	if pattern == "" {
		// ServeMux's own answer: a redirect to the cleaned path, 404 or
		// 405 (with Allow set); the errors become problems.
		hd.ServeHTTP(&muxErrorWriter{ResponseWriter: w, h: h, r: r}, r)
		return
	}
	h.mux.ServeHTTP(w, r) // matches again, setting the path values
}

// request is one request being served, with its tenant's view of the
// Service.
type request struct {
	w      http.ResponseWriter
	r      *http.Request
	tenant string
	svc    scoped
}

// wrap returns the http.Handler of one route: it resolves the tenant,
// applies the rate limit, serves, and turns a returned error into a
// problem.
func (h *Handler) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rq := &request{w: w, r: r}
		err := h.authorize(rq, rt.public)
		if err == nil {
			err = rt.serve(h, rq)
		}
		if err != nil {
			h.fail(w, r, rq.tenant, err)
		}
	})
}

// authorize sets the request's tenant and scope, or returns why the
// request is refused.
func (h *Handler) authorize(rq *request, public bool) error {
	if public {
		return nil
	}
	rq.svc = h.svc
	if h.tenant != nil {
		tenant, err := h.tenant(rq.r)
		if err != nil {
			return hostError(err, http.StatusUnauthorized)
		}
		if tenant == "" || len(tenant) > webhook.MaxTenantIDLength || !printable(tenant) {
			return &apiError{status: http.StatusInternalServerError, detail: "the server could not tell the request's tenant",
				cause: fmt.Errorf("httpapi: Config.Tenant returned a tenant that is empty, longer than %d bytes or unprintable", webhook.MaxTenantIDLength)}
		}
		rq.tenant = tenant
		rq.svc = h.svc.Tenant(tenant)
	}
	if h.rateLimit != nil {
		if err := h.rateLimit(rq.r, rq.tenant); err != nil {
			return hostError(err, http.StatusTooManyRequests)
		}
	}
	return nil
}

// printable reports whether s is UTF-8 without control characters.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// scoped is what the API uses of a webhook.Service or of one tenant's
// webhook.TenantService.
type scoped interface {
	CreateWith(ctx context.Context, w *webhook.Webhook, p webhook.CreateParams) (*webhook.Webhook, bool, error)
	Get(ctx context.Context, id string) (*webhook.Webhook, error)
	Update(ctx context.Context, w *webhook.Webhook) (*webhook.Webhook, error)
	Delete(ctx context.Context, id string) error
	List(ctx context.Context, p webhook.ListWebhooksParams) ([]*webhook.Webhook, error)
	Test(ctx context.Context, webhookID string) (*webhook.Delivery, error)
	Delivery(ctx context.Context, id string) (*webhook.Delivery, error)
	Redeliver(ctx context.Context, deliveryID string) (string, error)
	ReplayFailed(ctx context.Context, webhookID string, p webhook.ReplayParams) (webhook.ReplayResult, error)
	Enable(ctx context.Context, id string) (*webhook.Webhook, error)
	Disable(ctx context.Context, id, reason string) (*webhook.Webhook, error)
	RotateSecretWith(ctx context.Context, id string, p webhook.RotateSecretParams) (*webhook.Webhook, error)
	ListDeliveries(ctx context.Context, p webhook.ListDeliveriesParams) ([]*webhook.Delivery, error)
	Stats(ctx context.Context, webhookID string, since time.Time) (*webhook.WebhookStats, error)
}

var (
	_ scoped = (*webhook.Service)(nil)
	_ scoped = (*webhook.TenantService)(nil)
)

// writeJSON writes v as the JSON response with the given status; a
// json.RawMessage is written as it is.
func (h *Handler) writeJSON(rq *request, status int, v any) error {
	b, ok := v.(json.RawMessage)
	if !ok {
		var err error
		if b, err = json.Marshal(v); err != nil {
			return fmt.Errorf("httpapi: encode response: %w", err)
		}
	}
	hd := rq.w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("X-Content-Type-Options", "nosniff")
	rq.w.WriteHeader(status)
	_, _ = rq.w.Write(append(b, '\n'))
	return nil
}

// location returns the absolute path of an API path below the prefix.
func (h *Handler) location(path string) string { return h.prefix + path }

// eventTypesBody checks the host's event types and encodes the response
// of GET /event-types.
func eventTypesBody(host []webhook.EventType) ([]byte, error) {
	all := webhook.EventTypes()
	seen := make(map[string]bool, len(all)+len(host))
	for _, et := range all {
		seen[et.Name] = true
	}
	for i, et := range host {
		switch {
		case et.Name == "" || len(et.Name) > webhook.MaxEventNameLength || !printable(et.Name):
			return nil, fmt.Errorf("EventTypes[%d]: name must be printable UTF-8 of 1 to %d bytes", i, webhook.MaxEventNameLength)
		case strings.HasPrefix(et.Name, "$"):
			return nil, fmt.Errorf("EventTypes[%d]: name %q: names starting with \"$\" are the library's", i, et.Name)
		case seen[et.Name]:
			return nil, fmt.Errorf("EventTypes[%d]: name %q appears twice", i, et.Name)
		case len(et.Schema) > 0 && !json.Valid(et.Schema):
			return nil, fmt.Errorf("EventTypes[%d]: schema of %q is not JSON", i, et.Name)
		case !utf8.ValidString(et.Description):
			return nil, fmt.Errorf("EventTypes[%d]: description of %q is not UTF-8", i, et.Name)
		}
		seen[et.Name] = true
		all = append(all, et)
	}
	return json.Marshal(page[webhook.EventType]{Data: all})
}

// documentFor returns the OpenAPI document with its server URL set to
// the prefix.
func documentFor(prefix string) []byte {
	server := prefix
	if server == "" {
		server = "/"
	}
	return []byte(strings.Replace(string(openapiYAML), "\n  - url: /api\n", "\n  - url: "+server+"\n", 1))
}

// retryAfter formats a Retry-After delay in whole seconds, at least 1.
func retryAfter(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	return fmt.Sprint(max(s, 1))
}
