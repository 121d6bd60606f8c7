package webhook

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Create stores a new webhook built from w and returns it. The service
// assigns the ID (ignoring w.ID), CreatedAt and UpdatedAt, generates a
// secret if w.Secret is empty, fills zero retry fields with the defaults
// and normalises nil lists to empty ones. w itself is not modified. It
// returns a *ValidationError (errors.Is ErrInvalid) for bad input, which
// also satisfies errors.Is ErrTenantRequired when w has no TenantID under
// Config.RequireTenant.
func (s *Service) Create(ctx context.Context, w *Webhook) (*Webhook, error) {
	return s.create(ctx, allTenants, w, "")
}

// create is Create within a scope, whose tenant the webhook gets, with
// the given ID or, if empty, a new one.
func (s *Service) create(ctx context.Context, sc scope, w *Webhook, id string) (*Webhook, error) {
	if w == nil {
		return nil, fmt.Errorf("%w: Create: nil webhook", ErrInvalid)
	}
	c := w.Clone()
	if sc.one {
		c.TenantID = sc.tenant
	}
	var err error
	if id == "" {
		if id, err = newID(); err != nil {
			return nil, err
		}
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
	if err := s.validateNew(c); err != nil {
		return nil, err
	}
	if err := s.store.CreateWebhook(ctx, c); err != nil {
		return nil, fmt.Errorf("webhook: create: %w", err)
	}
	s.indexPut(c)
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
	return s.get(ctx, allTenants, id, "get")
}

// get reads a webhook of the scope. Within one tenant's scope, another
// tenant's webhook (readable or not) and a missing one give the same
// error, whatever the Storage's words for a missing row.
func (s *Service) get(ctx context.Context, sc scope, id, op string) (*Webhook, error) {
	w, err := s.store.GetWebhook(ctx, id)
	if sc.hides(w, err) {
		err = webhookNotFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("webhook: %s: %w", op, err)
	}
	return w, nil
}

// Update replaces the configuration of the webhook w.ID with w's and
// returns the result. It keeps the stored ID, TenantID, Secret,
// PreviousSecrets and CreatedAt (rotate secrets with RotateSecret), and
// sets UpdatedAt. Re-enabling a webhook clears its DisabledReason. Alerts
// firing under a threshold condition or anomaly trigger that the update
// changes or removes are resolved (see ReasonEdited).
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
	return s.update(ctx, allTenants, w)
}

// update is Update within a scope.
func (s *Service) update(ctx context.Context, sc scope, w *Webhook) (updated *Webhook, err error) {
	if w == nil {
		return nil, fmt.Errorf("%w: Update: nil webhook", ErrInvalid)
	}
	var before *Webhook
	defer func() {
		if before != nil && updated != nil {
			s.resolveOrphans(ctx, before, updated)
		}
	}()
	return s.modifyIn(ctx, sc, w.ID, "update", func(old *Webhook) (*Webhook, error) {
		before = old
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

// validateNew checks a webhook about to be created: as validate does, and
// that it has a tenant if the service requires one.
func (s *Service) validateNew(w *Webhook) error {
	err := s.validate(w)
	if !s.tenanted || w.TenantID != "" {
		return err
	}
	reason := "must not be empty: the service requires a tenant (Config.RequireTenant)"
	var ve *ValidationError
	if errors.As(err, &ve) {
		ve.Fields = append([]FieldError{{Field: "tenant_id", Reason: reason}}, ve.Fields...)
	} else {
		ve = &ValidationError{What: "webhook", Fields: []FieldError{{Field: "tenant_id", Reason: reason}}}
	}
	return tenantErr(ve, true)
}

// validate checks w as Validate does, its URL against the service's
// network policy, and that this Service can run its stateful triggers.
func (s *Service) validate(w *Webhook) error {
	err := w.Validate()
	var more problems
	var be *BlockedError
	if berr := s.network.CheckURL(w.URL); errors.As(berr, &be) {
		more.add("url", strings.TrimPrefix(be.Error(), "webhook: ")+" (see Config.Network)")
	}
	s.checkStateful(&more, w)
	if len(more.fields) == 0 {
		return err
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		ve.Fields = append(ve.Fields, more.fields...)
		return ve
	}
	return more.err("webhook")
}

// maxConflictRetries bounds how often modify re-reads a webhook that
// changed under it.
const maxConflictRetries = 10

// modify reads the webhook, lets change build the next version from it,
// and stores that version, starting over when another writer got there
// first. It sets UpdatedAt and returns the stored webhook. A change that
// returns nil leaves the webhook as it is, and modify returns it.
func (s *Service) modify(ctx context.Context, id, op string, change func(old *Webhook) (*Webhook, error)) (*Webhook, error) {
	return s.modifyIn(ctx, allTenants, id, op, change)
}

// modifyIn is modify within a scope: a webhook outside it is not found.
func (s *Service) modifyIn(ctx context.Context, sc scope, id, op string, change func(old *Webhook) (*Webhook, error)) (*Webhook, error) {
	for range maxConflictRetries {
		old, err := s.get(ctx, sc, id, op)
		if err != nil {
			return nil, err
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
			return nil, fmt.Errorf("webhook: %s: %w", op, err)
		}
		next.Version++
		if !sameButHealth(old, next) {
			// Health counters do not change what matches: a failing
			// endpoint's writes must not change the index each time.
			s.indexPut(next)
		}
		return next, nil
	}
	return nil, fmt.Errorf("webhook %s: %s: gave up after %d concurrent changes: %w", id, op, maxConflictRetries, ErrConflict)
}

// Delete removes the webhook. Its deliveries stay in the history; those
// still pending fail without being sent. It returns an error wrapping
// ErrNotFound for an unknown ID.
func (s *Service) Delete(ctx context.Context, id string) error {
	return s.delete(ctx, allTenants, id)
}

// delete is Delete within a scope. A webhook's tenant never changes, so
// a webhook read as the scope's is the one deleted.
func (s *Service) delete(ctx context.Context, sc scope, id string) error {
	if sc.one {
		if _, err := s.get(ctx, sc, id, "delete"); err != nil {
			return err
		}
	}
	if err := s.store.DeleteWebhook(ctx, id); err != nil {
		return fmt.Errorf("webhook: delete: %w", err)
	}
	s.indexRemove(id)
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
	return s.rotateSecretIn(ctx, allTenants, id, RotateSecretParams{})
}

// rotateSecretIn is RotateSecretWith within a scope.
func (s *Service) rotateSecretIn(ctx context.Context, sc scope, id string, p RotateSecretParams) (*Webhook, error) {
	secret, err := NewSecret()
	if err != nil {
		return nil, err
	}
	grace := s.grace
	switch {
	case p.Grace > 0:
		grace = p.Grace
	case p.Grace < 0:
		grace = 0
	}
	return s.modifyIn(ctx, sc, id, "rotate secret", func(w *Webhook) (*Webhook, error) {
		now := s.clock()
		var kept []RetiredSecret
		if grace > 0 {
			kept = []RetiredSecret{{Secret: w.Secret, ExpiresAt: now.Add(grace)}}
			for _, r := range w.PreviousSecrets {
				if now.Before(r.ExpiresAt) && len(kept) < MaxPreviousSecrets {
					kept = append(kept, r)
				}
			}
		}
		w.Secret, w.PreviousSecrets = secret, kept
		return w, nil
	})
}

// List returns one page of webhooks in ID (creation) order, of every
// tenant unless p.TenantID names one.
//
// Stored webhooks that cannot be read back are left out: List then
// returns the others with an error wrapping ErrCorruptWebhook that names
// each of them (CorruptWebhooks lists them); they count towards the
// page's Limit, so continue after the greatest ID among both. On any
// other error it returns no webhooks.
func (s *Service) List(ctx context.Context, p ListWebhooksParams) ([]*Webhook, error) {
	ws, err := s.store.ListWebhooks(ctx, p)
	switch {
	case errors.Is(err, ErrCorruptWebhook):
		return ws, fmt.Errorf("webhook: list: %w", err)
	case err != nil:
		return nil, fmt.Errorf("webhook: list: %w", err)
	}
	return ws, nil
}

// MaxDisabledReasonLength bounds the reason given to Disable.
const MaxDisabledReasonLength = 1024

// Enable enables the webhook again and returns it: new deliveries reach
// it from now on. Like an Update that enables it, it clears
// DisabledReason and resets the health counters (ConsecutiveFailures,
// FailingSince), so that the health policy starts afresh. Enabling an
// enabled webhook changes nothing (its Version stays). It returns an
// error wrapping ErrNotFound for an unknown ID.
func (s *Service) Enable(ctx context.Context, id string) (*Webhook, error) {
	return s.enable(ctx, allTenants, id)
}

// enable is Enable within a scope.
func (s *Service) enable(ctx context.Context, sc scope, id string) (*Webhook, error) {
	return s.modifyIn(ctx, sc, id, "enable", func(w *Webhook) (*Webhook, error) {
		if !w.Disabled {
			return nil, nil
		}
		w.Disabled, w.DisabledReason = false, ""
		w.ConsecutiveFailures, w.FailingSince = 0, time.Time{}
		return w, nil
	})
}

// Disable stops new deliveries to the webhook and returns it, with
// reason (printable UTF-8 of at most MaxDisabledReasonLength bytes; may
// be empty) as its DisabledReason. Deliveries already queued fail
// without being sent, as for a webhook the library disabled. Disabling a
// disabled webhook changes nothing, its reason included, so that a
// repeated call is harmless. OnWebhookDisabled is not called: the
// caller made the change. It returns an error wrapping ErrNotFound for
// an unknown ID and a *ValidationError for a bad reason.
func (s *Service) Disable(ctx context.Context, id, reason string) (*Webhook, error) {
	return s.disableIn(ctx, allTenants, id, reason)
}

// disableIn is Disable within a scope.
func (s *Service) disableIn(ctx context.Context, sc scope, id, reason string) (*Webhook, error) {
	if len(reason) > MaxDisabledReasonLength || !printable(reason) {
		return nil, invalid("disable", "reason", fmt.Sprintf("must be printable UTF-8 of at most %d bytes", MaxDisabledReasonLength))
	}
	return s.modifyIn(ctx, sc, id, "disable", func(w *Webhook) (*Webhook, error) {
		if w.Disabled {
			return nil, nil
		}
		w.Disabled, w.DisabledReason = true, reason
		return w, nil
	})
}

// RotateSecretParams are the options of RotateSecretWith.
type RotateSecretParams struct {
	// Grace is how long the old secret keeps signing beside the new
	// one. Zero means Config.SecretRotationGrace; negative turns the
	// grace off: the old secret, and any earlier one still in its
	// grace, stop signing at once (for a secret that leaked).
	Grace time.Duration
}

// RotateSecretWith is RotateSecret with options: p.Grace replaces the
// service's grace period for this rotation.
func (s *Service) RotateSecretWith(ctx context.Context, id string, p RotateSecretParams) (*Webhook, error) {
	return s.rotateSecretIn(ctx, allTenants, id, p)
}
