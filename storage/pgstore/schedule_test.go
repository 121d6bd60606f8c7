package pgstore_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
)

// settableClock is a clock the test moves.
type settableClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *settableClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *settableClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Several Services on one PostgreSQL evaluating the same scheduled
// triggers at once, and a Service started later on it, send one summary
// per webhook and period.
func TestScheduledSummaryOncePerPeriodAcrossServices(t *testing.T) {
	store := newStore(t)
	ctx := t.Context()
	clock := &settableClock{now: time.Date(2026, 10, 24, 22, 30, 0, 0, time.UTC)} // 00:30 in Berlin, the day clocks go back
	var calls atomic.Int64
	summary := func(_ context.Context, w *webhook.Webhook, p webhook.Period) (map[string]any, error) {
		calls.Add(1)
		return map[string]any{"hours": p.End.Sub(p.Start).Hours()}, nil
	}
	newService := func() *webhook.Service {
		svc, err := webhook.NewService(store, &webhook.Config{Now: clock.Now, Summary: summary, EvaluationInterval: -1, WebhookCacheTTL: -1})
		require.NoError(t, err)
		return svc
	}
	services := []*webhook.Service{newService(), newService(), newService()}
	hourly, err := services[0].Create(ctx, &webhook.Webhook{Name: "hourly", URL: "https://example.com/h",
		Triggers: []webhook.Trigger{{Type: webhook.TriggerScheduled, IntervalSeconds: 3600}}})
	require.NoError(t, err)
	// 02:30 happens twice tonight in Berlin: one summary.
	nightly, err := services[0].Tenant("acme").Create(ctx, &webhook.Webhook{Name: "nightly", URL: "https://example.com/n",
		Triggers: []webhook.Trigger{{Type: webhook.TriggerScheduled, Schedule: "30 2 * * *", Timezone: "Europe/Berlin"}}})
	require.NoError(t, err)

	count := func(id string) int {
		ds, err := store.ListDeliveries(ctx, webhook.ListDeliveriesParams{WebhookID: id, Limit: webhook.MaxPageSize})
		require.NoError(t, err)
		return len(ds)
	}
	for period := 1; period <= 4; period++ {
		clock.Advance(time.Hour)
		var wg sync.WaitGroup
		for g := range 8 {
			svc := services[g%len(services)]
			wg.Go(func() {
				for range 3 {
					assert.NoError(t, svc.Evaluate(context.Background()))
				}
			})
		}
		wg.Wait()
		assert.Equal(t, period, count(hourly.ID), "one hourly summary per period")
	}
	// 02:30 CEST (00:30Z) has passed, and 02:30 CET (01:30Z) too.
	assert.Equal(t, 1, count(nightly.ID))
	before := calls.Load()

	// A restart: a new Service sends nothing more for these periods.
	require.NoError(t, newService().Evaluate(ctx))
	assert.Equal(t, 4, count(hourly.ID))
	assert.Equal(t, 1, count(nightly.ID))
	assert.Equal(t, before, calls.Load(), "nor computes a summary: it reads the state first")

	states, err := store.TriggerStates(ctx, []string{nightly.ID})
	require.NoError(t, err)
	require.Len(t, states, 1)
	assert.True(t, strings.HasPrefix(states[0].Key, "scheduled:"+nightly.ID+":0:"), states[0].Key)
	assert.Equal(t, "acme", states[0].TenantID)
	require.NotNil(t, states[0].Schedule)
	assert.Equal(t, time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC), states[0].Schedule.LastPeriodEnd.UTC(), "02:30 in CEST, the first 02:30")
}
