package webhook_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/analytics-webhooks/webhook"
)

// routeDoer sends requests to "localhost" through the default client,
// which refuses loopback addresses, and the rest (the test receivers, on
// 127.0.0.1) through one that allows them: a real blocked attempt.
type routeDoer struct{ strict, open webhook.Doer }

func (d routeDoer) Do(r *http.Request) (*http.Response, error) {
	if r.URL.Hostname() == "localhost" {
		return d.strict.Do(r)
	}
	return d.open.Do(r)
}

// scriptRun is what runScript leaves for the assertions.
type scriptRun struct {
	env       *env
	metrics   *sdkmetric.ManualReader
	spans     *tracetest.SpanRecorder
	hooks     map[string]*webhook.Webhook // by name, as created
	receivers map[string]*receiver        // by hook name
	rotated   *webhook.Webhook            // "ok" after RotateSecret
	ids       []string                    // the trigger call's deliveries
}

// runScript runs every path an attempt can take, with the OpenTelemetry
// SDK's in-memory reader and span recorder and logging at debug level
// to log:
//
//   - "ok" answers 200 and has PropagateTrace;
//   - "flaky" answers 500, then 200 to the retry;
//   - "down" answers 500 and has one attempt: it fails for good;
//   - "blocked" is on localhost, which the client refuses;
//   - "gone" answers 410: the webhook is disabled;
//   - "paused" is disabled before its delivery is claimed: aborted;
//   - "refuses" answers 400 with "webhook-delivery: abort-message": aborted.
//
// One trigger call enqueues a delivery to each; then "ok"'s secret is
// rotated and Test sends to it, signed with both secrets; last, "down"'s
// failed delivery is queued again (and left unsent).
func runScript(t *testing.T, log *slog.Logger) *scriptRun {
	t.Helper()
	run := &scriptRun{metrics: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder(),
		hooks: map[string]*webhook.Webhook{}, receivers: map[string]*receiver{}}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(run.metrics))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(run.spans))
	t.Cleanup(func() {
		require.NoError(t, mp.Shutdown(context.Background()))
		require.NoError(t, tp.Shutdown(context.Background()))
	})
	run.env = newEnv(t, &webhook.Config{
		Logger: log, MeterProvider: mp, TracerProvider: tp,
		DisableAfterFailures: -1, // only 410 disables here
		Doer: routeDoer{
			strict: webhook.NewHTTPClient(nil),
			open:   webhook.NewHTTPClient(&webhook.ClientConfig{Network: webhook.NetworkPolicy{AllowPrivate: true}}),
		},
	}, nil)
	answers := map[string]func(n int) int{
		"ok": func(int) int { return http.StatusOK },
		"flaky": func(n int) int {
			if n == 1 {
				return http.StatusInternalServerError
			}
			return http.StatusOK
		},
		"down":    func(int) int { return http.StatusInternalServerError },
		"gone":    func(int) int { return http.StatusGone },
		"paused":  func(int) int { return http.StatusOK },
		"refuses": func(int) int { return http.StatusBadRequest },
	}
	for _, name := range []string{"ok", "flaky", "down", "blocked", "gone", "paused", "refuses"} {
		u := "http://localhost:1/hook" // never reached
		if answer, ok := answers[name]; ok {
			rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
				if name == "refuses" {
					w.Header().Set(webhook.HeaderDeliveryControl, "abort-message")
				}
				w.WriteHeader(answer(n))
			})
			run.receivers[name] = rc
			u = rc.URL + "/hooks/" + name + "?token=path-and-query-stay-private"
		}
		run.hooks[name] = run.env.hook(t, u, func(w *webhook.Webhook) {
			w.Name = name
			w.PropagateTrace = name == "ok"
			if name == "down" || name == "blocked" {
				w.Retry.MaxAttempts = 1
			}
		})
	}
	ctx := t.Context()
	ids := run.env.trigger(t)
	require.Len(t, ids, 7)
	run.ids = ids
	paused := run.hooks["paused"].Clone()
	paused.Disabled = true
	_, err := run.env.svc.Update(ctx, paused)
	require.NoError(t, err)
	require.Equal(t, 7, run.env.runOnce(t))
	run.env.clock.Advance(time.Minute) // "flaky"'s retry comes due
	require.Equal(t, 1, run.env.runOnce(t))

	run.rotated, err = run.env.svc.RotateSecret(ctx, run.hooks["ok"].ID)
	require.NoError(t, err)
	d, err := run.env.svc.Test(ctx, run.hooks["ok"].ID)
	require.NoError(t, err)
	require.Equal(t, webhook.StatusDelivered, d.Status)
	for _, id := range ids {
		if run.env.delivery(t, id).WebhookID == run.hooks["down"].ID {
			_, err := run.env.svc.Redeliver(ctx, id) // queued, not sent
			require.NoError(t, err)
		}
	}
	return run
}

// secretParts returns every secret of the run's webhooks (as written and
// as the key bytes in base64) and every signature their receivers got.
func (run *scriptRun) secretParts(t *testing.T) []string {
	var out []string
	add := func(secret string) {
		out = append(out, secret)
		key := strings.TrimPrefix(secret, "whsec_")
		out = append(out, key)
		if raw, err := base64.StdEncoding.DecodeString(key); err == nil {
			out = append(out, base64.RawStdEncoding.EncodeToString(raw), base64.RawURLEncoding.EncodeToString(raw))
		}
	}
	for _, w := range run.hooks {
		add(w.Secret)
	}
	add(run.rotated.Secret)
	for _, rc := range run.receivers {
		for _, r := range rc.all() {
			sigs := r.header.Get(webhook.HeaderSignature)
			require.NotEmpty(t, sigs)
			for _, s := range strings.Fields(sigs) {
				_, sig, ok := strings.Cut(s, ",")
				require.True(t, ok)
				out = append(out, s, sig)
			}
		}
	}
	return out
}

// collect returns the metrics recorded so far.
func (run *scriptRun) collect(t *testing.T) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, run.metrics.Collect(t.Context(), &rm))
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		assert.Equal(t, "github.com/analytics-webhooks/webhook", sm.Scope.Name)
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

// count returns the sum of a counter's points whose attributes include kv.
func count(t *testing.T, data metricdata.Aggregation, kv ...attribute.KeyValue) int64 {
	t.Helper()
	sum, ok := data.(metricdata.Sum[int64])
	require.True(t, ok, "a counter, not %T", data)
	var n int64
	for _, p := range sum.DataPoints {
		if hasAll(p.Attributes, kv) {
			n += p.Value
		}
	}
	return n
}

// observations returns how many values a histogram's points whose
// attributes include kv hold, and checks the points' bounds.
func observations(t *testing.T, data metricdata.Aggregation, bounds []float64, kv ...attribute.KeyValue) uint64 {
	t.Helper()
	h, ok := data.(metricdata.Histogram[float64])
	require.True(t, ok, "a histogram, not %T", data)
	var n uint64
	for _, p := range h.DataPoints {
		if bounds != nil {
			assert.Equal(t, bounds, p.Bounds)
		}
		if hasAll(p.Attributes, kv) {
			n += p.Count
		}
	}
	return n
}

func hasAll(set attribute.Set, kv []attribute.KeyValue) bool {
	for _, want := range kv {
		if got, ok := set.Value(want.Key); !ok || got != want.Value {
			return false
		}
	}
	return true
}

func TestMetricsOfAScriptedRun(t *testing.T) {
	run := runScript(t, nil)
	m := run.collect(t)
	outcome := attribute.Key("webhook.attempt.outcome")
	status := attribute.Key("webhook.delivery.status")

	assert.Equal(t, int64(7), count(t, m["webhook.deliveries.enqueued"], attribute.String("webhook.trigger.kind", "event")))
	assert.Equal(t, int64(1), count(t, m["webhook.deliveries.enqueued"], attribute.String("webhook.trigger.kind", "redelivery")))
	assert.Equal(t, int64(8), count(t, m["webhook.deliveries.enqueued"]), "Test enqueues no delivery that workers send")

	attempts := m["webhook.delivery.attempts"]
	assert.Equal(t, int64(2), count(t, attempts, outcome.String("success")), "ok, and flaky's retry")
	assert.Equal(t, int64(3), count(t, attempts, outcome.String("http_error")), "flaky's first, down, gone")
	assert.Equal(t, int64(1), count(t, attempts, outcome.String("blocked")))
	assert.Equal(t, int64(2), count(t, attempts, outcome.String("aborted")), "paused, refuses")
	assert.Equal(t, int64(8), count(t, attempts), "Test's send is no worker attempt")
	// The metric's outcomes are those Service.Stats reports: what
	// ClassifyAttempt makes of the recorded attempts.
	recorded := map[webhook.AttemptOutcome]int64{}
	for _, id := range run.ids {
		for _, a := range run.env.delivery(t, id).Attempts {
			recorded[webhook.ClassifyAttempt(a)]++
		}
	}
	for _, o := range webhook.AttemptOutcomes() {
		assert.Equal(t, recorded[o], count(t, attempts, outcome.String(string(o))), "outcome %s", o)
	}

	// The stable HTTP client metric: every request made, Test's too;
	// not paused's, which sent nothing.
	buckets := []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}
	requests := m["http.client.request.duration"]
	method := attribute.String("http.request.method", "POST")
	assert.Equal(t, uint64(8), observations(t, requests, buckets, method))
	assert.Equal(t, uint64(1), observations(t, requests, nil, attribute.String("error.type", "400")))
	assert.Equal(t, uint64(3), observations(t, requests, nil, attribute.Int("http.response.status_code", 200)))
	assert.Equal(t, uint64(2), observations(t, requests, nil, attribute.String("error.type", "500")))
	assert.Equal(t, uint64(1), observations(t, requests, nil, attribute.String("error.type", "410")))
	assert.Equal(t, uint64(1), observations(t, requests, nil, attribute.String("error.type", "blocked")))
	for _, p := range requests.(metricdata.Histogram[float64]).DataPoints {
		_, hasHost := p.Attributes.Value("server.address")
		assert.False(t, hasHost, "endpoint attributes only with TelemetryPerWebhook")
	}

	durations := m["webhook.delivery.duration"]
	assert.Equal(t, uint64(2), observations(t, durations, nil, status.String("delivered")))
	assert.Equal(t, uint64(5), observations(t, durations, nil, status.String("failed")))
	// flaky's delivery took the minute of its retry, by the service's clock.
	h := durations.(metricdata.Histogram[float64])
	var maxSeen float64
	for _, p := range h.DataPoints {
		if v, ok := p.Max.Value(); ok {
			maxSeen = max(maxSeen, v)
		}
	}
	assert.Equal(t, time.Minute.Seconds(), maxSeen)

	assert.Equal(t, int64(2), count(t, m["webhook.deliveries.exhausted"]), "down and blocked used their one attempt")
	assert.Equal(t, int64(1), count(t, m["webhook.endpoint.disabled"], attribute.String("webhook.disabled.reason", "gone")))
	assert.Equal(t, int64(1), count(t, m["webhook.endpoint.disabled"]))
	for _, name := range []string{"webhook.delivery.attempts", "webhook.deliveries.exhausted", "webhook.endpoint.disabled"} {
		for _, p := range m[name].(metricdata.Sum[int64]).DataPoints {
			_, ok := p.Attributes.Value("webhook.id")
			assert.False(t, ok, "%s: webhook.id only with TelemetryPerWebhook", name)
		}
	}
}

func TestSpansOfAScriptedRun(t *testing.T) {
	run := runScript(t, nil)
	spans := run.spans.Ended()
	var producers, consumers, clients []sdktrace.ReadOnlySpan
	for _, s := range spans {
		switch s.SpanKind() {
		case trace.SpanKindProducer:
			producers = append(producers, s)
		case trace.SpanKindConsumer:
			consumers = append(consumers, s)
		case trace.SpanKindClient:
			clients = append(clients, s)
		}
	}
	require.Len(t, producers, 1, "one trigger call")
	producer := producers[0]
	assert.Equal(t, "webhook.trigger", producer.Name())
	assert.Equal(t, int64(7), attrOf(producer, "webhook.deliveries").AsInt64(), "deliveries enqueued")
	assert.Equal(t, "event", attrOf(producer, "webhook.trigger.kind").AsString())

	// Every attempt's span links to the trigger call's, and holds the
	// client span of its request.
	require.Len(t, consumers, 8)
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, c := range consumers {
		byID[c.SpanContext().SpanID()] = c
		require.Len(t, c.Links(), 1)
		assert.Equal(t, producer.SpanContext().TraceID(), c.Links()[0].SpanContext.TraceID())
		assert.Equal(t, producer.SpanContext().SpanID(), c.Links()[0].SpanContext.SpanID())
		assert.False(t, c.Parent().IsValid(), "an attempt's span starts a trace of its own")
	}
	require.Len(t, clients, 8, "seven requests by workers, one by Test")
	resent := 0
	for _, c := range clients {
		assert.Equal(t, "POST", c.Name())
		attrs := attribute.NewSet(c.Attributes()...)
		host, _ := attrs.Value("server.address")
		assert.Contains(t, []string{"127.0.0.1", "localhost"}, host.AsString())
		for _, kv := range c.Attributes() {
			assert.NotContains(t, kv.Value.String(), "path-and-query-stay-private", "%s: spans carry no URL path or query", kv.Key)
		}
		if n, ok := attrs.Value("http.request.resend_count"); ok {
			resent++
			assert.Equal(t, int64(1), n.AsInt64())
		}
	}
	assert.Equal(t, 1, resent, "only flaky's second attempt is a resend")
	parented := 0
	for _, c := range clients {
		if _, ok := byID[c.Parent().SpanID()]; ok {
			parented++
		}
	}
	assert.Equal(t, 7, parented, "each worker request is a child of its attempt's span")

	// Only "ok" propagates the trace: its receiver got the traceparent of
	// its request's span; the others got none.
	for name, rc := range run.receivers {
		for _, r := range rc.all() {
			tp := r.header.Get("traceparent")
			if name != "ok" {
				assert.Empty(t, tp, "%s does not propagate the trace", name)
				continue
			}
			require.NotEmpty(t, tp)
			found := false
			for _, c := range clients {
				sc := c.SpanContext()
				if tp == fmt.Sprintf("00-%s-%s-01", sc.TraceID(), sc.SpanID()) {
					found = true
				}
			}
			assert.True(t, found, "traceparent %s is a request span's", tp)
			assert.Empty(t, r.header.Get("tracestate"))
		}
	}

	// No secret or signature in any span.
	secrets := run.secretParts(t)
	for _, s := range spans {
		text := s.Name() + " " + s.Status().Description
		for _, kv := range s.Attributes() {
			text += " " + string(kv.Key) + "=" + kv.Value.String()
		}
		for _, e := range s.Events() {
			for _, kv := range e.Attributes {
				text += " " + kv.Value.String()
			}
		}
		for _, secret := range secrets {
			assert.NotContains(t, text, secret, "span %s holds a secret or signature", s.Name())
		}
	}
}

// attrOf returns a span's attribute (the zero Value if it has none).
func attrOf(s sdktrace.ReadOnlySpan, key string) attribute.Value {
	set := attribute.NewSet(s.Attributes()...)
	v, _ := set.Value(attribute.Key(key))
	return v
}

func TestWorkerRunReportsTheQueueGauges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		e := newEnv(t, &webhook.Config{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))}, nil)
		run := &scriptRun{metrics: reader}
		_, ok := run.collect(t)["webhook.queue.depth"]
		assert.False(t, ok, "no gauge before a worker runs")

		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- e.worker.Run(ctx) }()
		synctest.Wait() // Run is idle, polling
		depth, ok := run.collect(t)["webhook.queue.depth"].(metricdata.Gauge[int64])
		require.True(t, ok, "the gauge is reported while the worker runs")
		assert.Len(t, depth.DataPoints, 3, "pending, delivering, retrying")
		cancel()
		require.NoError(t, <-done)
		_, ok = run.collect(t)["webhook.queue.depth"]
		assert.False(t, ok, "no gauge once the worker stopped")
	})
}

func TestTelemetryPerWebhookAddsEndpointAttributes(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	rc := newReceiver(t, nil)
	e := newEnv(t, &webhook.Config{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)), TelemetryPerWebhook: true}, nil)
	w := e.hook(t, rc.URL)
	e.trigger(t)
	require.Equal(t, 1, e.runOnce(t))
	m := (&scriptRun{metrics: reader}).collect(t)
	id := attribute.String("webhook.id", w.ID)
	assert.Equal(t, int64(1), count(t, m["webhook.delivery.attempts"], id, attribute.String("webhook.attempt.outcome", "success")))
	u, err := url.Parse(rc.URL)
	require.NoError(t, err)
	port, err := strconv.Atoi(u.Port())
	require.NoError(t, err)
	assert.Equal(t, uint64(1), observations(t, m["http.client.request.duration"], nil, id,
		attribute.String("server.address", "127.0.0.1"), attribute.Int("server.port", port)))
}

func TestPropagateTraceOwnsTheTraceHeaders(t *testing.T) {
	svc, _, _ := newService(t)
	for _, name := range []string{"traceparent", "Tracestate"} {
		w := &webhook.Webhook{Name: "t", URL: "https://example.com/hook", Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}},
			Headers: map[string]string{name: "x"}}
		_, err := svc.Create(t.Context(), w.Clone())
		require.NoError(t, err, "%s is an ordinary header without PropagateTrace", name)
		w.PropagateTrace = true
		_, err = svc.Create(t.Context(), w)
		var ve *webhook.ValidationError
		require.ErrorAs(t, err, &ve)
		assert.Contains(t, err.Error(), name)
	}

	w := webhook.Webhook{Name: "t", PropagateTrace: true}
	b, err := json.Marshal(w)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"propagate_trace":true`)
	var back webhook.Webhook
	require.NoError(t, json.Unmarshal(b, &back))
	assert.True(t, back.PropagateTrace)
	b, err = json.Marshal(webhook.Webhook{Name: "t"})
	require.NoError(t, err)
	assert.NotContains(t, string(b), "propagate_trace", "off is the default, left out")
	assert.Error(t, json.Unmarshal([]byte(`{"propagate_trace":"yes"}`), &back))
}

func TestHealthPolicyDisableIsCountedByReason(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	e := newEnv(t, &webhook.Config{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
		DisableAfterFailures: 2, DisableAfterFailingFor: time.Minute}, nil)
	w := e.hook(t, rc.URL, func(w *webhook.Webhook) { w.Retry.MaxAttempts = 1 })
	e.trigger(t)
	e.runOnce(t)
	e.clock.Advance(2 * time.Minute)
	e.trigger(t)
	e.runOnce(t)
	got, err := e.svc.Get(t.Context(), w.ID)
	require.NoError(t, err)
	require.True(t, got.Disabled)
	m := (&scriptRun{metrics: reader}).collect(t)
	assert.Equal(t, int64(1), count(t, m["webhook.endpoint.disabled"], attribute.String("webhook.disabled.reason", "failures")))
	assert.Equal(t, int64(1), count(t, m["webhook.endpoint.disabled"]))
	assert.Equal(t, int64(2), count(t, m["webhook.deliveries.exhausted"]))
}

func TestAttemptCutOffAtShutdownIsAborted(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	spans := tracetest.NewSpanRecorder()
	started := make(chan struct{}, 1)
	rc := newReceiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		select { // until the worker aborts the request
		case <-r.Context().Done():
		case <-time.After(waitTimeout):
		}
	})
	e := newEnv(t, &webhook.Config{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))}, &webhook.WorkerConfig{ShutdownTimeout: time.Second})
	e.hook(t, rc.URL)
	e.trigger(t)
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan error, 1)
	go func() { stopped <- e.worker.Run(ctx) }()
	recv(t, started, "the attempt")
	cancel()
	require.NoError(t, recv(t, stopped, "Run to return"))

	m := (&scriptRun{metrics: reader}).collect(t)
	assert.Equal(t, int64(1), count(t, m["webhook.delivery.attempts"], attribute.String("webhook.attempt.outcome", "aborted")))
	assert.Equal(t, int64(1), count(t, m["webhook.delivery.attempts"]))
	assert.Equal(t, uint64(1), observations(t, m["http.client.request.duration"], nil, attribute.String("error.type", "canceled")))
	_, finished := m["webhook.delivery.duration"]
	assert.False(t, finished, "the delivery is handed back, not finished")
	var consumer sdktrace.ReadOnlySpan
	for _, s := range spans.Ended() {
		if s.SpanKind() == trace.SpanKindConsumer {
			consumer = s
		}
	}
	require.NotNil(t, consumer)
	assert.True(t, attrOf(consumer, "webhook.delivery.released").AsBool())
}
