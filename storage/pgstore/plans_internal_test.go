package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A page of webhooks reads the first rows of an index in ID order, as
// the page's cursor does, rather than sorting every row after it: the
// index load reads every webhook a page at a time, and a sort per page
// makes that quadratic in the number of webhooks.
func TestListWebhooksReadsAnIndexInOrder(t *testing.T) {
	url := os.Getenv("WEBHOOK_TEST_DATABASE_URL")
	if url == "" {
		t.Skip("WEBHOOK_TEST_DATABASE_URL is not set")
	}
	ctx := t.Context()
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	defer pool.Close()
	var b [6]byte
	_, _ = rand.Read(b[:])
	s, err := New(pool, &Config{Schema: "t_" + hex.EncodeToString(b[:])})
	require.NoError(t, err)
	defer pool.Exec(context.Background(), `DROP SCHEMA `+s.schema+` CASCADE`)
	require.NoError(t, s.Migrate(ctx))

	for _, tenant := range []string{"", "acme"} {
		tx, err := pool.Begin(ctx)
		require.NoError(t, err)
		// An empty table: make the planner show which order an index
		// gives it rather than scan and sort the few rows.
		_, err = tx.Exec(ctx, `SET LOCAL enable_seqscan = off`)
		require.NoError(t, err)
		rows, err := tx.Query(ctx, `EXPLAIN `+s.sql.listWebhooks, tenant, minUUID, 100)
		require.NoError(t, err)
		var plan []string
		for rows.Next() {
			var line string
			require.NoError(t, rows.Scan(&line))
			plan = append(plan, line)
		}
		require.NoError(t, rows.Err())
		require.NoError(t, tx.Rollback(ctx))
		text := strings.Join(plan, "\n")
		assert.NotContains(t, text, "Sort", "tenant %q:\n%s", tenant, text)
		assert.Contains(t, text, "Index", "tenant %q:\n%s", tenant, text)
	}
}
