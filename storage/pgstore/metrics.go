package pgstore

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/analytics-webhooks/webhook"
)

var _ webhook.MetricStore = (*Store)(nil)

// metricStatements holds the SQL of metric buckets with the schema
// filled in.
type metricStatements struct {
	add, prune string
	// queries[filtered][stepped] is the query of some environments
	// (filtered) or all, in steps or in one.
	queries [2][2]string
}

func newMetricStatements(schema string) metricStatements {
	q := func(sql string) string { return strings.ReplaceAll(sql, "{{schema}}", schema) }
	return metricStatements{
		// The rows are merged in the order given (sorted by the caller),
		// so that concurrent flushes lock shared buckets in one order
		// and never deadlock.
		add: q(`INSERT INTO {{schema}}.metric_buckets AS b (tenant_id, metric, environment, start, count, sum, min, max, last, last_at)
			SELECT tenant_id, metric, environment, start, count, sum, min, max, last, last_at
			FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::int8[], $6::float8[], $7::float8[],
					$8::float8[], $9::float8[], $10::timestamptz[])
				WITH ORDINALITY AS i(tenant_id, metric, environment, start, count, sum, min, max, last, last_at, n)
			ORDER BY n
			ON CONFLICT (tenant_id, metric, environment, start) DO UPDATE SET
				count = b.count + excluded.count,
				sum = b.sum + excluded.sum,
				min = least(b.min, excluded.min),
				max = greatest(b.max, excluded.max),
				last = CASE WHEN excluded.last_at >= b.last_at THEN excluded.last ELSE b.last END,
				last_at = greatest(b.last_at, excluded.last_at)`),
		// Four statements rather than one with optional parts, so that a
		// generic plan of each reads the index with all its conditions.
		queries: [2][2]string{
			{q(metricQuery(false, false)), q(metricQuery(false, true))},
			{q(metricQuery(true, false)), q(metricQuery(true, true))},
		},
		// Buckets a flush holds are skipped (SKIP LOCKED): pruning never
		// waits for flushes, so the two cannot deadlock.
		prune: q(`WITH victims AS (
				SELECT tenant_id, metric, start, environment FROM {{schema}}.metric_buckets
				WHERE start < $1
				ORDER BY start
				LIMIT $2
				FOR UPDATE SKIP LOCKED
			)
			DELETE FROM {{schema}}.metric_buckets b USING victims v
			WHERE b.tenant_id = v.tenant_id AND b.metric = v.metric AND b.start = v.start AND b.environment = v.environment`),
	}
}

// metricQuery returns the query of one metric's buckets in [$3, $4),
// aggregated by environment and, when stepped, by steps of $5
// microseconds from $3; filtered, of the environments in the last
// parameter. Each environment's range of starts is read from the primary
// key on its own: the environments asked for, or those of the metric,
// found one index probe each (a loose index scan, which PostgreSQL
// before 18 does not do by itself). A step's last value is that of the
// latest last_at, of the latest bucket on a tie.
func metricQuery(filtered, stepped bool) string {
	envs := `envs(env) AS (
			(SELECT environment FROM {{schema}}.metric_buckets
			WHERE tenant_id = $1 AND metric = $2 ORDER BY environment LIMIT 1)
			UNION ALL
			SELECT (` + nextEnvironment("e.env") + `)
			FROM envs e WHERE e.env IS NOT NULL
		)`
	if filtered {
		param := "$5"
		if stepped {
			param = "$6"
		}
		envs = `envs(env) AS (SELECT DISTINCT unnest(` + param + `::text[]))`
	}
	// One step is an aggregate without GROUP BY, and needs no grouping
	// sort: one row, of NULLs when there are no buckets.
	step, group := `$3::timestamptz`, `) b WHERE b.count IS NOT NULL`
	if stepped {
		step = `date_bin($5::int8 * interval '1 microsecond', m.start, $3::timestamptz)`
		group = `GROUP BY 1) b`
	}
	return `WITH RECURSIVE ` + envs + `
		SELECT e.env, b.step, b.count, b.sum, b.min, b.max, b.last, b.last_at
		FROM envs e CROSS JOIN LATERAL (
			SELECT ` + step + ` AS step, sum(m.count)::int8 AS count, sum(m.sum) AS sum,
				min(m.min) AS min, max(m.max) AS max,
				(array_agg(m.last ORDER BY m.last_at DESC, m.start DESC))[1] AS last, max(m.last_at) AS last_at
			FROM {{schema}}.metric_buckets m
			WHERE m.tenant_id = $1 AND m.metric = $2 AND m.environment = e.env
				AND m.start >= $3::timestamptz AND m.start < $4::timestamptz
			` + group + `
		ORDER BY e.env COLLATE "C", b.step`
}

// nextEnvironment is the query of the metric's first environment after
// prev, one probe of the primary key.
func nextEnvironment(prev string) string {
	return `SELECT m.environment FROM {{schema}}.metric_buckets m
		WHERE m.tenant_id = $1 AND m.metric = $2 AND m.environment > ` + prev + ` ORDER BY m.environment LIMIT 1`
}

// AddMetricBuckets implements webhook.MetricStore in one statement.
// Tenants, metrics and environments that are not UTF-8 without NUL are
// stored with those bytes replaced (U+FFFD), as QueryMetric looks them
// up. A connection lost after the statement was sent fails with
// webhook.ErrCommitUnknown: the buckets may or may not have been added.
func (s *Store) AddMetricBuckets(ctx context.Context, buckets []webhook.MetricBucket) error {
	for _, b := range buckets {
		if err := b.Validate(); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	merged := mergeBuckets(buckets)
	if len(merged) == 0 {
		return nil
	}
	n := len(merged)
	var (
		tenants, metrics, envs = make([]string, n), make([]string, n), make([]string, n)
		starts, lastAts        = make([]time.Time, n), make([]time.Time, n)
		counts                 = make([]int64, n)
		sums, mins, maxs, last = make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	)
	for i, b := range merged {
		tenants[i], metrics[i], envs[i], starts[i] = b.TenantID, b.Metric, b.Environment, b.Start
		counts[i], sums[i], mins[i], maxs[i], last[i], lastAts[i] = b.Count, b.Sum, b.Min, b.Max, b.Last, b.LastAt
	}
	if _, err := s.pool.Exec(ctx, s.metrics.add, tenants, metrics, envs, starts, counts, sums, mins, maxs, last, lastAts); err != nil {
		return commitError(err, "add metric buckets")
	}
	return nil
}

// mergeBuckets returns buckets with their text made storable, those of
// one series and start merged (in the order given, as
// MetricStore.AddMetricBuckets merges them), sorted by the primary key:
// the order in which the upsert locks rows.
func mergeBuckets(buckets []webhook.MetricBucket) []webhook.MetricBucket {
	type key struct {
		tenant, metric, env string
		start               int64
	}
	at := make(map[key]int, len(buckets))
	out := make([]webhook.MetricBucket, 0, len(buckets))
	for _, b := range buckets {
		b.TenantID, b.Metric, b.Environment = text(b.TenantID), text(b.Metric), text(b.Environment)
		k := key{b.TenantID, b.Metric, b.Environment, b.Start.UnixMicro()}
		if i, ok := at[k]; ok {
			out[i] = webhook.MergeMetricBucket(out[i], b)
			continue
		}
		at[k] = len(out)
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b webhook.MetricBucket) int {
		return cmp.Or(cmp.Compare(a.TenantID, b.TenantID), cmp.Compare(a.Metric, b.Metric),
			cmp.Compare(a.Environment, b.Environment), a.Start.Compare(b.Start))
	})
	return out
}

// QueryMetric implements webhook.MetricStore: one query, aggregated by
// the database, reading the metric's range of the primary key.
func (s *Store) QueryMetric(ctx context.Context, q webhook.MetricQuery) ([]webhook.MetricBucket, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Stored starts are whole microseconds, and pgx sends times
	// truncated to microseconds: rounding the bounds up keeps exactly
	// the starts in [From, To), and bins them as steps from From do.
	from, to := ceilMicro(q.From), ceilMicro(q.To)
	args := []any{text(q.TenantID), text(q.Metric), from, to}
	stepped := q.Step > 0
	if stepped {
		args = append(args, q.Step.Microseconds())
	}
	var asked map[string]string // stored environment → the caller's
	if q.Environments != nil {
		envs := make([]string, len(q.Environments))
		asked = make(map[string]string, len(envs))
		for i, e := range q.Environments {
			envs[i] = text(e)
			asked[envs[i]] = e
		}
		args = append(args, envs)
	}
	sql := s.metrics.queries[b2i(q.Environments != nil)][b2i(stepped)]
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, translate(err, "query metric %s", q.Metric)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (webhook.MetricBucket, error) {
		b := webhook.MetricBucket{TenantID: q.TenantID, Metric: q.Metric}
		var step time.Time
		if err := r.Scan(&b.Environment, &step, &b.Count, &b.Sum, &b.Min, &b.Max, &b.Last, &b.LastAt); err != nil {
			return b, err
		}
		b.Start = q.From.Add(step.Sub(from)).UTC()
		b.LastAt = b.LastAt.UTC()
		if e, ok := asked[b.Environment]; ok {
			b.Environment = e
		}
		return b, nil
	})
	if err != nil {
		return nil, translate(err, "query metric %s", q.Metric)
	}
	return out, nil
}

// b2i returns 1 for true and 0 for false.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ceilMicro returns t rounded up to a whole microsecond.
func ceilMicro(t time.Time) time.Time {
	if c := t.Truncate(time.Microsecond); c.Before(t) {
		return c.Add(time.Microsecond)
	}
	return t
}

// PruneMetrics implements webhook.MetricStore: it deletes buckets that
// start before before, DefaultPruneBatch at a time, each batch a
// statement of its own. A bucket that a flush holds at that moment is
// left for the next call.
func (s *Store) PruneMetrics(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		tag, err := s.pool.Exec(ctx, s.metrics.prune, ceilMicro(before), DefaultPruneBatch)
		if err != nil {
			return total, translate(err, "prune metrics")
		}
		total += int(tag.RowsAffected())
		if tag.RowsAffected() < DefaultPruneBatch {
			return total, nil
		}
	}
}
