package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
)

// summaries is a Config.Summary that records its calls and can be told
// to fail.
type summaries struct {
	mu    sync.Mutex
	calls []webhook.Period
	hooks []*webhook.Webhook
	fail  error
}

func (s *summaries) summary(_ context.Context, w *webhook.Webhook, p webhook.Period) (map[string]any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, p)
	s.hooks = append(s.hooks, w)
	if s.fail != nil {
		return nil, s.fail
	}
	return map[string]any{"tenant": w.TenantID, "calls": len(s.calls)}, nil
}

func (s *summaries) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

func clockAt(s string) *fakeClock {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return &fakeClock{now: t}
}

func scheduledService(t *testing.T, store webhook.Storage, clock *fakeClock, fn webhook.SummaryFunc) *webhook.Service {
	t.Helper()
	svc, err := webhook.NewService(store, &webhook.Config{Now: clock.Now, Summary: fn, EvaluationInterval: -1})
	require.NoError(t, err)
	return svc
}

// summariesOf returns the data of the webhook's deliveries, oldest first.
func summariesOf(t *testing.T, store webhook.Storage, webhookID string) []map[string]any {
	t.Helper()
	ds, err := store.ListDeliveries(t.Context(), webhook.ListDeliveriesParams{WebhookID: webhookID, Limit: webhook.MaxPageSize})
	require.NoError(t, err)
	out := make([]map[string]any, 0, len(ds))
	for i := len(ds) - 1; i >= 0; i-- {
		d, m, _ := payloadOf(t, store, ds[i].ID)
		require.Equal(t, webhook.EventTypeScheduledSummary, d.EventType)
		out = append(out, m)
	}
	return out
}

func periodEnds(list []map[string]any) []any {
	var out []any
	for _, m := range list {
		out = append(out, m["data"].(map[string]any)["period_end"])
	}
	return out
}

var daily10Berlin = webhook.Trigger{Type: webhook.TriggerScheduled, Schedule: "0 10 * * *", Timezone: "Europe/Berlin"}

func TestScheduledSummaryOncePerPeriodAcrossRestarts(t *testing.T) {
	store := memstore.New(nil)
	clock := clockAt("2026-11-28T08:30:00Z") // 09:30 in Berlin
	sums := &summaries{}
	svc := scheduledService(t, store, clock, sums.summary)
	w := create(t, svc, "daily", daily10Berlin)

	require.NoError(t, svc.Evaluate(t.Context()))
	assert.Empty(t, summariesOf(t, store, w.ID), "no summary for a period that ended before the webhook existed")
	assert.Zero(t, sums.count())

	clock.Advance(30*time.Minute + 5*time.Second) // 10:00:05 in Berlin
	for range 3 {
		require.NoError(t, svc.Evaluate(t.Context()))
	}
	got := summariesOf(t, store, w.ID)
	require.Len(t, got, 1)
	assert.Equal(t, 1, sums.count(), "the state is read before the summary is computed")
	assert.Equal(t, webhook.Period{Start: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC), End: time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)},
		webhook.Period{Start: sums.calls[0].Start.UTC(), End: sums.calls[0].End.UTC()})
	assert.Equal(t, "Europe/Berlin", sums.calls[0].End.Location().String())
	assert.Equal(t, w.ID, sums.hooks[0].ID)
	assert.Equal(t, map[string]any{
		"period_start": "2026-11-27T10:00:00+01:00",
		"period_end":   "2026-11-28T10:00:00+01:00",
		"schedule":     "0 10 * * *",
		"timezone":     "Europe/Berlin",
		"summary":      map[string]any{"tenant": "", "calls": 1.0},
	}, got[0]["data"])
	assert.Equal(t, "2026-11-28T09:00:00Z", got[0]["timestamp"], "the payload's timestamp is the period's end")
	assert.Equal(t, "", got[0]["environment"])

	// A restart: a new Service on the same Storage sends nothing again.
	restarted := scheduledService(t, store, clock, sums.summary)
	require.NoError(t, restarted.Evaluate(t.Context()))
	assert.Len(t, summariesOf(t, store, w.ID), 1)
	assert.Equal(t, 1, sums.count())

	clock.Advance(24 * time.Hour)
	require.NoError(t, restarted.Evaluate(t.Context()))
	require.NoError(t, svc.Evaluate(t.Context()))
	assert.Equal(t, []any{"2026-11-28T10:00:00+01:00", "2026-11-29T10:00:00+01:00"}, periodEnds(summariesOf(t, store, w.ID)))
}

func TestScheduledSummaryTwoSchedulersRacing(t *testing.T) {
	store := memstore.New(nil)
	clock := clockAt("2026-11-28T08:30:00Z")
	sums := &summaries{}
	a := scheduledService(t, store, clock, sums.summary)
	b := scheduledService(t, store, clock, sums.summary)
	hourly := create(t, a, "hourly", webhook.Trigger{Type: webhook.TriggerScheduled, IntervalSeconds: 3600})
	daily := create(t, a, "daily", daily10Berlin)
	for period := 1; period <= 5; period++ {
		clock.Advance(time.Hour)
		var wg sync.WaitGroup
		for _, svc := range []*webhook.Service{a, b, a, b} {
			wg.Go(func() {
				for range 3 {
					assert.NoError(t, svc.Evaluate(context.Background()))
				}
			})
		}
		wg.Wait()
		assert.Len(t, summariesOf(t, store, hourly.ID), period, "one summary per period")
	}
	assert.Len(t, summariesOf(t, store, daily.ID), 1)
}

func TestScheduledSummaryAfterDowntimeSendsTheLatestPeriodOnly(t *testing.T) {
	store := memstore.New(nil)
	clock := clockAt("2026-11-28T08:30:00Z")
	svc := scheduledService(t, store, clock, nil)
	w := create(t, svc, "hourly", webhook.Trigger{Type: webhook.TriggerScheduled, IntervalSeconds: 3600})
	clock.Advance(31 * time.Minute)
	require.NoError(t, svc.Evaluate(t.Context()))
	clock.Advance(5 * time.Hour) // down from 09:01 to 14:01
	require.NoError(t, svc.Evaluate(t.Context()))
	got := summariesOf(t, store, w.ID)
	require.Len(t, got, 2)
	assert.Equal(t, map[string]any{
		"period_start":     "2026-11-28T13:00:00Z",
		"period_end":       "2026-11-28T14:00:00Z",
		"interval_seconds": 3600.0,
		"summary":          nil,
	}, got[1]["data"], "without Config.Summary, the period alone")
}

func TestScheduledSummaryErrorIsLoggedAndRetried(t *testing.T) {
	store := memstore.New(nil)
	clock := clockAt("2026-11-28T08:30:00Z")
	sums := &summaries{fail: errors.New("analytics unavailable")}
	var logs bytes.Buffer
	svc, err := webhook.NewService(store, &webhook.Config{Now: clock.Now, Summary: sums.summary, EvaluationInterval: -1,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	w := create(t, svc, "daily", daily10Berlin)
	clock.Advance(time.Hour)

	err = svc.Evaluate(t.Context())
	require.ErrorIs(t, err, sums.fail)
	assert.Contains(t, err.Error(), w.ID)
	assert.Empty(t, logs.String(), "Evaluate returns the error to its caller, which logs it if it wants")
	assert.Empty(t, summariesOf(t, store, w.ID))

	clock.Advance(10 * time.Second)
	require.ErrorIs(t, svc.Evaluate(t.Context()), sums.fail, "still failing: tried again")
	sums.mu.Lock()
	sums.fail = nil
	sums.mu.Unlock()
	clock.Advance(10 * time.Second)
	require.NoError(t, svc.Evaluate(t.Context()))
	got := summariesOf(t, store, w.ID)
	require.Len(t, got, 1)
	assert.Equal(t, "2026-11-28T10:00:00+01:00", got[0]["data"].(map[string]any)["period_end"])
	assert.Equal(t, 3, sums.count())
	for _, p := range sums.calls {
		assert.True(t, p.End.Equal(sums.calls[0].End), "the same period each time")
	}
}

func TestScheduledSummaryOfAnEditedSchedule(t *testing.T) {
	store := memstore.New(nil)
	clock := clockAt("2026-11-28T08:30:00Z")
	svc := scheduledService(t, store, clock, nil)
	w := create(t, svc, "daily", daily10Berlin)
	clock.Advance(time.Hour) // 10:30 in Berlin
	require.NoError(t, svc.Evaluate(t.Context()))
	require.Len(t, summariesOf(t, store, w.ID), 1)

	// Moved to 08:00: the period that ended at 08:00 today is not sent
	// (it ended before the change); tomorrow's is.
	w.Triggers[0].Schedule = "0 8 * * *"
	w, err := svc.Update(t.Context(), w)
	require.NoError(t, err)
	require.NoError(t, svc.Evaluate(t.Context()))
	require.Len(t, summariesOf(t, store, w.ID), 1)
	clock.Advance(22 * time.Hour) // 08:30 tomorrow
	require.NoError(t, svc.Evaluate(t.Context()))
	assert.Equal(t, []any{"2026-11-28T10:00:00+01:00", "2026-11-29T08:00:00+01:00"}, periodEnds(summariesOf(t, store, w.ID)))
}

func TestScheduledSummaryTenantAndEnvironment(t *testing.T) {
	store := memstore.New(nil)
	clock := clockAt("2026-11-28T08:30:00Z")
	sums := &summaries{}
	svc := scheduledService(t, store, clock, sums.summary)
	a, err := svc.Tenant("acme").Create(t.Context(), &webhook.Webhook{Name: "a", URL: "https://example.com/a",
		Environments: []string{"production"}, Triggers: []webhook.Trigger{daily10Berlin}})
	require.NoError(t, err)
	b, err := svc.Tenant("globex").Create(t.Context(), &webhook.Webhook{Name: "b", URL: "https://example.com/b",
		Environments: []string{"production", "staging"}, Triggers: []webhook.Trigger{daily10Berlin}})
	require.NoError(t, err)
	clock.Advance(time.Hour)
	require.NoError(t, svc.Evaluate(t.Context()))

	ga, gb := summariesOf(t, store, a.ID), summariesOf(t, store, b.ID)
	require.Len(t, ga, 1)
	require.Len(t, gb, 1)
	assert.Equal(t, "acme", ga[0]["data"].(map[string]any)["summary"].(map[string]any)["tenant"], "each webhook's summary is its tenant's")
	assert.Equal(t, "globex", gb[0]["data"].(map[string]any)["summary"].(map[string]any)["tenant"])
	assert.Equal(t, "production", ga[0]["environment"], "the webhook's one environment")
	assert.Equal(t, "", gb[0]["environment"], "none for a webhook of several")
}

// stateless is a Storage without TriggerStateStore.
type stateless struct{ webhook.Storage }

func TestScheduledTriggerNeedsTriggerState(t *testing.T) {
	svc, err := webhook.NewService(stateless{memstore.New(nil)}, nil)
	require.NoError(t, err)
	_, err = svc.Create(t.Context(), &webhook.Webhook{Name: "daily", URL: "https://example.com/", Triggers: []webhook.Trigger{daily10Berlin}})
	var ve *webhook.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, []string{"triggers[0].trigger_type"}, fieldNames(ve))
}

func TestScheduledTriggerMatchesNothing(t *testing.T) {
	ok, err := daily10Berlin.Match(webhook.EventTypeScheduledSummary, map[string]any{})
	require.NoError(t, err, "a valid scheduled trigger")
	assert.False(t, ok, "its summaries come from its schedule, not from matching")
	_, err = webhook.Trigger{Type: webhook.TriggerScheduled, Schedule: "0 10 * * *"}.Match("x", nil)
	require.ErrorIs(t, err, webhook.ErrInvalid)
}

// A daily report at 09:00 Berlin time. Evaluate, which a running Worker
// calls every 10 seconds, sends each period's summary once, with the data
// Config.Summary computes.
func ExampleService_Evaluate() {
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC) // 08:00 in Berlin
	svc, err := webhook.NewService(memstore.New(nil), &webhook.Config{
		Now: func() time.Time { return now },
		Summary: func(ctx context.Context, w *webhook.Webhook, p webhook.Period) (map[string]any, error) {
			// Query the analytics of w.TenantID over [p.Start, p.End).
			return map[string]any{"signups": 42, "hours": p.End.Sub(p.Start).Hours()}, nil
		},
	})
	if err != nil {
		panic(err)
	}
	hook, err := svc.Create(ctx, &webhook.Webhook{
		Name: "Daily report",
		URL:  "https://crm.example.com/hooks/report",
		Triggers: []webhook.Trigger{{
			Type: webhook.TriggerScheduled, Schedule: "0 9 * * *", Timezone: "Europe/Berlin",
		}},
	})
	if err != nil {
		panic(err)
	}

	now = now.Add(time.Hour + time.Second) // 09:00:01 in Berlin
	for range 3 {
		if err := svc.Evaluate(ctx); err != nil {
			panic(err)
		}
	}
	ds, _ := svc.Deliveries(ctx, hook.ID, 10)
	fmt.Println("summaries:", len(ds), ds[0].EventType)
	p, _ := svc.Storage().GetPayload(ctx, ds[0].PayloadID)
	var body struct{ Data map[string]any }
	_ = json.Unmarshal(p.Body, &body)
	fmt.Println("period:", body.Data["period_start"], "to", body.Data["period_end"])
	fmt.Println("summary:", body.Data["summary"])
	// Output:
	// summaries: 1 $scheduled_summary
	// period: 2026-11-26T09:00:00+01:00 to 2026-11-27T09:00:00+01:00
	// summary: map[hours:24 signups:42]
}

func TestScheduledSummaryOfADisabledWebhook(t *testing.T) {
	store := memstore.New(nil)
	clock := clockAt("2026-11-28T08:30:00Z")
	svc := scheduledService(t, store, clock, nil)
	w := create(t, svc, "daily", daily10Berlin)
	clock.Advance(time.Hour)
	require.NoError(t, svc.Evaluate(t.Context()))
	w.Disabled = true
	w, err := svc.Update(t.Context(), w)
	require.NoError(t, err)
	clock.Advance(3 * 24 * time.Hour)
	require.NoError(t, svc.Evaluate(t.Context()))
	assert.Len(t, summariesOf(t, store, w.ID), 1, "nothing while disabled")

	w.Disabled = false
	_, err = svc.Update(t.Context(), w)
	require.NoError(t, err)
	require.NoError(t, svc.Evaluate(t.Context()))
	require.NoError(t, svc.Evaluate(t.Context()))
	assert.Equal(t, []any{"2026-11-28T10:00:00+01:00", "2026-12-01T10:00:00+01:00"}, periodEnds(summariesOf(t, store, w.ID)),
		"re-enabled: the latest period missed meanwhile")
}

func TestScheduledSummaryTooLargeIsAnError(t *testing.T) {
	store := memstore.New(nil)
	clock := clockAt("2026-11-28T08:30:00Z")
	big := func(context.Context, *webhook.Webhook, webhook.Period) (map[string]any, error) {
		return map[string]any{"blob": strings.Repeat("x", 2048)}, nil
	}
	svc, err := webhook.NewService(store, &webhook.Config{Now: clock.Now, Summary: big, MaxPayloadBytes: 1024, EvaluationInterval: -1})
	require.NoError(t, err)
	w := create(t, svc, "daily", daily10Berlin)
	clock.Advance(time.Hour)
	require.ErrorIs(t, svc.Evaluate(t.Context()), webhook.ErrPayloadTooLarge)
	assert.Empty(t, summariesOf(t, store, w.ID), "nothing sent, nothing marked sent")
}

// Under Worker.Run, a failing summary is logged once per failed
// evaluation, naming the webhook and the period: not once by the
// summary and again by the evaluator.
func TestScheduledSummaryErrorIsLoggedOncePerEvaluation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memstore.New(nil)
		sums := &summaries{fail: errors.New("analytics unavailable")}
		logs := newCaptureHandler()
		svc, err := webhook.NewService(store, &webhook.Config{Summary: sums.summary, Doer: okDoer{}, Logger: slog.New(logs)})
		require.NoError(t, err)
		w := create(t, svc, "hourly", webhook.Trigger{Type: webhook.TriggerScheduled, IntervalSeconds: 3600})
		worker, err := webhook.NewWorker(svc, nil)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- worker.Run(ctx) }()
		time.Sleep(time.Hour + 35*time.Second) // the hour ends: evaluations at :00 (maybe), :10, :20, :30 fail
		synctest.Wait()
		cancel()
		require.NoError(t, <-done)

		var lines int
		for _, r := range logs.all() {
			if r.level == slog.LevelError && strings.Contains(r.String(), "analytics unavailable") {
				lines++
				assert.Contains(t, r.String(), w.ID)
				assert.Contains(t, r.String(), "period ending")
			}
		}
		require.GreaterOrEqual(t, sums.count(), 3)
		assert.Equal(t, sums.count(), lines, "one line per failed summary")
		assert.Empty(t, summariesOf(t, store, w.ID))
	})
}
