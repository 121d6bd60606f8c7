package pgstore

import (
	"context"
	"testing"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// waitBlocked waits until a session other than the test's is waiting
// for a lock held by the session with process ID holder.
func waitBlocked(t *testing.T, pool *pgxpool.Pool, holder uint32) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		require.NoError(t, pool.QueryRow(t.Context(),
			`SELECT count(*) FROM pg_stat_activity WHERE $1::int = ANY (pg_blocking_pids(pid))`, int32(holder)).Scan(&n))
		if n > 0 {
			return
		}
		require.True(t, time.Now().Before(deadline), "no session waited for the lock holder")
		time.Sleep(5 * time.Millisecond)
	}
}

// An enqueue of a delivery's ID while its final result moves it to the
// history waits for the move and then fails with ErrDuplicate: it never
// stores the delivery again.
func TestEnqueueOfADeliveryBeingMovedIsADuplicate(t *testing.T) {
	ctx := t.Context()
	s, pool := unmigratedStore(t)
	svc := serviceWithHooks(t, s, 1)
	ids, err := svc.TriggerEvent(ctx, "e", nil, "")
	require.NoError(t, err)
	require.Len(t, ids, 1)
	cs, err := s.ClaimDeliveries(ctx, webhook.ClaimParams{WorkerID: "w", Limit: 1, LeaseDuration: time.Minute, Now: time.Now()})
	require.NoError(t, err)
	require.Len(t, cs, 1)
	d := *cs[0].Delivery

	// The move, held open.
	mover, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer mover.Rollback(context.Background())
	now := time.Now()
	rows, err := mover.Query(ctx, s.sql.recordAttempts, recordArgs([]webhook.RecordAttemptParams{{DeliveryID: d.ID, Token: cs[0].Lease.Token,
		Status: webhook.StatusDelivered, Attempt: webhook.Attempt{StartedAt: now, StatusCode: 200}, Now: now}})...)
	require.NoError(t, err)
	moved, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Len(t, moved, 1)

	d.Status, d.Attempt, d.NextAttemptAt = webhook.StatusPending, 0, now
	enqueued := make(chan error, 1)
	go func() {
		_, err := s.Enqueue(context.Background(), webhook.EnqueueParams{Deliveries: []*webhook.Delivery{&d}, Now: now})
		enqueued <- err
	}()
	waitBlocked(t, pool, mover.Conn().PgConn().PID())
	require.NoError(t, mover.Commit(ctx))
	select {
	case err := <-enqueued:
		assert.ErrorIs(t, err, webhook.ErrDuplicate)
	case <-time.After(10 * time.Second):
		t.Fatal("the enqueue did not return")
	}
	got, err := s.GetDelivery(ctx, d.ID)
	require.NoError(t, err)
	assert.Equal(t, webhook.StatusDelivered, got.Status)
	again, err := s.ClaimDeliveries(ctx, webhook.ClaimParams{WorkerID: "w", Limit: 1, LeaseDuration: time.Minute, Now: time.Now()})
	require.NoError(t, err)
	assert.Empty(t, again)
}
