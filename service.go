package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Config configures a Service. The zero value is valid: every field has a
// default.
type Config struct {
	// Logger receives the service's logs. Secrets never appear in them.
	// Defaults to a logger that discards everything.
	Logger *slog.Logger
	// Now returns the current time; tests inject a fake clock. Defaults
	// to time.Now.
	Now func() time.Time
	// WebhookCacheTTL is how long the service matches events against its
	// in-memory copy of the enabled webhooks before reading them again
	// from Storage. Changes made through this Service apply at once;
	// changes made by other processes sharing the Storage apply within
	// the TTL. Negative reads Storage on every trigger call. Defaults to
	// 5 seconds.
	WebhookCacheTTL time.Duration
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

	// OnDeliveryFailed, if set, is called after a delivery has failed
	// for good (its attempts are used up, or the endpoint refused it
	// permanently). It runs on the worker's goroutine: keep it short.
	OnDeliveryFailed func(ctx context.Context, d *Delivery)
	// OnWebhookDisabled, if set, is called after the library has
	// disabled a webhook (its endpoint answered 410 Gone, or failed
	// under the health policy), with the webhook as stored;
	// w.DisabledReason says why. Keep it short.
	OnWebhookDisabled func(ctx context.Context, w *Webhook)
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

// ErrPayloadTooLarge reports a trigger whose request body would exceed
// Config.MaxPayloadBytes. It wraps ErrInvalid.
var ErrPayloadTooLarge = fmt.Errorf("%w: payload too large", ErrInvalid)

// Service manages webhooks and turns trigger calls into stored deliveries.
// It is safe for concurrent use. Create one per Storage and share it.
type Service struct {
	store       Storage
	log         *slog.Logger
	now         func() time.Time
	ttl         time.Duration
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

	gen      atomic.Uint64         // bumped by every local webhook change
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
		reload:      make(chan struct{}, 1),
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

// Create stores a new webhook built from w and returns it. The service
// assigns the ID (ignoring w.ID), CreatedAt and UpdatedAt, generates a
// secret if w.Secret is empty, fills zero retry fields with the defaults
// and normalises nil lists to empty ones. w itself is not modified. It
// returns a *ValidationError (errors.Is ErrInvalid) for bad input.
func (s *Service) Create(ctx context.Context, w *Webhook) (*Webhook, error) {
	if w == nil {
		return nil, fmt.Errorf("%w: Create: nil webhook", ErrInvalid)
	}
	c := w.Clone()
	id, err := newID()
	if err != nil {
		return nil, err
	}
	c.ID = id
	if c.Secret == "" {
		if c.Secret, err = NewSecret(); err != nil {
			return nil, err
		}
	}
	c.PreviousSecrets = nil
	c.ConsecutiveFailures, c.FailingSince = 0, time.Time{}
	now := s.clock()
	c.CreatedAt, c.UpdatedAt, c.Version = now, now, 1
	prepare(c)
	if err := s.validate(c); err != nil {
		return nil, err
	}
	if err := s.store.CreateWebhook(ctx, c); err != nil {
		return nil, fmt.Errorf("webhook %s: create: %w", c.ID, err)
	}
	s.invalidate()
	return c, nil
}

// prepare fills defaults and normalises a webhook before it is saved.
func prepare(w *Webhook) {
	w.Retry = w.Retry.withDefaults()
	if w.SignatureScheme == "" {
		w.SignatureScheme = SchemeStandard
	}
	if w.Headers == nil {
		w.Headers = map[string]string{}
	}
	if w.Triggers == nil {
		w.Triggers = []Trigger{}
	}
	for i := range w.Triggers {
		t := &w.Triggers[i]
		if t.Filters == nil {
			t.Filters = []Filter{}
		}
		if t.Conditions == nil {
			t.Conditions = []Condition{}
		}
	}
	if !w.Disabled {
		w.DisabledReason = ""
	}
}

// Get returns the webhook with the given ID, or an error wrapping
// ErrNotFound.
func (s *Service) Get(ctx context.Context, id string) (*Webhook, error) {
	w, err := s.store.GetWebhook(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("webhook %s: get: %w", id, err)
	}
	return w, nil
}

// Update replaces the configuration of the webhook w.ID with w's and
// returns the result. It keeps the stored ID, TenantID, Secret,
// PreviousSecrets and CreatedAt (rotate secrets with RotateSecret), and
// sets UpdatedAt. Re-enabling a webhook clears its DisabledReason.
//
// If w.Version is set, the update applies only to that version: when the
// webhook has changed since (another update, a secret rotation, the
// library disabling it or counting a failed delivery under the health
// policy), Update returns an error wrapping ErrConflict and changes
// nothing; read it again and retry. With w.Version zero, the configuration replaces
// whatever version is current, and secrets rotated meanwhile are kept.
//
// It returns an error wrapping ErrNotFound for an unknown ID and a
// *ValidationError for bad input.
func (s *Service) Update(ctx context.Context, w *Webhook) (*Webhook, error) {
	if w == nil {
		return nil, fmt.Errorf("%w: Update: nil webhook", ErrInvalid)
	}
	return s.modify(ctx, w.ID, "update", func(old *Webhook) (*Webhook, error) {
		if w.Version != 0 && w.Version != old.Version {
			return nil, fmt.Errorf("webhook %s: update of version %d, current is %d: %w", w.ID, w.Version, old.Version, ErrConflict)
		}
		c := w.Clone()
		c.TenantID = old.TenantID
		c.Secret = old.Secret
		c.PreviousSecrets = old.PreviousSecrets
		c.CreatedAt = old.CreatedAt
		c.Version = old.Version
		c.ConsecutiveFailures, c.FailingSince = old.ConsecutiveFailures, old.FailingSince
		if old.Disabled && !c.Disabled {
			c.ConsecutiveFailures, c.FailingSince = 0, time.Time{} // a fresh start
		}
		if c.Disabled && old.Disabled && c.DisabledReason == "" {
			c.DisabledReason = old.DisabledReason
		}
		prepare(c)
		if err := s.validate(c); err != nil {
			return nil, err
		}
		return c, nil
	})
}

// validate checks w as Validate does, and its URL against the service's
// network policy.
func (s *Service) validate(w *Webhook) error {
	err := w.Validate()
	var be *BlockedError
	if berr := s.network.CheckURL(w.URL); errors.As(berr, &be) {
		reason := strings.TrimPrefix(be.Error(), "webhook: ") + " (see Config.Network)"
		var ve *ValidationError
		if errors.As(err, &ve) {
			ve.Fields = append(ve.Fields, FieldError{Field: "url", Reason: reason})
			return ve
		}
		return invalid("webhook", "url", reason)
	}
	return err
}

// maxConflictRetries bounds how often modify re-reads a webhook that
// changed under it.
const maxConflictRetries = 10

// modify reads the webhook, lets change build the next version from it,
// and stores that version, starting over when another writer got there
// first. It sets UpdatedAt and returns the stored webhook. A change that
// returns nil leaves the webhook as it is, and modify returns it.
func (s *Service) modify(ctx context.Context, id, op string, change func(old *Webhook) (*Webhook, error)) (*Webhook, error) {
	for range maxConflictRetries {
		old, err := s.store.GetWebhook(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("webhook %s: %s: %w", id, op, err)
		}
		next, err := change(old.Clone())
		if err != nil {
			return nil, err
		}
		if next == nil {
			return old, nil
		}
		next.ID, next.Version = old.ID, old.Version
		next.UpdatedAt = s.clock()
		err = s.store.UpdateWebhook(ctx, next)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("webhook %s: %s: %w", id, op, err)
		}
		s.invalidate()
		next.Version++
		return next, nil
	}
	return nil, fmt.Errorf("webhook %s: %s: gave up after %d concurrent changes: %w", id, op, maxConflictRetries, ErrConflict)
}

// Prune deletes the history of deliveries that finished before the
// cut-off, when the Storage implements Pruner (memstore and pgstore do);
// otherwise it returns an error wrapping ErrInvalid. It returns how many
// deliveries it deleted.
func (s *Service) Prune(ctx context.Context, before time.Time) (int, error) {
	p, ok := s.store.(Pruner)
	if !ok {
		return 0, fmt.Errorf("%w: the storage %T cannot prune", ErrInvalid, s.store)
	}
	n, err := p.Prune(ctx, PruneParams{Before: before})
	if err != nil {
		return n, fmt.Errorf("webhook: prune: %w", err)
	}
	return n, nil
}

// Delete removes the webhook. Its deliveries stay in the history; those
// still pending fail without being sent. It returns an error wrapping
// ErrNotFound for an unknown ID.
func (s *Service) Delete(ctx context.Context, id string) error {
	if err := s.store.DeleteWebhook(ctx, id); err != nil {
		return fmt.Errorf("webhook %s: delete: %w", id, err)
	}
	s.invalidate()
	return nil
}

// RotateSecret gives the webhook a new secret and returns the webhook.
// The old secret keeps signing beside the new one (the webhook-signature
// header carries both signatures) for Config.SecretRotationGrace, so
// receivers can switch without dropping requests; at most
// MaxPreviousSecrets old secrets are kept. SchemeHex's single signature
// uses the new secret at once. It returns an error wrapping ErrNotFound
// for an unknown ID.
func (s *Service) RotateSecret(ctx context.Context, id string) (*Webhook, error) {
	secret, err := NewSecret()
	if err != nil {
		return nil, err
	}
	return s.modify(ctx, id, "rotate secret", func(w *Webhook) (*Webhook, error) {
		now := s.clock()
		kept := []RetiredSecret{{Secret: w.Secret, ExpiresAt: now.Add(s.grace)}}
		for _, r := range w.PreviousSecrets {
			if now.Before(r.ExpiresAt) && len(kept) < MaxPreviousSecrets {
				kept = append(kept, r)
			}
		}
		w.Secret, w.PreviousSecrets = secret, kept
		return w, nil
	})
}

// noteHealth applies a delivery's final outcome to its webhook's health:
// a success resets the count of failures in a row, a failure adds to it
// and disables the webhook when the health policy says so. Whether a
// success has a count to reset is read from hook, the worker's copy,
// which may be up to WebhookCacheTTL old: a success right after another
// process's first failures can leave the count, which the next success
// then resets.
func (s *Service) noteHealth(ctx context.Context, hook *Webhook, delivered bool) {
	if delivered && hook.ConsecutiveFailures == 0 {
		return // nothing to reset (as far as this copy knows)
	}
	if s.failLimit < 0 && !delivered {
		return
	}
	disabled := false
	w, err := s.modify(ctx, hook.ID, "health", func(w *Webhook) (*Webhook, error) {
		if delivered {
			if w.ConsecutiveFailures == 0 {
				return nil, nil
			}
			w.ConsecutiveFailures, w.FailingSince = 0, time.Time{}
			return w, nil
		}
		if w.Disabled {
			return nil, nil
		}
		now := s.clock()
		w.ConsecutiveFailures++
		if w.FailingSince.IsZero() {
			w.FailingSince = now
		}
		if s.failLimit > 0 && w.ConsecutiveFailures >= s.failLimit && now.Sub(w.FailingSince) >= s.failSpan {
			w.Disabled = true
			w.DisabledReason = fmt.Sprintf("%d deliveries in a row failed since %s", w.ConsecutiveFailures, w.FailingSince.Format(time.RFC3339))
			disabled = true
		}
		return w, nil
	})
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		s.log.WarnContext(ctx, "webhook: updating endpoint health failed", "webhook_id", hook.ID, "error", err)
	case disabled:
		s.log.WarnContext(ctx, "webhook: disabled by the health policy", "webhook_id", w.ID, "reason", w.DisabledReason)
		if s.onDisabled != nil {
			s.onDisabled(ctx, w.Clone())
		}
	}
}

// List returns one page of webhooks in ID (creation) order.
func (s *Service) List(ctx context.Context, p ListWebhooksParams) ([]*Webhook, error) {
	ws, err := s.store.ListWebhooks(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("webhook: list: %w", err)
	}
	return ws, nil
}

// TriggerOption adjusts one trigger call.
type TriggerOption func(*triggerOptions)

type triggerOptions struct {
	key       string
	timestamp time.Time
	enqueuer  Enqueuer
}

// MaxIdempotencyKeyLength is the longest idempotency key, in bytes.
const MaxIdempotencyKeyLength = 256

// WithIdempotencyKey makes the trigger call enqueue at most once per key:
// a later call with the same key enqueues nothing and returns the
// delivery IDs of the first. Keys are global to the Storage; include the
// trigger kind or your own namespace in them.
func WithIdempotencyKey(key string) TriggerOption {
	return func(o *triggerOptions) { o.key = key }
}

// WithEnqueuer makes the trigger call write its deliveries through e
// instead of the Service's Storage: typically an Enqueuer bound to the
// caller's database transaction, so that the webhooks are enqueued if and
// only if the transaction commits (a transactional outbox). Matching
// still reads webhooks through the Service's Storage.
func WithEnqueuer(e Enqueuer) TriggerOption {
	return func(o *triggerOptions) { o.enqueuer = e }
}

// WithTimestamp sets the payload's timestamp, for events that happened
// earlier than the call. Defaults to the current time.
func WithTimestamp(t time.Time) TriggerOption {
	return func(o *triggerOptions) { o.timestamp = t }
}

// Event types of the analytics triggers.
const (
	EventTypeError          = "$error"
	EventTypeThresholdAlert = "$threshold_alert"
	EventTypeTest           = "$test"
)

// TriggerEvent enqueues a delivery of the event to every enabled webhook
// with a matching event trigger, and returns the new delivery IDs (none
// when nothing matches). Event types starting with "$" are reserved for
// the library's own. Once it returns without error the deliveries are
// stored and will be attempted. It returns an error wrapping ErrInvalid
// for bad arguments (ErrPayloadTooLarge for oversized data) and the
// Storage's error otherwise, in which case nothing was enqueued.
func (s *Service) TriggerEvent(ctx context.Context, eventType string, data map[string]any, environment string, opts ...TriggerOption) ([]string, error) {
	var ps problems
	checkName(&ps, "event_type", eventType)
	if strings.HasPrefix(eventType, "$") {
		ps.add("event_type", `names starting with "$" are reserved`)
	}
	if err := ps.err("event"); err != nil {
		return nil, err
	}
	return s.trigger(ctx, TriggerEvent, eventType, data, false, environment, opts)
}

// TriggerError enqueues an "$error" delivery to every enabled webhook with
// a matching error trigger. The data is {"error_type", "error_message",
// "details"}; filters see those fields. It returns the new delivery IDs,
// with errors as TriggerEvent.
func (s *Service) TriggerError(ctx context.Context, errorType, errorMessage string, details map[string]any, environment string, opts ...TriggerOption) ([]string, error) {
	var ps problems
	checkName(&ps, "error_type", errorType)
	if !utf8.ValidString(errorMessage) {
		ps.add("error_message", "must be valid UTF-8")
	}
	if err := ps.err("error"); err != nil {
		return nil, err
	}
	if details == nil {
		details = map[string]any{}
	}
	data := map[string]any{"error_type": errorType, "error_message": errorMessage, "details": details}
	return s.trigger(ctx, TriggerError, EventTypeError, data, false, environment, opts)
}

// TriggerThreshold enqueues a "$threshold_alert" delivery to every enabled
// webhook with a threshold trigger that has a condition on metric which
// value meets. The data is {"metric", "value", "threshold", "exceeded"},
// where exceeded is value > threshold. It returns the new delivery IDs,
// with errors as TriggerEvent; NaN or infinite numbers are invalid.
func (s *Service) TriggerThreshold(ctx context.Context, metric string, value, threshold float64, environment string, opts ...TriggerOption) ([]string, error) {
	var ps problems
	checkName(&ps, "metric", metric)
	if math.IsNaN(value) || math.IsInf(value, 0) {
		ps.add("value", "must be a finite number")
	}
	if math.IsNaN(threshold) || math.IsInf(threshold, 0) {
		ps.add("threshold", "must be a finite number")
	}
	if err := ps.err("threshold"); err != nil {
		return nil, err
	}
	data := map[string]any{"metric": metric, "value": value, "threshold": threshold, "exceeded": value > threshold}
	return s.trigger(ctx, TriggerThreshold, EventTypeThresholdAlert, data, true, environment, opts)
}

// checkName checks a name argument of a trigger call.
func checkName(ps *problems, field, v string) {
	switch {
	case v == "":
		ps.add(field, "must not be empty")
	case len(v) > MaxEventNameLength || !printable(v):
		ps.add(field, fmt.Sprintf("must be printable UTF-8 of at most %d bytes", MaxEventNameLength))
	}
}

// trigger matches and enqueues one occurrence. canonical says whether
// data already holds only JSON-decoded types (so matching may use it
// directly); otherwise matching sees the data as it will be sent.
func (s *Service) trigger(ctx context.Context, typ TriggerType, eventType string, data map[string]any, canonical bool, env string, opts []TriggerOption) ([]string, error) {
	var o triggerOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	var ps problems
	if len(env) > MaxEnvironmentLength || !printable(env) {
		ps.add("environment", fmt.Sprintf("must be printable UTF-8 of at most %d bytes", MaxEnvironmentLength))
	}
	if len(o.key) > MaxIdempotencyKeyLength || !printable(o.key) {
		ps.add("idempotency_key", fmt.Sprintf("must be printable UTF-8 of at most %d bytes", MaxIdempotencyKeyLength))
	}
	if err := ps.err(string(typ)); err != nil {
		return nil, err
	}
	if data == nil {
		data = map[string]any{}
	}
	raw, err := encodeJSON(data)
	if err != nil {
		return nil, err
	}
	if len(raw) > s.maxLen {
		return nil, fmt.Errorf("%w: data is %d bytes, the limit is %d", ErrPayloadTooLarge, len(raw), s.maxLen)
	}

	idx, err := s.index(ctx)
	if err != nil {
		return nil, err
	}
	matchData := data
	if !canonical {
		matchData = nil // decoded on first need
	}
	var hooks []*compiledWebhook
	for _, cw := range idx.candidates(typ, eventType) {
		if !cw.w.hasEnvironment(env) {
			continue
		}
		for _, t := range cw.triggers {
			if t.typ != typ {
				continue
			}
			if matchData == nil && len(t.filters) > 0 {
				if err := json.Unmarshal(raw, &matchData); err != nil {
					return nil, fmt.Errorf("webhook: decode event data: %w", err)
				}
			}
			if t.match(eventType, matchData) {
				hooks = append(hooks, cw)
				break
			}
		}
	}
	if len(hooks) == 0 && o.key == "" {
		return nil, nil
	}

	now := s.clock()
	ts := now
	if !o.timestamp.IsZero() {
		ts = o.timestamp.UTC().Truncate(time.Microsecond)
	}
	p := EnqueueParams{IdempotencyKey: o.key, Now: now}
	for _, cw := range hooks {
		pl, d, err := newMessage(cw.w.ID, eventType, ts, now, raw, env)
		if err != nil {
			return nil, err
		}
		if len(pl.Body) > s.maxLen {
			return nil, fmt.Errorf("%w: body is %d bytes, the limit is %d", ErrPayloadTooLarge, len(pl.Body), s.maxLen)
		}
		p.Payloads = append(p.Payloads, pl)
		p.Deliveries = append(p.Deliveries, d)
	}
	var enq Enqueuer = s.store
	if o.enqueuer != nil {
		enq = o.enqueuer
	}
	res, err := enq.Enqueue(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("webhook: enqueue %s: %w", eventType, err)
	}
	if res.Duplicate {
		s.log.DebugContext(ctx, "webhook: idempotency key seen before; nothing enqueued", "event_type", eventType)
		return res.DeliveryIDs, nil
	}
	if len(res.DeliveryIDs) > 0 {
		s.log.DebugContext(ctx, "webhook: enqueued", "event_type", eventType, "deliveries", len(res.DeliveryIDs))
		s.notify()
	}
	return res.DeliveryIDs, nil
}

// newMessage builds one occurrence's payload for one webhook, with new
// IDs, and its delivery, pending and due at now. data is encoded JSON.
func newMessage(webhookID, eventType string, ts, now time.Time, data []byte, env string) (*Payload, *Delivery, error) {
	pid, err := newID()
	if err != nil {
		return nil, nil, err
	}
	did, err := newID()
	if err != nil {
		return nil, nil, err
	}
	body, err := encodePayload(pid, webhookID, eventType, ts, data, env)
	if err != nil {
		return nil, nil, err
	}
	pl := &Payload{ID: pid, WebhookID: webhookID, EventType: eventType, Environment: env, Timestamp: ts, Body: body}
	d := &Delivery{ID: did, WebhookID: webhookID, PayloadID: pid, EventType: eventType, Status: StatusPending, NextAttemptAt: now, CreatedAt: now}
	return pl, d, nil
}

// encodeJSON encodes event data, reporting failures as ErrInvalid.
func encodeJSON(data map[string]any) ([]byte, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, invalid("event", "data", "cannot be encoded as JSON: "+err.Error())
	}
	return raw, nil
}

// encodePayload returns the wire body:
// {"id","webhook_id","event_type","timestamp","data","environment"}.
// data is already encoded JSON.
func encodePayload(id, webhookID, eventType string, ts time.Time, data []byte, env string) ([]byte, error) {
	tsJSON, err := ts.MarshalJSON()
	if err != nil {
		return nil, invalid("payload", "timestamp", err.Error())
	}
	b := make([]byte, 0, len(data)+len(eventType)+len(env)+200)
	b = append(b, `{"id":`...)
	b = appendJSONString(b, id)
	b = append(b, `,"webhook_id":`...)
	b = appendJSONString(b, webhookID)
	b = append(b, `,"event_type":`...)
	b = appendJSONString(b, eventType)
	b = append(b, `,"timestamp":`...)
	b = append(b, tsJSON...)
	b = append(b, `,"data":`...)
	b = append(b, data...)
	b = append(b, `,"environment":`...)
	b = appendJSONString(b, env)
	return append(b, '}'), nil
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always encodes
	return append(b, q...)
}

// notify wakes workers waiting for new deliveries.
func (s *Service) notify() {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	for _, ch := range s.waiters {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// subscribe returns a channel that receives a value (coalesced) whenever
// deliveries are enqueued through this service, and a function that
// stops the subscription.
func (s *Service) subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.notifyMu.Lock()
	s.waiters = append(s.waiters, ch)
	s.notifyMu.Unlock()
	return ch, func() {
		s.notifyMu.Lock()
		defer s.notifyMu.Unlock()
		s.waiters = slices.DeleteFunc(s.waiters, func(c chan struct{}) bool { return c == ch })
	}
}

// invalidate marks the matching index stale after a local change.
func (s *Service) invalidate() { s.gen.Add(1) }

// index returns a matching index no older than the TTL that reflects
// every change made through this service.
func (s *Service) index(ctx context.Context) (*index, error) {
	if idx := s.idx.Load(); s.fresh(idx) {
		return idx, nil
	}
	select {
	case s.reload <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.reload }()
	if idx := s.idx.Load(); s.fresh(idx) { // loaded while we waited
		return idx, nil
	}
	gen := s.gen.Load()
	loadedAt := s.now()
	idx, err := s.loadIndex(ctx)
	if err != nil {
		return nil, err
	}
	idx.gen, idx.loadedAt = gen, loadedAt
	s.idx.Store(idx)
	return idx, nil
}

func (s *Service) fresh(idx *index) bool {
	return idx != nil && idx.gen == s.gen.Load() && s.ttl > 0 && s.now().Sub(idx.loadedAt) < s.ttl
}

// loadIndex reads every webhook and indexes the enabled ones.
func (s *Service) loadIndex(ctx context.Context) (*index, error) {
	idx := &index{byType: make(map[TriggerType]*typeIndex), byID: make(map[string]*compiledWebhook)}
	after := ""
	for {
		page, err := s.store.ListWebhooks(ctx, ListWebhooksParams{After: after, Limit: MaxPageSize})
		if err != nil {
			return nil, fmt.Errorf("webhook: load webhooks: %w", err)
		}
		for _, w := range page {
			if w.Disabled {
				continue
			}
			cw, err := w.compile()
			if err != nil {
				// A row written by another version or by hand: skip it
				// rather than fail every trigger call.
				s.log.ErrorContext(ctx, "webhook: stored webhook is invalid; not matching it", "webhook_id", w.ID, "error", err)
				continue
			}
			idx.add(cw)
		}
		if len(page) < MaxPageSize {
			return idx, nil
		}
		after = page[len(page)-1].ID
	}
}

// index finds the webhooks that may match an occurrence without looking
// at the others: by trigger type, then by exact event name, by event-name
// prefix, or as listening to all events.
type index struct {
	gen      uint64
	loadedAt time.Time
	byType   map[TriggerType]*typeIndex
	byID     map[string]*compiledWebhook
}

type typeIndex struct {
	exact  map[string][]*compiledWebhook
	prefix map[string][]*compiledWebhook // key ends with "."
	all    []*compiledWebhook
}

func (idx *index) add(cw *compiledWebhook) {
	idx.byID[cw.w.ID] = cw
	for _, t := range cw.triggers {
		ti := idx.byType[t.typ]
		if ti == nil {
			ti = &typeIndex{exact: map[string][]*compiledWebhook{}, prefix: map[string][]*compiledWebhook{}}
			idx.byType[t.typ] = ti
		}
		if len(t.events) == 0 {
			ti.all = appendOnce(ti.all, cw)
			continue
		}
		for _, e := range t.events {
			switch {
			case e == "*":
				ti.all = appendOnce(ti.all, cw)
			case strings.HasSuffix(e, ".*"):
				k := e[:len(e)-1]
				ti.prefix[k] = appendOnce(ti.prefix[k], cw)
			default:
				ti.exact[e] = appendOnce(ti.exact[e], cw)
			}
		}
	}
}

// appendOnce appends cw unless it is already the last element (webhooks
// are added one at a time, so that is the only place a repeat can be).
func appendOnce(list []*compiledWebhook, cw *compiledWebhook) []*compiledWebhook {
	if n := len(list); n > 0 && list[n-1] == cw {
		return list
	}
	return append(list, cw)
}

// candidates returns the webhooks that may match, each once, in ID order.
func (idx *index) candidates(typ TriggerType, name string) []*compiledWebhook {
	ti := idx.byType[typ]
	if ti == nil {
		return nil
	}
	out := slices.Clone(ti.all)
	out = append(out, ti.exact[name]...)
	for i := range len(name) {
		if name[i] == '.' && i+1 < len(name) {
			out = append(out, ti.prefix[name[:i+1]]...)
		}
	}
	slices.SortFunc(out, func(a, b *compiledWebhook) int { return strings.Compare(a.w.ID, b.w.ID) })
	return slices.Compact(out)
}
