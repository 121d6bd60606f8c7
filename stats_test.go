package webhook_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
)

// plainStore hides every optional interface of the Storage it wraps.
type plainStore struct{ webhook.Storage }

func TestQueueStats(t *testing.T) {
	ctx := t.Context()
	svc, _, clock := newService(t)
	hook := create(t, svc, "orders", webhook.Trigger{Type: webhook.TriggerEvent})
	_, err := svc.TriggerEvent(ctx, "order.created", map[string]any{"id": 1}, "production")
	require.NoError(t, err)
	_, err = svc.TriggerEvent(ctx, "order.created", map[string]any{"id": 2}, "production")
	require.NoError(t, err)
	due := clock.Now().UTC().Truncate(time.Microsecond)
	clock.Advance(time.Minute)

	q, err := svc.QueueStats(ctx, 3)
	require.NoError(t, err)
	require.EqualValues(t, 2, q.Depth[webhook.StatusPending])
	require.EqualValues(t, 2, q.Due, "due by the service's clock")
	require.True(t, q.OldestDue.Equal(due), "OldestDue %v, want %v", q.OldestDue, due)
	require.Equal(t, []webhook.WebhookBacklog{{WebhookID: hook.ID, Unfinished: 2}}, q.TopBacklog)

	_, err = svc.QueueStats(ctx, -1)
	require.ErrorIs(t, err, webhook.ErrInvalid)

	plain, err := webhook.NewService(plainStore{svc.Storage()}, nil)
	require.NoError(t, err)
	_, err = plain.QueueStats(ctx, 0)
	require.ErrorIs(t, err, errors.ErrUnsupported)
}
