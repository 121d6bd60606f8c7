package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/storage/pgstore"
)

// TestStoredWebhookKeepsSecretsAndIsDecodedStrictly checks that a stored
// webhook keeps its secrets (the public JSON form leaves them out) and
// that a stored row with a field the library does not know is an error
// naming the row, not a webhook with settings silently dropped.
func TestStoredWebhookKeepsSecretsAndIsDecodedStrictly(t *testing.T) {
	p := testPool(t)
	ctx := context.Background()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	s, err := pgstore.New(p, &pgstore.Config{Schema: schema})
	require.NoError(t, err)
	require.NoError(t, s.Migrate(ctx))
	t.Cleanup(func() { _, _ = p.Exec(context.Background(), `DROP SCHEMA `+schema+` CASCADE`) })

	svc, err := webhook.NewService(s, nil)
	require.NoError(t, err)
	w, err := svc.Create(ctx, &webhook.Webhook{
		Name: "orders", URL: "https://hooks.example.com/orders",
		Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent, Events: []string{"purchase"}}},
	})
	require.NoError(t, err)
	rotated, err := svc.RotateSecret(ctx, w.ID)
	require.NoError(t, err)
	got, err := s.GetWebhook(ctx, w.ID)
	require.NoError(t, err)
	assert.Equal(t, rotated.Secret, got.Secret)
	require.Len(t, got.PreviousSecrets, 1)
	assert.Equal(t, w.Secret, got.PreviousSecrets[0].Secret)
	assert.WithinDuration(t, rotated.PreviousSecrets[0].ExpiresAt, got.PreviousSecrets[0].ExpiresAt, time.Microsecond)

	_, err = p.Exec(ctx, `UPDATE `+schema+`.webhooks SET config = jsonb_set(config::jsonb, '{triggers,0,event}', '["x"]')::text WHERE id = $1`, w.ID)
	require.NoError(t, err)
	_, err = s.GetWebhook(ctx, w.ID)
	require.ErrorIs(t, err, webhook.ErrCorruptWebhook)
	// A stored row that cannot be read is not the caller's bad input: an
	// HTTP layer must not answer 400 with the row's problems.
	require.NotErrorIs(t, err, webhook.ErrInvalid)
	var ce *webhook.CorruptWebhookError
	require.ErrorAs(t, err, &ce)
	var ve *webhook.ValidationError
	require.ErrorAs(t, ce.Err, &ve, "the cause is kept in Err")
	assert.Equal(t, "triggers[0].event", ve.Fields[0].Field)
	assert.Contains(t, err.Error(), w.ID, "the error names the row")
}
