package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A page of webhooks reads the first rows of an index in ID order, as
// the page's cursor does, rather than sorting every row after it: the
// index load reads every webhook a page at a time, and a sort per page
// makes that quadratic in the number of webhooks.
func TestListWebhooksReadsAnIndexInOrder(t *testing.T) {
	s, pool := unmigratedStore(t)
	require.NoError(t, s.Migrate(t.Context()))

	for _, tenant := range []string{"", "acme"} {
		// pgx prepares statements once per connection, and PostgreSQL
		// may then run a generic plan, made without knowing the
		// parameters: that plan must read the right index too.
		sql, args := s.listWebhooksQuery(tenant, minUUID, 100)
		text := explainGeneric(t, pool, sql, args...)
		assert.NotContains(t, text, "Sort", "tenant %q:\n%s", tenant, text)
		assert.Contains(t, text, "Index", "tenant %q:\n%s", tenant, text)
		if tenant != "" {
			assert.Regexp(t, `Index Cond: .*tenant_id = \$\d`, text, "one tenant's page reads only its rows:\n%s", text)
		}
	}
}

// unmigratedStore returns a Store in a schema of its own, dropped when
// the test ends, and its pool; the test is skipped without PostgreSQL.
func unmigratedStore(t testing.TB) (*Store, *pgxpool.Pool) {
	t.Helper()
	url := os.Getenv("WEBHOOK_TEST_DATABASE_URL")
	if url == "" {
		t.Skip("WEBHOOK_TEST_DATABASE_URL is not set")
	}
	pool, err := pgxpool.New(t.Context(), url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	var b [6]byte
	_, _ = rand.Read(b[:])
	s, err := New(pool, &Config{Schema: "t_" + hex.EncodeToString(b[:])})
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = pool.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+s.schema+` CASCADE`) })
	return s, pool
}

// explainGeneric returns the generic plan of sql run with args (strings,
// ints, string slices, times and bools), on an empty table (seqscan off, so that the planner shows
// the index order it would use).
func explainGeneric(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) string {
	t.Helper()
	ctx := t.Context()
	conn, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(context.Background())
	for _, set := range []string{`SET LOCAL enable_seqscan = off`, `SET LOCAL plan_cache_mode = force_generic_plan`} {
		_, err = tx.Exec(ctx, set)
		require.NoError(t, err)
	}
	types := make([]string, len(args))
	for i, a := range args {
		switch a.(type) {
		case int:
			types[i] = "integer"
		case []string:
			types[i] = "text[]"
		case time.Time:
			types[i] = "timestamptz"
		case bool:
			types[i] = "boolean"
		default:
			types[i] = "text"
		}
	}
	_, err = tx.Exec(ctx, `PREPARE explained (`+strings.Join(types, ", ")+`) AS `+sql)
	require.NoError(t, err)
	defer tx.Exec(context.Background(), `DEALLOCATE explained`)
	literals := make([]string, len(args))
	for i, a := range args {
		switch a := a.(type) {
		case int:
			literals[i] = strconv.Itoa(a)
		case string:
			literals[i] = quoteLiteral(a)
		case []string:
			quoted := make([]string, len(a))
			for j, e := range a {
				quoted[j] = quoteLiteral(e)
			}
			literals[i] = "ARRAY[" + strings.Join(quoted, ", ") + "]::text[]"
		case time.Time:
			literals[i] = quoteLiteral(a.Format(time.RFC3339Nano)) + "::timestamptz"
		case bool:
			literals[i] = strconv.FormatBool(a)
		default:
			t.Fatalf("explainGeneric: argument %d is a %T", i, a)
		}
	}
	rows, err := tx.Query(ctx, `EXPLAIN EXECUTE explained(`+strings.Join(literals, ", ")+`)`)
	require.NoError(t, err)
	var plan []string
	for rows.Next() {
		var line string
		require.NoError(t, rows.Scan(&line))
		plan = append(plan, line)
	}
	require.NoError(t, rows.Err())
	return strings.Join(plan, "\n")
}

// quoteLiteral quotes s as an SQL string literal.
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
