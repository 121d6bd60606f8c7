package webhook

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// noteHealth applies a delivery's final outcome to its webhook's health:
// a success resets the count of failures in a row, a failure adds to it
// and disables the webhook when the health policy says so. Whether a
// success has a count to reset is read from hook, the worker's copy as
// of the claim: a success in one process racing another's first failure
// can leave the count, which the next success then resets.
func (s *Service) noteHealth(ctx context.Context, hook *Webhook, delivered bool) {
	if delivered && hook.ConsecutiveFailures == 0 {
		return // nothing to reset (as far as this copy knows)
	}
	if s.failLimit < 0 && !delivered {
		return
	}
	disabled := false
	w, err := s.modify(ctx, hook.ID, "health", func(w *Webhook) (*Webhook, error) {
		disabled = false // a change that lost a race is made again, on the newer webhook
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
		s.log.WarnContext(ctx, "webhook: disabled by the health policy", "webhook_id", w.ID, "tenant_id", w.TenantID, "reason", w.DisabledReason)
		s.tel.endpointDisabled(ctx, w.ID, disabledFailures)
		if s.onDisabled != nil {
			s.onDisabled(ctx, w.Clone())
		}
	}
}

// disable disables the webhook for reason unless it is disabled
// already, and calls OnWebhookDisabled if it made the change: once per
// disable, however many results (in this process or others) ask for it,
// since only one change from one version of the webhook is stored.
// class is the reason's class in webhook.endpoint.disabled.
func (s *Service) disable(ctx context.Context, id, class, reason string) {
	disabled := false
	w, err := s.modify(ctx, id, "disable", func(w *Webhook) (*Webhook, error) {
		disabled = !w.Disabled
		if w.Disabled {
			return nil, nil
		}
		w.Disabled, w.DisabledReason = true, reason
		return w, nil
	})
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		s.log.WarnContext(ctx, "webhook: disabling the webhook failed; the next delivery tries again", "webhook_id", id, "reason", reason, "error", err)
	case disabled:
		s.log.WarnContext(ctx, "webhook: disabled", "webhook_id", id, "tenant_id", w.TenantID, "reason", reason)
		s.tel.endpointDisabled(ctx, id, class)
		if s.onDisabled != nil {
			s.onDisabled(ctx, w.Clone())
		}
	}
}
