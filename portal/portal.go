package portal

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/analytics-webhooks/webhook"
)

// Config configures a Handler. A nil *Config and the zero value are
// valid: a single-tenant portal under /portal.
type Config struct {
	// Prefix is the path the portal is mounted under: "/portal" serves
	// its endpoint list at "/portal/". It must start with "/"; a
	// trailing "/" is dropped, and "/" mounts the portal at the root.
	// Defaults to "/portal".
	Prefix string
	// Tenant returns the tenant of a request, from the host's own
	// authentication (a session cookie: a browser sends no bearer
	// header). Every page calls it first and sees only that tenant's
	// webhooks and deliveries (through webhook.Service.Tenant): another
	// tenant's IDs answer 404. Its errors are those of httpapi's
	// Config.Tenant and answer the same: httpapi.ErrUnauthenticated 401,
	// httpapi.ErrForbidden 403, an *httpapi.RateLimitError 429 with
	// Retry-After, an *httpapi.StatusError its status; any other error
	// 401. Nil means a single-tenant host: the portal manages every
	// webhook of the Service (put the host's authentication in front).
	Tenant func(r *http.Request) (string, error)
	// FrameAncestors are the CSP frame-ancestors sources allowed to
	// embed the portal in a frame, such as "'self'" or
	// "https://app.example.com". Defaults to none: the portal refuses
	// to be framed (frame-ancestors 'none' and X-Frame-Options DENY).
	FrameAncestors []string
	// EventTypes are the host's own event types, offered as checkboxes
	// beside the library's (webhook.EventTypes). Names must be
	// printable, at most webhook.MaxEventNameLength bytes, unique, and
	// not start with "$".
	EventTypes []webhook.EventType
	// Logger receives the portal's logs: refused requests at debug
	// level, server faults at error level. Form values and secrets
	// never appear in them. Defaults to a logger that discards
	// everything.
	Logger *slog.Logger
}

// DefaultPrefix is the default of Config.Prefix.
const DefaultPrefix = "/portal"

// Handler serves the portal's pages. It is an http.Handler, safe for
// concurrent use; get one with New.
type Handler struct {
	svc       *webhook.Service
	mux       *http.ServeMux
	root      http.Handler
	prefix    string
	tenant    func(*http.Request) (string, error)
	catalogue []webhook.EventType
	csp       string
	xfo       string
	pages     map[string]*template.Template
	assets    map[string]asset
	log       *slog.Logger
}

// asset is an embedded static file with its version.
type asset struct {
	body        []byte
	contentType string
	version     string
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// New returns the portal's Handler over svc. A nil cfg means the
// defaults. It returns an error wrapping webhook.ErrInvalid for a nil
// svc or a bad cfg field.
func New(svc *webhook.Service, cfg *Config) (*Handler, error) {
	if svc == nil {
		return nil, fmt.Errorf("%w: portal.New: nil Service", webhook.ErrInvalid)
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
	catalogue, err := checkEventTypes(c.EventTypes)
	if err != nil {
		problems = append(problems, err.Error())
	}
	ancestors, err := frameAncestors(c.FrameAncestors)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: portal config: %s", webhook.ErrInvalid, strings.Join(problems, "; "))
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{
		svc: svc, mux: http.NewServeMux(), prefix: prefix, tenant: c.Tenant,
		catalogue: catalogue, log: c.Logger,
		csp: "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
			"form-action 'self'; base-uri 'none'; frame-ancestors " + ancestors,
	}
	switch ancestors {
	case "'none'":
		h.xfo = "DENY"
	case "'self'":
		h.xfo = "SAMEORIGIN"
	}
	if h.assets, err = loadAssets(); err != nil {
		return nil, err
	}
	if h.pages, err = h.parseTemplates(); err != nil {
		return nil, err
	}
	for _, rt := range routeTable {
		h.mux.Handle(rt.method+" "+prefix+rt.path, h.wrap(rt))
	}
	h.mux.HandleFunc("GET "+prefix+"/static/{name}", h.static)
	// Go's CSRF protection for browsers: a state-changing request whose
	// Sec-Fetch-Site or Origin says it comes from another origin is
	// refused, before any page sees it.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.log.DebugContext(r.Context(), "portal: cross-origin request refused", "method", r.Method, "path", r.URL.Path)
		h.errorPage(w, r, http.StatusForbidden, "This form was sent from another site, so it was refused.")
	}))
	h.root = cop.Handler(h.mux)
	return h, nil
}

// cleanPrefix checks and normalises Config.Prefix.
func cleanPrefix(p string) (string, error) {
	if p == "" {
		return DefaultPrefix, nil
	}
	p = strings.TrimRight(p, "/")
	if p == "" {
		return "", nil
	}
	bad := !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "{}?#%\"'<>\\") || strings.Contains(p, "//") || !printable(p)
	for _, r := range p {
		if unicode.IsSpace(r) {
			bad = true
		}
	}
	if bad {
		return "", fmt.Errorf("prefix %q: must be a path starting with \"/\", without {}, ?, #, %%, quotes, \"//\" or spaces", p)
	}
	return p, nil
}

// frameAncestors returns the frame-ancestors source list.
func frameAncestors(srcs []string) (string, error) {
	if len(srcs) == 0 {
		return "'none'", nil
	}
	for i, s := range srcs {
		if s == "" || strings.ContainsAny(s, ";,\"") || !printable(s) || strings.ContainsFunc(s, unicode.IsSpace) {
			return "", fmt.Errorf("FrameAncestors[%d]: %q is not a CSP source", i, s)
		}
	}
	return strings.Join(srcs, " "), nil
}

// checkEventTypes returns the catalogue: the host's event types, then
// the library's that a webhook can subscribe to ("$test" is sent by
// Test alone).
func checkEventTypes(host []webhook.EventType) ([]webhook.EventType, error) {
	var all, lib []webhook.EventType
	seen := map[string]bool{}
	for _, et := range webhook.EventTypes() {
		seen[et.Name] = true
		if et.Name != webhook.EventTypeTest {
			lib = append(lib, et)
		}
	}
	for i, et := range host {
		switch {
		case et.Name == "" || len(et.Name) > webhook.MaxEventNameLength || !printable(et.Name):
			return nil, fmt.Errorf("EventTypes[%d]: name must be printable UTF-8 of 1 to %d bytes", i, webhook.MaxEventNameLength)
		case strings.HasPrefix(et.Name, "$"):
			return nil, fmt.Errorf("EventTypes[%d]: name %q: names starting with \"$\" are the library's", i, et.Name)
		case seen[et.Name]:
			return nil, fmt.Errorf("EventTypes[%d]: name %q appears twice", i, et.Name)
		case !utf8.ValidString(et.Description):
			return nil, fmt.Errorf("EventTypes[%d]: description of %q is not UTF-8", i, et.Name)
		}
		seen[et.Name] = true
		all = append(all, et)
	}
	return append(all, lib...), nil
}

// printable reports whether s is UTF-8 without control characters.
func printable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
}

// loadAssets reads the embedded static files and their versions.
func loadAssets() (map[string]asset, error) {
	out := map[string]asset{}
	types := map[string]string{".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
	err := fs.WalkDir(staticFS, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(path)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(path, "static/")
		sum := sha256.Sum256(b)
		ct := types[name[strings.LastIndexByte(name, '.'):]]
		out[name] = asset{body: b, contentType: ct, version: hex.EncodeToString(sum[:6])}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("portal: static files: %w", err)
	}
	return out, nil
}

// static serves an embedded asset. Its URL carries the content's
// version, so it may be cached for long.
func (h *Handler) static(w http.ResponseWriter, r *http.Request) {
	a, ok := h.assets[r.PathValue("name")]
	if !ok {
		h.errorPage(w, r, http.StatusNotFound, "There is no such page.")
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", a.contentType)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Security-Policy", h.csp)
	if r.URL.Query().Get("v") == a.version {
		hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		hd.Set("Cache-Control", "no-cache")
	}
	_, _ = w.Write(a.body)
}

// ServeHTTP serves one request of the portal. Every response carries
// the Content-Security-Policy and framing headers; a state-changing
// request from another origin is refused with 403 (see
// http.CrossOriginProtection).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", h.csp)
	if h.xfo != "" {
		hd.Set("X-Frame-Options", h.xfo)
	}
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	if _, pattern := h.mux.Handler(r); pattern == "" {
		if allow := h.allowed(r); allow != "" {
			hd.Set("Allow", allow)
			h.errorPage(w, r, http.StatusMethodNotAllowed, "This page does not take a "+allowedMethod(r.Method)+" request.")
			return
		}
		h.errorPage(w, r, http.StatusNotFound, "There is no such page.")
		return
	}
	h.root.ServeHTTP(w, r)
}

// allowed returns the methods the portal serves at r's path, for the
// Allow header of a 405; "" when it serves none there.
func (h *Handler) allowed(r *http.Request) string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost} {
		if m == r.Method {
			continue
		}
		probe := r.WithContext(r.Context())
		probe.Method = m
		if _, pattern := h.mux.Handler(probe); pattern != "" {
			out = append(out, m)
		}
	}
	return strings.Join(out, ", ")
}

// allowedMethod is a request method as an error page may show it: a
// known method, or "such" for anything else.
func allowedMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "such"
}

// route is one page or form of the portal below the prefix.
type route struct {
	method, path string
	serve        func(h *Handler, rq *request) error
}

// routeTable lists every page and form the Handler serves.
var routeTable = []route{
	{"GET", "/{$}", (*Handler).listPage},
	{"GET", "/new", (*Handler).newPage},
	{"POST", "/new", (*Handler).create},
	{"GET", "/endpoints/{id}", (*Handler).endpointPage},
	{"GET", "/endpoints/{id}/edit", (*Handler).editPage},
	{"POST", "/endpoints/{id}/edit", (*Handler).edit},
	{"POST", "/endpoints/{id}/enable", (*Handler).enable},
	{"POST", "/endpoints/{id}/disable", (*Handler).disable},
	{"GET", "/endpoints/{id}/delete", (*Handler).deletePage},
	{"POST", "/endpoints/{id}/delete", (*Handler).delete},
	{"POST", "/endpoints/{id}/secret", (*Handler).revealSecret},
	{"POST", "/endpoints/{id}/rotate", (*Handler).rotate},
	{"POST", "/endpoints/{id}/test", (*Handler).test},
	{"GET", "/endpoints/{id}/deliveries", (*Handler).deliveriesPage},
	{"GET", "/endpoints/{id}/deliveries/{did}", (*Handler).deliveryPage},
	{"POST", "/endpoints/{id}/deliveries/{did}/redeliver", (*Handler).redeliver},
	{"GET", "/endpoints/{id}/replay", (*Handler).replayPage},
	{"POST", "/endpoints/{id}/replay", (*Handler).replay},
}

// request is one request being served, with its tenant's view of the
// Service.
type request struct {
	w      http.ResponseWriter
	r      *http.Request
	tenant string
	svc    scoped
}

// scoped is what the portal uses of a webhook.Service or of one
// tenant's webhook.TenantService.
type scoped interface {
	Create(ctx context.Context, w *webhook.Webhook) (*webhook.Webhook, error)
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

// wrap returns the http.Handler of one route: it resolves the tenant,
// serves, and turns a returned error into an error page.
func (h *Handler) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		rq := &request{w: w, r: r, svc: h.svc}
		err := h.authorize(rq)
		if err == nil {
			err = rt.serve(h, rq)
		}
		if err != nil {
			h.fail(w, r, err)
		}
	})
}

// authorize sets the request's tenant and scope, or returns why the
// request is refused.
func (h *Handler) authorize(rq *request) error {
	if h.tenant == nil {
		return nil
	}
	tenant, err := h.tenant(rq.r)
	if err != nil {
		return hostError(err)
	}
	if tenant == "" || len(tenant) > webhook.MaxTenantIDLength || !printable(tenant) {
		return &pageError{status: http.StatusInternalServerError, message: "The server could not tell who you are.",
			cause: fmt.Errorf("portal: Config.Tenant returned a tenant that is empty, longer than %d bytes or unprintable", webhook.MaxTenantIDLength)}
	}
	rq.tenant = tenant
	rq.svc = h.svc.Tenant(tenant)
	return nil
}

// path returns the absolute path of a portal path below the prefix;
// each of segs is path-escaped and appended after a "/".
func (h *Handler) path(base string, segs ...string) string {
	var b strings.Builder
	b.WriteString(h.prefix)
	b.WriteString(base)
	for _, s := range segs {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// redirect answers a form with 303 See Other to a page; done names a
// fixed message the page shows (see doneMessages).
func (h *Handler) redirect(rq *request, to, done string) error {
	if done != "" {
		to += "?done=" + url.QueryEscape(done)
	}
	http.Redirect(rq.w, rq.r, to, http.StatusSeeOther)
	return nil
}

// now is the time the pages show and measure from.
func (h *Handler) now() time.Time { return time.Now() }
