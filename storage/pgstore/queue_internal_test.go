package pgstore

import (
	"context"
	"encoding/json"
	"io/fs"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// migrationsBefore returns the embedded migrations older than version.
func migrationsBefore(t *testing.T, version string) fstest.MapFS {
	t.Helper()
	out := fstest.MapFS{}
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	require.NoError(t, err)
	for _, name := range names {
		if strings.TrimPrefix(name, "migrations/") >= version {
			continue
		}
		body, err := fs.ReadFile(migrationFiles, name)
		require.NoError(t, err)
		out[name] = &fstest.MapFile{Data: body}
	}
	return out
}

// Migration 008 moves the unfinished deliveries of a store in use into
// the queue with their leases, leaves the finished ones in the history,
// and from then on an older process's enqueue, which would write pending
// deliveries into the history where no worker claims them, fails.
func TestMigrationMovesUnfinishedDeliveriesToTheQueue(t *testing.T) {
	ctx := t.Context()
	s, pool := unmigratedStore(t)
	require.NoError(t, s.migrate(ctx, migrationsBefore(t, "008")))
	const (
		hook      = "01900000-0000-7000-8000-0000000000aa"
		payload   = "01900000-0000-7000-8000-000000000001"
		pending   = "01900000-0000-7000-8000-000000000010"
		leased    = "01900000-0000-7000-8000-000000000011"
		delivered = "01900000-0000-7000-8000-000000000012"
	)
	for _, sql := range []string{
		`INSERT INTO {{schema}}.payloads (id, webhook_id, event_type, environment, "timestamp", body)
			VALUES ('` + payload + `', '` + hook + `', 'e', 'p', now(), '\x7b7d')`,
		`INSERT INTO {{schema}}.deliveries (id, webhook_id, payload_id, event_type, status, attempt, next_attempt_at, due_at, created_at, max_attempts)
			VALUES ('` + pending + `', '` + hook + `', '` + payload + `', 'e', 'pending', 0, now() - interval '1 minute', now() - interval '1 minute', now(), 5)`,
		`INSERT INTO {{schema}}.deliveries (id, webhook_id, payload_id, event_type, status, attempt, next_attempt_at, due_at,
				lease_token, lease_worker, lease_expires_at, created_at, max_attempts)
			VALUES ('` + leased + `', '` + hook + `', '` + payload + `', 'e', 'delivering', 1, NULL, now() + interval '1 hour',
				'tok', 'old-worker', now() + interval '1 hour', now(), 5)`,
		`INSERT INTO {{schema}}.deliveries (id, webhook_id, payload_id, event_type, status, attempt, created_at, completed_at, status_code)
			VALUES ('` + delivered + `', '` + hook + `', '` + payload + `', 'e', 'delivered', 1, now(), now(), 204)`,
	} {
		_, err := pool.Exec(ctx, s.stmt(sql))
		require.NoError(t, err)
	}
	require.NoError(t, s.Migrate(ctx))

	var queued, history int
	require.NoError(t, pool.QueryRow(ctx, s.stmt(`SELECT (SELECT count(*) FROM {{schema}}.queue), (SELECT count(*) FROM {{schema}}.deliveries)`)).Scan(&queued, &history))
	assert.Equal(t, 2, queued, "the pending and the leased delivery are queued")
	assert.Equal(t, 1, history, "the delivered one stays in the history")
	for id, status := range map[string]webhook.DeliveryStatus{pending: webhook.StatusPending, leased: webhook.StatusDelivering, delivered: webhook.StatusDelivered} {
		d, err := s.GetDelivery(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, status, d.Status, id)
		assert.Equal(t, hook, d.WebhookID, id)
	}

	// The pending delivery is claimed; the leased one is not, its lease
	// being live, and its worker records its result with its token.
	cs, err := s.ClaimDeliveries(ctx, webhook.ClaimParams{WorkerID: "w", Limit: 10, LeaseDuration: time.Minute, Now: time.Now()})
	require.NoError(t, err)
	require.Len(t, cs, 1)
	assert.Equal(t, pending, cs[0].Delivery.ID)
	assert.Equal(t, 5, cs[0].Delivery.MaxAttempts)
	assert.JSONEq(t, "{}", string(cs[0].Payload.Body))
	now := time.Now()
	require.NoError(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{
		DeliveryID: leased, Token: "tok", Status: webhook.StatusDelivered,
		Attempt: webhook.Attempt{StartedAt: now, StatusCode: 200}, Now: now,
	}))
	d, err := s.GetDelivery(ctx, leased)
	require.NoError(t, err)
	assert.Equal(t, webhook.StatusDelivered, d.Status)

	// An older version's enqueue wrote pending rows into deliveries.
	_, err = pool.Exec(ctx, s.stmt(`INSERT INTO {{schema}}.deliveries (id, webhook_id, payload_id, event_type, status, attempt, next_attempt_at, due_at, created_at)
		VALUES (gen_random_uuid(), '`+hook+`', '`+payload+`', 'e', 'pending', 0, now(), now(), now())`))
	var pe *pgconn.PgError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "deliveries_finished", pe.ConstraintName)
}

// A finished delivery and the queue are never both without a delivery,
// nor both with it: GetDelivery finds every delivery exactly once while
// results move deliveries from the queue to the history.
func TestDeliveryIsFoundWhileItMoves(t *testing.T) {
	ctx := t.Context()
	s, _ := unmigratedStore(t)
	svc := serviceWithHooks(t, s, 4)
	var ids []string
	for range 25 {
		got, err := svc.TriggerEvent(ctx, "e", nil, "")
		require.NoError(t, err)
		ids = append(ids, got...)
	}
	done := make(chan error, 1)
	go func() {
		for {
			cs, err := s.ClaimDeliveries(context.Background(), webhook.ClaimParams{WorkerID: "w", Limit: 7, LeaseDuration: time.Minute, Now: time.Now()})
			if err != nil || len(cs) == 0 {
				done <- err
				return
			}
			ps := make([]webhook.RecordAttemptParams, len(cs))
			for i, c := range cs {
				ps[i] = webhook.RecordAttemptParams{DeliveryID: c.Delivery.ID, Token: c.Lease.Token, Status: webhook.StatusDelivered,
					Attempt: webhook.Attempt{StartedAt: time.Now(), StatusCode: 200}, Now: time.Now()}
			}
			if _, err := s.RecordAttempts(context.Background(), ps); err != nil {
				done <- err
				return
			}
		}
	}()
	for moving := true; moving; {
		select {
		case err := <-done:
			require.NoError(t, err)
			moving = false
		default:
		}
		for _, id := range ids {
			_, err := s.GetDelivery(ctx, id)
			require.NoError(t, err, "delivery %s", id)
		}
	}
	for _, id := range ids {
		d, err := s.GetDelivery(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, webhook.StatusDelivered, d.Status)
	}
}

// A batch that names one delivery twice records the first result; the
// second is refused, its lease being gone, as if it came after.
func TestRecordAttemptsNamingADeliveryTwice(t *testing.T) {
	ctx := t.Context()
	s, _ := unmigratedStore(t)
	svc := serviceWithHooks(t, s, 1)
	_, err := svc.TriggerEvent(ctx, "e", nil, "")
	require.NoError(t, err)
	cs, err := s.ClaimDeliveries(ctx, webhook.ClaimParams{WorkerID: "w", Limit: 1, LeaseDuration: time.Minute, Now: time.Now()})
	require.NoError(t, err)
	require.Len(t, cs, 1)
	c := cs[0]
	now := time.Now()
	retry := webhook.RecordAttemptParams{DeliveryID: c.Delivery.ID, Token: c.Lease.Token, Status: webhook.StatusRetrying,
		NextAttemptAt: now.Add(time.Hour), Attempt: webhook.Attempt{StartedAt: now, StatusCode: 503}, Now: now}
	final := retry
	final.Status, final.NextAttemptAt, final.Attempt.StatusCode = webhook.StatusDelivered, time.Time{}, 200
	errs, err := s.RecordAttempts(ctx, []webhook.RecordAttemptParams{retry, final})
	require.NoError(t, err)
	require.Len(t, errs, 2)
	assert.NoError(t, errs[0])
	assert.ErrorIs(t, errs[1], webhook.ErrLeaseLost)
	d, err := s.GetDelivery(ctx, c.Delivery.ID)
	require.NoError(t, err)
	assert.Equal(t, webhook.StatusRetrying, d.Status)
	atts, err := s.ListAttempts(ctx, c.Delivery.ID)
	require.NoError(t, err)
	assert.Len(t, atts, 1)
}

// Pruning a finished delivery keeps its payload while a queued
// redelivery refers to it, and deletes it with the attempts once nothing
// does.
func TestPruneKeepsPayloadsOfQueuedRedeliveries(t *testing.T) {
	ctx := t.Context()
	s, pool := unmigratedStore(t)
	svc := serviceWithHooks(t, s, 1)
	ids, err := svc.TriggerEvent(ctx, "e", map[string]any{"k": "v"}, "")
	require.NoError(t, err)
	require.Len(t, ids, 1)
	cs, err := s.ClaimDeliveries(ctx, webhook.ClaimParams{WorkerID: "w", Limit: 1, LeaseDuration: time.Minute, Now: time.Now()})
	require.NoError(t, err)
	require.Len(t, cs, 1)
	now := time.Now()
	require.NoError(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{DeliveryID: ids[0], Token: cs[0].Lease.Token, Status: webhook.StatusFailed,
		Attempt: webhook.Attempt{StartedAt: now, StatusCode: 500}, Now: now}))
	again, err := svc.Redeliver(ctx, ids[0])
	require.NoError(t, err)

	n, err := s.Prune(ctx, webhook.PruneParams{Before: time.Now().Add(time.Minute)})
	require.NoError(t, err)
	assert.Equal(t, 1, n, "the failed original is pruned")
	_, err = s.GetDelivery(ctx, ids[0])
	require.ErrorIs(t, err, webhook.ErrNotFound)
	var attempts int
	require.NoError(t, pool.QueryRow(ctx, s.stmt(`SELECT count(*) FROM {{schema}}.attempts WHERE delivery_id = $1`), ids[0]).Scan(&attempts))
	assert.Zero(t, attempts, "its attempts go with it")
	cs, err = s.ClaimDeliveries(ctx, webhook.ClaimParams{WorkerID: "w", Limit: 1, LeaseDuration: time.Minute, Now: time.Now()})
	require.NoError(t, err)
	require.Len(t, cs, 1, "the queued redelivery still has its payload")
	assert.Equal(t, again, cs[0].Delivery.ID)
	assert.JSONEq(t, `{"k":"v"}`, string(extractData(t, cs[0].Payload.Body)))

	now = time.Now()
	require.NoError(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{DeliveryID: again, Token: cs[0].Lease.Token, Status: webhook.StatusDelivered,
		Attempt: webhook.Attempt{StartedAt: now, StatusCode: 200}, Now: now}))
	n, err = s.Prune(ctx, webhook.PruneParams{Before: time.Now().Add(time.Minute)})
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	var payloads int
	require.NoError(t, pool.QueryRow(ctx, s.stmt(`SELECT count(*) FROM {{schema}}.payloads`)).Scan(&payloads))
	assert.Zero(t, payloads, "no delivery refers to the payload any more")
}

// extractData returns the data field of a payload body.
func extractData(t *testing.T, body []byte) []byte {
	t.Helper()
	var v map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(body, &v))
	return v["data"]
}

// serviceWithHooks migrates s and returns a Service over it with n
// webhooks subscribed to every event.
func serviceWithHooks(t *testing.T, s *Store, n int) *webhook.Service {
	t.Helper()
	require.NoError(t, s.Migrate(t.Context()))
	svc, err := webhook.NewService(s, &webhook.Config{Network: webhook.NetworkPolicy{AllowPrivate: true}})
	require.NoError(t, err)
	for range n {
		_, err := svc.Create(t.Context(), &webhook.Webhook{Name: "h", URL: "https://example.com/", Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
		require.NoError(t, err)
	}
	return svc
}

// seedSQL runs the statements of a test's fixture, {{schema}} filled in.
func seedSQL(t testing.TB, s *Store, pool *pgxpool.Pool, sqls ...string) {
	t.Helper()
	for _, sql := range sqls {
		_, err := pool.Exec(t.Context(), s.stmt(sql))
		require.NoError(t, err)
	}
}

// seedPayload is the fixtures' one payload, which their deliveries share.
const seedPayload = `INSERT INTO {{schema}}.payloads (id, webhook_id, event_type, environment, "timestamp", body)
	VALUES ('01900000-0000-7000-8000-000000000000', '01900000-0000-7000-8000-000000000000', 'e', 'p', now(), '\x7b7d')`

// seedQueued returns the statement that queues n due deliveries of the
// fixtures' payload, over webhooks 01900000-0000-7000-8000-00000000000k
// for k < hooks (in hex), due from age ago on, a millisecond apart.
func seedQueued(n, hooks int, webhook, age string) string {
	hook := `('01900000-0000-7000-8000-' || lpad(to_hex(g % ` + strconv.Itoa(hooks) + `), 12, '0'))::uuid`
	if webhook != "" {
		hook = `'` + webhook + `'::uuid`
	}
	return `INSERT INTO {{schema}}.queue (id, webhook_id, payload_id, event_type, status, attempt, next_attempt_at, due_at, created_at)
		SELECT gen_random_uuid(), ` + hook + `, '01900000-0000-7000-8000-000000000000', 'e', 'pending', 0,
			now() - interval '` + age + `', now() - interval '` + age + `' + g * interval '1 ms', now()
		FROM generate_series(1, ` + strconv.Itoa(n) + `) g`
}
