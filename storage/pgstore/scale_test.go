package pgstore_test

import (
	"context"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

var scaleRows = flag.Int("scale.rows", 0, "fill a schema with this many finished deliveries (e.g. 10000000) and check the query plans")

// TestQueryPlansAtScale fills a schema with -scale.rows finished
// deliveries of 1,000 webhooks plus 10,000 due ones, then runs the claim,
// a history page, a status-filtered page and a prune batch under EXPLAIN
// ANALYZE, checking that none scans the deliveries table and logging
// how long each took. It is skipped unless -scale.rows is set.
func TestQueryPlansAtScale(t *testing.T) {
	if *scaleRows <= 0 {
		t.Skip("set -scale.rows to run, e.g. -scale.rows=10000000 (takes minutes and some GB)")
	}
	store := newStore(t)
	p := testPool(t)
	ctx := context.Background()
	q := pgx.Identifier{store.Schema()}.Sanitize()
	start := time.Now()
	for _, sql := range []string{
		`INSERT INTO ` + q + `.payloads (id, webhook_id, event_type, environment, "timestamp", body)
			SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(1), 12, '0'))::uuid, '00000000-0000-7000-8000-000000000000', 'e', 'p', now(), '\x7b7d'`,
		`INSERT INTO ` + q + `.deliveries (id, webhook_id, payload_id, event_type, status, attempt, created_at, completed_at, status_code)
			SELECT gen_random_uuid(), ('00000000-0000-7000-8000-' || lpad(to_hex(g % 1000), 12, '0'))::uuid,
				('00000000-0000-7000-8000-' || lpad(to_hex(1), 12, '0'))::uuid, 'e',
				CASE WHEN g % 10 = 0 THEN 'failed' ELSE 'delivered' END, 1,
				now() - (g || ' seconds')::interval, now() - (g || ' seconds')::interval, 200
			FROM generate_series(1, $1) g`,
		`INSERT INTO ` + q + `.queue (id, webhook_id, payload_id, event_type, status, attempt, next_attempt_at, due_at, created_at)
			SELECT gen_random_uuid(), ('00000000-0000-7000-8000-' || lpad(to_hex(g % 1000), 12, '0'))::uuid,
				('00000000-0000-7000-8000-' || lpad(to_hex(1), 12, '0'))::uuid, 'e', 'pending', 0,
				now() - (g || ' milliseconds')::interval, now() - (g || ' milliseconds')::interval, now()
			FROM generate_series(1, 10000) g`,
		`ANALYZE ` + q + `.deliveries`,
		`ANALYZE ` + q + `.queue`,
	} {
		var args []any
		if strings.Contains(sql, "$1") {
			args = append(args, *scaleRows)
		}
		if _, err := p.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("filled %d finished + 10,000 due deliveries in %v", *scaleRows, time.Since(start).Round(time.Second))

	hook := "'00000000-0000-7000-8000-000000000028'" // webhook 40, whose deliveries all failed
	plans := map[string]string{
		"claim 32": `WITH c AS (SELECT id FROM ` + q + `.queue WHERE due_at <= now() ORDER BY due_at, id LIMIT 32 FOR UPDATE SKIP LOCKED)
			SELECT count(*) FROM c`,
		"history page": `SELECT id FROM ` + q + `.deliveries WHERE webhook_id = ` + hook + ` AND id < 'ffffffff-ffff-ffff-ffff-ffffffffffff' ORDER BY id DESC LIMIT 100`,
		"failed page":  `SELECT id FROM ` + q + `.deliveries WHERE webhook_id = ` + hook + ` AND status = 'failed' AND id < 'ffffffff-ffff-ffff-ffff-ffffffffffff' ORDER BY id DESC LIMIT 100`,
		"prune batch":  `SELECT id FROM ` + q + `.deliveries WHERE completed_at < now() - interval '1 hour' ORDER BY completed_at LIMIT 1000`,
	}
	for name, sql := range plans {
		rows, err := p.Query(ctx, `EXPLAIN (ANALYZE, BUFFERS) `+sql)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		plan := strings.Join(lines, "\n")
		if strings.Contains(plan, "Seq Scan on deliveries") || strings.Contains(plan, "Seq Scan on queue") {
			t.Errorf("%s scans the table:\n%s", name, plan)
		}
		t.Logf("%s: %s", name, lines[len(lines)-1])
	}
}
