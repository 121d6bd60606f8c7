package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrPayloadTooLarge reports a trigger whose request body would exceed
// Config.MaxPayloadBytes. It wraps ErrInvalid.
var ErrPayloadTooLarge = fmt.Errorf("%w: payload too large", ErrInvalid)

// TriggerOption adjusts one trigger call.
type TriggerOption func(*triggerOptions)

type triggerOptions struct {
	key       string
	implicit  bool // key is a default (see withDefaultKey)
	tenant    string
	timestamp time.Time
	enqueuer  Enqueuer
}

// MaxIdempotencyKeyLength is the longest idempotency key, in bytes.
const MaxIdempotencyKeyLength = 256

// WithIdempotencyKey makes the trigger call enqueue at most once per key:
// a later call with the same key enqueues nothing and returns the
// delivery IDs of the first. Keys are scoped to the call's tenant (see
// WithTenant): the same key in two tenants is two keys. Within a tenant,
// and among calls without one, keys are global to the Storage; include
// the trigger kind or your own namespace in them.
func WithIdempotencyKey(key string) TriggerOption {
	return func(o *triggerOptions) { o.key, o.implicit = key, false }
}

// WithTenant scopes the trigger call to one tenant of the host
// application: only webhooks whose TenantID is id match. A call without
// it (or with an empty id) is matched only against webhooks without a
// TenantID, so an event never reaches a tenant it was not raised for; a
// single-tenant host needs no tenant anywhere. Under
// Config.RequireTenant, a call without a tenant fails with
// ErrTenantRequired. id has the limits of Webhook.TenantID.
func WithTenant(id string) TriggerOption {
	return func(o *triggerOptions) { o.tenant = id }
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

// TriggerEvent enqueues a delivery of the event to every enabled webhook
// of the call's tenant (see WithTenant) with a matching event trigger,
// and returns the new delivery IDs (none when nothing matches). Event
// types starting with "$" are reserved for the library's own. Once it
// returns without error the deliveries are stored and will be attempted.
// It returns an error wrapping ErrInvalid for bad arguments
// (ErrPayloadTooLarge for oversized data, ErrTenantRequired for a missing
// tenant under Config.RequireTenant) and the Storage's error otherwise,
// in which case nothing was enqueued, except for an error wrapping
// ErrCommitUnknown: the connection was lost while committing, and the
// deliveries may have been stored. A caller that retries failed trigger
// calls should pass WithIdempotencyKey, so that a retry after
// ErrCommitUnknown cannot enqueue twice.
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

// TriggerError enqueues an "$error" delivery to every enabled webhook of
// the call's tenant (see WithTenant) with a matching error trigger. The
// data is {"error_type", "error_message", "details"}; filters see those
// fields. It returns the new delivery IDs, with errors as TriggerEvent.
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

// TriggerThreshold reports a metric's value computed by the caller, and
// runs it through the alert state of every threshold condition on metric
// without a window (WindowSeconds 0) of the enabled webhooks of the
// call's tenant (see WithTenant) that hear environment. Each condition
// compares value with its own Value by its Operator, and notifies once
// per episode: "$threshold_alert" (reason "fired") when the breach
// starts (after its ForSeconds), again ("renotify") once per
// RepeatIntervalSeconds while it lasts, and "$threshold_resolved"
// (reason "recovered") when the value recovers (see Condition). A value
// that keeps the alert where it is sends nothing, so calling it on every
// measurement is right.
//
// threshold is the caller's own idea of the limit: it does not decide
// anything (the webhook's conditions do, so that whoever configured the
// webhook sets its alerts), and is reported in the data as
// "reported_threshold" beside the condition's "threshold" (see Condition
// for the data).
//
// It returns the IDs of the deliveries this call's transitions enqueued:
// none while an alert stays as it is. WithTenant and WithTimestamp apply;
// WithIdempotencyKey is not needed (each transition has its own key, so
// a retried call cannot notify twice) and is ignored; WithEnqueuer is
// refused, because a notification is stored in one atomic step with its
// alert state. NaN or infinite numbers are invalid. On an error of
// Storage, the IDs returned are those enqueued before it.
//
// Like every trigger call, it has a producer span ("webhook.trigger",
// kind threshold, with webhook.metric), whose traceparent the
// notifications it enqueues store, so the spans of their attempts link
// to it.
func (s *Service) TriggerThreshold(ctx context.Context, metric string, value, threshold float64, environment string, opts ...TriggerOption) (ids []string, err error) {
	ctx = s.tel.startStatefulCall(ctx, TriggerThreshold, metric)
	defer func() { s.tel.endTrigger(ctx, ids, err) }()
	var o triggerOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	var ps problems
	checkName(&ps, "metric", metric)
	if !finite(value) {
		ps.add("value", "must be a finite number")
	}
	if !finite(threshold) {
		ps.add("threshold", "must be a finite number")
	}
	if len(environment) > MaxEnvironmentLength || !printable(environment) {
		ps.add("environment", fmt.Sprintf("must be printable UTF-8 of at most %d bytes", MaxEnvironmentLength))
	}
	if o.enqueuer != nil {
		ps.add("enqueuer", "does not apply: a threshold alert is enqueued in one step with its state, in the Service's Storage")
	}
	s.tel.triggerTenant(ctx, o.tenant)
	missing := s.checkTenant(&ps, o.tenant, "pass WithTenant")
	if err := tenantErr(ps.err("threshold"), missing); err != nil {
		return nil, err
	}
	idx, err := s.index(ctx)
	if err != nil {
		return nil, err
	}
	refs := thresholdConditions(idx.candidates(o.tenant, TriggerThreshold, EventTypeThresholdAlert), func(w *Webhook, c Condition) bool {
		return c.Metric == metric && c.WindowSeconds == 0 && w.hasEnvironment(environment)
	})
	if len(refs) == 0 {
		return nil, nil
	}
	var hookIDs []string
	for _, r := range refs {
		if len(hookIDs) == 0 || hookIDs[len(hookIDs)-1] != r.w.ID {
			hookIDs = append(hookIDs, r.w.ID)
		}
	}
	states, err := s.statesByKey(ctx, hookIDs)
	if err != nil {
		return nil, err
	}
	now := s.clock()
	ts := now
	if !o.timestamp.IsZero() {
		ts = o.timestamp.UTC().Truncate(time.Microsecond)
	}
	extra := map[string]any{"reported_threshold": threshold}
	for _, r := range refs {
		got, err := s.stepCondition(ctx, r, environment, states[r.key(environment)], r.c.observe(value), now, ts, extra)
		if err != nil {
			return ids, err
		}
		ids = append(ids, got...)
	}
	return ids, nil
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
func (s *Service) trigger(ctx context.Context, typ TriggerType, eventType string, data map[string]any, canonical bool, env string, opts []TriggerOption) (ids []string, err error) {
	ctx = s.tel.startTrigger(ctx, typ, eventType)
	defer func() { s.tel.endTrigger(ctx, ids, err) }()
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
	s.tel.triggerTenant(ctx, o.tenant)
	missing := s.checkTenant(&ps, o.tenant, "pass WithTenant")
	if err := tenantErr(ps.err(string(typ)), missing); err != nil {
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
	var decodeErr error
	decode := func() map[string]any {
		if matchData == nil && decodeErr == nil {
			decodeErr = json.Unmarshal(raw, &matchData)
		}
		return matchData
	}
	var hooks []*compiledWebhook
	for _, cw := range idx.candidatesFor(o.tenant, typ, eventType, decode) {
		if !cw.w.hasEnvironment(env) {
			continue
		}
		for _, t := range cw.triggers {
			if t.typ != typ {
				continue
			}
			if len(t.filters) > 0 {
				if decode(); decodeErr != nil {
					return nil, fmt.Errorf("webhook: decode event data: %w", decodeErr)
				}
			}
			if t.match(eventType, matchData) {
				hooks = append(hooks, cw)
				break
			}
		}
	}
	if len(hooks) == 0 && (o.key == "" || o.implicit) {
		return nil, nil
	}

	now := s.clock()
	ts := now
	if !o.timestamp.IsZero() {
		ts = o.timestamp.UTC().Truncate(time.Microsecond)
	}
	p := EnqueueParams{IdempotencyKey: scopedKey(o.tenant, o.key), Now: now}
	tp := traceParent(ctx)
	for _, cw := range hooks {
		pl, d, err := newMessage(cw.w.ID, eventType, ts, now, raw, env)
		if err != nil {
			return nil, err
		}
		d.MaxAttempts, pl.TraceParent = cw.w.Retry.MaxAttempts, tp
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
		s.log.DebugContext(ctx, "webhook: idempotency key seen before; nothing enqueued", "event_type", eventType, "tenant_id", o.tenant)
		return res.DeliveryIDs, nil
	}
	if len(res.DeliveryIDs) > 0 {
		s.log.DebugContext(ctx, "webhook: enqueued", "event_type", eventType, "tenant_id", o.tenant, "deliveries", len(res.DeliveryIDs))
		s.tel.enqueuedDeliveries(ctx, string(typ), len(res.DeliveryIDs))
		s.notify()
	}
	return res.DeliveryIDs, nil
}
