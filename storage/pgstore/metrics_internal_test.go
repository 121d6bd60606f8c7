package pgstore

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// param is a typed literal for explainTyped.
type param struct{ typ, lit string }

// explainTyped returns the generic plan of sql with params, on an empty
// table with seqscan off, as explainGeneric does for other types.
func explainTyped(t *testing.T, s *Store, sql string, params ...param) string {
	t.Helper()
	ctx := t.Context()
	conn, err := s.pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(context.Background())
	for _, set := range []string{`SET LOCAL enable_seqscan = off`, `SET LOCAL plan_cache_mode = force_generic_plan`} {
		_, err = tx.Exec(ctx, set)
		require.NoError(t, err)
	}
	types, lits := make([]string, len(params)), make([]string, len(params))
	for i, p := range params {
		types[i], lits[i] = p.typ, p.lit
	}
	_, err = tx.Exec(ctx, `PREPARE explained (`+strings.Join(types, ", ")+`) AS `+sql)
	require.NoError(t, err)
	defer tx.Exec(context.Background(), `DEALLOCATE explained`)
	rows, err := tx.Query(ctx, `EXPLAIN EXECUTE explained(`+strings.Join(lits, ", ")+`)`)
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

// A metric query reads its tenant's metric's range of starts from the
// primary key, also as a generic plan (pgx prepares statements, and
// PostgreSQL may plan them once for all parameters): with environments
// too, which are checked on the index entries.
func TestQueryMetricReadsItsRangeOfTheIndex(t *testing.T) {
	s, _ := unmigratedStore(t)
	require.NoError(t, s.Migrate(t.Context()))
	base := []param{{"text", "'acme'"}, {"text", "'m'"}, {"timestamptz", "'2026-03-04T05:06:00Z'"}, {"timestamptz", "'2026-03-04T05:11:00Z'"}}
	step := param{"int8", "10000000"}
	envs := param{"text[]", "'{production}'"}
	for name, tc := range map[string]struct {
		sql    string
		params []param
	}{
		"every environment":           {s.metrics.queries[0][0], base},
		"every environment, in steps": {s.metrics.queries[0][1], append(slices.Clone(base), step)},
		"some environments":           {s.metrics.queries[1][0], append(slices.Clone(base), envs)},
		"some environments, in steps": {s.metrics.queries[1][1], append(slices.Clone(base), step, envs)},
	} {
		plan := explainTyped(t, s, tc.sql, tc.params...)
		assert.Contains(t, plan, "metric_buckets_pkey", "%s:\n%s", name, plan)
		assert.NotContains(t, plan, "Seq Scan", "%s:\n%s", name, plan)
		assert.NotRegexp(t, `Filter: \((environment|start|tenant_id|metric)`, plan, "%s: every condition is an index condition:\n%s", name, plan)
		assert.Regexp(t, `Index Cond: \(\(tenant_id = \$1\) AND \(metric = \$2\) AND \(environment = (e\.env|\(unnest\(\$[56]\)\))\) AND \(start >= \$3\) AND \(start < \$4\)\)`,
			plan, "%s: one range per environment:\n%s", name, plan)
		if !strings.Contains(name, "steps") {
			assert.Equal(t, 1, strings.Count(plan, "Sort  "), "%s: one step needs no sort but the result's:\n%s", name, plan)
		}
	}
}

// Listing a metric's environments (PostgreSQL 15 does not show that
// part of the plan) probes the index once per environment.
func TestNextEnvironmentIsOneProbe(t *testing.T) {
	s, _ := unmigratedStore(t)
	require.NoError(t, s.Migrate(t.Context()))
	sql := strings.ReplaceAll(nextEnvironment("$3"), "{{schema}}", pgx.Identifier{s.schema}.Sanitize())
	plan := explainTyped(t, s, sql, param{"text", "'acme'"}, param{"text", "'m'"}, param{"text", "'production'"})
	assert.Regexp(t, `Limit.*\n\s+->  Index Only Scan using metric_buckets_pkey on metric_buckets m .*\n\s+Index Cond: \(\(tenant_id = \$1\) AND \(metric = \$2\) AND \(environment > \$3\)\)`, plan, plan)
	assert.NotContains(t, plan, "Sort", plan)
}

// Pruning reads the oldest buckets from the index on start, and trigger
// states are read by webhook from the primary key.
func TestPruneMetricsAndTriggerStatesUseIndexes(t *testing.T) {
	s, _ := unmigratedStore(t)
	require.NoError(t, s.Migrate(t.Context()))
	plan := explainTyped(t, s, s.metrics.prune, param{"timestamptz", "'2026-03-04T05:06:00Z'"}, param{"integer", "1000"})
	assert.Contains(t, plan, "metric_buckets_start_idx", plan)
	assert.NotContains(t, plan, "Sort", plan)
	plan = explainTyped(t, s, s.triggers.states, param{"text[]", "'{018f0000-0000-7000-8000-000000000001}'"})
	assert.Regexp(t, `Index Cond: \(webhook_id = ANY`, plan, plan)
}
