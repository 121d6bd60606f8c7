package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/httpapi"
	"github.com/analytics-webhooks/webhook/memstore"
)

func TestListLargestPage(t *testing.T) {
	e := newEnv(t, nil)
	ts := e.svc.Tenant("a")
	for i := range webhook.MaxPageSize + 1 {
		_, err := ts.Create(t.Context(), &webhook.Webhook{Name: fmt.Sprintf("w%d", i), URL: "https://example.com/w", Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
		require.NoError(t, err)
	}
	r := e.do(req{method: "GET", path: "/webhooks?limit=1000", tenant: "a"})
	require.Equal(t, http.StatusOK, r.status)
	p := r.json(t)
	assert.Len(t, p["data"], 1000)
	assert.Equal(t, true, p["has_more"], "the page of the largest size looks one further")
	r = e.do(req{method: "GET", path: "/webhooks?limit=1000&cursor=" + p["next_cursor"].(string), tenant: "a"})
	p = r.json(t)
	assert.Len(t, p["data"], 1)
	assert.Equal(t, false, p["has_more"])

	// The same with exactly 1,000.
	last := p["data"].([]any)[0].(map[string]any)["id"].(string)
	require.NoError(t, ts.Delete(t.Context(), last))
	r = e.do(req{method: "GET", path: "/webhooks?limit=1000", tenant: "a"})
	p = r.json(t)
	assert.Len(t, p["data"], 1000)
	assert.Equal(t, false, p["has_more"])
	assert.Nil(t, p["next_cursor"])
}

// corruptStore reports every third webhook of a list as unreadable, as
// a Storage does for a row changed by hand.
type corruptStore struct {
	*memstore.Store
}

func (s corruptStore) ListWebhooks(ctx context.Context, p webhook.ListWebhooksParams) ([]*webhook.Webhook, error) {
	ws, err := s.Store.ListWebhooks(ctx, p)
	if err != nil {
		return nil, err
	}
	var ok []*webhook.Webhook
	var errs []error
	for _, w := range ws {
		if w.Name[len(w.Name)-1] == '2' {
			errs = append(errs, &webhook.CorruptWebhookError{ID: w.ID, TenantID: w.TenantID, Err: fmt.Errorf("bad row")})
			continue
		}
		ok = append(ok, w)
	}
	if len(errs) == 0 {
		return ok, nil
	}
	return ok, fmt.Errorf("list: %w", errors.Join(errs...))
}

func TestListSkipsUnreadableWebhooks(t *testing.T) {
	logs := &syncBuffer{}
	svc, err := webhook.NewService(corruptStore{memstore.New(nil)}, nil)
	require.NoError(t, err)
	h, err := httpapi.New(svc, &httpapi.Config{Logger: newLogger(logs)})
	require.NoError(t, err)
	for i := range 5 {
		_, err := svc.Create(t.Context(), &webhook.Webhook{Name: fmt.Sprintf("w%d", i), URL: "https://example.com/w", Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
		require.NoError(t, err)
	}
	srv := newServer(t, h)
	var names []string
	cursor := ""
	for range 5 {
		res, err := srv.Client().Get(srv.URL + "/api/webhooks?limit=2" + cursor)
		require.NoError(t, err)
		var p struct {
			Data       []struct{ Name string } `json:"data"`
			NextCursor *string                 `json:"next_cursor"`
			HasMore    bool                    `json:"has_more"`
		}
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.NoError(t, decodeJSON(res, &p))
		for _, w := range p.Data {
			names = append(names, w.Name)
		}
		if !p.HasMore {
			break
		}
		cursor = "&cursor=" + *p.NextCursor
	}
	assert.Equal(t, []string{"w0", "w1", "w3", "w4"}, names, "the unreadable webhook is left out, the list goes on after it")
	assert.Contains(t, logs.String(), "cannot be read")
}

func TestDeliveryHistoryLargestPage(t *testing.T) {
	e := newEnv(t, nil)
	ts := e.svc.Tenant("a")
	w, err := ts.Create(t.Context(), &webhook.Webhook{Name: "h", URL: "https://example.com/h", Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
	require.NoError(t, err)
	for range webhook.MaxPageSize + 1 {
		_, err := ts.TriggerEvent(t.Context(), "order", nil, "")
		require.NoError(t, err)
	}
	r := e.do(req{method: "GET", path: "/webhooks/" + w.ID + "/deliveries?limit=1000", tenant: "a"})
	require.Equal(t, http.StatusOK, r.status)
	p := r.json(t)
	assert.Len(t, p["data"], 1000)
	assert.Equal(t, true, p["has_more"])
	r = e.do(req{method: "GET", path: "/webhooks/" + w.ID + "/deliveries?limit=1000&cursor=" + p["next_cursor"].(string), tenant: "a"})
	p = r.json(t)
	assert.Len(t, p["data"], 1)
	assert.Equal(t, false, p["has_more"])
}
