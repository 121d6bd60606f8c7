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

// statsReader returns s's StatsReader, skipping the test for a Storage
// without one.
func statsReader(t *testing.T, s webhook.Storage) webhook.StatsReader {
	t.Helper()
	r, ok := s.(webhook.StatsReader)
	if !ok {
		t.Skip("the Storage does not implement webhook.StatsReader")
	}
	return r
}

// enqueueCreated stores one delivery of webhookID created at created and
// due at due, and returns its ID.
func enqueueCreated(t *testing.T, s webhook.Storage, webhookID string, created, due time.Time) string {
	t.Helper()
	pl, d := newDelivery(t, webhookID, due)
	d.CreatedAt = created
	res, err := s.Enqueue(t.Context(), webhook.EnqueueParams{Payloads: []*webhook.Payload{pl}, Deliveries: []*webhook.Delivery{d}, Now: created})
	require.NoError(t, err)
	return res.DeliveryIDs[0]
}

// attemptOnce claims the one delivery due at a.StartedAt, which must be
// id, and records a with status (due again at next when retrying).
func attemptOnce(t *testing.T, s webhook.Storage, id string, a webhook.Attempt, status webhook.DeliveryStatus, next time.Time) {
	t.Helper()
	cs, err := s.ClaimDeliveries(t.Context(), webhook.ClaimParams{WorkerID: "w1", Limit: 1, LeaseDuration: 30 * time.Second, Now: a.StartedAt})
	require.NoError(t, err)
	require.Len(t, cs, 1)
	require.Equal(t, id, cs[0].Delivery.ID, "claimed at %v", a.StartedAt)
	require.NoError(t, s.RecordAttempt(t.Context(), webhook.RecordAttemptParams{DeliveryID: id, Token: cs[0].Lease.Token,
		Attempt: a, Status: status, NextAttemptAt: next, Now: a.StartedAt.Add(a.Duration)}))
}

func testWebhookStats(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	r := statsReader(t, s)
	hook, other := newID(t), newID(t)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	ms := time.Millisecond

	empty, err := r.WebhookStats(ctx, webhook.StatsParams{WebhookID: hook, Since: t0})
	require.NoError(t, err)
	require.Equal(t, webhook.NewWebhookStats(hook, t0), empty, "a webhook without deliveries has every count at 0")
	_, err = r.WebhookStats(ctx, webhook.StatsParams{Since: t0})
	require.ErrorIs(t, err, webhook.ErrInvalid)

	d1 := enqueueCreated(t, s, hook, at(0), at(time.Minute))
	d2 := enqueueCreated(t, s, hook, at(time.Second), at(90*time.Second))
	d3 := enqueueCreated(t, s, hook, at(2*time.Second), at(5*time.Minute))
	d4 := enqueueCreated(t, s, hook, at(3*time.Second), at(6*time.Minute))
	d5 := enqueueCreated(t, s, hook, at(4*time.Second), at(7*time.Minute))
	d6 := enqueueCreated(t, s, hook, at(5*time.Second), at(time.Hour)) // stays pending
	d7 := enqueueCreated(t, s, hook, at(6*time.Second), at(8*time.Minute))
	// Outside the window: created before it (though attempted in it),
	// and another webhook's.
	d0 := enqueueCreated(t, s, hook, at(-time.Second), at(10*time.Minute))
	dx := enqueueCreated(t, s, other, at(0), at(11*time.Minute))
	_ = d6

	retrying, delivered, failed := webhook.StatusRetrying, webhook.StatusDelivered, webhook.StatusFailed
	attemptOnce(t, s, d1, webhook.Attempt{StartedAt: at(time.Minute), Duration: 100 * ms, StatusCode: 500, ResponseBody: "oops", Error: "HTTP 500 Internal Server Error"}, retrying, at(2*time.Minute))
	attemptOnce(t, s, d2, webhook.Attempt{StartedAt: at(90 * time.Second), Duration: 30 * time.Second, Error: "request timed out after 30s"}, retrying, at(3*time.Minute))
	attemptOnce(t, s, d1, webhook.Attempt{StartedAt: at(2 * time.Minute), Duration: 20 * ms, StatusCode: 200, ResponseBody: "ok"}, delivered, time.Time{})
	attemptOnce(t, s, d2, webhook.Attempt{StartedAt: at(3 * time.Minute), Duration: 5 * ms, Error: "request failed: dial tcp 203.0.113.7:443: connect: connection refused"}, retrying, at(4*time.Minute))
	attemptOnce(t, s, d2, webhook.Attempt{StartedAt: at(4 * time.Minute), Duration: 40 * ms, StatusCode: 410, Error: "HTTP 410 Gone: the endpoint is gone; webhook disabled"}, failed, time.Time{})
	attemptOnce(t, s, d3, webhook.Attempt{StartedAt: at(5 * time.Minute), Duration: ms, Error: "request failed: dial tcp 10.0.0.1:443: webhook: 10.0.0.1 is in the private-use range, which webhooks may not reach"}, failed, time.Time{})
	attemptOnce(t, s, d4, webhook.Attempt{StartedAt: at(6 * time.Minute), Duration: 10 * ms, StatusCode: 400, Error: "HTTP 400 with webhook-delivery: abort-message; not retried"}, failed, time.Time{})
	attemptOnce(t, s, d5, webhook.Attempt{StartedAt: at(7 * time.Minute), Error: "not sent: the webhook is disabled"}, failed, time.Time{})
	// d7's first lease expires unrecorded at 8m30s and is taken over at
	// 9m: the Storage records the lost attempt.
	cs, err := s.ClaimDeliveries(ctx, webhook.ClaimParams{WorkerID: "w1", Limit: 1, LeaseDuration: 30 * time.Second, Now: at(8 * time.Minute)})
	require.NoError(t, err)
	require.Equal(t, d7, cs[0].Delivery.ID)
	cs, err = s.ClaimDeliveries(ctx, webhook.ClaimParams{WorkerID: "w2", Limit: 1, LeaseDuration: time.Hour, Now: at(9 * time.Minute)})
	require.NoError(t, err)
	require.Equal(t, d7, cs[0].Delivery.ID)
	attemptOnce(t, s, d0, webhook.Attempt{StartedAt: at(10 * time.Minute), Duration: ms, StatusCode: 204}, delivered, time.Time{})
	attemptOnce(t, s, dx, webhook.Attempt{StartedAt: at(11 * time.Minute), Duration: ms, StatusCode: 500, Error: "HTTP 500"}, failed, time.Time{})

	st, err := r.WebhookStats(ctx, webhook.StatsParams{WebhookID: hook, Since: t0})
	require.NoError(t, err)
	want := webhook.NewWebhookStats(hook, t0)
	want.Deliveries[webhook.StatusDelivered] = 1  // d1
	want.Deliveries[webhook.StatusFailed] = 4     // d2..d5
	want.Deliveries[webhook.StatusPending] = 1    // d6
	want.Deliveries[webhook.StatusDelivering] = 1 // d7
	want.DeliveryOutcomes[webhook.AttemptSuccess] = 1
	want.DeliveryOutcomes[webhook.AttemptHTTPError] = 1 // d2's 410
	want.DeliveryOutcomes[webhook.AttemptBlocked] = 1
	want.DeliveryOutcomes[webhook.AttemptAborted] = 2 // d4's abort-message, d5 not sent
	want.Attempts[webhook.AttemptSuccess] = 1
	want.Attempts[webhook.AttemptHTTPError] = 2
	want.Attempts[webhook.AttemptTimeout] = 1
	want.Attempts[webhook.AttemptNetworkError] = 1
	want.Attempts[webhook.AttemptBlocked] = 1
	want.Attempts[webhook.AttemptAborted] = 3 // d4, d5, d7's lost lease
	want.SuccessRate = 1.0 / 5
	want.AttemptSuccessRate = 1.0 / 9
	// Reached the endpoint: 5, 10, 20, 40, 100 ms and 30 s. p50 at
	// position 2.5: 20 + (40-20)/2; p95 at position 4.75: 100 ms +
	// (30 s - 100 ms)·0.75.
	want.LatencySamples = 6
	want.LatencyP50 = 30 * ms
	want.LatencyP95 = 22525 * ms
	want.LastSuccess = &webhook.Attempt{DeliveryID: d1, Number: 2, StartedAt: at(2 * time.Minute), Duration: 20 * ms, StatusCode: 200}
	want.LastFailure = &webhook.Attempt{DeliveryID: d7, Number: 1, StartedAt: at(8*time.Minute + 30*time.Second),
		Error: `lease of worker "w1" expired before the attempt was recorded`}
	want.LastFailureOutcome = webhook.AttemptAborted
	require.Equal(t, want, st)

	later, err := r.WebhookStats(ctx, webhook.StatsParams{WebhookID: hook, Since: at(4 * time.Second)})
	require.NoError(t, err)
	require.EqualValues(t, 3, later.Deliveries[webhook.StatusFailed]+later.Deliveries[webhook.StatusPending]+later.Deliveries[webhook.StatusDelivering],
		"d5, d6, d7: Since is inclusive")
	require.EqualValues(t, 2, later.Attempts[webhook.AttemptAborted])
	require.Nil(t, later.LastSuccess)
	require.Zero(t, later.LatencySamples)
	require.Zero(t, later.LatencyP50)
}

// Every Storage classifies attempts as webhook.ClassifyAttempt does.
func testWebhookStatsClassify(t *testing.T, s webhook.Storage) {
	ctx := t.Context()
	r := statsReader(t, s)
	hook := newID(t)
	cases := []webhook.Attempt{
		{StatusCode: 200}, {StatusCode: 299, Error: "odd"}, {StatusCode: 302, Error: "HTTP 302 Found (redirects are not followed)"},
		{StatusCode: 410, Error: "HTTP 410 Gone: the endpoint is gone; webhook disabled"},
		{StatusCode: 500, Error: "HTTP 500 with webhook-delivery: abort-message; not retried"},
		{Error: ""}, {Error: "request failed: EOF"}, {Error: "request timed out after 5s"},
		{Error: "request failed: dial tcp: webhook: localhost names this machine (loopback), which webhooks may not reach"},
		{Error: "not sent: all 3 attempts are used"}, {Error: "canceled before the endpoint answered: context canceled"},
		{Error: `lease of worker "x" expired before the attempt was recorded`}, {Error: "100% _odd_ \\ 'quoted'"},
	}
	want := webhook.NewWebhookStats(hook, t0)
	for i, a := range cases {
		a.StartedAt = t0.Add(time.Duration(i+1) * time.Minute)
		id := enqueueCreated(t, s, hook, t0, a.StartedAt)
		attemptOnce(t, s, id, a, webhook.StatusFailed, time.Time{})
		want.Attempts[webhook.ClassifyAttempt(a)]++
	}
	st, err := r.WebhookStats(ctx, webhook.StatsParams{WebhookID: hook, Since: t0})
	require.NoError(t, err)
	require.Equal(t, want.Attempts, st.Attempts)
	require.Equal(t, want.Attempts, st.DeliveryOutcomes, "a delivery's outcome is its last attempt's")
}
