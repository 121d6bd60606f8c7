package webhook_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
)

func TestDeliveryJSON(t *testing.T) {
	at := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	d := webhook.Delivery{
		ID: "d1", WebhookID: "w1", PayloadID: "p1", EventType: "purchase", Status: webhook.StatusDelivered,
		Attempt: 2, StatusCode: 204, Duration: 1500 * time.Millisecond, CreatedAt: at, CompletedAt: at.Add(time.Minute),
		Attempts: []webhook.Attempt{{DeliveryID: "d1", Number: 1, StartedAt: at, Duration: 30 * time.Second, Error: "request timed out after 30s"}},
	}
	b, err := json.Marshal(d)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	// The specification's field names.
	for _, k := range []string{"id", "webhook_id", "payload_id", "status", "status_code", "attempt", "created_at", "completed_at", "duration_ms"} {
		assert.Contains(t, m, k)
	}
	assert.Equal(t, 1500.0, m["duration_ms"])
	assert.NotContains(t, m, "next_attempt_at", "zero times are omitted")
	assert.NotContains(t, m, "response_body")
	att := m["attempts"].([]any)[0].(map[string]any)
	assert.Equal(t, 30000.0, att["duration_ms"])
	assert.Equal(t, 1.0, att["attempt"])

	pending := webhook.Delivery{ID: "d2", Status: webhook.StatusPending, CreatedAt: at, NextAttemptAt: at}
	b, err = json.Marshal(pending)
	require.NoError(t, err)
	m = nil
	require.NoError(t, json.Unmarshal(b, &m))
	assert.NotContains(t, m, "duration_ms", "no duration before the first attempt")
	assert.NotContains(t, m, "completed_at")

	assert.True(t, webhook.StatusFailed.Final())
	assert.False(t, webhook.StatusRetrying.Final())
	assert.True(t, webhook.StatusDelivering.Valid())
	assert.False(t, webhook.DeliveryStatus("lost").Valid())
}
