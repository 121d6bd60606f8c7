package pgstore

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
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
	const limit, perWebhook = 8, 1 // a window of 128
	rows, err := tx.Query(ctx, s.sql.claimCapped(16*limit), time.Now(), exclude, limit, time.Minute.Microseconds(), "w", nil, perWebhook, noCapIDs, noCaps)
	require.NoError(t, err)
	n := 0
	for rows.Next() {
		n++
	}
	require.NoError(t, rows.Err())
	require.Equal(t, limit, n)
	rows, err = tx.Query(ctx, s.stmt(`SELECT webhook_id::text FROM {{schema}}.queue WHERE lease_token IS NOT NULL`))
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
	rows, err = pool.Query(ctx, s.sql.claimCapped(16*limit), time.Now(), exclude, limit, time.Minute.Microseconds(), "w2", nil, perWebhook, noCapIDs, noCaps)
	require.NoError(t, err)
	n = 0
	for rows.Next() {
		n++
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, 10-limit, n, "the other webhooks' first rows, skipping the locked ones")
}

// A webhook at its cap (excluded from claims) with a long due backlog at
// the head of the queue costs a claim neither its time nor the others'
// deliveries: no claim statement reads more than a bounded number of
// queue rows, however long that backlog, and the claim returns the other
// webhooks' due deliveries, one of each.
func TestClaimDoesNotReadExcludedBacklogs(t *testing.T) {
	s, pool := unmigratedStore(t)
	require.NoError(t, s.Migrate(t.Context()))
	ctx := t.Context()
	const backlog = 20000
	excluded := "01900000-0000-7000-8000-0000000000ff"
	seedSQL(t, s, pool, seedPayload, seedQueued(backlog, 1, excluded, "2 hours"), seedQueued(400, 10, "", "1 hour"), `ANALYZE {{schema}}.queue`)

	// What each statement ClaimDeliveries may run reads.
	const limit = 16
	lease := time.Minute.Microseconds()
	exclude := []string{excluded}
	for name, run := range map[string]struct {
		sql  string
		args []any
	}{
		"capped":    {s.sql.claimCapped(16 * limit), []any{time.Now(), exclude, limit, lease, "w", nil, 1, noCapIDs, noCaps}},
		"skipping":  {s.sql.claimCappedSkipping(16 * limit), []any{time.Now(), exclude, limit, lease, "w", nil, 1, noCapIDs, noCaps}},
		"byWebhook": {s.sql.claimByWebhook, []any{time.Now(), exclude, limit, lease, "w", nil, 1, noCapIDs, noCaps, byWebhookWalk, "40000000-0000-7000-8000-000000000000"}},
	} {
		read := queueRowsRead(t, pool, run.sql, run.args...)
		assert.Less(t, read, 2000, "%s reads %d queue rows of a %d backlog", name, read, backlog)
	}

	cs, err := s.ClaimDeliveries(ctx, webhook.ClaimParams{WorkerID: "w", Limit: limit, LeaseDuration: time.Minute, Now: time.Now(),
		MaxPerWebhook: 1, ExcludeWebhooks: exclude})
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, c := range cs {
		assert.NotEqual(t, excluded, c.Delivery.WebhookID)
		assert.False(t, seen[c.Delivery.WebhookID], "one per webhook")
		seen[c.Delivery.WebhookID] = true
	}
	assert.Len(t, seen, 10, "every other webhook's earliest delivery")
}

// queueRowsRead runs sql with args under EXPLAIN ANALYZE in a transaction
// it rolls back, and returns how many rows its plan's nodes that read the
// queue (scans of the table or its indexes) read: returned or removed by
// a filter, over all loops.
func queueRowsRead(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	ctx := t.Context()
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(context.Background())
	var plan []struct {
		Plan map[string]any `json:"Plan"`
	}
	require.NoError(t, tx.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+sql, args...).Scan(&plan))
	require.Len(t, plan, 1)
	var walk func(n map[string]any) int
	walk = func(n map[string]any) int {
		total := 0
		if rel, _ := n["Relation Name"].(string); rel == "queue" && strings.HasSuffix(n["Node Type"].(string), "Scan") {
			rows, _ := n["Actual Rows"].(float64)
			removed, _ := n["Rows Removed by Filter"].(float64) // per loop, as the rows
			loops, _ := n["Actual Loops"].(float64)
			total += int((rows + removed) * loops)
		}
		if kids, ok := n["Plans"].([]any); ok {
			for _, k := range kids {
				if m, ok := k.(map[string]any); ok {
					total += walk(m)
				}
			}
		}
		return total
	}
	return walk(plan[0].Plan)
}

// When the claim's second statement (reading a webhook at a time) fails,
// the deliveries the first leased are returned, not left leased to a
// caller that never sees them until their leases expire.
func TestClaimKeepsFirstLeasesWhenTheSecondStatementFails(t *testing.T) {
	s, pool := unmigratedStore(t)
	require.NoError(t, s.Migrate(t.Context()))
	ctx := t.Context()
	seedSQL(t, s, pool, seedPayload, seedQueued(20, 10, "", "1 hour"))
	s.sql.claimByWebhook = `SELECT broken`
	cs, err := s.ClaimDeliveries(ctx, webhook.ClaimParams{WorkerID: "w", Limit: 16, LeaseDuration: time.Minute, Now: time.Now(),
		MaxPerWebhook: 1, ExcludeWebhooks: []string{"01900000-0000-7000-8000-0000000000ff"}})
	require.NoError(t, err)
	assert.Len(t, cs, 10, "one of each webhook, from the first statement")
	var leased int
	require.NoError(t, pool.QueryRow(ctx, s.stmt(`SELECT count(*) FROM {{schema}}.queue WHERE lease_token IS NOT NULL`)).Scan(&leased))
	assert.Equal(t, len(cs), leased, "every leased delivery is returned")
}

// A worker whose clock runs ahead claims a delivery that is due by its
// clock only, and dies: once the lease expires (on the database's
// clock), a worker whose clock is right reclaims it, rather than wait
// until its own clock reaches the due time the other's clock set.
func TestExpiredLeaseOfAFastClockIsReclaimed(t *testing.T) {
	s, pool := unmigratedStore(t)
	require.NoError(t, s.Migrate(t.Context()))
	ctx := t.Context()
	seedSQL(t, s, pool, seedPayload,
		`INSERT INTO {{schema}}.queue (id, webhook_id, payload_id, event_type, status, attempt, next_attempt_at, due_at, created_at)
			VALUES ('01900000-0000-7000-8000-000000000010', '01900000-0000-7000-8000-0000000000aa', '01900000-0000-7000-8000-000000000000',
				'e', 'retrying', 1, now() + interval '30 minutes', now() + interval '30 minutes', now())`)
	fast := time.Now().Add(time.Hour)
	cs, err := s.ClaimDeliveries(ctx, webhook.ClaimParams{WorkerID: "fast", Limit: 1, LeaseDuration: time.Minute, Now: fast, MaxPerWebhook: 1})
	require.NoError(t, err)
	require.Len(t, cs, 1, "due by the fast clock")
	// The fast worker dies; its lease expires.
	seedSQL(t, s, pool, `UPDATE {{schema}}.queue SET lease_expires_at = now() - interval '1 second'`)
	cs, err = s.ClaimDeliveries(ctx, webhook.ClaimParams{WorkerID: "right", Limit: 1, LeaseDuration: time.Minute, Now: time.Now(), MaxPerWebhook: 1})
	require.NoError(t, err)
	require.Len(t, cs, 1, "reclaimed once the lease expired")
	assert.Equal(t, "right", cs[0].Lease.WorkerID)
	assert.Equal(t, 3, cs[0].Delivery.Attempt, "the abandoned attempt counts")
}

// The walk over webhooks counts only those not excluded: a worker with
// more webhooks at their caps than the walk's length still reaches the
// others.
func TestClaimByWebhookWalksPastExcludedWebhooks(t *testing.T) {
	s, pool := unmigratedStore(t)
	require.NoError(t, s.Migrate(t.Context()))
	ctx := t.Context()
	const excludedHooks = byWebhookWalk + 44
	seedSQL(t, s, pool, seedPayload, seedQueued(excludedHooks, excludedHooks, "", "1 hour"),
		seedQueued(1, 1, "01900000-0000-7000-8000-ffffffffffff", "1 minute"))
	exclude := make([]string, excludedHooks)
	for i := range exclude {
		exclude[i] = fmt.Sprintf("01900000-0000-7000-8000-%012x", i)
	}
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(context.Background())
	// The walk starts at the lowest ID: every excluded webhook comes
	// before the other.
	rows, err := tx.Query(ctx, s.sql.claimByWebhook, time.Now(), exclude, 1, time.Minute.Microseconds(), "w", nil, 1, noCapIDs, noCaps, byWebhookWalk, minUUID)
	require.NoError(t, err)
	var got []string
	for rows.Next() {
		vals, err := rows.Values()
		require.NoError(t, err)
		got = append(got, vals[1].(string))
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, []string{"01900000-0000-7000-8000-ffffffffffff"}, got)
}

// BenchmarkClaimBesideACappedBacklog measures a worker's claim (16 at
// most, one per webhook) of ten webhooks' due deliveries while another
// webhook, excluded as a worker does once it is at its cap, has a due
// backlog of 0 or 200,000 deliveries ahead of them: the claim's cost
// should not follow that backlog. Each claim's deliveries are handed
// back (untimed), due at once, so the queue stays as it was.
func BenchmarkClaimBesideACappedBacklog(b *testing.B) {
	for _, backlog := range []int{0, 20_000, 200_000} {
		b.Run(fmt.Sprintf("backlog=%d", backlog), func(b *testing.B) {
			s, pool := unmigratedStore(b)
			require.NoError(b, s.Migrate(b.Context()))
			ctx := context.Background()
			capped := "01900000-0000-7000-8000-0000000000ff"
			sqls := []string{seedPayload, seedQueued(400, 10, "", "1 hour")}
			if backlog > 0 {
				sqls = append(sqls, seedQueued(backlog, 1, capped, "2 hours"))
			}
			seedSQL(b, s, pool, append(sqls, `VACUUM ANALYZE {{schema}}.queue`)...)
			p := webhook.ClaimParams{WorkerID: "w", Limit: 16, LeaseDuration: time.Minute, MaxPerWebhook: 1, ExcludeWebhooks: []string{capped}}
			b.ResetTimer()
			for range b.N {
				p.Now = time.Now()
				cs, err := s.ClaimDeliveries(ctx, p)
				if err != nil || len(cs) != 10 {
					b.Fatalf("claimed %d, %v; want one of each of the 10 webhooks", len(cs), err)
				}
				b.StopTimer()
				ps := make([]webhook.RecordAttemptParams, len(cs))
				for i, c := range cs {
					ps[i] = webhook.RecordAttemptParams{DeliveryID: c.Delivery.ID, Token: c.Lease.Token, Released: true, NextAttemptAt: p.Now}
				}
				if _, err := s.RecordAttempts(ctx, ps); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// No webhook with a cap of its own, as the claim statements take them
// ($8 and $9).
var (
	noCapIDs = []string{}
	noCaps   = []int32{}
)

// MaxByWebhook may name one webhook twice, its ID spelt in upper and
// in lower case (both valid UUIDs): the claim takes the lesser cap
// rather than fail, in the window it ranks as when it reads the queue
// a webhook at a time, beyond a window of excluded webhooks' deliveries.
func TestClaimCapsOfAWebhookNamedTwice(t *testing.T) {
	s, pool := unmigratedStore(t)
	require.NoError(t, s.Migrate(t.Context()))
	ctx := t.Context()
	const excluded, hook = "01900000-0000-7000-8000-0000000000ff", "01900000-0000-7000-8000-0000000000aa"
	seedSQL(t, s, pool, seedPayload, seedQueued(10, 1, hook, "1 hour"))
	caps := map[string]int{strings.ToUpper(hook): 2, hook: 3}
	p := webhook.ClaimParams{WorkerID: "w", Limit: 8, LeaseDuration: time.Minute, Now: time.Now(), MaxPerWebhook: 1, MaxByWebhook: caps}
	cs, err := s.ClaimDeliveries(ctx, p)
	require.NoError(t, err)
	assert.Len(t, cs, 2, "in the window")

	seedSQL(t, s, pool, seedQueued(10000, 1, excluded, "2 hours"))
	p.ExcludeWebhooks = []string{excluded}
	p.Now = time.Now()
	cs, err = s.ClaimDeliveries(ctx, p)
	require.NoError(t, err)
	assert.Len(t, cs, 2, "a webhook at a time")
}
