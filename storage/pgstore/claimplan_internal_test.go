package pgstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The capped claims keep one generic plan however long the queue: with
// the window's size a parameter, PostgreSQL's generic plan guessed a
// tenth of the queue for it, found itself dearer than a plan made for
// the size given as the queue grew, and planned every claim afresh (0.45
// ms a claim at a backlog of 150,000, a third of its cost). With the
// window written into the statement, the generic plan is as cheap as a
// custom one and is kept.
func TestCappedClaimsKeepAGenericPlanBesideALongBacklog(t *testing.T) {
	s, pool := unmigratedStore(t)
	require.NoError(t, s.Migrate(t.Context()))
	ctx := t.Context()
	seedSQL(t, s, pool, seedPayload, seedQueued(150000, 50, "", "1 hour"), `ANALYZE {{schema}}.queue`)
	const limit = 25
	for name, sql := range map[string]string{"capped": s.sql.claimCapped(limit), "skipping": s.sql.claimCappedSkipping(limit)} {
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
			args := []any{time.Now(), []string{}, limit, time.Minute.Microseconds(), "w", nil, 1}
			// Five custom plans, then the plan cache chooses.
			for range 6 {
				_, err := tx.Exec(ctx, "SAVEPOINT p")
				require.NoError(t, err)
				rows, err := tx.Query(ctx, "EXECUTE claim_plan($1, $2, $3, $4, $5, $6, $7)", append([]any{pgx.QueryExecModeSimpleProtocol}, args...)...)
				require.NoError(t, err)
				rows.Close()
				require.NoError(t, rows.Err())
				_, err = tx.Exec(ctx, "ROLLBACK TO SAVEPOINT p")
				require.NoError(t, err)
			}
			var plan []string
			rows, err := tx.Query(ctx, "EXPLAIN EXECUTE claim_plan($1, $2, $3, $4, $5, $6, $7)", append([]any{pgx.QueryExecModeSimpleProtocol}, args...)...)
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

// A claim reads the smallest window that holds 16 times its limit.
func TestClaimWindows(t *testing.T) {
	for limit, want := range map[int]int{1: 64, 4: 64, 5: 128, 25: 512, 32: 512, 33: 1024, 625: 10000, 1 << 20: 10000} {
		assert.Equal(t, want, claimWindows[windowFor(limit)], "limit %d", limit)
	}
}
