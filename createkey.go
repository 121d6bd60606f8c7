package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// ErrIdempotencyKeyReused reports a CreateWith whose idempotency key
// already created a webhook with another configuration. It wraps
// ErrConflict.
var ErrIdempotencyKeyReused = fmt.Errorf("%w: idempotency key already used for another webhook", ErrConflict)

// CreateParams are the options of CreateWith.
type CreateParams struct {
	// IdempotencyKey, when not empty, makes the create happen once per
	// key and tenant: printable UTF-8 of at most MaxIdempotencyKeyLength
	// bytes. The webhook's ID is derived from the tenant and the key (a
	// UUIDv5), so no storage remembers keys; such an ID does not sort by
	// creation time as the IDs of other webhooks do.
	IdempotencyKey string
}

// idempotentCreateSpace is the UUIDv5 namespace of the IDs of webhooks
// created with an idempotency key.
var idempotentCreateSpace = uuid.MustParse("5b0e4e7a-4b0c-4f43-9d0f-6b1f0c2a8e51")

// CreateWith is Create with options, and returns whether this call
// created the webhook. With p.IdempotencyKey, the first call with the
// key creates the webhook; a later call with the key and the same
// configuration (the fields a request sets: name, URL, enabled,
// triggers, headers, retry, environments, signature scheme, timeout,
// rate limit, in-flight cap, and the secret when one is given) creates
// nothing and returns the webhook as it is stored, with created false,
// also when calls race. A later call with another configuration fails
// with ErrIdempotencyKeyReused, and so does one after the webhook was
// changed; after it was deleted, the key creates it again. Errors are
// otherwise those of Create, and a *ValidationError naming
// "idempotency_key" for a bad key.
func (s *Service) CreateWith(ctx context.Context, w *Webhook, p CreateParams) (*Webhook, bool, error) {
	return s.createWith(ctx, allTenants, w, p)
}

// CreateWith creates a webhook of the tenant as Service.CreateWith does;
// keys of different tenants never meet.
func (t *TenantService) CreateWith(ctx context.Context, w *Webhook, p CreateParams) (*Webhook, bool, error) {
	if t.err != nil {
		return nil, false, t.err
	}
	return t.svc.createWith(ctx, t.sc, w, p)
}

// createWith is CreateWith within a scope.
func (s *Service) createWith(ctx context.Context, sc scope, w *Webhook, p CreateParams) (*Webhook, bool, error) {
	if p.IdempotencyKey == "" {
		c, err := s.create(ctx, sc, w, "")
		return c, err == nil, err
	}
	if w == nil {
		return nil, false, fmt.Errorf("%w: Create: nil webhook", ErrInvalid)
	}
	key := p.IdempotencyKey
	if len(key) > MaxIdempotencyKeyLength || !printable(key) {
		return nil, false, invalid("webhook", "idempotency_key", fmt.Sprintf("must be printable UTF-8 of at most %d bytes", MaxIdempotencyKeyLength))
	}
	tenant := w.TenantID
	if sc.one {
		tenant = sc.tenant
	}
	id := uuid.NewSHA1(idempotentCreateSpace, []byte(scopedKey(tenant, key))).String()
	c, err := s.create(ctx, sc, w, id)
	if !errors.Is(err, ErrDuplicate) {
		return c, err == nil, err
	}
	old, gerr := s.get(ctx, sc, id, "create")
	if gerr != nil {
		return nil, false, fmt.Errorf("webhook: create: idempotency key: %w", errors.Join(err, gerr))
	}
	if old.TenantID != tenant || !sameRequest(w, old) {
		return nil, false, fmt.Errorf("webhook %s: create: %w", id, ErrIdempotencyKeyReused)
	}
	return old, false, nil
}

// sameRequest reports whether the webhook asked for, w, has the
// configuration of the stored webhook old, once w is completed as
// Create completes it.
func sameRequest(w, old *Webhook) bool {
	c := w.Clone()
	prepare(c)
	if c.Secret != "" && c.Secret != old.Secret {
		return false
	}
	a, errA := configJSON(c)
	b, errB := configJSON(old)
	return errA == nil && errB == nil && bytes.Equal(a, b)
}

// configJSON encodes the fields of w that a create request sets.
func configJSON(w *Webhook) ([]byte, error) {
	return Webhook{
		Name: w.Name, URL: w.URL, Disabled: w.Disabled, DisabledReason: w.DisabledReason,
		Triggers: w.Triggers, Headers: w.Headers, Retry: w.Retry, Environments: w.Environments,
		SignatureScheme: w.SignatureScheme, Timeout: w.Timeout, RateLimit: w.RateLimit, MaxInFlight: w.MaxInFlight,
	}.MarshalJSON()
}
