package pgstore_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/httpapi"
)

// TestCreateWithAcrossServices creates with one idempotency key from
// two Services over one database at once, as two processes would: one
// webhook is created, and both get it.
func TestCreateWithAcrossServices(t *testing.T) {
	store := newStore(t)
	ctx := t.Context()
	var svcs []*webhook.Service
	for range 2 {
		svc, err := webhook.NewService(store, nil)
		require.NoError(t, err)
		svcs = append(svcs, svc)
	}
	hook := func() *webhook.Webhook {
		return &webhook.Webhook{Name: "once", URL: "https://example.com/once", Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}}
	}
	const n = 8
	ids := make([]string, n)
	created := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			w, c, err := svcs[i%2].Tenant("a").CreateWith(ctx, hook(), webhook.CreateParams{IdempotencyKey: "k"})
			if assert.NoError(t, err) {
				ids[i], created[i] = w.ID, c
			}
		})
	}
	wg.Wait()
	made := 0
	for i := range n {
		assert.Equal(t, ids[0], ids[i])
		if created[i] {
			made++
		}
	}
	assert.Equal(t, 1, made, "one call created the webhook")
	other := hook()
	other.Name = "another"
	_, _, err := svcs[0].Tenant("a").CreateWith(ctx, other, webhook.CreateParams{IdempotencyKey: "k"})
	require.ErrorIs(t, err, webhook.ErrIdempotencyKeyReused)
	_, err = svcs[0].Tenant("b").Get(ctx, ids[0])
	require.ErrorIs(t, err, webhook.ErrNotFound)
}

// TestHTTPAPIOnPostgres runs the REST API over PostgreSQL: create,
// update, pause, history with filters and pages, and another tenant's
// 404s.
func TestHTTPAPIOnPostgres(t *testing.T) {
	store := newStore(t)
	svc, err := webhook.NewService(store, &webhook.Config{Network: testNetwork()})
	require.NoError(t, err)
	h, err := httpapi.New(svc, &httpapi.Config{Tenant: func(r *http.Request) (string, error) {
		tenant := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if tenant != "a" && tenant != "b" {
			return "", httpapi.ErrUnauthenticated
		}
		return tenant, nil
	}})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer rcv.Close()
	do := func(method, path, tenant, body, ct string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+"/api"+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tenant)
		if body != "" {
			req.Header.Set("Content-Type", ct)
		}
		res, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		var m map[string]any
		if len(b) > 0 {
			require.NoError(t, json.Unmarshal(b, &m), "%s", b)
		}
		return res.StatusCode, m
	}

	st, w := do("POST", "/webhooks", "a", `{"name":"pg","url":"`+rcv.URL+`/pg","triggers":[{"trigger_type":"event"}],"retry":{"max_attempts":1}}`, "application/json")
	require.Equal(t, http.StatusCreated, st, "%v", w)
	id := w["id"].(string)
	st, w = do("PATCH", "/webhooks/"+id, "a", `{"name":"patched","headers":{"X-A":"1"}}`, "application/merge-patch+json")
	require.Equal(t, http.StatusOK, st, "%v", w)
	assert.Equal(t, "patched", w["name"])
	st, w = do("POST", "/webhooks/"+id+"/disable", "a", `{"reason":"night"}`, "application/json")
	require.Equal(t, http.StatusOK, st)
	assert.Equal(t, "night", w["disabled_reason"])
	st, w = do("PUT", "/webhooks/"+id, "a", `{"name":"put","url":"`+rcv.URL+`/pg","triggers":[{"trigger_type":"event"}]}`, "application/json")
	require.Equal(t, http.StatusOK, st, "%v", w)
	assert.Equal(t, false, w["enabled"], "a PUT without enabled keeps the pause")
	st, _ = do("POST", "/webhooks/"+id+"/enable", "a", "", "")
	require.Equal(t, http.StatusOK, st)

	ctx := t.Context()
	for range 3 {
		_, err := svc.Tenant("a").TriggerEvent(ctx, "order", map[string]any{"n": 1}, "")
		require.NoError(t, err)
	}
	st, d := do("POST", "/webhooks/"+id+"/test", "a", "", "")
	require.Equal(t, http.StatusOK, st)
	assert.Equal(t, "delivered", d["status"], "sent to the loopback receiver")

	var seen []string
	cursor := ""
	for range 5 {
		path := "/webhooks/" + id + "/deliveries?limit=2&status=pending"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		st, page := do("GET", path, "a", "", "")
		require.Equal(t, http.StatusOK, st, "%v", page)
		for _, d := range page["data"].([]any) {
			assert.Equal(t, "pending", d.(map[string]any)["status"])
			seen = append(seen, d.(map[string]any)["id"].(string))
		}
		if !page["has_more"].(bool) {
			break
		}
		cursor = page["next_cursor"].(string)
	}
	assert.Len(t, seen, 3, "the pending deliveries, in pages of two, without the test send")
	st, page := do("GET", "/webhooks/"+id+"/deliveries?event_type=%24test", "a", "", "")
	require.Equal(t, http.StatusOK, st)
	require.Len(t, page["data"], 1)
	assert.NotEmpty(t, page["data"].([]any)[0].(map[string]any)["attempts"])

	for _, path := range []string{"/webhooks/" + id, "/webhooks/" + id + "/deliveries", "/webhooks/" + id + "/deliveries/" + seen[0], "/webhooks/" + id + "/secret"} {
		st, _ := do("GET", path, "b", "", "")
		assert.Equal(t, http.StatusNotFound, st, path)
	}
	st, _ = do("DELETE", "/webhooks/"+id, "b", "", "")
	assert.Equal(t, http.StatusNotFound, st)
	st, _ = do("DELETE", "/webhooks/"+id, "a", "", "")
	assert.Equal(t, http.StatusNoContent, st)
}
