package webhook_test

import (
	"strings"
	"testing"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCreate(t *testing.T) {
	svc, store, clock := newService(t)
	in := &webhook.Webhook{
		ID:       "ignored",
		Name:     "orders",
		URL:      "https://example.com/hook",
		Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}},
		Retry:    webhook.RetryPolicy{MaxAttempts: 3},
	}
	snapshot := in.Clone()
	w, err := svc.Create(t.Context(), in)
	require.NoError(t, err)
	assert.Equal(t, snapshot, in, "Create must not modify its argument")

	_, err = uuid.Parse(w.ID)
	require.NoError(t, err, "the service assigns a UUID")
	assert.NotEqual(t, "ignored", w.ID)
	assert.True(t, strings.HasPrefix(w.Secret, "whsec_"))
	key, err := webhook.ParseSecret(w.Secret)
	require.NoError(t, err)
	assert.Len(t, key, 32)
	want := clock.Now().UTC().Truncate(time.Microsecond)
	assert.Equal(t, want, w.CreatedAt)
	assert.Equal(t, want, w.UpdatedAt)
	assert.Equal(t, webhook.RetryPolicy{MaxAttempts: 3, InitialDelay: 5 * time.Second, MaxDelay: time.Hour, Multiplier: 2}, w.Retry, "zero fields take defaults")
	assert.Equal(t, webhook.SchemeStandard, w.SignatureScheme)
	assert.NotNil(t, w.Headers)
	assert.NotNil(t, w.Triggers[0].Filters)
	assert.NotNil(t, w.Triggers[0].Conditions)

	stored, err := store.GetWebhook(t.Context(), w.ID)
	require.NoError(t, err)
	assert.Equal(t, w, stored)

	// Two webhooks get different secrets.
	w2 := create(t, svc, "other", webhook.Trigger{Type: webhook.TriggerEvent})
	assert.NotEqual(t, w.Secret, w2.Secret)

	// A supplied secret is kept.
	secret, err := webhook.NewSecret()
	require.NoError(t, err)
	w3, err := svc.Create(t.Context(), &webhook.Webhook{Name: "own", URL: "https://example.com", Secret: secret, Triggers: []webhook.Trigger{{Type: webhook.TriggerError}}})
	require.NoError(t, err)
	assert.Equal(t, secret, w3.Secret)
}

func TestCreateInvalidStoresNothing(t *testing.T) {
	svc, store, _ := newService(t)
	_, err := svc.Create(t.Context(), &webhook.Webhook{Name: "", URL: "file:///etc/passwd"})
	var ve *webhook.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.GreaterOrEqual(t, len(ve.Fields), 3)
	_, err = svc.Create(t.Context(), nil)
	require.ErrorIs(t, err, webhook.ErrInvalid)
	ws, err := store.ListWebhooks(t.Context(), webhook.ListWebhooksParams{})
	require.NoError(t, err)
	assert.Empty(t, ws)
}

func TestUpdate(t *testing.T) {
	svc, _, clock := newService(t)
	w := create(t, svc, "orders", webhook.Trigger{Type: webhook.TriggerEvent})
	clock.Advance(time.Minute)

	newSecret, err := webhook.NewSecret()
	require.NoError(t, err)
	change := w.Clone()
	change.Name = "renamed"
	change.Secret = newSecret
	change.TenantID = "other-tenant"
	change.CreatedAt = time.Time{}
	change.Retry = webhook.RetryPolicy{}
	got, err := svc.Update(t.Context(), change)
	require.NoError(t, err)
	assert.Equal(t, "renamed", got.Name)
	assert.Equal(t, w.Secret, got.Secret, "Update keeps the secret")
	assert.Equal(t, w.TenantID, got.TenantID, "Update keeps the tenant")
	assert.Equal(t, w.CreatedAt, got.CreatedAt, "Update keeps created_at")
	assert.Equal(t, w.CreatedAt.Add(time.Minute), got.UpdatedAt)
	assert.Equal(t, webhook.DefaultRetryPolicy(), got.Retry)

	again, err := svc.Get(t.Context(), w.ID)
	require.NoError(t, err)
	assert.Equal(t, got, again)

	bad := got.Clone()
	bad.URL = "not a url"
	_, err = svc.Update(t.Context(), bad)
	require.ErrorIs(t, err, webhook.ErrInvalid)
	unchanged, err := svc.Get(t.Context(), w.ID)
	require.NoError(t, err)
	assert.Equal(t, got, unchanged, "a refused update changes nothing")

	missing := got.Clone()
	missing.ID = uuid.NewString()
	_, err = svc.Update(t.Context(), missing)
	require.ErrorIs(t, err, webhook.ErrNotFound)
}

func TestUpdateReenableClearsReason(t *testing.T) {
	svc, store, _ := newService(t)
	w := create(t, svc, "orders", webhook.Trigger{Type: webhook.TriggerEvent})
	w.Disabled, w.DisabledReason = true, "endpoint answered 410 Gone"
	require.NoError(t, store.UpdateWebhook(t.Context(), w))
	w, err := svc.Get(t.Context(), w.ID)
	require.NoError(t, err)

	keep := w.Clone()
	keep.Name = "still disabled"
	keep.DisabledReason = ""
	got, err := svc.Update(t.Context(), keep)
	require.NoError(t, err)
	assert.Equal(t, "endpoint answered 410 Gone", got.DisabledReason, "an edit of a disabled webhook keeps the reason")

	got.Disabled = false
	got, err = svc.Update(t.Context(), got)
	require.NoError(t, err)
	assert.Empty(t, got.DisabledReason)
}

func TestUpdateVersions(t *testing.T) {
	svc, _, _ := newService(t)
	w := create(t, svc, "orders", webhook.Trigger{Type: webhook.TriggerEvent})
	require.Equal(t, int64(1), w.Version)

	// A client that read version 1 updates it to version 2.
	first := w.Clone()
	first.Name = "first"
	got, err := svc.Update(t.Context(), first)
	require.NoError(t, err)
	require.Equal(t, int64(2), got.Version)

	// A second client still holding version 1 is refused.
	second := w.Clone()
	second.Name = "second"
	_, err = svc.Update(t.Context(), second)
	require.ErrorIs(t, err, webhook.ErrConflict)
	cur, err := svc.Get(t.Context(), w.ID)
	require.NoError(t, err)
	require.Equal(t, "first", cur.Name)

	// Without a version, the update applies to the current one, and a
	// rotation in between is kept, never undone.
	rotated, err := svc.RotateSecret(t.Context(), w.ID)
	require.NoError(t, err)
	require.Equal(t, int64(3), rotated.Version)
	blind := w.Clone()
	blind.Version = 0
	blind.Name = "blind"
	got, err = svc.Update(t.Context(), blind)
	require.NoError(t, err)
	require.Equal(t, rotated.Secret, got.Secret)
	require.Equal(t, int64(4), got.Version)
}

func TestUpdateDoesNotUndoConcurrentRotation(t *testing.T) {
	base := memstore.New(nil)
	plain, err := webhook.NewService(base, nil)
	require.NoError(t, err)
	w := create(t, plain, "orders", webhook.Trigger{Type: webhook.TriggerEvent})
	racy := &racyStore{Storage: base, svc: plain, rotated: false}
	svc, err := webhook.NewService(racy, nil)
	require.NoError(t, err)

	change := w.Clone()
	change.Version = 0
	change.Name = "renamed"
	got, err := svc.Update(t.Context(), change)
	require.NoError(t, err)
	stored, err := base.GetWebhook(t.Context(), w.ID)
	require.NoError(t, err)
	assert.NotEqual(t, w.Secret, stored.Secret, "the rotation that won the race is kept")
	assert.Equal(t, stored.Secret, got.Secret)
	assert.Equal(t, "renamed", stored.Name)
	assert.Equal(t, stored, got)
}

func TestDeleteAndList(t *testing.T) {
	svc, _, _ := newService(t)
	a := create(t, svc, "a", webhook.Trigger{Type: webhook.TriggerEvent})
	b := create(t, svc, "b", webhook.Trigger{Type: webhook.TriggerEvent})
	ws, err := svc.List(t.Context(), webhook.ListWebhooksParams{})
	require.NoError(t, err)
	require.Len(t, ws, 2)
	assert.Equal(t, []string{a.ID, b.ID}, []string{ws[0].ID, ws[1].ID}, "creation order")

	require.NoError(t, svc.Delete(t.Context(), a.ID))
	_, err = svc.Get(t.Context(), a.ID)
	require.ErrorIs(t, err, webhook.ErrNotFound)
	require.ErrorIs(t, svc.Delete(t.Context(), a.ID), webhook.ErrNotFound)
}

func TestRotateSecret(t *testing.T) {
	rc := newReceiver(t, nil)
	e := newEnv(t, &webhook.Config{SecretRotationGrace: time.Hour}, nil)
	w := e.hook(t, rc.URL)
	old := w.Secret
	rotated, err := e.svc.RotateSecret(t.Context(), w.ID)
	require.NoError(t, err)
	require.NotEqual(t, old, rotated.Secret)
	require.Len(t, rotated.PreviousSecrets, 1)

	e.trigger(t)
	e.runOnce(t)
	r := rc.all()[0]
	assert.Len(t, strings.Fields(r.header.Get("webhook-signature")), 2, "one signature per active secret")
	for _, s := range []string{old, rotated.Secret} {
		require.NoError(t, (&webhook.Verifier{Secrets: []string{s}, Now: e.clock.Now}).Verify(r.header, r.body))
	}

	e.clock.Advance(time.Hour)
	e.trigger(t)
	e.runOnce(t)
	r = rc.all()[1]
	assert.Len(t, strings.Fields(r.header.Get("webhook-signature")), 1, "the old secret stops after the grace period")
	require.ErrorIs(t, (&webhook.Verifier{Secrets: []string{old}, Now: e.clock.Now}).Verify(r.header, r.body), webhook.ErrNoMatchingSignature)
	_, err = e.svc.RotateSecret(t.Context(), "00000000-0000-0000-0000-000000000000")
	require.ErrorIs(t, err, webhook.ErrNotFound)
}

func TestCyclicFilterValueIsRefused(t *testing.T) {
	svc, _, _ := newService(t)
	m := map[string]any{}
	m["self"] = m
	_, err := svc.Create(t.Context(), &webhook.Webhook{Name: "n", URL: "https://example.com", Triggers: []webhook.Trigger{{
		Type: webhook.TriggerEvent, Filters: []webhook.Filter{{Property: "p", Operator: "equals", Value: m}},
	}}})
	require.ErrorIs(t, err, webhook.ErrInvalid)
	_, err = svc.TriggerEvent(t.Context(), "e", map[string]any{"m": m}, "")
	require.ErrorIs(t, err, webhook.ErrInvalid)
}

func TestNotFoundErrorsNameTheIDOnce(t *testing.T) {
	svc, _, _ := newService(t)
	ctx := t.Context()
	missing := uuid.NewString()

	_, err := svc.Get(ctx, missing)
	require.ErrorIs(t, err, webhook.ErrNotFound)
	assert.Equal(t, "webhook: get: webhook "+missing+": webhook: not found", err.Error())

	calls := map[string]func() error{
		"Update": func() error {
			_, err := svc.Update(ctx, &webhook.Webhook{ID: missing, Name: "n", URL: "https://example.com", Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
			return err
		},
		"Delete":       func() error { return svc.Delete(ctx, missing) },
		"RotateSecret": func() error { _, err := svc.RotateSecret(ctx, missing); return err },
		"Test":         func() error { _, err := svc.Test(ctx, missing); return err },
		"Delivery":     func() error { _, err := svc.Delivery(ctx, missing); return err },
		"Redeliver":    func() error { _, err := svc.Redeliver(ctx, missing); return err },
	}
	for name, call := range calls {
		err := call()
		require.ErrorIs(t, err, webhook.ErrNotFound, name)
		assert.Equal(t, 1, strings.Count(err.Error(), missing), "%s: %q names the ID once", name, err)
	}
}
