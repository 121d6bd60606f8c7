package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
)

// plainStore hides every optional interface of the Storage it wraps.
type plainStore struct{ webhook.Storage }

func TestQueueStats(t *testing.T) {
	ctx := t.Context()
	svc, _, clock := newService(t)
	hook := create(t, svc, "orders", webhook.Trigger{Type: webhook.TriggerEvent})
	_, err := svc.TriggerEvent(ctx, "order.created", map[string]any{"id": 1}, "production")
	require.NoError(t, err)
	_, err = svc.TriggerEvent(ctx, "order.created", map[string]any{"id": 2}, "production")
	require.NoError(t, err)
	due := clock.Now().UTC().Truncate(time.Microsecond)
	clock.Advance(time.Minute)

	q, err := svc.QueueStats(ctx, 3)
	require.NoError(t, err)
	require.EqualValues(t, 2, q.Depth[webhook.StatusPending])
	require.EqualValues(t, 2, q.Due, "due by the service's clock")
	require.True(t, q.OldestDue.Equal(due), "OldestDue %v, want %v", q.OldestDue, due)
	require.Equal(t, []webhook.WebhookBacklog{{WebhookID: hook.ID, Unfinished: 2}}, q.TopBacklog)

	_, err = svc.QueueStats(ctx, -1)
	require.ErrorIs(t, err, webhook.ErrInvalid)

	plain, err := webhook.NewService(plainStore{svc.Storage()}, nil)
	require.NoError(t, err)
	_, err = plain.QueueStats(ctx, 0)
	require.ErrorIs(t, err, errors.ErrUnsupported)
}

// doerFunc adapts a function to webhook.Doer.
type doerFunc func(*http.Request) (*http.Response, error)

func (f doerFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }

// sendOnce sends one delivery to a new webhook at url, with one attempt
// allowed, and returns the attempt recorded.
func sendOnce(t *testing.T, cfg *webhook.Config, url string, mut ...func(*webhook.Webhook)) webhook.Attempt {
	t.Helper()
	e := newEnv(t, cfg, nil)
	e.hook(t, url, append([]func(*webhook.Webhook){func(w *webhook.Webhook) { w.Retry.MaxAttempts = 1 }}, mut...)...)
	ids := e.trigger(t)
	require.Len(t, ids, 1)
	e.runOnce(t)
	d := e.delivery(t, ids[0])
	require.NotEmpty(t, d.Attempts)
	return d.Attempts[len(d.Attempts)-1]
}

// The rules of ClassifyAttempt hold for what the worker really records.
func TestClassifyAttemptOfRealSends(t *testing.T) {
	respond := func(code int, header ...string) string {
		rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			for i := 0; i+1 < len(header); i += 2 {
				w.Header().Set(header[i], header[i+1])
			}
			w.WriteHeader(code)
		})
		return rc.URL
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	for _, tc := range []struct {
		name string
		cfg  *webhook.Config
		url  string
		want webhook.AttemptOutcome
	}{
		{"2xx", nil, respond(204), webhook.AttemptSuccess},
		{"5xx", nil, respond(503), webhook.AttemptHTTPError},
		{"3xx", nil, respond(302, "Location", "/elsewhere"), webhook.AttemptHTTPError},
		{"410", nil, respond(410), webhook.AttemptHTTPError},
		{"abort-message", nil, respond(400, webhook.HeaderDeliveryControl, "abort-message"), webhook.AttemptAborted},
		{"connection refused", nil, closedURL, webhook.AttemptNetworkError},
		{"blocked", &webhook.Config{Doer: webhook.NewHTTPClient(nil)}, respond(200), webhook.AttemptBlocked},
		{"blocked localhost", &webhook.Config{Doer: webhook.NewHTTPClient(nil)}, "http://localhost:1/", webhook.AttemptBlocked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := sendOnce(t, tc.cfg, tc.url)
			require.Equal(t, tc.want, webhook.ClassifyAttempt(a), "attempt %+v", a)
		})
	}

	t.Run("timeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			hang := doerFunc(func(r *http.Request) (*http.Response, error) {
				<-r.Context().Done()
				return nil, r.Context().Err()
			})
			a := sendOnce(t, &webhook.Config{Doer: hang}, "https://example.com/hook", func(w *webhook.Webhook) { w.Timeout = time.Second })
			require.Equal(t, webhook.AttemptTimeout, webhook.ClassifyAttempt(a), "attempt %+v", a)
		})
	})

	t.Run("not sent", func(t *testing.T) {
		e := newEnv(t, nil, nil)
		w := e.hook(t, respond(200))
		ids := e.trigger(t)
		w.Disabled = true
		_, err := e.svc.Update(t.Context(), w)
		require.NoError(t, err)
		e.runOnce(t)
		d := e.delivery(t, ids[0])
		require.Len(t, d.Attempts, 1)
		require.Equal(t, webhook.AttemptAborted, webhook.ClassifyAttempt(d.Attempts[0]), "attempt %+v", d.Attempts[0])
	})
}

func TestClassifyAttempt(t *testing.T) {
	for _, tc := range []struct {
		a    webhook.Attempt
		want webhook.AttemptOutcome
	}{
		{webhook.Attempt{StatusCode: 200}, webhook.AttemptSuccess},
		{webhook.Attempt{StatusCode: 299}, webhook.AttemptSuccess},
		{webhook.Attempt{StatusCode: 199, Error: "HTTP 199"}, webhook.AttemptHTTPError},
		{webhook.Attempt{StatusCode: 300, Error: "HTTP 300"}, webhook.AttemptHTTPError},
		{webhook.Attempt{StatusCode: 500, Error: "HTTP 500 with webhook-delivery: abort-message; not retried"}, webhook.AttemptAborted},
		{webhook.Attempt{Error: "request timed out after 1s"}, webhook.AttemptTimeout},
		{webhook.Attempt{Error: "not sent: the webhook was deleted"}, webhook.AttemptAborted},
		{webhook.Attempt{Error: "canceled before the endpoint answered: context canceled"}, webhook.AttemptAborted},
		{webhook.Attempt{Error: `lease of worker "w" expired before the attempt was recorded`}, webhook.AttemptAborted},
		{webhook.Attempt{Error: "request failed: EOF"}, webhook.AttemptNetworkError},
		{webhook.Attempt{}, webhook.AttemptNetworkError},
	} {
		require.Equal(t, tc.want, webhook.ClassifyAttempt(tc.a), "%+v", tc.a)
	}
}

// statsRun scripts a run on e: a delivery delivered at once ("ok"), one
// that fails once and then succeeds ("flaky"), and one that fails all
// three attempts ("dead").
func statsRun(t *testing.T, e *env) *webhook.Webhook {
	t.Helper()
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			Data struct{ Kind string } `json:"data"`
		}
		_ = json.NewDecoder(r.Body).Decode(&p)
		mu.Lock()
		seen[p.Data.Kind]++
		n := seen[p.Data.Kind]
		mu.Unlock()
		switch {
		case p.Data.Kind == "ok", p.Data.Kind == "flaky" && n > 1:
			w.WriteHeader(200)
		case p.Data.Kind == "flaky":
			w.WriteHeader(500)
		default:
			w.WriteHeader(503)
		}
	}))
	t.Cleanup(srv.Close)
	w := e.hook(t, srv.URL)
	for _, kind := range []string{"ok", "flaky", "dead"} {
		_, err := e.svc.TriggerEvent(t.Context(), "purchase", map[string]any{"kind": kind}, "production")
		require.NoError(t, err)
	}
	e.runOnce(t)
	for range 2 { // the retries come due
		e.clock.Advance(time.Hour)
		e.runOnce(t)
	}
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, map[string]int{"ok": 1, "flaky": 2, "dead": 3}, seen)
	return w
}

func TestStats(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t, nil, nil)
	start := e.clock.Now()
	w := statsRun(t, e)

	st, err := e.svc.Stats(ctx, w.ID, start)
	require.NoError(t, err)
	require.Equal(t, w.ID, st.WebhookID)
	require.True(t, st.Since.Equal(start))
	require.EqualValues(t, 2, st.Deliveries[webhook.StatusDelivered])
	require.EqualValues(t, 1, st.Deliveries[webhook.StatusFailed])
	require.EqualValues(t, 2, st.Attempts[webhook.AttemptSuccess])
	require.EqualValues(t, 4, st.Attempts[webhook.AttemptHTTPError])
	require.EqualValues(t, 2, st.DeliveryOutcomes[webhook.AttemptSuccess])
	require.EqualValues(t, 1, st.DeliveryOutcomes[webhook.AttemptHTTPError])
	require.InDelta(t, 2.0/3, st.SuccessRate, 1e-12)
	require.InDelta(t, 2.0/6, st.AttemptSuccessRate, 1e-12)
	require.EqualValues(t, 6, st.LatencySamples)
	require.NotNil(t, st.LastSuccess)
	require.Equal(t, 200, st.LastSuccess.StatusCode)
	require.NotNil(t, st.LastFailure)
	require.Equal(t, 503, st.LastFailure.StatusCode)
	require.Equal(t, webhook.AttemptHTTPError, st.LastFailureOutcome)
	require.Equal(t, 1, st.ConsecutiveFailures, "the health fields are the webhook's")
	require.False(t, st.Partial)

	// Without the Storage's StatsReader, the same from listing.
	plain, err := webhook.NewService(plainStore{e.store}, &webhook.Config{Now: e.clock.Now})
	require.NoError(t, err)
	fallback, err := plain.Stats(ctx, w.ID, start)
	require.NoError(t, err)
	require.Equal(t, st, fallback)

	// A zero since is the last DefaultStatsWindow.
	e.clock.Advance(webhook.DefaultStatsWindow)
	st, err = e.svc.Stats(ctx, w.ID, time.Time{})
	require.NoError(t, err)
	require.True(t, st.Since.Equal(e.clock.Now().Add(-webhook.DefaultStatsWindow).Truncate(time.Microsecond)), "since %v", st.Since)
	require.Equal(t, webhook.NewWebhookStats(w.ID, st.Since).Deliveries, st.Deliveries, "the run is older than the window")
	require.Equal(t, 1, st.ConsecutiveFailures)

	_, err = e.svc.Stats(ctx, "no-such-webhook", start)
	require.ErrorIs(t, err, webhook.ErrNotFound)
	require.NoError(t, e.svc.Delete(ctx, w.ID))
	_, err = e.svc.Stats(ctx, w.ID, start)
	require.ErrorIs(t, err, webhook.ErrNotFound, "a deleted webhook has no stats")
}

func TestTenantStats(t *testing.T) {
	ctx := t.Context()
	svc, _, _ := newService(t)
	acme, other := svc.Tenant("acme"), svc.Tenant("other")
	w, err := acme.Create(ctx, &webhook.Webhook{Name: "a", URL: "https://example.com/a", Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
	require.NoError(t, err)
	_, err = acme.TriggerEvent(ctx, "order.created", nil, "production")
	require.NoError(t, err)

	st, err := acme.Stats(ctx, w.ID, time.Time{})
	require.NoError(t, err)
	require.EqualValues(t, 1, st.Deliveries[webhook.StatusPending])
	_, err = other.Stats(ctx, w.ID, time.Time{})
	require.ErrorIs(t, err, webhook.ErrNotFound, "another tenant's webhook is not found")
	require.NotContains(t, err.Error(), "acme")
	_, err = svc.Tenant("").Stats(ctx, w.ID, time.Time{})
	require.ErrorIs(t, err, webhook.ErrTenantRequired)
}

// The fallback reads at most StatsFallbackLimit deliveries and says so.
func TestStatsFallbackIsBounded(t *testing.T) {
	ctx := t.Context()
	svc, store, clock := newService(t)
	w := create(t, svc, "busy", webhook.Trigger{Type: webhook.TriggerEvent})
	start := clock.Now()
	for range webhook.StatsFallbackLimit + 1 {
		_, err := svc.TriggerEvent(ctx, "e", nil, "production")
		require.NoError(t, err)
	}
	plain, err := webhook.NewService(plainStore{store}, &webhook.Config{Now: clock.Now})
	require.NoError(t, err)
	st, err := plain.Stats(ctx, w.ID, start)
	require.NoError(t, err)
	require.True(t, st.Partial)
	require.EqualValues(t, webhook.StatsFallbackLimit, st.Deliveries[webhook.StatusPending])

	full, err := svc.Stats(ctx, w.ID, start)
	require.NoError(t, err)
	require.False(t, full.Partial)
	require.EqualValues(t, webhook.StatsFallbackLimit+1, full.Deliveries[webhook.StatusPending])
}

func TestWebhookStatsJSON(t *testing.T) {
	st := webhook.NewWebhookStats("w1", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	st.LatencyP50, st.LatencyP95 = 1500*time.Microsecond, 2*time.Second
	st.Deliveries[webhook.StatusDelivered] = 3
	b, err := json.Marshal(st)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	require.Equal(t, 1.5, m["latency_p50_ms"])
	require.Equal(t, 2000.0, m["latency_p95_ms"])
	require.Equal(t, "w1", m["webhook_id"])
	require.Equal(t, 3.0, m["deliveries"].(map[string]any)["delivered"])
	require.Contains(t, m, "attempts")
	require.Contains(t, m, "success_rate")
	require.NotContains(t, m, "LatencyP50")
	require.NotContains(t, m, "last_success", "omitted when none")
}

// nilStatsStore is a faulty StatsReader that returns neither stats nor
// an error.
type nilStatsStore struct{ webhook.Storage }

func (nilStatsStore) WebhookStats(context.Context, webhook.StatsParams) (*webhook.WebhookStats, error) {
	return nil, nil
}

func TestStatsFromAFaultyStorage(t *testing.T) {
	svc, store, _ := newService(t)
	w := create(t, svc, "w", webhook.Trigger{Type: webhook.TriggerEvent})
	faulty, err := webhook.NewService(nilStatsStore{store}, nil)
	require.NoError(t, err)
	_, err = faulty.Stats(t.Context(), w.ID, time.Time{})
	require.ErrorContains(t, err, "returned no stats and no error")

	b := webhook.NewStatsBuilder(w.ID, time.Time{})
	b.Add(nil, []webhook.Attempt{{StatusCode: 200}})
	require.Zero(t, b.Stats().Attempts[webhook.AttemptSuccess], "a nil delivery is ignored")
}

func FuzzClassifyAttempt(f *testing.F) {
	f.Add(200, "")
	f.Add(0, "request timed out after 1s")
	f.Add(500, "HTTP 500 with webhook-delivery: abort-message; not retried")
	f.Add(0, "not sent: the webhook is disabled")
	f.Fuzz(func(t *testing.T, code int, msg string) {
		o := webhook.ClassifyAttempt(webhook.Attempt{StatusCode: code, Error: msg})
		if !slices.Contains(webhook.AttemptOutcomes(), o) {
			t.Fatalf("outcome %q is not one of AttemptOutcomes", o)
		}
		switch {
		case code >= 200 && code <= 299:
			require.Equal(t, webhook.AttemptSuccess, o)
		case code != 0:
			require.Contains(t, []webhook.AttemptOutcome{webhook.AttemptHTTPError, webhook.AttemptAborted}, o, "an answer is an HTTP error unless it aborts")
		default:
			require.NotEqual(t, webhook.AttemptSuccess, o)
			require.NotEqual(t, webhook.AttemptHTTPError, o)
		}
	})
}
