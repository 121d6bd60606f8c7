package webhook_test

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
)

func TestEnableDisable(t *testing.T) {
	svc, store, _ := newService(t)
	ctx := t.Context()
	w := create(t, svc, "a", webhook.Trigger{Type: webhook.TriggerEvent})

	same, err := svc.Enable(ctx, w.ID)
	require.NoError(t, err)
	assert.Equal(t, w.Version, same.Version, "enabling an enabled webhook changes nothing")

	d, err := svc.Disable(ctx, w.ID, "maintenance")
	require.NoError(t, err)
	assert.True(t, d.Disabled)
	assert.Equal(t, "maintenance", d.DisabledReason)
	again, err := svc.Disable(ctx, w.ID, "another reason")
	require.NoError(t, err)
	assert.Equal(t, d.Version, again.Version, "a repeated disable changes nothing")
	assert.Equal(t, "maintenance", again.DisabledReason)
	ids, err := svc.TriggerEvent(ctx, "purchase", nil, "")
	require.NoError(t, err)
	assert.Empty(t, ids, "a disabled webhook hears nothing")

	// The health counters as the library leaves them on a failing endpoint.
	stored, err := store.GetWebhook(ctx, w.ID)
	require.NoError(t, err)
	stored.ConsecutiveFailures, stored.FailingSince = 7, time.Now().UTC()
	require.NoError(t, store.UpdateWebhook(ctx, stored))

	e, err := svc.Enable(ctx, w.ID)
	require.NoError(t, err)
	assert.False(t, e.Disabled)
	assert.Empty(t, e.DisabledReason)
	assert.Zero(t, e.ConsecutiveFailures, "enabling resets the health counters")
	assert.True(t, e.FailingSince.IsZero())
	ids, err = svc.TriggerEvent(ctx, "purchase", nil, "")
	require.NoError(t, err)
	assert.Len(t, ids, 1)

	_, err = svc.Disable(ctx, w.ID, "bad\x00reason")
	var ve *webhook.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "reason", ve.Fields[0].Field)
	_, err = svc.Disable(ctx, w.ID, strings.Repeat("x", webhook.MaxDisabledReasonLength+1))
	require.ErrorIs(t, err, webhook.ErrInvalid)
	_, err = svc.Enable(ctx, "missing")
	require.ErrorIs(t, err, webhook.ErrNotFound)
	_, err = svc.Disable(ctx, "missing", "")
	require.ErrorIs(t, err, webhook.ErrNotFound)
}

func TestTenantEnableDisable(t *testing.T) {
	svc, _, _ := newService(t)
	ctx := t.Context()
	a, err := svc.Tenant("a").Create(ctx, catchAll("", "a"))
	require.NoError(t, err)
	b := svc.Tenant("b")
	_, err = b.Disable(ctx, a.ID, "")
	require.ErrorIs(t, err, webhook.ErrNotFound)
	_, err = b.Enable(ctx, a.ID)
	require.ErrorIs(t, err, webhook.ErrNotFound)
	_, err = b.RotateSecretWith(ctx, a.ID, webhook.RotateSecretParams{})
	require.ErrorIs(t, err, webhook.ErrNotFound)
	got, err := svc.Get(ctx, a.ID)
	require.NoError(t, err)
	assert.Equal(t, a.Version, got.Version, "another tenant changed nothing")

	d, err := svc.Tenant("a").Disable(ctx, a.ID, "paused")
	require.NoError(t, err)
	assert.True(t, d.Disabled)
	e, err := svc.Tenant("a").Enable(ctx, a.ID)
	require.NoError(t, err)
	assert.False(t, e.Disabled)
	_, err = svc.Tenant("").Enable(ctx, a.ID)
	require.ErrorIs(t, err, webhook.ErrTenantRequired)
}

func TestRotateSecretWith(t *testing.T) {
	svc, _, clock := newService(t)
	ctx := t.Context()
	w := create(t, svc, "a", webhook.Trigger{Type: webhook.TriggerEvent})

	r1, err := svc.RotateSecretWith(ctx, w.ID, webhook.RotateSecretParams{Grace: time.Hour})
	require.NoError(t, err)
	require.Len(t, r1.PreviousSecrets, 1)
	assert.Equal(t, w.Secret, r1.PreviousSecrets[0].Secret)
	assert.Equal(t, clock.Now().UTC().Truncate(time.Microsecond).Add(time.Hour), r1.PreviousSecrets[0].ExpiresAt)

	r2, err := svc.RotateSecretWith(ctx, w.ID, webhook.RotateSecretParams{})
	require.NoError(t, err)
	require.Len(t, r2.PreviousSecrets, 2, "the default grace keeps the earlier secret still in its grace")
	assert.Equal(t, clock.Now().UTC().Truncate(time.Microsecond).Add(webhook.DefaultSecretRotationGrace), r2.PreviousSecrets[0].ExpiresAt)

	r3, err := svc.RotateSecretWith(ctx, w.ID, webhook.RotateSecretParams{Grace: -1})
	require.NoError(t, err)
	assert.Empty(t, r3.PreviousSecrets, "no grace retires every old secret at once")
	assert.Equal(t, []string{r3.Secret}, r3.ActiveSecrets(clock.Now()))
}

func TestCreateWithIdempotencyKey(t *testing.T) {
	svc, _, _ := newService(t)
	ctx := t.Context()
	req := func() *webhook.Webhook {
		return &webhook.Webhook{Name: "a", URL: "https://example.com/a", Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent, Filters: []webhook.Filter{{Property: "n", Operator: "gt", Value: 1}}}}}
	}
	first, created, err := svc.CreateWith(ctx, req(), webhook.CreateParams{IdempotencyKey: "k1"})
	require.NoError(t, err)
	assert.True(t, created)
	again, created, err := svc.CreateWith(ctx, req(), webhook.CreateParams{IdempotencyKey: "k1"})
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, first.ID, again.ID)
	assert.Equal(t, first.Secret, again.Secret)

	other := req()
	other.URL = "https://example.com/b"
	_, _, err = svc.CreateWith(ctx, other, webhook.CreateParams{IdempotencyKey: "k1"})
	require.ErrorIs(t, err, webhook.ErrIdempotencyKeyReused)
	require.ErrorIs(t, err, webhook.ErrConflict)

	// Another tenant's key of the same text is another webhook.
	ta, created, err := svc.Tenant("a").CreateWith(ctx, req(), webhook.CreateParams{IdempotencyKey: "k1"})
	require.NoError(t, err)
	assert.True(t, created)
	assert.NotEqual(t, first.ID, ta.ID)
	tb, created, err := svc.Tenant("b").CreateWith(ctx, req(), webhook.CreateParams{IdempotencyKey: "k1"})
	require.NoError(t, err)
	assert.True(t, created)
	assert.NotEqual(t, ta.ID, tb.ID)

	// A given secret must match too.
	withSecret := req()
	withSecret.Secret = "whsec_" + strings.Repeat("A", 43) + "="
	_, _, err = svc.CreateWith(ctx, withSecret, webhook.CreateParams{IdempotencyKey: "k1"})
	require.ErrorIs(t, err, webhook.ErrIdempotencyKeyReused)

	// After a delete, the key creates the webhook again.
	require.NoError(t, svc.Delete(ctx, first.ID))
	re, created, err := svc.CreateWith(ctx, req(), webhook.CreateParams{IdempotencyKey: "k1"})
	require.NoError(t, err)
	assert.True(t, created)
	assert.Equal(t, first.ID, re.ID)

	_, _, err = svc.CreateWith(ctx, req(), webhook.CreateParams{IdempotencyKey: "bad\x01"})
	var ve *webhook.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "idempotency_key", ve.Fields[0].Field)

	// Without a key, CreateWith is Create.
	_, created, err = svc.CreateWith(ctx, req(), webhook.CreateParams{})
	require.NoError(t, err)
	assert.True(t, created)
}

func TestCreateWithIdempotencyKeyRace(t *testing.T) {
	svc, _, _ := newService(t)
	ctx := t.Context()
	const n = 8
	ids := make([]string, n)
	var createdCount sync.WaitGroup
	var mu sync.Mutex
	made := 0
	for i := range n {
		createdCount.Add(1)
		go func() {
			defer createdCount.Done()
			w, created, err := svc.CreateWith(ctx, catchAll("", "race"), webhook.CreateParams{IdempotencyKey: "same"})
			if !assert.NoError(t, err) {
				return
			}
			ids[i] = w.ID
			if created {
				mu.Lock()
				made++
				mu.Unlock()
			}
		}()
	}
	createdCount.Wait()
	assert.Equal(t, 1, made, "one call creates")
	for _, id := range ids {
		assert.Equal(t, ids[0], id)
	}
}

func TestEventTypes(t *testing.T) {
	want := map[string][]string{
		"$test":               {"message", "webhook_name"},
		"$error":              {"error_type", "error_message", "details"},
		"$threshold_alert":    {"metric", "value", "threshold", "exceeded", "status", "reason", "operator", "aggregation", "window_seconds", "recovery_value", "reported_threshold", "episode_id", "started_at", "fired_at", "notification_count"},
		"$threshold_resolved": {"metric", "value", "threshold", "exceeded", "status", "reason", "operator", "aggregation", "window_seconds", "recovery_value", "reported_threshold", "episode_id", "started_at", "fired_at", "resolved_at", "duration_seconds", "notification_count"},
		"$anomaly":            {"metric", "value", "expected", "lower", "upper", "score", "direction", "sensitivity", "aggregation", "bucket_seconds", "bucket_start", "properties", "status", "episode_id", "started_at", "fired_at"},
		"$anomaly_resolved":   {"metric", "value", "expected", "lower", "upper", "score", "direction", "sensitivity", "aggregation", "bucket_seconds", "bucket_start", "properties", "status", "episode_id", "started_at", "fired_at", "resolved_at", "duration_seconds"},
		"$scheduled_summary":  {"period_start", "period_end", "summary", "interval_seconds", "schedule", "timezone"},
		"$funnel_complete":    {"funnel_id", "funnel_name", "distinct_id", "completed_at", "steps", "properties"},
		"$cohort_entry":       {"cohort_id", "cohort_name", "distinct_id", "entered_at", "properties"},
	}
	types := webhook.EventTypes()
	require.Len(t, types, len(want))
	for _, et := range types {
		t.Run(et.Name, func(t *testing.T) {
			props, ok := want[et.Name]
			require.True(t, ok, "unexpected event type")
			assert.NotEmpty(t, et.Description)
			var s struct {
				Schema     string                     `json:"$schema"`
				Type       string                     `json:"type"`
				Properties map[string]json.RawMessage `json:"properties"`
				Required   []string                   `json:"required"`
			}
			require.NoError(t, json.Unmarshal(et.Schema, &s), "the schema is valid JSON")
			assert.Equal(t, "https://json-schema.org/draft/2020-12/schema", s.Schema)
			assert.Equal(t, "object", s.Type)
			assert.ElementsMatch(t, props, keys(s.Properties), "the schema describes every field of the data")
			require.NotEmpty(t, s.Required)
			for _, r := range s.Required {
				assert.Contains(t, s.Properties, r, "a required field is a described one")
			}
			for name, p := range s.Properties {
				var ps map[string]any
				require.NoError(t, json.Unmarshal(p, &ps), name)
				assert.NotEmpty(t, ps["description"], name)
			}
		})
	}
	types[0].Name = "changed"
	assert.Equal(t, "$test", webhook.EventTypes()[0].Name, "each call returns a new slice")
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
