package storagetest

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
)

// queueStats returns s's QueueStatsReader, skipping the test for a
// Storage without one.
func queueStats(t *testing.T, s webhook.Storage) webhook.QueueStatsReader {
	t.Helper()
	r, ok := s.(webhook.QueueStatsReader)
	if !ok {
		t.Skip("the Storage does not implement webhook.QueueStatsReader")
	}
	return r
}

func testQueueStats(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	r := queueStats(t, s)

	empty, err := r.QueueStats(ctx, webhook.QueueStatsParams{TopWebhooks: 5, Now: t0})
	require.NoError(t, err)
	require.Equal(t, webhook.NewQueueStats().Depth, empty.Depth, "every unfinished status is present, at 0")
	require.Zero(t, empty.Due)
	require.True(t, empty.OldestDue.IsZero())
	require.Empty(t, empty.TopBacklog)

	// No webhook rows at all: the queue view counts deliveries whatever
	// became of their webhooks.
	a, b, c := newID(t), newID(t), newID(t)
	enqueue(t, s, a, 3, t0.Add(-time.Hour))
	enqueue(t, s, c, 2, t0.Add(-time.Minute))
	enqueue(t, s, b, 1, t0.Add(time.Hour))
	cs := claim(t, s, t0, 2) // two of a's, the earliest due
	require.Len(t, cs, 2)
	require.NoError(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{DeliveryID: cs[0].Delivery.ID, Token: cs[0].Lease.Token,
		Status: webhook.StatusDelivered, Attempt: webhook.Attempt{StartedAt: t0, StatusCode: 200}, Now: t0}))
	retryAt := t0.Add(30 * time.Minute)
	require.NoError(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{DeliveryID: cs[1].Delivery.ID, Token: cs[1].Lease.Token,
		Status: webhook.StatusRetrying, NextAttemptAt: retryAt, Attempt: webhook.Attempt{StartedAt: t0, StatusCode: 500, Error: "HTTP 500"}, Now: t0}))
	require.Len(t, claim(t, s, t0, 1), 1) // a's third: delivering

	q, err := r.QueueStats(ctx, webhook.QueueStatsParams{TopWebhooks: 2, Now: t0})
	require.NoError(t, err)
	require.Equal(t, map[webhook.DeliveryStatus]int64{webhook.StatusPending: 3, webhook.StatusDelivering: 1, webhook.StatusRetrying: 1}, q.Depth)
	require.EqualValues(t, 5, q.Unfinished())
	require.EqualValues(t, 2, q.Due, "c's two; b's and the retry are not due yet")
	require.True(t, q.OldestDue.Equal(t0.Add(-time.Minute)), "the delivering one does not count: OldestDue %v", q.OldestDue)
	first, second := a, c
	if strings.Compare(c, a) < 0 {
		first, second = c, a
	}
	require.Equal(t, []webhook.WebhookBacklog{{WebhookID: first, Unfinished: 2}, {WebhookID: second, Unfinished: 2}}, q.TopBacklog,
		"most first, ties by ID, at most TopWebhooks")

	q, err = r.QueueStats(ctx, webhook.QueueStatsParams{TopWebhooks: 10, Now: t0.Add(2 * time.Hour)})
	require.NoError(t, err)
	require.EqualValues(t, 4, q.Due, "pending and retrying deliveries due by Now")
	require.Len(t, q.TopBacklog, 3)
	require.Equal(t, webhook.WebhookBacklog{WebhookID: b, Unfinished: 1}, q.TopBacklog[2])

	q, err = r.QueueStats(ctx, webhook.QueueStatsParams{Now: t0})
	require.NoError(t, err)
	require.Nil(t, q.TopBacklog, "TopWebhooks 0 lists none")

	_, err = r.QueueStats(ctx, webhook.QueueStatsParams{TopWebhooks: -1, Now: t0})
	require.ErrorIs(t, err, webhook.ErrInvalid)

	// Finishing the rest empties the view.
	for {
		cs := claim(t, s, t0.Add(24*time.Hour), 10)
		if len(cs) == 0 {
			break
		}
		for _, c := range cs {
			require.NoError(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{DeliveryID: c.Delivery.ID, Token: c.Lease.Token,
				Status: webhook.StatusFailed, Attempt: webhook.Attempt{StartedAt: t0, Error: "request failed: refused"}, Now: t0}))
		}
	}
	q, err = r.QueueStats(ctx, webhook.QueueStatsParams{TopWebhooks: 10, Now: t0.Add(24 * time.Hour)})
	require.NoError(t, err)
	require.Zero(t, q.Unfinished(), "depth %v", q.Depth)
	require.True(t, q.OldestDue.IsZero())
	require.Empty(t, q.TopBacklog)
}
