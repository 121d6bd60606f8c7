package portal

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/analytics-webhooks/webhook"
)

// view is what every page template sees.
type view struct {
	Title string
	// Done is a fixed message about what the last form did.
	Done string
	// Tenant is the request's tenant, "" for a single-tenant host.
	Tenant string
	// Endpoint is the webhook the page is about, for the navigation.
	Endpoint *webhook.Webhook
	Data     any
}

// pageNames are the page templates, each rendered inside layout.html.
var pageNames = []string{"error", "list", "form", "endpoint", "delete", "deliveries", "delivery", "replay"}

// doneMessages are what a page says after a form redirected to it with
// ?done=key; other keys are ignored, so a link cannot make a page say
// anything else.
var doneMessages = map[string]string{
	"created":     "The endpoint was created.",
	"saved":       "Your changes were saved.",
	"enabled":     "The endpoint is enabled: new events are delivered to it.",
	"disabled":    "The endpoint is disabled: no new events are delivered to it.",
	"deleted":     "The endpoint was deleted.",
	"rotated":     "The secret was rotated.",
	"tested":      "A test event was sent; its result is below.",
	"redelivered": "The delivery was queued again; this is the new delivery.",
}

// parseTemplates parses every page with the layout and the functions.
func (h *Handler) parseTemplates() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"path":  h.path,
		"asset": h.assetURL,
		"time":  formatTime,
		"ms":    formatDuration,
		"delay": formatDelay,
		"since": func(t time.Time) string { return formatDuration(h.now().Sub(t).Truncate(time.Second)) },
		"pct":   func(f float64) string { return fmt.Sprintf("%.1f%%", f*100) },
		"join":  strings.Join,
		"dict":  dict,
		"plural": func(n int, one, many string) string {
			if n == 1 {
				return one
			}
			return many
		},
	}
	out := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("portal: template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// assetURL returns the versioned URL of a static file.
func (h *Handler) assetURL(name string) string {
	return h.path("/static", name) + "?v=" + h.assets[name].version
}

// render writes a page. A template that fails renders nothing of
// itself: the error page is written instead.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, v *view) {
	if d := r.URL.Query().Get("done"); d != "" && v.Done == "" {
		v.Done = doneMessages[d]
	}
	var b bytes.Buffer
	if err := h.pages[name].Execute(&b, v); err != nil {
		h.log.ErrorContext(r.Context(), "portal: render failed", "page", name, "error", err)
		status = http.StatusInternalServerError
		b.Reset()
		_ = h.pages["error"].Execute(&b, &view{Title: "Internal Server Error", Data: "Something went wrong on our side."})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// page renders a page of a route with status 200.
func (h *Handler) page(rq *request, name string, v *view) error {
	v.Tenant = rq.tenant
	h.render(rq.w, rq.r, http.StatusOK, name, v)
	return nil
}

// formatTime shows a time in UTC to the second; "" for the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// formatDuration shows a duration in milliseconds below ten seconds,
// rounded otherwise.
func formatDuration(d time.Duration) string {
	switch {
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
	case d < 10*time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return d.Round(time.Minute).String()
}

// dict makes a map of key, value pairs, for a sub-template's data.
func dict(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, fmt.Errorf("dict: odd number of arguments")
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
		}
		m[k] = kv[i+1]
	}
	return m, nil
}

// formatDelay shows a retry delay without zero units: "5s", "1h",
// "1h30m".
func formatDelay(d time.Duration) string {
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
