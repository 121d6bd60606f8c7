package webhook

import (
	"fmt"
	"maps"
	"math"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Webhook is an endpoint's configuration: where to send, how to sign, what
// to send and how to retry. Its JSON form keeps the specification's
// WebhookConfig field names (snake_case), "enabled" included, and leaves
// out the secrets (see MarshalJSON and WithSecrets); decoding is strict
// (see UnmarshalJSON).
//
// A Webhook returned by the Service or a Storage is the caller's own copy.
type Webhook struct {
	// ID identifies the webhook. The Service assigns it on Create.
	ID string
	// TenantID scopes the webhook to one tenant of the host application;
	// empty when the application has no tenants. It cannot change.
	TenantID string
	// Name is a label for people, 1 to 256 bytes.
	Name string
	// URL is where deliveries are POSTed: an absolute http or https URL
	// without credentials or fragment, at most 2048 bytes.
	URL string
	// Secret signs deliveries: "whsec_" + padded standard base64 of 24
	// to 64 bytes, the canonical form that Svix and Standard Webhooks
	// libraries load (Validate refuses other spellings, such as unpadded
	// base64, rather than storing a secret receivers cannot use). The
	// Service generates one (32 bytes) when Create is given none, and
	// Update never changes it; use RotateSecret. A secret saved in
	// another spelling before this rule still signs, but Update refuses
	// the webhook until RotateSecret replaces it.
	Secret string
	// PreviousSecrets are retired secrets that still sign deliveries
	// until they expire, so receivers can switch over without a gap.
	PreviousSecrets []RetiredSecret
	// Disabled stops new deliveries to this webhook. The zero value is an
	// enabled webhook; the JSON form is the specification's "enabled".
	Disabled bool
	// DisabledReason says why the library disabled the webhook (such as
	// "endpoint answered 410 Gone"); empty when enabled.
	DisabledReason string
	// Triggers select what the webhook is sent; they are OR-ed. At least
	// one is required, at most 32.
	Triggers []Trigger
	// Headers are added to every request. They may not set the headers
	// the library sends itself, nor hop-by-hop headers.
	Headers map[string]string
	// Retry is the retry policy. Zero fields take the defaults of
	// DefaultRetryPolicy when the webhook is saved.
	Retry RetryPolicy
	// Environments restricts the webhook to events from these
	// environments ("production", "staging"); empty means all.
	Environments []string
	// SignatureScheme selects the signature. Defaults to SchemeStandard.
	SignatureScheme SignatureScheme
	// PropagateTrace sends the W3C traceparent header of each attempt's
	// span (see Config.TracerProvider), so that a receiver that traces
	// its requests joins the trace; no tracestate or baggage is sent.
	// Headers may then not set traceparent or tracestate themselves.
	// Defaults to false: the trace stays inside the host.
	PropagateTrace bool
	// Timeout bounds each request to this webhook, from 1 second to
	// MaxRequestTimeout. Zero means the service's RequestTimeout.
	Timeout time.Duration
	// RateLimit caps the requests per second each worker sends to this
	// webhook (bursts of up to max(1, RateLimit)), from MinRateLimit to
	// MaxRateLimit; 0 means no limit.
	// Deliveries over the limit wait in storage, not in the worker pool.
	RateLimit float64
	// MaxInFlight caps the attempts each worker has in flight to this
	// webhook, below the worker's MaxPerWebhook; 0 means that default.
	MaxInFlight int
	// ConsecutiveFailures counts the deliveries to this webhook that
	// failed for good, one after the other, since the last that
	// succeeded; FailingSince is when the first of them failed. The
	// library maintains both (see Config.DisableAfterFailures) and resets
	// them when the webhook is enabled again.
	ConsecutiveFailures int
	FailingSince        time.Time
	// CreatedAt and UpdatedAt are set by the Service.
	CreatedAt time.Time
	UpdatedAt time.Time
	// Version counts the stored versions of the webhook, from 1; every
	// update increments it. Update refuses a webhook whose Version is
	// set but no longer current (ErrConflict), so that a client cannot
	// overwrite changes it has not seen.
	Version int64
}

// RetiredSecret is a previous secret that keeps signing until ExpiresAt.
// Like Webhook, it never prints or encodes its secret by accident: its
// String, GoString, LogValue and MarshalJSON leave it out.
type RetiredSecret struct {
	Secret    string
	ExpiresAt time.Time
}

// Limits on webhook fields, enforced by Validate.
const (
	MaxNameLength        = 256
	MaxURLLength         = 2048
	MaxHeaders           = 32
	MaxHeaderValueLength = 4096
	MaxEnvironments      = 32
	MaxEnvironmentLength = 64
	MaxTenantIDLength    = 256
	MaxRequestTimeout    = 5 * time.Minute
	MaxPreviousSecrets   = 8
	MaxRateLimit         = 10000
)

// MinRateLimit is the lowest RateLimit other than 0: one request an hour.
const MinRateLimit = 1.0 / 3600

// rateBurst is the burst of the webhook's rate limit.
func (w *Webhook) rateBurst() int {
	return max(1, int(w.RateLimit))
}

// Clone returns a deep copy of w.
func (w *Webhook) Clone() *Webhook {
	if w == nil {
		return nil
	}
	c := *w
	c.PreviousSecrets = slices.Clone(w.PreviousSecrets)
	c.Headers = maps.Clone(w.Headers)
	c.Environments = slices.Clone(w.Environments)
	if w.Triggers != nil {
		c.Triggers = make([]Trigger, len(w.Triggers))
		for i, t := range w.Triggers {
			c.Triggers[i] = t.clone()
		}
	}
	return &c
}

func (t Trigger) clone() Trigger {
	c := t
	c.Events = slices.Clone(t.Events)
	c.Conditions = slices.Clone(t.Conditions)
	if t.Filters != nil {
		c.Filters = make([]Filter, len(t.Filters))
		for i, f := range t.Filters {
			c.Filters[i] = f
			c.Filters[i].Value = deepCopy(f.Value, 0)
		}
	}
	return c
}

// deepCopy copies the maps and slices of a JSON-like value. Values
// nested deeper than validation allows (a map that contains itself, say)
// are returned as they are, for validation to refuse.
func deepCopy(v any, depth int) any {
	if depth > maxDepth {
		return v
	}
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e, depth+1)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e, depth+1)
		}
		return out
	}
	if n, ok := normalize(v, depth); ok {
		switch n.(type) {
		case []any, map[string]any:
			return deepCopy(n, depth)
		}
	}
	return v
}

// ActiveSecrets returns the secrets that sign deliveries at now: the
// current secret first, then unexpired previous ones.
func (w *Webhook) ActiveSecrets(now time.Time) []string {
	out := []string{w.Secret}
	for _, r := range w.PreviousSecrets {
		if now.Before(r.ExpiresAt) {
			out = append(out, r.Secret)
		}
	}
	return out
}

// Validate checks every field and returns a *ValidationError
// (errors.Is ErrInvalid) listing each problem, or nil. An empty Secret is
// accepted (the Service generates one); a non-empty one must be
// canonical (see Secret). Previous secrets need only be loadable (see
// ParseSecret): they were the webhook's secret once. Trigger types that
// cannot fire yet are refused (see TriggerType.Supported). Validate does not fill defaults.
func (w *Webhook) Validate() error {
	_, err := w.compile()
	return err
}

// compiledWebhook is a validated webhook with its triggers compiled.
type compiledWebhook struct {
	w        *Webhook
	triggers []*compiledTrigger
}

// compile validates w and compiles its triggers.
func (w *Webhook) compile() (*compiledWebhook, error) {
	var ps problems
	cw := &compiledWebhook{w: w}

	name := strings.TrimSpace(w.Name)
	switch {
	case name == "":
		ps.add("name", "must not be empty")
	case len(w.Name) > MaxNameLength || !printable(w.Name):
		ps.add("name", fmt.Sprintf("must be printable UTF-8 of at most %d bytes", MaxNameLength))
	}
	if reason := checkURL(w.URL); reason != "" {
		ps.add("url", reason)
	}
	if len(w.TenantID) > MaxTenantIDLength || !printable(w.TenantID) {
		ps.add("tenant_id", fmt.Sprintf("must be printable UTF-8 of at most %d bytes", MaxTenantIDLength))
	}
	if w.Secret != "" {
		if reason := checkCanonicalSecret(w.Secret); reason != "" {
			ps.add("secret", reason)
		}
	}
	if len(w.PreviousSecrets) > MaxPreviousSecrets {
		ps.add("previous_secrets", fmt.Sprintf("at most %d", MaxPreviousSecrets))
	}
	if math.IsNaN(w.RateLimit) || w.RateLimit < 0 || w.RateLimit > MaxRateLimit {
		ps.add("rate_limit", fmt.Sprintf("must be between 0 (no limit) and %d requests per second", MaxRateLimit))
	} else if w.RateLimit > 0 && w.RateLimit < MinRateLimit {
		ps.add("rate_limit", "must be at least one request an hour (1/3600 per second), or 0 for no limit")
	}
	if w.MaxInFlight < 0 || w.MaxInFlight > 1000 {
		ps.add("max_in_flight", "must be between 0 (the worker's default) and 1000")
	}
	if w.Timeout != 0 && (w.Timeout < time.Second || w.Timeout > MaxRequestTimeout) {
		ps.add("timeout_seconds", fmt.Sprintf("must be between 1 and %d", int(MaxRequestTimeout/time.Second)))
	}
	for i, r := range w.PreviousSecrets {
		if _, reason := parseSecret(r.Secret); reason != "" {
			ps.add(fmt.Sprintf("previous_secrets[%d].secret", i), reason)
		}
	}
	switch w.SignatureScheme {
	case "", SchemeStandard, SchemeHex:
	default:
		ps.add("signature_scheme", fmt.Sprintf("unknown scheme %q (want standard or hex)", truncate(string(w.SignatureScheme))))
	}
	checkHeaders(&ps, w.Headers)
	if w.PropagateTrace {
		checkTraceHeaders(&ps, w.Headers)
	}
	w.Retry.validate(&ps, "retry")
	if len(w.Environments) > MaxEnvironments {
		ps.add("environments", fmt.Sprintf("at most %d environments", MaxEnvironments))
	}
	for i, e := range w.Environments {
		if e == "" || len(e) > MaxEnvironmentLength || !printable(e) {
			ps.add(fmt.Sprintf("environments[%d]", i), fmt.Sprintf("must be printable UTF-8 of 1 to %d bytes", MaxEnvironmentLength))
		}
	}
	switch {
	case len(w.Triggers) == 0:
		ps.add("triggers", "at least one trigger is required")
	case len(w.Triggers) > maxListLen:
		ps.add("triggers", fmt.Sprintf("at most %d triggers", maxListLen))
	}
	for i, t := range w.Triggers {
		cw.triggers = append(cw.triggers, validateTrigger(&ps, fmt.Sprintf("triggers[%d]", i), t))
	}
	if err := ps.err("webhook"); err != nil {
		return nil, err
	}
	return cw, nil
}

// hasEnvironment reports whether the webhook hears events from env.
func (w *Webhook) hasEnvironment(env string) bool {
	return len(w.Environments) == 0 || slices.Contains(w.Environments, env)
}

// checkURL returns why raw is not an acceptable webhook URL, or "".
func checkURL(raw string) string {
	if raw == "" {
		return "must not be empty"
	}
	if len(raw) > MaxURLLength {
		return fmt.Sprintf("must be at most %d bytes", MaxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "not a valid URL"
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "must be an absolute http or https URL"
	case u.Opaque != "" || u.Host == "":
		return "must be an absolute http or https URL with a host"
	case u.User != nil:
		return "must not carry credentials; use headers instead"
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return "must not have a fragment"
	case u.Hostname() == "":
		return "must name a host"
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "port must be between 1 and 65535"
		}
	}
	host := u.Hostname()
	if strings.Contains(host, "%") && net.ParseIP(strings.Split(host, "%")[0]) != nil {
		return "must not use an IPv6 zone"
	}
	return ""
}

// isReservedHeader reports whether a webhook's custom headers may not set
// name (any case): the library sets it itself, or it would break the
// request.
func isReservedHeader(name string) bool {
	l := strings.ToLower(name)
	switch l {
	case "x-delivery-id", "content-type", "content-length", "content-encoding",
		"host", "user-agent", "connection", "keep-alive", "proxy-connection",
		"te", "trailer", "transfer-encoding", "upgrade", "expect":
		return true
	}
	return strings.HasPrefix(l, "webhook-") || strings.HasPrefix(l, "x-webhook-")
}

// checkTraceHeaders refuses the headers that PropagateTrace sets: a
// custom value would contradict (or, for tracestate, be read with) the
// traceparent the library sends.
func checkTraceHeaders(ps *problems, h map[string]string) {
	for _, name := range slices.Sorted(maps.Keys(h)) {
		if l := strings.ToLower(name); l == "traceparent" || l == "tracestate" {
			ps.add("headers["+strconv.Quote(truncate(name))+"]", "is set by the library when propagate_trace is true")
		}
	}
}

func checkHeaders(ps *problems, h map[string]string) {
	if len(h) > MaxHeaders {
		ps.add("headers", fmt.Sprintf("at most %d headers", MaxHeaders))
	}
	seen := make(map[string]string, len(h))
	// Report in a stable order.
	for _, name := range slices.Sorted(maps.Keys(h)) {
		field := "headers[" + strconv.Quote(truncate(name)) + "]"
		switch {
		case !validHeaderName(name):
			ps.add(field, "not a valid header name")
			continue
		case isReservedHeader(name):
			ps.add(field, "is reserved: the library sets it")
			continue
		}
		l := strings.ToLower(name)
		if prev, dup := seen[l]; dup {
			ps.add(field, fmt.Sprintf("repeats header %q in another case", prev))
		}
		seen[l] = name
		if v := h[name]; len(v) > MaxHeaderValueLength || !validHeaderValue(v) {
			ps.add(field, fmt.Sprintf("value must be printable, without line breaks, at most %d bytes", MaxHeaderValueLength))
		}
	}
}

// printable reports whether s is valid UTF-8 without control characters,
// as names, keys and identifiers must be: they end up in logs, headers
// and database columns that refuse NUL.
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

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue reports whether s is an RFC 9110 field value: no
// control characters but tab, and valid UTF-8 (or Latin-1 free of
// controls; we insist on UTF-8).
func validHeaderValue(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
