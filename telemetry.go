package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// instrumentationName names the library's meter and tracer, as the
// OpenTelemetry conventions ask: the import path of the instrumented
// package.
const instrumentationName = "github.com/analytics-webhooks/webhook"

// The attributes of the library's own metrics and spans. Metrics carry
// only the low-cardinality ones unless Config.TelemetryPerWebhook is set.
const (
	attrTriggerKind    = attribute.Key("webhook.trigger.kind")
	attrOutcome        = attribute.Key("webhook.attempt.outcome")
	attrStatus         = attribute.Key("webhook.delivery.status")
	attrDisabledReason = attribute.Key("webhook.disabled.reason")
	attrTransition     = attribute.Key("webhook.alert.transition")
	attrResult         = attribute.Key("webhook.evaluation.result")
	attrWebhookID      = attribute.Key("webhook.id")
	attrDeliveryID     = attribute.Key("webhook.delivery.id")
	attrAttempt        = attribute.Key("webhook.delivery.attempt")
	attrEventType      = attribute.Key("webhook.event_type")
	attrTenantID       = attribute.Key("webhook.tenant_id")
	attrDeliveries     = attribute.Key("webhook.deliveries")
	attrReleased       = attribute.Key("webhook.delivery.released")
	attrMetric         = attribute.Key("webhook.metric")
)

// kindRedelivery is the webhook.trigger.kind of deliveries queued again
// by Redeliver and ReplayFailed.
const kindRedelivery = "redelivery"

// Reason classes of webhook.endpoint.disabled.
const (
	disabledGone     = "gone"     // the endpoint answered 410 Gone
	disabledFailures = "failures" // the health policy (Config.DisableAfterFailures)
)

// httpDurationBuckets are the bucket boundaries the HTTP semantic
// conventions give http.client.request.duration, in seconds.
var httpDurationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// deliveryDurationBuckets are the boundaries of webhook.delivery.duration,
// in seconds: from an immediate success to retries over days.
var deliveryDurationBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 3 * 24 * 3600}

// queueStatsTimeout bounds the Storage call behind one collection of the
// queue gauges.
const queueStatsTimeout = 5 * time.Second

// telemetry holds a Service's tracer and metric instruments, created
// once by NewService from Config.MeterProvider and Config.TracerProvider.
// With the default (global, no-op until an SDK is installed) providers
// every call is cheap: attributes are built only for an instrument or
// span that records.
type telemetry struct {
	tracer     trace.Tracer
	perWebhook bool // Config.TelemetryPerWebhook

	enqueued         metric.Int64Counter
	attempts         metric.Int64Counter
	httpDuration     metric.Float64Histogram
	deliveryDuration metric.Float64Histogram
	exhausted        metric.Int64Counter
	disabled         metric.Int64Counter
	evaluations      metric.Int64Counter
	transitions      metric.Int64Counter
	queueDepth       metric.Int64ObservableGauge
	oldestDue        metric.Float64ObservableGauge
	meter            metric.Meter

	gaugeMu    sync.Mutex
	gaugeUsers int                 // Worker.Run calls under way
	gaugeReg   metric.Registration // the queue gauges' callback, while gaugeUsers > 0
}

// newTelemetry creates the instruments. An instrument the provider
// refuses is reported to OpenTelemetry's error handler (otel.Handle) and
// replaced by a no-op one: telemetry never stops the Service.
func newTelemetry(mp metric.MeterProvider, tp trace.TracerProvider, perWebhook bool) *telemetry {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	noop := metricnoop.Meter{}
	m := mp.Meter(instrumentationName, metric.WithInstrumentationVersion(Version))
	if m == nil {
		m = noop
	}
	tracer := tp.Tracer(instrumentationName, trace.WithInstrumentationVersion(Version))
	if tracer == nil {
		tracer = tracenoop.Tracer{}
	}
	t := &telemetry{tracer: tracer, perWebhook: perWebhook, meter: m}
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		if err != nil || c == nil {
			handle(err)
			c, _ = noop.Int64Counter(name)
		}
		return c
	}
	histogram := func(name, desc string, buckets []float64) metric.Float64Histogram {
		h, err := m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc), metric.WithExplicitBucketBoundaries(buckets...))
		if err != nil || h == nil {
			handle(err)
			h, _ = noop.Float64Histogram(name)
		}
		return h
	}
	t.enqueued = counter("webhook.deliveries.enqueued", "{delivery}", "Deliveries enqueued, by trigger kind.")
	t.attempts = counter("webhook.delivery.attempts", "{attempt}", "Delivery attempts made by workers, by outcome.")
	t.httpDuration = histogram("http.client.request.duration", "Duration of HTTP client requests.", httpDurationBuckets)
	t.deliveryDuration = histogram("webhook.delivery.duration", "Time from a delivery's enqueue to its final outcome.", deliveryDurationBuckets)
	t.exhausted = counter("webhook.deliveries.exhausted", "{delivery}", "Deliveries that failed for good after using all their attempts.")
	t.disabled = counter("webhook.endpoint.disabled", "{webhook}", "Webhooks the library disabled, by reason.")
	t.evaluations = counter("webhook.triggers.evaluations", "{evaluation}", "Evaluations of stateful triggers, by trigger kind and result.")
	t.transitions = counter("webhook.alerts.transitions", "{transition}", "Alert state changes, by trigger kind and transition.")
	var err error
	if t.queueDepth, err = m.Int64ObservableGauge("webhook.queue.depth", metric.WithUnit("{delivery}"),
		metric.WithDescription("Unfinished deliveries in Storage, by status.")); err != nil || t.queueDepth == nil {
		handle(err)
		t.queueDepth, _ = noop.Int64ObservableGauge("webhook.queue.depth")
	}
	if t.oldestDue, err = m.Float64ObservableGauge("webhook.queue.oldest_due.age", metric.WithUnit("s"),
		metric.WithDescription("How long the longest-waiting due delivery has been due.")); err != nil || t.oldestDue == nil {
		handle(err)
		t.oldestDue, _ = noop.Float64ObservableGauge("webhook.queue.oldest_due.age")
	}
	return t
}

// handle reports an error of the telemetry itself to OpenTelemetry's
// error handler (otel.Handle), which the host may set.
func handle(err error) {
	if err != nil {
		otel.Handle(err)
	}
}

// attrs returns the measurement option for the attributes kv, plus
// webhook.id when the host opted in to per-webhook metrics.
func (t *telemetry) attrs(webhookID string, kv ...attribute.KeyValue) metric.MeasurementOption {
	if t.perWebhook && webhookID != "" {
		kv = append(kv, attrWebhookID.String(webhookID))
	}
	return metric.WithAttributes(kv...)
}

// traceContext is the only propagator the library uses: the W3C trace
// context, for the stored traceparent and the one sent to endpoints. The
// global propagator may carry baggage, which must not reach endpoints.
var traceContext propagation.TraceContext

// traceParent returns the W3C traceparent of ctx's span, or "" if ctx
// has no valid span context.
func traceParent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	traceContext.Inject(ctx, c)
	return c["traceparent"]
}

// spanContextOf parses a stored traceparent; the result is invalid if tp
// is empty or malformed.
func spanContextOf(tp string) trace.SpanContext {
	if tp == "" {
		return trace.SpanContext{}
	}
	ctx := traceContext.Extract(context.Background(), propagation.MapCarrier{"traceparent": tp})
	return trace.SpanContextFromContext(ctx)
}

// setTraceParent sets the traceparent header of an outgoing request to
// ctx's span (the request's client span), for webhooks with
// PropagateTrace. Nothing else of the trace context (no tracestate, no
// baggage) is sent.
func setTraceParent(ctx context.Context, h http.Header) {
	if tp := traceParent(ctx); tp != "" {
		h.Set("traceparent", tp)
	}
}

// Span start options, made once: an option is an interface value, which
// would cost an allocation per span.
var (
	producerSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer)}
	consumerSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithNewRoot()}
	clientSpan   = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}
)

// startTrigger starts the producer span of one trigger call; call
// endTrigger with the call's result. eventType is "" when the call does
// not know it yet (a TriggerThreshold call may notify with either of two
// event types, or with none).
func (t *telemetry) startTrigger(ctx context.Context, kind TriggerType, eventType string) context.Context {
	ctx, span := t.tracer.Start(ctx, "webhook.trigger", producerSpan...)
	if span.IsRecording() {
		span.SetAttributes(attrTriggerKind.String(string(kind)), semconv.MessagingOperationTypeCreate)
		if eventType != "" {
			span.SetAttributes(attrEventType.String(eventType))
		}
	}
	return ctx
}

// callSpanKey marks a context whose span is the producer span of a
// trigger call that enqueues through updateState (TriggerThreshold), so
// that its notifications link to the call's span rather than to spans
// of their own.
type callSpanKey struct{}

// startStatefulCall starts the producer span of a trigger call whose
// notifications are enqueued with trigger states (see updateState), and
// marks ctx so that they carry its traceparent. Call endTrigger with the
// call's result.
func (t *telemetry) startStatefulCall(ctx context.Context, kind TriggerType, metric string) context.Context {
	ctx = t.startTrigger(ctx, kind, "")
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(attrMetric.String(metric))
	}
	return context.WithValue(ctx, callSpanKey{}, true)
}

// inStatefulCall reports whether ctx is marked by startStatefulCall.
func inStatefulCall(ctx context.Context) bool {
	marked, _ := ctx.Value(callSpanKey{}).(bool)
	return marked
}

// startNotification starts the producer span of one notification of a
// stateful trigger that no trigger call made: one that Evaluate, a write
// of recorded metrics, or a webhook's edit enqueues. kind is the state's
// kind (threshold, anomaly, scheduled). Call endTrigger with the result
// of its enqueue.
func (t *telemetry) startNotification(ctx context.Context, kind string, p *EnqueueParams, st *TriggerState) context.Context {
	eventType := ""
	if len(p.Payloads) > 0 {
		eventType = p.Payloads[0].EventType
	}
	ctx = t.startTrigger(ctx, TriggerType(kind), eventType)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(attrWebhookID.String(st.WebhookID))
		if st.TenantID != "" {
			span.SetAttributes(attrTenantID.String(st.TenantID))
		}
	}
	return ctx
}

// endTrigger records a trigger call's result on its span, ctx's, and
// ends it.
func (t *telemetry) endTrigger(ctx context.Context, ids []string, err error) {
	span := trace.SpanFromContext(ctx)
	if span.IsRecording() {
		span.SetAttributes(attrDeliveries.Int(len(ids)))
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
}

// triggerTenant notes the tenant of a trigger call on its span.
func (t *telemetry) triggerTenant(ctx context.Context, tenant string) {
	if span := trace.SpanFromContext(ctx); tenant != "" && span.IsRecording() {
		span.SetAttributes(attrTenantID.String(tenant))
	}
}

// enqueuedDeliveries counts n deliveries enqueued by a trigger of kind
// (a TriggerType, or kindRedelivery).
func (t *telemetry) enqueuedDeliveries(ctx context.Context, kind string, n int) {
	if n > 0 && t.enqueued.Enabled(ctx) {
		t.enqueued.Add(ctx, int64(n), metric.WithAttributes(attrTriggerKind.String(kind)))
	}
}

// startDelivery starts the consumer span of one claimed delivery's
// processing, linked to the producer span of the trigger call that
// enqueued its payload, and returns sendCtx and storeCtx carrying it.
// The caller ends the span.
func (t *telemetry) startDelivery(sendCtx, storeCtx context.Context, c *Claim) (context.Context, context.Context, trace.Span) {
	opts := consumerSpan
	if c.Payload != nil && c.Payload.TraceParent != "" {
		if sc := spanContextOf(c.Payload.TraceParent); sc.IsValid() {
			opts = append(slices.Clip(opts), trace.WithLinks(trace.Link{SpanContext: sc}))
		}
	}
	storeCtx, span := t.tracer.Start(storeCtx, "webhook.deliver", opts...)
	if span.IsRecording() {
		d := c.Delivery
		span.SetAttributes(attrWebhookID.String(d.WebhookID), attrDeliveryID.String(d.ID), attrAttempt.Int(d.Attempt),
			attrEventType.String(d.EventType), semconv.MessagingOperationTypeProcess, semconv.MessagingMessageID(d.PayloadID))
	}
	return trace.ContextWithSpan(sendCtx, span), storeCtx, span
}

// released notes on the delivery's span that it was handed back
// without an outcome.
func (t *telemetry) released(ctx context.Context) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(attrReleased.Bool(true))
	}
}

// classify returns the webhook.attempt.outcome of a send's result: the
// outcome ClassifyAttempt gives the recorded attempt, known here without
// reading its error message.
func (res *sendResult) classify() AttemptOutcome {
	switch {
	case res.kind != "":
		return res.kind
	case res.outcome == OutcomeSuccess:
		return AttemptSuccess
	case res.attempt.StatusCode > 0 && res.outcome == OutcomeAbort:
		return AttemptAborted // the receiver's abort-message
	case res.attempt.StatusCode > 0:
		return AttemptHTTPError
	}
	return AttemptAborted
}

// transportKind classifies a Doer's error for the attempt metrics, and
// returns the error.type of http.client.request.duration: "timeout",
// "blocked", or the Go type of the cause (such as "*net.OpError"),
// which has few values.
func transportKind(ctx context.Context, err error) (AttemptOutcome, string) {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return AttemptTimeout, "timeout"
	case errors.Is(err, ErrBlockedAddress):
		return AttemptBlocked, "blocked"
	case ctx.Err() != nil:
		return AttemptAborted, "canceled"
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		err = ue.Err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return AttemptTimeout, "timeout"
	}
	return AttemptNetworkError, fmt.Sprintf("%T", err)
}

// recordAttempt records a worker's attempt of d whose result is stored
// with status at now: the attempt counter, and for a final status the
// delivery's duration and, when its attempts ran out, the exhausted
// counter. It notes the outcome on the delivery's span.
func (t *telemetry) recordAttempt(ctx context.Context, d *Delivery, res sendResult, status DeliveryStatus, now time.Time) {
	kind := res.classify()
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(attrOutcome.String(string(kind)), attrStatus.String(string(status)))
		if kind != AttemptSuccess {
			span.SetStatus(codes.Error, res.attempt.Error)
		}
	}
	if t.attempts.Enabled(ctx) {
		t.attempts.Add(ctx, 1, t.attrs(d.WebhookID, attrOutcome.String(string(kind))))
	}
	if !status.Final() {
		return
	}
	if t.deliveryDuration.Enabled(ctx) && !d.CreatedAt.IsZero() {
		t.deliveryDuration.Record(ctx, max(now.Sub(d.CreatedAt), 0).Seconds(), t.attrs(d.WebhookID, attrStatus.String(string(status))))
	}
	if status == StatusFailed && res.outcome == OutcomeRetry && t.exhausted.Enabled(ctx) {
		t.exhausted.Add(ctx, 1, t.attrs(d.WebhookID))
	}
}

// abortedAttempt counts an attempt the worker cut off at shutdown, which
// is handed back rather than recorded.
func (t *telemetry) abortedAttempt(ctx context.Context, webhookID string) {
	if t.attempts.Enabled(ctx) {
		t.attempts.Add(ctx, 1, t.attrs(webhookID, attrOutcome.String(string(AttemptAborted))))
	}
}

// endpointDisabled counts a webhook the library disabled, by reason
// class (disabledGone, disabledFailures).
func (t *telemetry) endpointDisabled(ctx context.Context, webhookID, reason string) {
	if t.disabled.Enabled(ctx) {
		t.disabled.Add(ctx, 1, t.attrs(webhookID, attrDisabledReason.String(reason)))
	}
}

// startRequest starts the client span of one HTTP attempt to w, the
// attempt-th of its delivery (0 when not known, as for Test); call
// endRequest with its result.
func (t *telemetry) startRequest(ctx context.Context, w *Webhook, attempt int) context.Context {
	ctx, span := t.tracer.Start(ctx, http.MethodPost, clientSpan...)
	if span.IsRecording() {
		host, port, scheme := endpointOf(w.URL)
		span.SetAttributes(semconv.HTTPRequestMethodPost, semconv.ServerAddress(host), semconv.ServerPort(port), semconv.URLScheme(scheme),
			attrWebhookID.String(w.ID))
		if attempt > 1 {
			span.SetAttributes(semconv.HTTPRequestResendCount(attempt - 1))
		}
	}
	return ctx
}

// endRequest records the result of the HTTP attempt whose span is ctx's
// (the span's attributes, and http.client.request.duration unless
// nothing was sent) and ends the span.
func (t *telemetry) endRequest(ctx context.Context, w *Webhook, res *sendResult) {
	span := trace.SpanFromContext(ctx)
	defer span.End()
	if res.kind == "" && res.attempt.StatusCode == 0 {
		return // not sent (bad secret or URL): no request to measure
	}
	errType := res.errType
	if errType == "" && res.attempt.StatusCode >= 300 {
		errType = strconv.Itoa(res.attempt.StatusCode) // a failure here: redirects are not followed
	}
	if span.IsRecording() {
		if res.attempt.StatusCode > 0 {
			span.SetAttributes(semconv.HTTPResponseStatusCode(res.attempt.StatusCode))
		}
		if errType != "" {
			span.SetAttributes(semconv.ErrorTypeKey.String(errType))
			span.SetStatus(codes.Error, res.attempt.Error)
		}
	}
	if !t.httpDuration.Enabled(ctx) {
		return
	}
	kv := []attribute.KeyValue{semconv.HTTPRequestMethodPost}
	if res.attempt.StatusCode > 0 {
		kv = append(kv, semconv.HTTPResponseStatusCode(res.attempt.StatusCode))
	}
	if errType != "" {
		kv = append(kv, semconv.ErrorTypeKey.String(errType))
	}
	if t.perWebhook {
		host, port, _ := endpointOf(w.URL)
		kv = append(kv, semconv.ServerAddress(host), semconv.ServerPort(port))
	}
	t.httpDuration.Record(ctx, res.attempt.Duration.Seconds(), t.attrs(w.ID, kv...))
}

// endpointOf returns the host, port and scheme of a webhook URL: what the
// telemetry may say of it. The path and query often hold credentials
// (chat services put the token in the path), so url.full is never
// recorded.
func endpointOf(raw string) (host string, port int, scheme string) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", 0, ""
	}
	scheme, host = u.Scheme, u.Hostname()
	switch p, err := strconv.Atoi(u.Port()); {
	case u.Port() != "" && err == nil:
		port = p
	case scheme == "https":
		port = 443
	default:
		port = 80
	}
	return host, port, scheme
}

// observeQueue registers the callback of the queue gauges
// (webhook.queue.depth, webhook.queue.oldest_due.age) if the Storage is
// a QueueStatsReader and no Worker.Run of the Service has registered it
// yet, and returns the function that unregisters it once the last such
// Run ends. So a Service reports the gauges while one of its workers
// runs, and a Service dropped by its host leaves no callback behind.
func (s *Service) observeQueue() (stop func()) {
	r, ok := s.store.(QueueStatsReader)
	if !ok {
		return func() {}
	}
	t := s.tel
	t.gaugeMu.Lock()
	defer t.gaugeMu.Unlock()
	if t.gaugeUsers == 0 {
		reg, err := t.meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
			return t.observeQueue(ctx, o, r, s.clock())
		}, t.queueDepth, t.oldestDue)
		if err != nil || reg == nil {
			handle(err)
			return func() {}
		}
		t.gaugeReg = reg
	}
	t.gaugeUsers++
	return sync.OnceFunc(func() {
		t.gaugeMu.Lock()
		defer t.gaugeMu.Unlock()
		if t.gaugeUsers--; t.gaugeUsers == 0 {
			handle(t.gaugeReg.Unregister())
			t.gaugeReg = nil
		}
	})
}

// observeQueue observes both queue gauges from one QueueStats call,
// bounded by queueStatsTimeout: one Storage read per collection.
func (t *telemetry) observeQueue(ctx context.Context, o metric.Observer, r QueueStatsReader, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, queueStatsTimeout)
	defer cancel()
	q, err := r.QueueStats(ctx, QueueStatsParams{Now: now})
	if err != nil {
		return fmt.Errorf("webhook: queue gauges: %w", err)
	}
	for status, n := range q.Depth {
		o.ObserveInt64(t.queueDepth, n, metric.WithAttributes(attrStatus.String(string(status))))
	}
	var age time.Duration
	if !q.OldestDue.IsZero() && q.OldestDue.Before(now) {
		age = now.Sub(q.OldestDue)
	}
	o.ObserveFloat64(t.oldestDue, age.Seconds())
	return nil
}

// noteEvaluation counts one evaluation round of the stateful triggers of
// kind (threshold, anomaly, scheduled); err is its failure, if any.
// Service.Evaluate calls it once per round for each kind that some
// webhook has.
func (t *telemetry) noteEvaluation(ctx context.Context, kind TriggerType, err error) {
	if !t.evaluations.Enabled(ctx) {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	t.evaluations.Add(ctx, 1, metric.WithAttributes(attrTriggerKind.String(string(kind)), attrResult.String(result)))
}

// noteAlertTransition counts one alert state change of a trigger of
// kind: "pending", "firing", "resolved" (firing to ok) or "cleared"
// (pending to ok), once the change is saved (see updateState).
func (t *telemetry) noteAlertTransition(ctx context.Context, kind TriggerType, transition string) {
	if t.transitions.Enabled(ctx) {
		t.transitions.Add(ctx, 1, metric.WithAttributes(attrTriggerKind.String(string(kind)), attrTransition.String(transition)))
	}
}

// stateKind returns the trigger kind of a trigger state, the first part
// of its key (see stateKey): threshold, anomaly or scheduled.
func stateKind(st *TriggerState) string {
	kind, _, _ := strings.Cut(st.Key, ":")
	return kind
}

// deliveryLog returns log with the attributes that every log line about
// a delivery carries, under the names used throughout: delivery_id,
// webhook_id, attempt, event_type, and tenant_id when hook (which may be
// nil) is known.
func deliveryLog(log *slog.Logger, d *Delivery, hook *Webhook) *slog.Logger {
	args := []any{"delivery_id", d.ID, "webhook_id", d.WebhookID, "attempt", d.Attempt, "event_type", d.EventType}
	if hook != nil {
		args = append(args, "tenant_id", hook.TenantID)
	}
	return log.With(args...)
}
