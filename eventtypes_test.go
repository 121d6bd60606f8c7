package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
)

// schemaNode is the part of JSON Schema the event-type catalogue uses.
type schemaNode struct {
	Type       any                    `json:"type"`
	Format     string                 `json:"format"`
	Enum       []any                  `json:"enum"`
	Properties map[string]*schemaNode `json:"properties"`
	Required   []string               `json:"required"`
	Items      *schemaNode            `json:"items"`
}

// check returns why v does not fit the schema, or "". Objects are
// checked closed: every key must be described.
func (s *schemaNode) check(path string, v any) []string {
	var out []string
	kind := "null"
	switch x := v.(type) {
	case string:
		kind = "string"
		if s.Format == "date-time" {
			if _, err := time.Parse(time.RFC3339Nano, x); err != nil {
				out = append(out, fmt.Sprintf("%s: %q is not a date-time", path, x))
			}
		}
	case bool:
		kind = "boolean"
	case float64:
		kind = "number"
	case []any:
		kind = "array"
		for i, e := range x {
			if s.Items != nil {
				out = append(out, s.Items.check(fmt.Sprintf("%s[%d]", path, i), e)...)
			}
		}
	case map[string]any:
		kind = "object"
		for _, r := range s.Required {
			if _, ok := x[r]; !ok {
				out = append(out, fmt.Sprintf("%s: required %q is missing", path, r))
			}
		}
		if s.Properties != nil {
			for k, e := range x {
				p, ok := s.Properties[k]
				if !ok {
					out = append(out, fmt.Sprintf("%s: %q is not described", path, k))
					continue
				}
				out = append(out, p.check(path+"."+k, e)...)
			}
		}
	}
	var types []string
	switch t := s.Type.(type) {
	case string:
		types = []string{t}
	case []any:
		for _, e := range t {
			types = append(types, e.(string))
		}
	}
	ok := slices.Contains(types, kind)
	if f, isNum := v.(float64); isNum && !ok && slices.Contains(types, "integer") {
		ok = f == float64(int64(f))
	}
	if !ok {
		out = append(out, fmt.Sprintf("%s: %v is %s, not %v", path, v, kind, types))
	}
	if len(s.Enum) > 0 && !slices.Contains(s.Enum, v) {
		out = append(out, fmt.Sprintf("%s: %v is not one of %v", path, v, s.Enum))
	}
	return out
}

// TestEventTypesDescribeRealPayloads produces every payload the library
// sends, in each of its variants, through the Service (trigger calls,
// metric recording, evaluation with an injected clock), and checks each
// payload's data against its event type's schema: every key described,
// every required key present, every value of its type; and every
// described property is sent by some variant.
func TestEventTypesDescribeRealPayloads(t *testing.T) {
	ctx := t.Context()
	store := memstore.New(nil)
	clock := &fakeClock{now: anomalyT0}
	svc, err := webhook.NewService(store, &webhook.Config{Now: clock.Now, Doer: okDoer{},
		Summary: func(_ context.Context, w *webhook.Webhook, p webhook.Period) (map[string]any, error) {
			return map[string]any{"signups": 3}, nil
		}})
	require.NoError(t, err)
	hook := func(name string, trig ...webhook.Trigger) *webhook.Webhook {
		w, err := svc.Create(ctx, &webhook.Webhook{Name: name, URL: "https://example.com/" + name, Triggers: trig})
		require.NoError(t, err)
		return w
	}
	testHook := hook("test", webhook.Trigger{Type: webhook.TriggerEvent})
	hook("errors", webhook.Trigger{Type: webhook.TriggerError})
	hook("funnels", webhook.Trigger{Type: webhook.TriggerFunnelComplete}, webhook.Trigger{Type: webhook.TriggerCohortEntry})
	hook("threshold", webhook.Trigger{Type: webhook.TriggerThreshold, Conditions: []webhook.Condition{
		{Metric: "load", Operator: webhook.ConditionGT, Value: 10, RecoveryValue: ptr(5.0), RepeatIntervalSeconds: 60},
		{Metric: "depth", Operator: webhook.ConditionGT, Value: 0, WindowSeconds: 30, Aggregation: webhook.AggregateMax},
	}})
	hook("anomaly", anomalyTrigger("signups"), webhook.Trigger{Type: webhook.TriggerAnomaly, Metric: "calls"})
	hook("schedules", webhook.Trigger{Type: webhook.TriggerScheduled, IntervalSeconds: 3600},
		webhook.Trigger{Type: webhook.TriggerScheduled, Schedule: "0 * * * *", Timezone: "Europe/Berlin"})
	noSummary, err := webhook.NewService(store, &webhook.Config{Now: clock.Now})
	require.NoError(t, err)

	// The detector fires on a spike and resolves; the schedules send the
	// summary of 09:00 to 10:00 meanwhile.
	series := noisy(70, 1)
	series[60], series[61] = 200, 210
	for i, v := range series {
		start := anomalyT0.Add(time.Duration(i) * time.Minute)
		require.NoError(t, store.AddMetricBuckets(ctx, []webhook.MetricBucket{{Metric: "signups", Environment: "production",
			Start: start, Count: 1, Sum: v, Min: v, Max: v, Last: v, LastAt: start}}))
		clock.now = start.Add(time.Minute + anomalySettle)
		require.NoError(t, svc.Evaluate(ctx))
	}
	// A summary without Config.Summary: the next hour, by another Service.
	clock.now = anomalyT0.Add(2*time.Hour + time.Second)
	require.NoError(t, noSummary.Evaluate(ctx))

	// Threshold alerts reported by the host: fired, renotify, recovered.
	for _, v := range []float64{20, 20, 3} {
		_, err := svc.TriggerThreshold(ctx, "load", v, 10, "production")
		require.NoError(t, err)
		clock.Advance(time.Minute)
	}
	// A windowed condition fires on a recorded sample and resolves when
	// its window empties: no_data.
	require.NoError(t, svc.RecordMetric(ctx, "depth", 4, time.Time{}, "production"))
	require.NoError(t, svc.Flush(ctx))
	require.NoError(t, svc.Evaluate(ctx))
	clock.Advance(2 * time.Minute)
	require.NoError(t, svc.Evaluate(ctx))

	// Reported anomalies, with and without an incident and properties.
	for _, a := range []webhook.Anomaly{
		{Metric: "calls", Value: 9, Expected: 3, Lower: 1, Upper: 5, Score: 4, IncidentID: "inc-1", Properties: map[string]any{"region": "eu"}},
		{Metric: "calls", Value: 3, Expected: 3, Lower: 1, Upper: 5, Score: 0, IncidentID: "inc-1", Resolved: true, Properties: map[string]any{"region": "eu"}},
		{Metric: "calls", Value: 0, Expected: 3, Lower: 1, Upper: 5, Score: 4},
	} {
		_, err := svc.TriggerAnomaly(ctx, a, "production")
		require.NoError(t, err)
	}
	_, err = svc.TriggerError(ctx, "timeout", "upstream timed out", nil, "production")
	require.NoError(t, err)
	_, err = svc.TriggerError(ctx, "timeout", "again", map[string]any{"service": "billing"}, "production")
	require.NoError(t, err)
	_, err = svc.TriggerFunnelComplete(ctx, webhook.FunnelCompletion{FunnelID: "signup", FunnelName: "Sign-up", DistinctID: "u1",
		Steps: []webhook.FunnelStep{{Name: "visit", CompletedAt: clock.Now().Add(-time.Hour)}, {Name: "register"}}, Properties: map[string]any{"plan": "pro"}}, "")
	require.NoError(t, err)
	_, err = svc.TriggerCohortEntry(ctx, webhook.CohortEntry{CohortID: "vip", DistinctID: "u1"}, "")
	require.NoError(t, err)
	_, err = svc.Test(ctx, testHook.ID)
	require.NoError(t, err)

	// Every payload of every webhook, grouped by event type.
	sent := map[string][]map[string]any{}
	hooks, err := svc.List(ctx, webhook.ListWebhooksParams{})
	require.NoError(t, err)
	for _, w := range hooks {
		ds, err := store.ListDeliveries(ctx, webhook.ListDeliveriesParams{WebhookID: w.ID, Limit: webhook.MaxPageSize})
		require.NoError(t, err)
		for _, d := range ds {
			_, body, _ := payloadOf(t, store, d.ID)
			data, ok := body["data"].(map[string]any)
			require.True(t, ok, "%s: data is an object", d.EventType)
			sent[d.EventType] = append(sent[d.EventType], data)
		}
	}
	reasonsSent := map[string]bool{}
	for _, et := range webhook.EventTypes() {
		t.Run(et.Name, func(t *testing.T) {
			var s schemaNode
			require.NoError(t, json.Unmarshal(et.Schema, &s))
			payloads := sent[et.Name]
			require.NotEmpty(t, payloads, "the run sent %s", et.Name)
			seen := map[string]bool{}
			for _, data := range payloads {
				assert.Empty(t, s.check("data", data), "%v", data)
				for k := range data {
					seen[k] = true
				}
				if r, ok := data["reason"].(string); ok {
					reasonsSent[r] = true
				}
			}
			for p := range s.Properties {
				assert.True(t, seen[p], "some %s payload sends %q", et.Name, p)
			}
		})
		delete(sent, et.Name)
	}
	assert.Empty(t, sent, "every event type the library sent is in the catalogue")
	assert.Equal(t, map[string]bool{"fired": true, "renotify": true, "recovered": true, "no_data": true}, reasonsSent, "every variant of the alerts ran")
}
