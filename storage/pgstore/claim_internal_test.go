package pgstore

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A claim capped per webhook locks only the rows it returns: the rest of
// the window it ranks stays free for other claimers, and each row it
// locks is a WAL record and a dirtied page.
func TestCappedClaimLocksOnlyWhatItReturns(t *testing.T) {
	s, pool := unmigratedStore(t)
	require.NoError(t, s.Migrate(t.Context()))
	ctx := t.Context()
	// 400 due deliveries over 10 webhooks, then 100 of an excluded one
	// due before all of them.
	for _, sql := range []string{
		`INSERT INTO {{schema}}.payloads (id, webhook_id, event_type, environment, "timestamp", body)
			VALUES ('01900000-0000-7000-8000-000000000000', '01900000-0000-7000-8000-000000000000', 'e', 'p', now(), '\x7b7d')`,
		`INSERT INTO {{schema}}.queue (id, webhook_id, payload_id, event_type, status, attempt, next_attempt_at, due_at, created_at)
			SELECT gen_random_uuid(), ('01900000-0000-7000-8000-' || lpad(to_hex(g % 10), 12, '0'))::uuid,
				'01900000-0000-7000-8000-000000000000', 'e', 'pending', 0, now() - interval '1 hour', now() - interval '1 hour' + g * interval '1 ms', now()
			FROM generate_series(1, 400) g`,
		`INSERT INTO {{schema}}.queue (id, webhook_id, payload_id, event_type, status, attempt, next_attempt_at, due_at, created_at)
			SELECT gen_random_uuid(), '01900000-0000-7000-8000-0000000000ff',
				'01900000-0000-7000-8000-000000000000', 'e', 'pending', 0, now() - interval '2 hours', now() - interval '2 hours', now()
			FROM generate_series(1, 100) g`,
	} {
		_, err := pool.Exec(ctx, s.stmt(sql))
		require.NoError(t, err)
	}
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(context.Background())
	exclude := []string{"01900000-0000-7000-8000-0000000000ff"}
	const limit, perWebhook, window = 8, 1, 128
	rows, err := tx.Query(ctx, s.sql.claimCapped, time.Now(), exclude, limit, time.Minute.Microseconds(), "w", nil, perWebhook, window)
	require.NoError(t, err)
	n := 0
	for rows.Next() {
		n++
	}
	require.NoError(t, rows.Err())
	require.Equal(t, limit, n)
	rows, err = tx.Query(ctx, s.stmt(`SELECT webhook_id::text FROM {{schema}}.queue WHERE status = 'delivering'`))
	require.NoError(t, err)
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Len(t, got, limit)
	seen := map[string]bool{}
	for _, id := range got {
		assert.False(t, seen[id], "at most one per webhook: %v", got)
		assert.NotEqual(t, exclude[0], id)
		seen[id] = true
	}

	// Another session can lock every other row at once.
	var free int
	require.NoError(t, pool.QueryRow(ctx, s.stmt(`SELECT count(*) FROM (
		SELECT id FROM {{schema}}.queue FOR UPDATE SKIP LOCKED) x`)).Scan(&free))
	assert.Equal(t, 500-limit, free, "rows locked beyond those claimed")

	// And a second claim meanwhile takes other rows.
	rows, err = pool.Query(ctx, s.sql.claimCapped, time.Now(), exclude, limit, time.Minute.Microseconds(), "w2", nil, perWebhook, window)
	require.NoError(t, err)
	n = 0
	for rows.Next() {
		n++
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, 10-limit, n, "the other webhooks' first rows, skipping the locked ones")
}
