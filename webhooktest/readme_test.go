package webhooktest_test

import (
	"context"
	"testing"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
	"github.com/analytics-webhooks/webhook/webhooktest"
)

// app stands for the code under test of the README's example.
type app struct{ svc *webhook.Service }

func NewApp(svc *webhook.Service) *app { return &app{svc: svc} }

func (a *app) SignUp(ctx context.Context, email string) {
	_, _ = a.svc.TriggerEvent(ctx, "user.signed_up", map[string]any{"email": email}, "production")
}

// The README's "Testing your code" example, as written there.
func TestSignUpNotifiesCRM(t *testing.T) {
	clock := webhooktest.NewClock(time.Time{})   // stands still until moved
	doer := &webhooktest.Doer{}                  // records requests, answers 200; no network
	doer.Respond(webhooktest.Statuses(503, 200)) // or script the endpoint: fail once, then succeed
	svc, _ := webhook.NewService(memstore.New(nil), &webhook.Config{Now: clock.Now, Doer: doer})
	svc.Create(t.Context(), &webhook.Webhook{Name: "CRM", URL: "https://crm.example.com/hooks",
		Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent, Events: []string{"user.*"}}}})

	app := NewApp(svc) // your code, which calls svc.TriggerEvent
	app.SignUp(t.Context(), "ada@example.com")

	// Enqueued, before anything is sent:
	webhooktest.RequireEnqueued(t, svc, "user.signed_up", nil)
	// Send everything; with a Clock, retries come due at once:
	webhooktest.Drain(t, svc, &webhooktest.DrainConfig{Clock: clock})
	m := webhooktest.RequireDelivered(t, svc, "user.signed_up", func(m *webhooktest.Message) bool {
		return m.Data["email"] == "ada@example.com"
	})
	if m.Delivery.Attempt != 2 { // the 503, then the 200
		t.Errorf("delivered after %d attempts", m.Delivery.Attempt)
	}
	webhooktest.RequireNotDelivered(t, svc, "user.deleted", nil)
}
