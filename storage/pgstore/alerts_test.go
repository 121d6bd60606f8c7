package pgstore_test

import (
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
)

// alertClock is a fake clock two Services share.
type alertClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *alertClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *alertClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// alertReasons returns the reason of every notification enqueued for a
// webhook, oldest first.
func alertReasons(t *testing.T, store webhook.Storage, webhookID string) []string {
	t.Helper()
	ds, err := store.ListDeliveries(t.Context(), webhook.ListDeliveriesParams{WebhookID: webhookID, Limit: webhook.MaxPageSize})
	require.NoError(t, err)
	slices.Reverse(ds)
	var out []string
	for _, d := range ds {
		p, err := store.GetPayload(t.Context(), d.PayloadID)
		require.NoError(t, err)
		var m struct {
			Data struct {
				Reason string `json:"reason"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal(p.Body, &m))
		out = append(out, m.Data.Reason)
	}
	return out
}

// Two Services (two processes) on one database race every transition of
// a threshold alert, 100 times: each is enqueued exactly once.
func TestThresholdTransitionsRaceOnce(t *testing.T) {
	store := newStore(t)
	ctx := t.Context()
	clock := &alertClock{now: time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)}
	var svcs [2]*webhook.Service
	for i := range svcs {
		var err error
		svcs[i], err = webhook.NewService(store, &webhook.Config{Now: clock.Now, WebhookCacheTTL: -1}) // both see every webhook at once
		require.NoError(t, err)
	}
	w, err := svcs[0].Create(ctx, &webhook.Webhook{Name: "alerts", URL: "https://example.com/alerts", Triggers: []webhook.Trigger{{
		Type: webhook.TriggerThreshold, Conditions: []webhook.Condition{{Metric: "m", Operator: webhook.ConditionGT, Value: 1}},
	}}})
	require.NoError(t, err)

	race := func(call func(svc *webhook.Service) ([]string, error)) int {
		t.Helper()
		var wg sync.WaitGroup
		var got [2]int
		start := make(chan struct{})
		for j, svc := range svcs {
			wg.Go(func() {
				<-start
				ids, err := call(svc)
				assert.NoError(t, err)
				got[j] = len(ids)
			})
		}
		close(start)
		wg.Wait()
		return got[0] + got[1]
	}
	const rounds = 100
	var want []string
	for i := range rounds {
		v, reason := 5.0, "fired"
		if i%2 == 1 {
			v, reason = 0, "recovered"
		}
		want = append(want, reason)
		n := race(func(svc *webhook.Service) ([]string, error) { return svc.TriggerThreshold(ctx, "m", v, 1, "prod") })
		require.Equal(t, 1, n, "round %d: one of the two enqueues it", i)
		clock.Advance(time.Second)
	}
	assert.Equal(t, want, alertReasons(t, store, w.ID))

	// Renotifications, raced by the two Services' evaluators.
	w2, err := svcs[0].Create(ctx, &webhook.Webhook{Name: "repeat", URL: "https://example.com/repeat", Triggers: []webhook.Trigger{{
		Type: webhook.TriggerThreshold, Conditions: []webhook.Condition{{Metric: "r", Operator: webhook.ConditionGT, Value: 1, RepeatIntervalSeconds: 60}},
	}}})
	require.NoError(t, err)
	n := race(func(svc *webhook.Service) ([]string, error) { return svc.TriggerThreshold(ctx, "r", 5, 1, "") })
	require.Equal(t, 1, n)
	for range rounds {
		clock.Advance(time.Minute)
		race(func(svc *webhook.Service) ([]string, error) { return nil, svc.Evaluate(ctx) })
	}
	got := alertReasons(t, store, w2.ID)
	require.Len(t, got, rounds+1, "fired, then one renotify per interval")
	assert.Equal(t, "fired", got[0])
	for _, r := range got[1:] {
		assert.Equal(t, "renotify", r)
	}
}

// Samples recorded by two Services on one database make one window:
// its aggregates are those of all the samples, and it resolves once they
// have left it.
func TestThresholdWindowAcrossProcesses(t *testing.T) {
	store := newStore(t)
	ctx := t.Context()
	clock := &alertClock{now: time.Date(2026, 11, 28, 9, 0, 0, 123456000, time.UTC)}
	t0 := clock.Now()
	var svcs [2]*webhook.Service
	for i := range svcs {
		var err error
		svcs[i], err = webhook.NewService(store, &webhook.Config{Now: clock.Now, WebhookCacheTTL: -1})
		require.NoError(t, err)
	}
	a, b := svcs[0], svcs[1]
	require.NoError(t, a.RecordMetric(ctx, "latency", 10, t0, "prod"))
	require.NoError(t, a.RecordMetric(ctx, "latency", 30, t0.Add(5*time.Second), "prod"))
	require.NoError(t, b.RecordMetric(ctx, "latency", 5, t0.Add(3*time.Second), "prod"))   // the same bucket, another process
	require.NoError(t, b.RecordMetric(ctx, "latency", 40, t0.Add(12*time.Second), "prod")) // the next bucket, the latest sample
	require.NoError(t, b.RecordMetric(ctx, "latency", 1000, t0.Add(-2*time.Minute), "prod"))
	require.NoError(t, a.Flush(ctx))
	require.NoError(t, b.Flush(ctx))

	var conds []webhook.Condition
	for _, agg := range []webhook.Aggregation{webhook.AggregateSum, webhook.AggregateAvg, webhook.AggregateMin, webhook.AggregateMax, webhook.AggregateCount, webhook.AggregateLast} {
		conds = append(conds, webhook.Condition{Metric: "latency", Operator: webhook.ConditionGT, Value: 0, WindowSeconds: 60, Aggregation: agg})
	}
	w, err := a.Create(ctx, &webhook.Webhook{Name: "w", URL: "https://example.com/w", Triggers: []webhook.Trigger{{Type: webhook.TriggerThreshold, Conditions: conds}}})
	require.NoError(t, err)
	clock.Advance(15 * time.Second)
	var wg sync.WaitGroup
	for _, svc := range svcs {
		wg.Go(func() { assert.NoError(t, svc.Evaluate(ctx)) })
	}
	wg.Wait()

	values := func() map[string]any {
		ds, err := store.ListDeliveries(ctx, webhook.ListDeliveriesParams{WebhookID: w.ID, Limit: webhook.MaxPageSize})
		require.NoError(t, err)
		out := map[string]any{}
		for _, d := range ds {
			p, err := store.GetPayload(ctx, d.PayloadID)
			require.NoError(t, err)
			var m struct {
				Data map[string]any `json:"data"`
			}
			require.NoError(t, json.Unmarshal(p.Body, &m))
			out[m.Data["aggregation"].(string)+" "+m.Data["reason"].(string)] = m.Data["value"]
		}
		return out
	}
	assert.Equal(t, map[string]any{"sum fired": 85.0, "avg fired": 21.25, "min fired": 5.0, "max fired": 40.0, "count fired": 4.0, "last fired": 40.0}, values())

	clock.Advance(time.Minute)
	require.NoError(t, b.Evaluate(ctx))
	require.NoError(t, a.Evaluate(ctx))
	got := values()
	assert.Len(t, got, 12, "six alerts, six resolutions")
	for _, k := range []string{"avg no_data", "min no_data", "max no_data", "last no_data"} {
		assert.Contains(t, got, k)
		assert.Nil(t, got[k])
	}
	assert.Equal(t, 0.0, got["sum recovered"])
	assert.Equal(t, 0.0, got["count recovered"])
}
