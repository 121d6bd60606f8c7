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

// Migration 008 on a database that older processes still use: one of
// them records a result for a delivery the migration is moving (its
// statement holds the history's table lock and waits for the row) while
// another holds a row of the backlog. The migration must not deadlock
// with it when it alters the history: it takes the tables it alters
// before it moves anything, so the older statements wait for it instead.
func TestMigrationDoesNotDeadlockWithAnOlderProcessRecording(t *testing.T) {
	ctx := t.Context()
	s, pool := unmigratedStore(t)
	require.NoError(t, s.migrate(ctx, migrationsBefore(t, "008")))
	const (
		hook    = "01900000-0000-7000-8000-0000000000aa"
		payload = "01900000-0000-7000-8000-000000000001"
		x       = "01900000-0000-7000-8000-000000000010"
		y       = "01900000-0000-7000-8000-000000000011"
	)
	leased := func(id string) string {
		return `INSERT INTO {{schema}}.deliveries (id, webhook_id, payload_id, event_type, status, attempt, next_attempt_at, due_at,
				lease_token, lease_worker, lease_expires_at, created_at, max_attempts)
			VALUES ('` + id + `', '` + hook + `', '` + payload + `', 'e', 'delivering', 1, now(), now() + interval '1 hour',
				'tok', 'old-worker', now() + interval '1 hour', now(), 5)`
	}
	seedSQL(t, s, pool, `INSERT INTO {{schema}}.payloads (id, webhook_id, event_type, environment, "timestamp", body)
			VALUES ('`+payload+`', '`+hook+`', 'e', 'p', now(), '\x7b7d')`, leased(x), leased(y))

	// An older process holds y (as its claim or record would).
	holder, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer holder.Rollback(context.Background())
	_, err = holder.Exec(ctx, s.stmt(`SELECT 1 FROM {{schema}}.deliveries WHERE id = '`+y+`' FOR UPDATE`))
	require.NoError(t, err)

	migrated := make(chan error, 1)
	go func() { migrated <- s.Migrate(context.Background()) }()
	waitBlocked(t, pool, holder.Conn().PgConn().PID())

	// Another older process records x's result, the way it did: the
	// statement locks the history and waits for x's row, if the
	// migration has it. It never gives up first (its deadlock check
	// comes late), so a cycle would be broken by aborting the migration.
	recorder, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer recorder.Release()
	_, err = recorder.Exec(ctx, `SET deadlock_timeout = '1h'`)
	require.NoError(t, err)
	defer func() { _, _ = recorder.Exec(context.Background(), `RESET deadlock_timeout`) }()
	recorded := make(chan error, 1)
	go func() {
		_, err := recorder.Exec(context.Background(), s.stmt(`UPDATE {{schema}}.deliveries
			SET status = 'delivered', completed_at = now(), due_at = NULL, lease_token = NULL
			WHERE id = '`+x+`' AND status = 'delivering' AND lease_token = 'tok'`))
		recorded <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting bool
		require.NoError(t, pool.QueryRow(ctx, `SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1`,
			int32(recorder.Conn().PgConn().PID())).Scan(&waiting))
		if waiting {
			break
		}
		require.True(t, time.Now().Before(deadline), "the older record did not wait")
		time.Sleep(5 * time.Millisecond)
	}
	require.NoError(t, holder.Commit(ctx))

	select {
	case err := <-migrated:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("the migration did not finish")
	}
	select {
	case err := <-recorded:
		// It found nothing to update: x is queued now, with its lease,
		// and is claimed again once the lease expires.
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the older record did not finish")
	}
	d, err := s.GetDelivery(ctx, x)
	require.NoError(t, err)
	assert.Equal(t, webhook.StatusDelivering, d.Status)
}
