package webhook

import (
	"context"
	"errors"
	"fmt"
)

// ErrTenantRequired reports a call without a tenant where one is needed:
// a trigger call or Create under Config.RequireTenant, or any call on the
// TenantService of an empty tenant. It wraps ErrInvalid; the error
// returned is a *ValidationError naming the field "tenant_id".
var ErrTenantRequired = fmt.Errorf("%w: tenant required", ErrInvalid)

// TenantService is a Service scoped to one tenant of the host
// application: its methods mirror the Service's, but see and change only
// the tenant's webhooks, their deliveries and their history, and its
// trigger calls reach only the tenant's webhooks. A webhook or delivery
// of another tenant is reported exactly as one that does not exist (an
// error wrapping ErrNotFound, with the same message), so a caller cannot
// learn that it exists; so is a stored webhook that cannot be read back
// (ErrCorruptWebhook) unless the Storage tells that it is the tenant's
// (CorruptWebhookError.TenantID; pgstore does). A host serving several tenants handles each
// request through the TenantService of the request's tenant and never
// compares TenantID itself.
//
// Get one with Service.Tenant. It is cheap and safe for concurrent use;
// all its state is the Service's.
type TenantService struct {
	svc *Service
	sc  scope
	err error // the tenant ID's problem, returned by every method
}

// Tenant returns the Service scoped to the tenant id (see TenantService).
// An id that is empty, or too long or unprintable for Webhook.TenantID,
// makes every method of the result fail: with ErrTenantRequired, or a
// *ValidationError for the field "tenant_id". The Service's own methods
// see every tenant's webhooks; webhooks without a tenant are managed
// through them.
func (s *Service) Tenant(id string) *TenantService {
	t := &TenantService{svc: s, sc: scope{tenant: id, one: true}}
	var ps problems
	if id == "" {
		ps.add("tenant_id", "must not be empty: Service.Tenant needs a tenant")
	} else {
		checkTenantID(&ps, id)
	}
	t.err = tenantErr(ps.err("tenant"), id == "")
	return t
}

// ID returns the tenant's ID.
func (t *TenantService) ID() string { return t.sc.tenant }

// Create stores a new webhook of the tenant built from w, as
// Service.Create does; w.TenantID is ignored, like w.ID.
func (t *TenantService) Create(ctx context.Context, w *Webhook) (*Webhook, error) {
	if t.err != nil {
		return nil, t.err
	}
	return t.svc.create(ctx, t.sc, w, "")
}

// Get returns the tenant's webhook with the given ID, or an error
// wrapping ErrNotFound, also for another tenant's webhook.
func (t *TenantService) Get(ctx context.Context, id string) (*Webhook, error) {
	if t.err != nil {
		return nil, t.err
	}
	return t.svc.get(ctx, t.sc, id, "get")
}

// Update replaces the configuration of the tenant's webhook w.ID, as
// Service.Update does; the webhook stays the tenant's whatever w.TenantID
// says. Another tenant's webhook is not found, and is not changed.
func (t *TenantService) Update(ctx context.Context, w *Webhook) (*Webhook, error) {
	if t.err != nil {
		return nil, t.err
	}
	return t.svc.update(ctx, t.sc, w)
}

// Delete removes the tenant's webhook, as Service.Delete does. Another
// tenant's webhook is not found, and is not deleted. The history of a
// deleted webhook stays in Storage but is no longer reachable through
// the TenantService: nothing records whose it was.
func (t *TenantService) Delete(ctx context.Context, id string) error {
	if t.err != nil {
		return t.err
	}
	return t.svc.delete(ctx, t.sc, id)
}

// RotateSecret gives the tenant's webhook a new secret, as
// Service.RotateSecret does. Another tenant's webhook is not found.
func (t *TenantService) RotateSecret(ctx context.Context, id string) (*Webhook, error) {
	if t.err != nil {
		return nil, t.err
	}
	return t.svc.rotateSecretIn(ctx, t.sc, id, RotateSecretParams{})
}

// RotateSecretWith gives the tenant's webhook a new secret, as
// Service.RotateSecretWith does. Another tenant's webhook is not found.
func (t *TenantService) RotateSecretWith(ctx context.Context, id string, p RotateSecretParams) (*Webhook, error) {
	if t.err != nil {
		return nil, t.err
	}
	return t.svc.rotateSecretIn(ctx, t.sc, id, p)
}

// Enable enables the tenant's webhook again, as Service.Enable does.
// Another tenant's webhook is not found, and is not changed.
func (t *TenantService) Enable(ctx context.Context, id string) (*Webhook, error) {
	if t.err != nil {
		return nil, t.err
	}
	return t.svc.enable(ctx, t.sc, id)
}

// Disable disables the tenant's webhook, as Service.Disable does.
// Another tenant's webhook is not found, and is not changed.
func (t *TenantService) Disable(ctx context.Context, id, reason string) (*Webhook, error) {
	if t.err != nil {
		return nil, t.err
	}
	return t.svc.disableIn(ctx, t.sc, id, reason)
}

// List returns one page of the tenant's webhooks in ID (creation) order,
// as Service.List does; p.TenantID is replaced by the tenant's. The
// Storage filters by tenant; pgstore reads only the tenant's rows (an
// index on tenant and ID), so a page costs the same however many
// webhooks other tenants have.
func (t *TenantService) List(ctx context.Context, p ListWebhooksParams) ([]*Webhook, error) {
	if t.err != nil {
		return nil, t.err
	}
	p.TenantID = t.sc.tenant
	return t.svc.List(ctx, p)
}

// Test sends a "$test" payload to the tenant's webhook, as Service.Test
// does. Another tenant's webhook is not found, and gets no request.
func (t *TenantService) Test(ctx context.Context, webhookID string) (*Delivery, error) {
	if _, err := t.webhook(ctx, webhookID, "test"); err != nil {
		return nil, err
	}
	return t.svc.Test(ctx, webhookID)
}

// Deliveries returns up to limit of the most recent deliveries of the
// tenant's webhook, as Service.Deliveries does, except that an unknown
// webhook ID, a deleted webhook's and another tenant's give an error
// wrapping ErrNotFound.
func (t *TenantService) Deliveries(ctx context.Context, webhookID string, limit int) ([]*Delivery, error) {
	return t.ListDeliveries(ctx, ListDeliveriesParams{WebhookID: webhookID, Limit: limit})
}

// ListDeliveries returns one page of the deliveries of the tenant's
// webhook p.WebhookID, each with its attempts, as Service.ListDeliveries
// does, except that an unknown webhook ID, a deleted webhook's and
// another tenant's give an error wrapping ErrNotFound (after p is
// validated: invalid parameters are ErrInvalid whoever owns the
// webhook).
func (t *TenantService) ListDeliveries(ctx context.Context, p ListDeliveriesParams) ([]*Delivery, error) {
	if t.err != nil {
		return nil, t.err
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if _, err := t.webhook(ctx, p.WebhookID, "deliveries"); err != nil {
		return nil, err
	}
	return t.svc.ListDeliveries(ctx, p)
}

// ReplayFailed queues again the failed deliveries of the tenant's webhook,
// or counts them with p.DryRun, as Service.ReplayFailed does. Another
// tenant's webhook is not found.
func (t *TenantService) ReplayFailed(ctx context.Context, webhookID string, p ReplayParams) (ReplayResult, error) {
	if _, err := t.webhook(ctx, webhookID, "replay"); err != nil {
		return ReplayResult{DeliveryIDs: []string{}}, err
	}
	return t.svc.ReplayFailed(ctx, webhookID, p)
}

// Delivery returns a delivery to one of the tenant's webhooks with its
// attempts, or an error wrapping ErrNotFound, also for a delivery to
// another tenant's webhook or to a deleted one.
func (t *TenantService) Delivery(ctx context.Context, id string) (*Delivery, error) {
	d, err := t.delivery(ctx, id, "delivery")
	if err != nil {
		return nil, err
	}
	if d.Attempts, err = t.svc.store.ListAttempts(ctx, id); err != nil {
		return nil, fmt.Errorf("webhook: delivery: %w", err)
	}
	return d, nil
}

// Redeliver queues a finished delivery to one of the tenant's webhooks
// again, as Service.Redeliver does. A delivery to another tenant's
// webhook is not found, and is not queued.
func (t *TenantService) Redeliver(ctx context.Context, deliveryID string) (string, error) {
	if _, err := t.delivery(ctx, deliveryID, "redeliver"); err != nil {
		return "", err
	}
	return t.svc.Redeliver(ctx, deliveryID)
}

// TriggerEvent is Service.TriggerEvent for the tenant: only the tenant's
// webhooks match, whatever WithTenant option opts hold.
func (t *TenantService) TriggerEvent(ctx context.Context, eventType string, data map[string]any, environment string, opts ...TriggerOption) ([]string, error) {
	if t.err != nil {
		return nil, t.err
	}
	return t.svc.TriggerEvent(ctx, eventType, data, environment, t.withTenant(opts)...)
}

// TriggerError is Service.TriggerError for the tenant: only the tenant's
// webhooks match, whatever WithTenant option opts hold.
func (t *TenantService) TriggerError(ctx context.Context, errorType, errorMessage string, details map[string]any, environment string, opts ...TriggerOption) ([]string, error) {
	if t.err != nil {
		return nil, t.err
	}
	return t.svc.TriggerError(ctx, errorType, errorMessage, details, environment, t.withTenant(opts)...)
}

// TriggerThreshold is Service.TriggerThreshold for the tenant: only the
// tenant's webhooks match, whatever WithTenant option opts hold.
func (t *TenantService) TriggerThreshold(ctx context.Context, metric string, value, threshold float64, environment string, opts ...TriggerOption) ([]string, error) {
	if t.err != nil {
		return nil, t.err
	}
	return t.svc.TriggerThreshold(ctx, metric, value, threshold, environment, t.withTenant(opts)...)
}

// withTenant returns opts with the tenant's WithTenant last, so that it
// wins over any other.
func (t *TenantService) withTenant(opts []TriggerOption) []TriggerOption {
	out := make([]TriggerOption, 0, len(opts)+1)
	return append(append(out, opts...), WithTenant(t.sc.tenant))
}

// webhook reads the tenant's webhook for the operation op.
func (t *TenantService) webhook(ctx context.Context, id, op string) (*Webhook, error) {
	if t.err != nil {
		return nil, t.err
	}
	return t.svc.get(ctx, t.sc, id, op)
}

// delivery reads a delivery to one of the tenant's webhooks, without its
// attempts, for the operation op. A delivery whose webhook is another
// tenant's or gone is not found, with the message of a missing delivery.
func (t *TenantService) delivery(ctx context.Context, id, op string) (*Delivery, error) {
	if t.err != nil {
		return nil, t.err
	}
	d, err := t.svc.store.GetDelivery(ctx, id)
	if errors.Is(err, ErrNotFound) {
		err = deliveryNotFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("webhook: %s: %w", op, err)
	}
	w, err := t.svc.store.GetWebhook(ctx, d.WebhookID)
	switch {
	case t.sc.hides(w, err):
		return nil, fmt.Errorf("webhook: %s: %w", op, deliveryNotFound(id))
	case err != nil:
		return nil, fmt.Errorf("webhook: %s: delivery %s: %w", op, id, err)
	}
	return d, nil
}

// scope limits webhook operations to one tenant's webhooks.
type scope struct {
	tenant string
	one    bool // false: every tenant's
}

// allTenants is the Service's own scope.
var allTenants = scope{}

// owns reports whether w is inside the scope.
func (sc scope) owns(w *Webhook) bool { return !sc.one || w.TenantID == sc.tenant }

// hides reports whether a read of a webhook that gave w and err must be
// reported, within the scope, as a missing webhook: a missing one, one
// outside the scope, and one that cannot be read and is not known to be
// inside it.
func (sc scope) hides(w *Webhook, err error) bool {
	if !sc.one {
		return false
	}
	var ce *CorruptWebhookError
	switch {
	case err == nil:
		return !sc.owns(w)
	case errors.As(err, &ce):
		return ce.TenantID != sc.tenant
	}
	return errors.Is(err, ErrNotFound)
}

// webhookNotFound and deliveryNotFound are the errors a TenantService
// gives for a missing row and for a row outside its scope alike, in the
// words of memstore and pgstore.
func webhookNotFound(id string) error  { return fmt.Errorf("webhook %s: %w", id, ErrNotFound) }
func deliveryNotFound(id string) error { return fmt.Errorf("delivery %s: %w", id, ErrNotFound) }

// checkTenantID checks a tenant ID with the limits of Webhook.TenantID.
func checkTenantID(ps *problems, id string) {
	if len(id) > MaxTenantIDLength || !printable(id) {
		ps.add("tenant_id", fmt.Sprintf("must be printable UTF-8 of at most %d bytes", MaxTenantIDLength))
	}
}

// checkTenant checks the tenant of a trigger call: valid, and present if
// the service requires one (hint says how to give one). It reports
// whether the tenant is missing.
func (s *Service) checkTenant(ps *problems, tenant, hint string) (missing bool) {
	if tenant == "" && s.tenanted {
		ps.add("tenant_id", "must not be empty: the service requires a tenant (Config.RequireTenant); "+hint)
		return true
	}
	checkTenantID(ps, tenant)
	return false
}

// tenantErr makes err, a *ValidationError listing a missing tenant when
// missing is set, also satisfy errors.Is ErrTenantRequired. Other errors
// pass unchanged.
func tenantErr(err error, missing bool) error {
	var ve *ValidationError
	if !missing || !errors.As(err, &ve) {
		return err
	}
	return &tenantRequiredError{ve}
}

// tenantRequiredError is a *ValidationError that is also
// ErrTenantRequired: errors.As finds the *ValidationError in it.
type tenantRequiredError struct{ ve *ValidationError }

func (e *tenantRequiredError) Error() string   { return e.ve.Error() }
func (e *tenantRequiredError) Unwrap() []error { return []error{ErrTenantRequired, e.ve} }

// scopedKey returns the stored form of a trigger call's idempotency key:
// the key itself without a tenant, else the tenant and the key joined by
// a control character, which neither may contain, so that keys of
// different tenants never meet and none meets a key without a tenant.
func scopedKey(tenant, key string) string {
	if tenant == "" || key == "" {
		return key
	}
	return tenant + "\x1f" + key
}
