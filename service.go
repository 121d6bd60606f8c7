package webhook

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Config configures a Service. The zero value is valid. The rule is the
// same for every configuration struct of the library (Config,
// WorkerConfig, ClientConfig, memstore.Config, pgstore.Config): a zero
// field takes its default; a field that can be turned off says so, and a
// negative value turns it off; any other negative value is refused with
// an error wrapping ErrInvalid.
type Config struct {
	// Logger receives the service's logs. Secrets never appear in them.
	// Defaults to a logger that discards everything.
	Logger *slog.Logger
	// Now returns the current time; tests inject a fake clock. Defaults
	// to time.Now.
	Now func() time.Time
	// WebhookCacheTTL is how long the service matches events against its
	// in-memory copy of the enabled webhooks before reading them again
	// from Storage. From half the TTL on, one reload runs in the
	// background while trigger calls go on matching with the current
	// copy; a call that finds the copy past the whole TTL with no reload
	// under way (after an idle spell) waits for one. Changes made
	// through this Service apply at once, without a reload;
	// changes made by other processes sharing the Storage apply within
	// moments while the Service watches (Watch; Worker.Run does) a
	// Storage that notifies of them, and otherwise within the TTL.
	// Sending never relies on it: workers check each claim's webhook
	// version. Negative turns the cache off: every trigger call reads
	// Storage. Defaults to 5 seconds.
	WebhookCacheTTL time.Duration
	// RequireTenant makes every trigger call and every new webhook name a
	// tenant, so that a multi-tenant host cannot forget one: trigger calls
	// without WithTenant, and Create of a webhook without TenantID, fail
	// with ErrTenantRequired. Webhooks stored earlier without a tenant
	// stay readable and changeable but are never matched. Defaults to
	// false: a tenant is optional, and calls without one match only
	// webhooks without one. See also Service.Tenant.
	RequireTenant bool
	// MaxPayloadBytes is the largest request body a trigger call may
	// produce; a larger one is refused with ErrPayloadTooLarge. Defaults
	// to 256 KiB.
	MaxPayloadBytes int

	// Network says which addresses webhooks may reach: it is checked
	// when a webhook is saved (literal IP addresses) and, through the
	// default Doer, whenever a connection is made. The zero value allows
	// public addresses only; tests and local demos set AllowPrivate.
	Network NetworkPolicy
	// Doer sends the requests of workers and of Test. Defaults to
	// NewHTTPClient(&ClientConfig{Network: Network}). A Doer you supply
	// is responsible for its own address checks.
	Doer Doer
	// RequestTimeout bounds each attempt, from connecting to reading the
	// response, unless the webhook sets its own Timeout. Defaults to 30
	// seconds; at most MaxRequestTimeout.
	RequestTimeout time.Duration
	// MaxResponseBodyBytes is how much of each response body is kept in
	// the attempt history. Defaults to 64 KiB.
	MaxResponseBodyBytes int
	// SecretRotationGrace is how long RotateSecret keeps the old secret
	// signing beside the new one. Defaults to 24 hours.
	SecretRotationGrace time.Duration

	// DisableAfterFailures and DisableAfterFailingFor are the endpoint
	// health policy: the library disables a webhook once at least
	// DisableAfterFailures of its deliveries in a row have failed for
	// good (all attempts used) and the first of them failed at least
	// DisableAfterFailingFor ago, so that one bad burst does not disable
	// an endpoint but a dead one stops costing attempts. A delivered
	// delivery resets the count, and so does enabling the webhook again.
	// 410 Gone disables at once, whatever the policy. The defaults are 20
	// deliveries and 24 hours; a negative DisableAfterFailures turns the
	// policy off.
	DisableAfterFailures   int
	DisableAfterFailingFor time.Duration

	// EvaluationInterval is how often a running Worker evaluates the
	// threshold, anomaly and scheduled triggers (see Service.Evaluate),
	// so that a window that empties resolves and a pending alert fires
	// without new samples, and summaries go out on time. One Worker per
	// Service evaluates, however many run. Negative turns periodic
	// evaluation off (call Evaluate yourself). Defaults to
	// DefaultEvaluationInterval.
	EvaluationInterval time.Duration
	// Summary computes the data of the scheduled triggers' summaries
	// (see SummaryFunc and TriggerScheduled): the "summary" field of each
	// "$scheduled_summary". Without it, a summary carries its period
	// alone ("summary": null), a tick the receiver can act on; give the
	// same Summary to every Service that evaluates (runs a Worker).
	// Defaults to nil.
	Summary SummaryFunc
	// MaxBufferedMetricBuckets bounds the memory RecordMetric uses: the
	// most buckets (one per tenant, metric, environment and
	// MetricResolution of time) it holds before writing them. Past it,
	// RecordMetric writes the buffer in the call (see RecordMetric). A
	// bucket takes about 250 bytes. Defaults to
	// DefaultMaxBufferedMetricBuckets.
	MaxBufferedMetricBuckets int

	// OnDeliveryFailed, if set, is called after a delivery has failed
	// for good (its attempts are used up, or the endpoint refused it
	// permanently). It runs on the worker's goroutine: keep it short.
	OnDeliveryFailed func(ctx context.Context, d *Delivery)
	// OnWebhookDisabled, if set, is called after the library has
	// disabled a webhook (its endpoint answered 410 Gone, or failed
	// under the health policy), with the webhook as stored;
	// w.DisabledReason says why. It is called once per disable, by the
	// process that made it, however many deliveries in flight were
	// answered with 410. Keep it short.
	OnWebhookDisabled func(ctx context.Context, w *Webhook)

	// MeterProvider and TracerProvider receive the service's metrics and
	// spans (the README's Observability section lists them). The
	// library uses the OpenTelemetry API only: without an SDK installed
	// they record nothing and cost next to nothing. Default to the
	// global providers, otel.GetMeterProvider() and
	// otel.GetTracerProvider().
	MeterProvider  metric.MeterProvider
	TracerProvider trace.TracerProvider
	// TelemetryPerWebhook adds the webhook's ID (webhook.id) to the
	// library's metrics, and the endpoint's host and port
	// (server.address, server.port) to http.client.request.duration:
	// one time series per webhook, which a host with a few endpoints may
	// want and one with thousands cannot afford. Spans always carry them.
	// Defaults to false: metric attributes take a few values only
	// (outcomes, statuses, trigger kinds).
	TelemetryPerWebhook bool
}

// Defaults for Config.
const (
	DefaultWebhookCacheTTL      = 5 * time.Second
	DefaultMaxPayloadBytes      = 256 << 10
	DefaultRequestTimeout       = 30 * time.Second
	DefaultMaxResponseBodyBytes = 64 << 10
	DefaultSecretRotationGrace  = 24 * time.Hour
	DefaultDisableAfterFailures = 20
	DefaultDisableAfterFailing  = 24 * time.Hour
)

// Service manages webhooks and turns trigger calls into stored deliveries.
// It is safe for concurrent use. Create one per Storage and share it.
type Service struct {
	store       Storage
	log         *slog.Logger
	now         func() time.Time
	ttl         time.Duration
	tenanted    bool // Config.RequireTenant
	maxLen      int
	doer        Doer
	network     NetworkPolicy
	timeout     time.Duration
	maxResponse int
	grace       time.Duration
	failLimit   int
	failSpan    time.Duration
	onFailed    func(context.Context, *Delivery)
	onDisabled  func(context.Context, *Webhook)
	evalEvery   time.Duration // Config.EvaluationInterval; 0 when off
	summary     SummaryFunc   // Config.Summary
	tel         *telemetry

	evaluating atomic.Bool   // an evaluator runs (see evaluateDuring)
	metrics    *metricBuffer // samples recorded and not yet written

	gen      atomic.Uint64         // bumped by every webhook change recorded in ix
	ix       indexChanges          // changes not yet in idx (indexload.go)
	idx      atomic.Pointer[index] // the matching index, possibly stale
	reload   chan struct{}         // a semaphore of one: one index load at a time
	notifyMu sync.Mutex
	waiters  []chan struct{} // workers waiting for new deliveries
}

// NewService returns a Service over store. A nil cfg means the defaults.
// It returns an error wrapping ErrInvalid if store is nil or a cfg field
// is out of range.
func NewService(store Storage, cfg *Config) (*Service, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: NewService: nil Storage", ErrInvalid)
	}
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.WebhookCacheTTL == 0 {
		c.WebhookCacheTTL = DefaultWebhookCacheTTL
	}
	if c.Doer == nil {
		c.Doer = NewHTTPClient(&ClientConfig{Network: c.Network})
	}
	var ps problems
	setDefault(&ps, "MaxPayloadBytes", &c.MaxPayloadBytes, DefaultMaxPayloadBytes)
	setDefault(&ps, "RequestTimeout", &c.RequestTimeout, DefaultRequestTimeout)
	setDefault(&ps, "MaxResponseBodyBytes", &c.MaxResponseBodyBytes, DefaultMaxResponseBodyBytes)
	setDefault(&ps, "SecretRotationGrace", &c.SecretRotationGrace, DefaultSecretRotationGrace)
	if c.DisableAfterFailures == 0 {
		c.DisableAfterFailures = DefaultDisableAfterFailures
	}
	setDefault(&ps, "DisableAfterFailingFor", &c.DisableAfterFailingFor, DefaultDisableAfterFailing)
	setDefault(&ps, "MaxBufferedMetricBuckets", &c.MaxBufferedMetricBuckets, DefaultMaxBufferedMetricBuckets)
	switch {
	case c.EvaluationInterval == 0:
		c.EvaluationInterval = DefaultEvaluationInterval
	case c.EvaluationInterval < 0:
		c.EvaluationInterval = 0
	}
	if c.RequestTimeout > MaxRequestTimeout {
		ps.add("RequestTimeout", fmt.Sprintf("must be at most %v", MaxRequestTimeout))
	}
	if err := ps.err("service config"); err != nil {
		return nil, err
	}
	return &Service{
		store:       store,
		log:         c.Logger,
		now:         c.Now,
		ttl:         c.WebhookCacheTTL,
		tenanted:    c.RequireTenant,
		maxLen:      c.MaxPayloadBytes,
		doer:        c.Doer,
		network:     c.Network,
		timeout:     c.RequestTimeout,
		maxResponse: c.MaxResponseBodyBytes,
		grace:       c.SecretRotationGrace,
		failLimit:   c.DisableAfterFailures,
		failSpan:    c.DisableAfterFailingFor,
		onFailed:    c.OnDeliveryFailed,
		onDisabled:  c.OnWebhookDisabled,
		evalEvery:   c.EvaluationInterval,
		summary:     c.Summary,
		tel:         newTelemetry(c.MeterProvider, c.TracerProvider, c.TelemetryPerWebhook),
		reload:      make(chan struct{}, 1),
		metrics:     newMetricBuffer(c.MaxBufferedMetricBuckets),
	}, nil
}

// setDefault replaces a zero config value with def and reports a
// negative one.
func setDefault[T int | time.Duration](ps *problems, field string, v *T, def T) {
	switch {
	case *v < 0:
		ps.add(field, "must not be negative")
	case *v == 0:
		*v = def
	}
}

// Storage returns the service's storage.
func (s *Service) Storage() Storage { return s.store }

// clock returns the current time in UTC with microsecond precision, the
// precision every Storage keeps.
func (s *Service) clock() time.Time {
	return s.now().UTC().Truncate(time.Microsecond)
}

// newID returns a new time-ordered ID (a UUIDv7), so that IDs sort in
// creation order.
func newID() (string, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("webhook: new ID: %w", err)
	}
	return id.String(), nil
}
