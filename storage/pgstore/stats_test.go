package pgstore_test

import (
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/webhooktest"
)

// plainStorage hides the Store's optional interfaces, so that a Service
// computes stats by listing.
type plainStorage struct{ webhook.Storage }

// A scripted run over PostgreSQL, sent with webhooktest's Doer and
// drained through its retries with webhooktest's Clock: the stats
// pgstore computes in SQL (percentile_cont included, over the real
// measured durations) equal those the Service computes by listing.
func TestStatsMatchListing(t *testing.T) {
	ctx := t.Context()
	store := newStore(t)
	clock := webhooktest.NewClock(time.Now().UTC().Truncate(time.Second))
	doer := &webhooktest.Doer{}
	doer.Respond(func(r *webhooktest.Request) int {
		switch r.Message.Data["kind"] {
		case "ok":
			return http.StatusOK
		case "gone":
			return http.StatusGone
		case "offline":
			return 0 // a network error
		}
		return http.StatusServiceUnavailable
	})
	svc, err := webhook.NewService(store, &webhook.Config{Now: clock.Now, Doer: doer, Network: testNetwork()})
	if err != nil {
		t.Fatal(err)
	}
	retry := webhook.RetryPolicy{MaxAttempts: 3, InitialDelay: time.Minute, MaxDelay: time.Hour, Multiplier: 2, DisableJitter: true}
	hook, err := svc.Create(ctx, &webhook.Webhook{Name: "a", URL: "https://example.com/a", Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}, Retry: retry})
	if err != nil {
		t.Fatal(err)
	}
	since := clock.Now()
	for _, kind := range []string{"ok", "ok", "busy", "offline", "ok", "gone"} {
		if _, err := svc.TriggerEvent(ctx, "e", map[string]any{"kind": kind}, "production"); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
	}
	// One attempt at a time, in due order.
	webhooktest.Drain(t, svc, &webhooktest.DrainConfig{Clock: clock, Worker: &webhook.WorkerConfig{Concurrency: 1}})
	// The 410 disables the webhook before busy's and offline's
	// retries, which are then failed without a request.
	if n := len(doer.Requests()); n != 6 {
		t.Fatalf("%d requests, want 6, one per delivery", n)
	}

	st, err := svc.Stats(ctx, hook.ID, since)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := webhook.NewService(plainStorage{store}, &webhook.Config{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	listed, err := plain.Stats(ctx, hook.ID, since)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(st, listed) {
		t.Fatalf("pgstore's stats differ from those computed by listing:\n got %+v\nwant %+v", st, listed)
	}
	want := map[webhook.AttemptOutcome]int64{webhook.AttemptSuccess: 3, webhook.AttemptHTTPError: 2, webhook.AttemptNetworkError: 1,
		webhook.AttemptTimeout: 0, webhook.AttemptBlocked: 0, webhook.AttemptAborted: 2}
	if !reflect.DeepEqual(st.Attempts, want) || st.Deliveries[webhook.StatusFailed] != 3 || st.LatencySamples != 6 {
		t.Fatalf("attempts %v, deliveries %v, %d latency samples", st.Attempts, st.Deliveries, st.LatencySamples)
	}
	if !st.Disabled || st.DisabledReason == "" {
		t.Fatalf("410 disables the webhook: %+v", st)
	}
	webhooktest.RequireDelivered(t, svc, "e", func(m *webhooktest.Message) bool { return m.Data["kind"] == "ok" })
	webhooktest.RequireNotDelivered(t, svc, "e", func(m *webhooktest.Message) bool { return m.Data["kind"] != "ok" })
}
