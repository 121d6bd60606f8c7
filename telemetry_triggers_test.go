package webhook_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
)

// tracedEnv is a Service over memstore whose spans go to an SDK span
// recorder, with a worker whose requests all succeed.
type tracedEnv struct {
	svc    *webhook.Service
	store  *memstore.Store
	clock  *fakeClock
	tp     *sdktrace.TracerProvider
	spans  *tracetest.SpanRecorder
	worker *webhook.Worker
}

func newTracedEnv(t *testing.T, clock *fakeClock) *tracedEnv {
	t.Helper()
	e := &tracedEnv{store: memstore.New(nil), clock: clock, spans: tracetest.NewSpanRecorder()}
	e.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(e.spans))
	t.Cleanup(func() { require.NoError(t, e.tp.Shutdown(context.Background())) })
	var err error
	e.svc, err = webhook.NewService(e.store, &webhook.Config{Now: clock.Now, TracerProvider: e.tp, Doer: okDoer{}, EvaluationInterval: -1})
	require.NoError(t, err)
	e.worker, err = webhook.NewWorker(e.svc, nil)
	require.NoError(t, err)
	return e
}

// producers returns the ended producer spans.
func (e *tracedEnv) producers() []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range e.spans.Ended() {
		if s.SpanKind() == trace.SpanKindProducer {
			out = append(out, s)
		}
	}
	return out
}

// producerOf returns the ended producer span whose traceparent the
// payload of delivery id stores.
func (e *tracedEnv) producerOf(t *testing.T, id string) sdktrace.ReadOnlySpan {
	t.Helper()
	d, err := e.store.GetDelivery(t.Context(), id)
	require.NoError(t, err)
	p, err := e.store.GetPayload(t.Context(), d.PayloadID)
	require.NoError(t, err)
	require.NotEmpty(t, p.TraceParent, "the %s payload stores the traceparent of the span that enqueued it", d.EventType)
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(),
		propagation.MapCarrier{"traceparent": p.TraceParent}))
	require.True(t, sc.IsValid(), "traceparent %q", p.TraceParent)
	for _, s := range e.producers() {
		if s.SpanContext().SpanID() == sc.SpanID() && s.SpanContext().TraceID() == sc.TraceID() {
			assert.Equal(t, "webhook.trigger", s.Name())
			return s
		}
	}
	t.Fatalf("no ended producer span is %s, the traceparent of the %s payload", p.TraceParent, d.EventType)
	return nil
}

// deliverLinked delivers everything due and checks that the consumer
// span of each delivery in ids links to the producer span its payload
// names.
func (e *tracedEnv) deliverLinked(t *testing.T, ids ...string) {
	t.Helper()
	_, err := e.worker.RunOnce(t.Context())
	require.NoError(t, err)
	consumers := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range e.spans.Ended() {
		if s.SpanKind() == trace.SpanKindConsumer {
			consumers[attrOf(s, "webhook.delivery.id").AsString()] = s
		}
	}
	for _, id := range ids {
		producer := e.producerOf(t, id)
		c, ok := consumers[id]
		require.True(t, ok, "delivery %s was attempted", id)
		require.Len(t, c.Links(), 1)
		assert.Equal(t, producer.SpanContext().TraceID(), c.Links()[0].SpanContext.TraceID())
		assert.Equal(t, producer.SpanContext().SpanID(), c.Links()[0].SpanContext.SpanID())
	}
}

func TestTriggerThresholdHasAProducerSpan(t *testing.T) {
	e := newTracedEnv(t, newFakeClock())
	w := thresholdHook(t, e.svc, webhook.Condition{Metric: "load", Operator: webhook.ConditionGT, Value: 10})
	ctx, caller := e.tp.Tracer("host").Start(t.Context(), "request")
	fired, err := e.svc.TriggerThreshold(ctx, "load", 20, 10, "", webhook.WithTenant(""))
	require.NoError(t, err)
	require.Len(t, fired, 1)
	calm, err := e.svc.TriggerThreshold(ctx, "load", 20, 10, "")
	require.NoError(t, err)
	require.Empty(t, calm)
	resolved, err := e.svc.TriggerThreshold(ctx, "load", 5, 10, "")
	require.NoError(t, err)
	require.Len(t, resolved, 1)
	caller.End()

	producers := e.producers()
	require.Len(t, producers, 3, "one span per call, whatever it enqueues")
	for i, p := range producers {
		assert.Equal(t, "webhook.trigger", p.Name())
		assert.Equal(t, "threshold", attrOf(p, "webhook.trigger.kind").AsString())
		assert.Equal(t, "load", attrOf(p, "webhook.metric").AsString())
		assert.Equal(t, caller.SpanContext().SpanID(), p.Parent().SpanID(), "the call's span is a child of the caller's")
		assert.Equal(t, []int64{1, 0, 1}[i], attrOf(p, "webhook.deliveries").AsInt64())
	}
	assert.Equal(t, producers[0].SpanContext(), e.producerOf(t, fired[0]).SpanContext(), "the alert links to the call that fired it")
	assert.Equal(t, producers[2].SpanContext(), e.producerOf(t, resolved[0]).SpanContext())
	e.deliverLinked(t, fired[0], resolved[0])
	assert.Len(t, alertsOf(t, e.store, w.ID), 2)

	_, err = e.svc.TriggerThreshold(ctx, "load", 1, 10, "", webhook.WithEnqueuer(e.store))
	require.ErrorIs(t, err, webhook.ErrInvalid)
	bad := e.producers()[3]
	assert.Equal(t, "Error", bad.Status().Code.String(), "a refused call's span says so")
}

// TestEvaluationNotificationsHaveProducerSpans: what Evaluate, a write of
// recorded metrics and a webhook's edit enqueue has a producer span per
// notification, and a round that enqueues nothing has none.
func TestEvaluationNotificationsHaveProducerSpans(t *testing.T) {
	e := newTracedEnv(t, clockAt("2026-11-28T09:00:00Z"))
	ctx := t.Context()
	windowed := thresholdHook(t, e.svc, webhook.Condition{Metric: "depth", Operator: webhook.ConditionGT, Value: 0,
		WindowSeconds: 30, Aggregation: webhook.AggregateMax})
	latest := thresholdHook(t, e.svc, webhook.Condition{Metric: "lag", Operator: webhook.ConditionGT, Value: 1})
	summary := create(t, e.svc, "summary", webhook.Trigger{Type: webhook.TriggerScheduled, IntervalSeconds: 3600})

	require.NoError(t, e.svc.Evaluate(ctx))
	assert.Empty(t, e.producers(), "a round that enqueues nothing makes no span")

	// Written by Flush, then fired: by the write (lag, no window) and by
	// the round after it (depth).
	require.NoError(t, e.svc.RecordMetric(ctx, "depth", 3, time.Time{}, ""))
	require.NoError(t, e.svc.RecordMetric(ctx, "lag", 5, time.Time{}, ""))
	require.NoError(t, e.svc.Flush(ctx))
	require.NoError(t, e.svc.Evaluate(ctx))
	depthFired := alertIDs(t, e, windowed.ID)
	lagFired := alertIDs(t, e, latest.ID)
	require.Len(t, depthFired, 1)
	require.Len(t, lagFired, 1)
	require.Len(t, e.producers(), 2, "one span per notification")
	for id, hook := range map[string]string{depthFired[0]: windowed.ID, lagFired[0]: latest.ID} {
		p := e.producerOf(t, id)
		assert.Equal(t, "threshold", attrOf(p, "webhook.trigger.kind").AsString())
		assert.Equal(t, webhook.EventTypeThresholdAlert, attrOf(p, "webhook.event_type").AsString())
		assert.Equal(t, hook, attrOf(p, "webhook.id").AsString())
		assert.Equal(t, int64(1), attrOf(p, "webhook.deliveries").AsInt64())
		assert.False(t, p.Parent().IsValid(), "no caller's span: a root")
	}

	// The window empties and the hour ends: a resolution and a summary.
	e.clock.Advance(time.Hour)
	require.NoError(t, e.svc.Evaluate(ctx))
	depthResolved := alertIDs(t, e, windowed.ID)[1:]
	require.Len(t, depthResolved, 1)
	summaries, err := e.svc.Deliveries(ctx, summary.ID, 10)
	require.NoError(t, err)
	require.Len(t, summaries, 1)
	assert.Equal(t, webhook.EventTypeThresholdResolved, attrOf(e.producerOf(t, depthResolved[0]), "webhook.event_type").AsString())
	sp := e.producerOf(t, summaries[0].ID)
	assert.Equal(t, "scheduled", attrOf(sp, "webhook.trigger.kind").AsString())
	assert.Equal(t, webhook.EventTypeScheduledSummary, attrOf(sp, "webhook.event_type").AsString())

	// Editing the firing condition away resolves its alert.
	edited := latest.Clone()
	edited.Triggers[0].Conditions[0].Value = 50
	_, err = e.svc.Update(ctx, edited)
	require.NoError(t, err)
	lagResolved := alertIDs(t, e, latest.ID)[1:]
	require.Len(t, lagResolved, 1)
	e.producerOf(t, lagResolved[0])

	e.deliverLinked(t, depthFired[0], lagFired[0], depthResolved[0], summaries[0].ID, lagResolved[0])
}

// alertIDs returns the IDs of webhook id's deliveries, oldest first.
func alertIDs(t *testing.T, e *tracedEnv, id string) []string {
	t.Helper()
	ds, err := e.svc.Deliveries(t.Context(), id, 100)
	require.NoError(t, err)
	out := make([]string, 0, len(ds))
	for i := len(ds) - 1; i >= 0; i-- {
		out = append(out, ds[i].ID)
	}
	return out
}

func TestAnomalyNotificationsHaveProducerSpans(t *testing.T) {
	e := newTracedEnv(t, &fakeClock{now: anomalyT0})
	ae := &anomalyEnv{t: t, svc: e.svc, store: e.store, clock: e.clock}
	detector := ae.hook("detector", anomalyTrigger("signups"))
	series := noisy(70, 1)
	series[60] = 400
	ae.feed("signups", "", 0, series...)
	found := alertIDs(t, e, detector.ID)
	require.Len(t, found, 2, "fired and resolved")
	for i, id := range found {
		p := e.producerOf(t, id)
		assert.Equal(t, "anomaly", attrOf(p, "webhook.trigger.kind").AsString())
		assert.Equal(t, []string{webhook.EventTypeAnomaly, webhook.EventTypeAnomalyResolved}[i], attrOf(p, "webhook.event_type").AsString())
		assert.Equal(t, detector.ID, attrOf(p, "webhook.id").AsString())
	}
	require.Len(t, e.producers(), 2, "one span per notification, none for the rounds between")

	// A reported anomaly: the call's span.
	ctx, caller := e.tp.Tracer("host").Start(t.Context(), "request")
	reported, err := e.svc.TriggerAnomaly(ctx, webhook.Anomaly{Metric: "signups", Value: 500, Expected: 100}, "")
	require.NoError(t, err)
	require.Len(t, reported, 1)
	caller.End()
	p := e.producerOf(t, reported[0])
	assert.Equal(t, "anomaly", attrOf(p, "webhook.trigger.kind").AsString())
	assert.Equal(t, caller.SpanContext().SpanID(), p.Parent().SpanID())
	e.deliverLinked(t, append(found, reported...)...)
}

func TestFunnelAndCohortCallsHaveProducerSpans(t *testing.T) {
	e := newTracedEnv(t, newFakeClock())
	create(t, e.svc, "funnels", funnelHook)
	create(t, e.svc, "cohorts", cohortHook)
	funnel, err := e.svc.TriggerFunnelComplete(t.Context(), onboarding(e.clock.Now()), "")
	require.NoError(t, err)
	require.Len(t, funnel, 1)
	cohort, err := e.svc.TriggerCohortEntry(t.Context(), webhook.CohortEntry{CohortID: "vip", DistinctID: "u1"}, "")
	require.NoError(t, err)
	require.Len(t, cohort, 1)
	assert.Equal(t, "funnel_complete", attrOf(e.producerOf(t, funnel[0]), "webhook.trigger.kind").AsString())
	assert.Equal(t, "cohort_entry", attrOf(e.producerOf(t, cohort[0]), "webhook.trigger.kind").AsString())
	e.deliverLinked(t, funnel[0], cohort[0])
}
