package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/httpapi"
	"github.com/analytics-webhooks/webhook/memstore"
)

// TestSecretsOnlyWhereShown checks the raw bodies of every response but
// create's, the secret endpoint's and rotation's for the secrets, and
// the debug logs of the handler and the service for any of them.
func TestSecretsOnlyWhereShown(t *testing.T) {
	e := newEnv(t, nil)
	created := e.do(req{method: "POST", path: "/webhooks", tenant: "a", body: hookBody("s")})
	require.Equal(t, http.StatusCreated, created.status)
	id := created.json(t)["id"].(string)
	secrets := []string{created.json(t)["secret"].(string)}
	rot := e.do(req{method: "POST", path: "/webhooks/" + id + "/secret/rotate", tenant: "a"})
	require.Equal(t, http.StatusOK, rot.status)
	secrets = append(secrets, rot.json(t)["secret"].(string))
	given := "whsec_" + strings.Repeat("B", 43) + "="
	secrets = append(secrets, given)

	hidden := []req{
		{method: "GET", path: "/webhooks", tenant: "a"},
		{method: "GET", path: "/webhooks/" + id, tenant: "a"},
		{method: "PUT", path: "/webhooks/" + id, tenant: "a", body: hookBody("s2")},
		{method: "PATCH", path: "/webhooks/" + id, tenant: "a", body: `{"name":"s3"}`, contentType: typeMergePatch},
		{method: "POST", path: "/webhooks/" + id + "/disable", tenant: "a"},
		{method: "POST", path: "/webhooks/" + id + "/enable", tenant: "a"},
		{method: "POST", path: "/webhooks/" + id + "/test", tenant: "a"},
		{method: "GET", path: "/webhooks/" + id + "/deliveries", tenant: "a"},
		// Refused requests that carry a secret do not echo it.
		{method: "PUT", path: "/webhooks/" + id, tenant: "a", body: `{"name":"x","url":"https://example.com/x","secret":"` + given + `","triggers":[{"trigger_type":"event"}]}`, invalid: true},
		{method: "PATCH", path: "/webhooks/" + id, tenant: "a", body: `{"secret":"` + given + `"}`, contentType: typeMergePatch, invalid: true},
		{method: "POST", path: "/webhooks", tenant: "a", body: `{"name":"","url":"https://example.com/x","secret":"` + given + `x","triggers":[]}`, invalid: true},
		{method: "POST", path: "/webhooks", tenant: "a", body: `{"name":"x","url":"https://example.com/x","secret":"` + given + `","triggers":[{"trigger_type":"event"}],"typo":1}`, invalid: true},
	}
	for _, rq := range hidden {
		r := e.do(rq)
		assert.Less(t, r.status, 500, "%s %s", rq.method, rq.path)
		assert.NotRegexp(t, secretPattern, string(r.body), "%s %s", rq.method, rq.path)
		for _, s := range secrets {
			assert.NotContains(t, string(r.body), strings.TrimPrefix(s, "whsec_"), "%s %s", rq.method, rq.path)
		}
	}
	shown := e.do(req{method: "GET", path: "/webhooks/" + id + "/secret", tenant: "a"})
	assert.Contains(t, string(shown.body), secrets[1], "the secret endpoint shows it")

	logs := e.logs.String()
	require.Contains(t, logs, "request refused", "debug logs were captured")
	for _, s := range secrets {
		assert.NotContains(t, logs, strings.TrimPrefix(s, "whsec_"), "logs never hold a secret")
	}
	assert.NotRegexp(t, secretPattern, logs)
}

// secretPattern matches a secret, not the word in an error's reason.
var secretPattern = regexp.MustCompile(`whsec_[A-Za-z0-9+/]{16}`)

// failingStore fails webhook lists as a broken database does, and
// counts nothing else.
type failingStore struct {
	*memstore.Store
}

func (failingStore) ListWebhooks(context.Context, webhook.ListWebhooksParams) ([]*webhook.Webhook, error) {
	return nil, errors.New("disk on fire")
}

func TestServerFaults(t *testing.T) {
	logs := &syncBuffer{}
	svc, err := webhook.NewService(failingStore{memstore.New(nil)}, nil)
	require.NoError(t, err)
	h, err := httpapi.New(svc, &httpapi.Config{Logger: newLogger(logs)})
	require.NoError(t, err)
	srv := newServer(t, h)
	res, err := srv.Client().Get(srv.URL + "/api/webhooks")
	require.NoError(t, err)
	body := readAll(t, res.Body)
	_ = res.Body.Close()
	assert.Equal(t, http.StatusInternalServerError, res.StatusCode, "a real fault is a 500")
	assert.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
	assert.NotContains(t, string(body), "disk on fire", "internal errors are not shown")
	assert.Contains(t, logs.String(), "disk on fire", "but logged")

	// A full queue is 503 with Retry-After.
	store := memstore.New(&memstore.Config{MaxActive: 1})
	doer := &fakeDoer{}
	doer.status.Store(http.StatusInternalServerError)
	svc, err = webhook.NewService(store, &webhook.Config{Doer: doer})
	require.NoError(t, err)
	h, err = httpapi.New(svc, nil)
	require.NoError(t, err)
	srv = newServer(t, h)
	ctx := t.Context()
	w, err := svc.Create(ctx, &webhook.Webhook{Name: "q", URL: "https://example.com/q", Retry: webhook.RetryPolicy{MaxAttempts: 1},
		Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
	require.NoError(t, err)
	ids, err := svc.TriggerEvent(ctx, "first", nil, "")
	require.NoError(t, err)
	worker, err := webhook.NewWorker(svc, nil)
	require.NoError(t, err)
	_, err = worker.RunOnce(ctx)
	require.NoError(t, err)
	_, err = svc.TriggerEvent(ctx, "fills the queue", nil, "")
	require.NoError(t, err)
	res, err = srv.Client().Post(srv.URL+"/api/webhooks/"+w.ID+"/deliveries/"+ids[0]+"/redeliver", "", nil)
	require.NoError(t, err)
	_ = res.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode, "back-pressure, not a fault")
	assert.Equal(t, "5", res.Header.Get("Retry-After"))
}
