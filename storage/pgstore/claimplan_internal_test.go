package pgstore

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The capped claim keeps one generic plan however long the queue: with
// the window's size a parameter, PostgreSQL's generic plan guessed a
// tenth of the queue for it, found itself dearer than a plan made for
// the size given as the queue grew, and planned every claim afresh (0.45
// ms a claim at a backlog of 150,000, a quarter of its cost). With the
// window written into the statement, the generic plan is as cheap as a
// custom one and is kept.
func TestCappedClaimsKeepAGenericPlanBesideALongBacklog(t *testing.T) {
	s, pool := unmigratedStore(t)
	require.NoError(t, s.Migrate(t.Context()))
	ctx := t.Context()
	seedSQL(t, s, pool, seedPayload, seedQueued(150000, 50, "", "1 hour"), `ANALYZE {{schema}}.queue`)
	const limit = 25
	// As a worker claims: most webhooks with room for a few more.
	var capIDs []string
	var caps []int32
	for k := range 40 {
		capIDs = append(capIDs, fmt.Sprintf("01900000-0000-7000-8000-%012x", k))
		caps = append(caps, 3)
	}
	// (The statement that claims past candidates all locked by other
	// claimers is planned for each call: it runs only then.)
	for name, sql := range map[string]string{"window 512": s.sql.claimCapped(16 * limit), "window 128": s.sql.claimCapped(4 * limit)} {
		t.Run(name, func(t *testing.T) {
			conn, err := pool.Acquire(ctx)
			require.NoError(t, err)
			defer conn.Release()
			tx, err := conn.Begin(ctx)
			require.NoError(t, err)
			defer tx.Rollback(context.Background())
			_, err = tx.Exec(ctx, "PREPARE claim_plan AS "+sql)
			require.NoError(t, err)
			defer conn.Exec(context.Background(), "DEALLOCATE claim_plan")
			args := []any{time.Now(), []string{}, limit, time.Minute.Microseconds(), "w", nil, 1, capIDs, caps}
			// Five custom plans, then the plan cache chooses.
			for range 6 {
				_, err := tx.Exec(ctx, "SAVEPOINT p")
				require.NoError(t, err)
				rows, err := tx.Query(ctx, "EXECUTE claim_plan($1, $2, $3, $4, $5, $6, $7, $8, $9)", append([]any{pgx.QueryExecModeSimpleProtocol}, args...)...)
				require.NoError(t, err)
				rows.Close()
				require.NoError(t, rows.Err())
				_, err = tx.Exec(ctx, "ROLLBACK TO SAVEPOINT p")
				require.NoError(t, err)
			}
			var plan []string
			rows, err := tx.Query(ctx, "EXPLAIN EXECUTE claim_plan($1, $2, $3, $4, $5, $6, $7, $8, $9)", append([]any{pgx.QueryExecModeSimpleProtocol}, args...)...)
			require.NoError(t, err)
			for rows.Next() {
				var l string
				require.NoError(t, rows.Scan(&l))
				plan = append(plan, l)
			}
			require.NoError(t, rows.Err())
			// A generic plan compares with the parameter, a custom one
			// with its value.
			assert.Contains(t, strings.Join(plan, "\n"), "$1", "not a generic plan:\n%s", strings.Join(plan[:min(len(plan), 16)], "\n"))
		})
	}
}

// A claim reads the smallest window that holds the rows it wants, at
// most the largest.
func TestClaimWindows(t *testing.T) {
	for rows, want := range map[int]int{1: 64, 64: 64, 65: 128, 400: 512, 512: 512, 513: 1024, 10000: 10000, 1 << 24: 10000} {
		assert.Equal(t, want, claimWindows[windowFor(rows)], "%d rows", rows)
	}
}

// A claim ranks 16 times its limit, less as webhooks have room for more
// than one each, never less than twice its limit.
func TestClaimWindowFollowsTheCaps(t *testing.T) {
	assert.Equal(t, 400, claimWindow(25, 0, 0), "no caps of their own")
	assert.Equal(t, 400, claimWindow(25, 10, 10), "caps of one")
	assert.Equal(t, 100, claimWindow(25, 10, 20), "caps of two on average")
	assert.Equal(t, 50, claimWindow(25, 10, 30), "caps of three")
	assert.Equal(t, 50, claimWindow(25, 10, 100), "at least twice the limit")
	assert.Equal(t, 111, claimWindow(10, 30, 36), "caps just above one")
}
