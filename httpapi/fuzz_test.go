package httpapi_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/httpapi"
	"github.com/analytics-webhooks/webhook/memstore"
)

// FuzzHandler feeds random methods, paths, query strings, bodies,
// content types and tokens to the handler: it must never panic, never
// answer a client's mistake with a 5xx, and answer every error as a
// problem.
func FuzzHandler(f *testing.F) {
	store := memstore.New(&memstore.Config{MaxActive: -1})
	doer := &fakeDoer{}
	svc, err := webhook.NewService(store, &webhook.Config{Doer: doer})
	require.NoError(f, err)
	h, err := httpapi.New(svc, &httpapi.Config{Tenant: bearerTenant, MaxBodyBytes: 64 << 10})
	require.NoError(f, err)

	// A webhook of tenant a with an ID that stays the same across runs
	// (derived from its idempotency key), and a delivery.
	w, _, err := svc.Tenant("a").CreateWith(f.Context(), &webhook.Webhook{Name: "fuzz", URL: "https://example.com/fuzz",
		Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}}, webhook.CreateParams{IdempotencyKey: "fuzz"})
	require.NoError(f, err)
	d, err := svc.Tenant("a").Test(f.Context(), w.ID)
	require.NoError(f, err)
	hp := "/webhooks/" + w.ID

	seeds := []struct{ method, path, query, body, ct, token string }{
		{"GET", "/webhooks", "limit=2", "", "", "a"},
		{"GET", "/webhooks", "cursor=dzE6eA", "", "", "a"},
		{"POST", "/webhooks", "", hookBody("x"), "application/json", "a"},
		{"POST", "/webhooks", "", `{"name":"x","url":"https://example.com","triggers":[{"trigger_type":"event","filters":[{"property":"a.b","operator":"regex","value":"(a+)+"}]}],"headers":{"X-A":"b"},"retry":{"max_attempts":3}}`, "application/json", "a"},
		{"GET", hp, "", "", "", "a"},
		{"PUT", hp, "", hookBody("y"), "application/json", "a"},
		{"PATCH", hp, "", `{"name":"z","headers":{"X-B":null},"enabled":null}`, "application/merge-patch+json", "a"},
		{"DELETE", hp, "", "", "", "b"},
		{"POST", hp + "/test", "", "{}", "application/json", "a"},
		{"GET", hp + "/deliveries", "status=failed&status=delivered&event_type=%24test&since=2026-01-01T00:00:00Z", "", "", "a"},
		{"GET", hp + "/stats", "since=2026-01-01T00:00:00Z", "", "", "a"},
		{"GET", hp + "/stats", "since=9999-12-31T23:59:59%2B23:59", "", "", "a"},
		{"POST", "/webhooks", "", `{"name":"x","url":"https://example.com","triggers":[{"trigger_type":"threshold","conditions":[{"metric":"m","operator":"gt","value":1,"window_seconds":60,"aggregation":"avg","for_seconds":30,"recovery_value":0.5,"repeat_interval_seconds":600,"notify_resolved":false}]},{"trigger_type":"anomaly","metric":"m","bucket_seconds":60,"sensitivity":3,"direction":"above"},{"trigger_type":"scheduled","schedule":"0 9 * * 1","timezone":"Europe/Berlin"}]}`, "application/json", "a"},
		{"GET", hp + "/deliveries/" + d.ID, "", "", "", "a"},
		{"POST", hp + "/deliveries/" + d.ID + "/redeliver", "", "", "", "a"},
		{"POST", hp + "/replay", "", `{"since":"2026-01-01T00:00:00Z","dry_run":true}`, "application/json", "a"},
		{"POST", hp + "/disable", "", `{"reason":"r"}`, "application/json", "a"},
		{"POST", hp + "/enable", "", "", "", "a"},
		{"GET", hp + "/secret", "", "", "", "a"},
		{"POST", hp + "/secret/rotate", "", `{"grace_seconds":10}`, "application/json", "a"},
		{"GET", "/event-types", "", "", "", ""},
		{"GET", "/openapi.yaml", "", "", "", ""},
		{"OPTIONS", "/webhooks/..%2f", "%zz", "\x00{", "application/json; charset=\"", "limited"},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.query, []byte(s.body), s.ct, s.token)
	}
	f.Fuzz(func(t *testing.T, method, path, query string, body []byte, ct, token string) {
		r := &http.Request{
			Method:        method,
			URL:           &url.URL{Path: "/api" + path, RawQuery: query},
			Header:        http.Header{},
			Body:          io.NopCloser(bytes.NewReader(body)),
			ContentLength: int64(len(body)),
			Host:          "example.com",
		}
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code >= 500 {
			t.Fatalf("%q %q ?%q: %d: %s", method, path, query, rec.Code, rec.Body)
		}
		if rec.Code >= 400 && !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/problem+json") {
			t.Fatalf("%q %q: %d is not a problem: %q", method, path, rec.Code, rec.Header().Get("Content-Type"))
		}
	})
}
