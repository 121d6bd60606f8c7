package webhook_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A replay request body is decoded strictly: a misspelt "dry_run" must
// not turn a count into a real replay.
func TestReplayParamsDecodeStrictly(t *testing.T) {
	for _, body := range []string{
		`{"dryRun": true}`,
		`{"DRY_RUN": true}`,
		`{"dry_run": true, "dry_run": false}`,
		`{"dry_run": "yes"}`,
		`{"since": 5}`,
		`[]`,
	} {
		t.Run(body, func(t *testing.T) {
			p := webhook.ReplayParams{DryRun: true}
			err := json.Unmarshal([]byte(body), &p)
			require.Error(t, err)
			assert.ErrorIs(t, err, webhook.ErrInvalid)
			var ve *webhook.ValidationError
			assert.True(t, errors.As(err, &ve), "%T", err)
			assert.True(t, p.DryRun, "unchanged on error")
		})
	}
	var p webhook.ReplayParams
	require.NoError(t, json.Unmarshal([]byte(`{"since": "2026-01-02T03:04:05+01:00", "dry_run": true}`), &p))
	assert.True(t, p.DryRun)
	assert.True(t, p.Since.Equal(time.Date(2026, 1, 2, 2, 4, 5, 0, time.UTC)), "%v", p.Since)

	b, err := json.Marshal(p)
	require.NoError(t, err)
	var back webhook.ReplayParams
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, p, back)
}
