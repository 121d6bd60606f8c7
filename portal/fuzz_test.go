package portal_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
	"github.com/analytics-webhooks/webhook/portal"
)

// FuzzEndpointForm posts arbitrary values in every field of the create
// form: the portal answers with a redirect to the new endpoint, the
// form again with its problems, or a refusal, and never fails.
func FuzzEndpointForm(f *testing.F) {
	f.Add("https://example.com/h", "Orders", "order.paid", "checkout.*", "amount gt 10\nplan equals \"pro\"", "X-Team: billing", "3", "1.5", "60", "2", "0.5")
	f.Add("ftp://x", "", "$error", "*", "a in [1,2", "Content-Type: x\n:", "-1", "x", "1e400", "NaN", "Inf")
	f.Add("", "\x00", "$threshold_alert", "", "x", "nocolon", "2.5", "", "", "", "")
	svc, err := webhook.NewService(memstore.New(nil), nil)
	if err != nil {
		f.Fatal(err)
	}
	h, err := portal.New(svc, &portal.Config{EventTypes: []webhook.EventType{{Name: "order.paid"}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, u, name, event, patterns, filters, headers, attempts, initial, maxDelay, mult, rate string) {
		form := url.Values{"url": {u}, "name": {name}, "event": {event}, "patterns": {patterns}, "filters": {filters}, "headers": {headers},
			"max_attempts": {attempts}, "initial_delay_seconds": {initial}, "max_delay_seconds": {maxDelay}, "backoff_multiplier": {mult}, "rate_limit": {rate}}
		req := httptest.NewRequest("POST", "/portal/new", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusSeeOther:
			if !strings.HasPrefix(rec.Header().Get("Location"), "/portal/endpoints/") {
				t.Fatalf("redirect to %q", rec.Header().Get("Location"))
			}
		case http.StatusUnprocessableEntity, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
}
