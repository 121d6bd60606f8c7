package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/httpapi"
	"github.com/analytics-webhooks/webhook/memstore"
)

// benchHandler returns a handler over memstore whose tenant is always
// "t".
func benchHandler(b *testing.B) (*httpapi.Handler, *webhook.Service, *fakeDoer) {
	b.Helper()
	doer := &fakeDoer{}
	svc, err := webhook.NewService(memstore.New(&memstore.Config{MaxActive: -1}), &webhook.Config{Doer: doer})
	require.NoError(b, err)
	h, err := httpapi.New(svc, &httpapi.Config{Tenant: func(*http.Request) (string, error) { return "t", nil }})
	require.NoError(b, err)
	return h, svc, doer
}

func serve(b *testing.B, h http.Handler, path string) {
	r := httptest.NewRequest("GET", path, nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		b.Fatalf("%s: %d: %s", path, w.Code, w.Body)
	}
}

// BenchmarkListWebhooks lists a page of a tenant's 1,000 webhooks.
func BenchmarkListWebhooks(b *testing.B) {
	h, svc, _ := benchHandler(b)
	ts := svc.Tenant("t")
	for i := range 1000 {
		_, err := ts.Create(context.Background(), &webhook.Webhook{Name: fmt.Sprintf("w%d", i), URL: "https://example.com/w",
			Headers:  map[string]string{"X-Team": "growth"},
			Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent, Events: []string{"purchase"}, Filters: []webhook.Filter{{Property: "plan", Operator: "equals", Value: "pro"}}}}})
		require.NoError(b, err)
	}
	for _, limit := range []int{100, 1000} {
		b.Run(fmt.Sprintf("page=%d", limit), func(b *testing.B) {
			path := fmt.Sprintf("/api/webhooks?limit=%d", limit)
			b.ReportAllocs()
			for b.Loop() {
				serve(b, h, path)
			}
		})
	}
}

// BenchmarkDeliveryHistoryPage reads a page of 100 deliveries, each
// with its attempt.
func BenchmarkDeliveryHistoryPage(b *testing.B) {
	h, svc, _ := benchHandler(b)
	ctx := context.Background()
	ts := svc.Tenant("t")
	w, err := ts.Create(ctx, &webhook.Webhook{Name: "h", URL: "https://example.com/h", Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
	require.NoError(b, err)
	for range 100 {
		_, err := ts.TriggerEvent(ctx, "purchase", map[string]any{"amount": 42, "plan": "pro"}, "production")
		require.NoError(b, err)
	}
	worker, err := webhook.NewWorker(svc, nil)
	require.NoError(b, err)
	for {
		n, err := worker.RunOnce(ctx)
		require.NoError(b, err)
		if n == 0 {
			break
		}
	}
	ds, err := ts.ListDeliveries(ctx, webhook.ListDeliveriesParams{WebhookID: w.ID, Limit: 100})
	require.NoError(b, err)
	require.Len(b, ds, 100)
	require.Len(b, ds[99].Attempts, 1)
	path := "/api/webhooks/" + w.ID + "/deliveries?limit=100"
	b.ReportAllocs()
	for b.Loop() {
		serve(b, h, path)
	}
}
