package pgstore_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/storage/pgstore"
)

func TestWithoutMigrateSaysRunMigrate(t *testing.T) {
	p := testPool(t)
	s, err := pgstore.New(p, &pgstore.Config{Schema: "never_migrated"})
	require.NoError(t, err)
	ctx := t.Context()
	_, err = s.GetWebhook(ctx, "018f0000-0000-7000-8000-000000000001")
	require.ErrorIs(t, err, pgstore.ErrNotMigrated)
	assert.Contains(t, err.Error(), "run Store.Migrate")
	now := time.Now()
	_, err = s.Enqueue(ctx, webhook.EnqueueParams{
		Payloads: []*webhook.Payload{{ID: "018f0000-0000-7000-8000-000000000003", WebhookID: "018f0000-0000-7000-8000-000000000002", Body: []byte("{}")}},
		Deliveries: []*webhook.Delivery{{ID: "018f0000-0000-7000-8000-000000000001", WebhookID: "018f0000-0000-7000-8000-000000000002",
			PayloadID: "018f0000-0000-7000-8000-000000000003", Status: webhook.StatusPending, NextAttemptAt: now, CreatedAt: now}},
		Now: now,
	})
	require.ErrorIs(t, err, pgstore.ErrNotMigrated)
	_, err = s.ClaimDeliveries(ctx, webhook.ClaimParams{Limit: 1, LeaseDuration: time.Minute, Now: now})
	require.ErrorIs(t, err, pgstore.ErrNotMigrated)
	_, err = s.ListDeliveries(ctx, webhook.ListDeliveriesParams{WebhookID: "018f0000-0000-7000-8000-000000000002"})
	require.ErrorIs(t, err, pgstore.ErrNotMigrated)
}

// commitCutter is a TCP proxy in front of PostgreSQL that, once armed,
// forwards the next COMMIT to the server, waits for the server's answer
// and then closes the client's connection instead of passing it on: the
// transaction commits, and the client cannot know.
type commitCutter struct {
	ln    net.Listener
	armed atomic.Bool
	// answer, when set, is written to the client in place of the
	// server's answer before the connection is closed.
	answer []byte
	// match, when set, is what the armed proxy waits for in place of
	// "commit", lower case: a statement that commits on its own.
	match []byte
	cut   chan struct{} // closed when a COMMIT's answer was withheld
	once  sync.Once
	wg    sync.WaitGroup
}

func newCommitCutter(t *testing.T, target string) *commitCutter {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c := &commitCutter{ln: ln, cut: make(chan struct{})}
	c.wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			c.wg.Go(func() { c.relay(client, server) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		c.wg.Wait()
	})
	return c
}

func (c *commitCutter) relay(client, server net.Conn) {
	defer client.Close()
	defer server.Close()
	committing := make(chan struct{})
	var toServer sync.WaitGroup
	toServer.Go(func() {
		defer server.Close() // unblocks the reader below when the client leaves
		buf := make([]byte, 64<<10)
		for {
			n, err := client.Read(buf)
			if n > 0 {
				match := c.match
				if match == nil {
					match = []byte("commit")
				}
				if c.armed.Load() && bytes.Contains(bytes.ToLower(buf[:n]), match) && c.armed.CompareAndSwap(true, false) {
					close(committing)
				}
				if _, werr := server.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	})
	buf := make([]byte, 64<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			select {
			case <-committing:
				// The server answered the COMMIT: it committed. Withhold
				// the answer and drop the client.
				c.once.Do(func() { close(c.cut) })
				if c.answer != nil {
					_, _ = client.Write(c.answer)
				}
				client.Close()
				toServer.Wait()
				return
			default:
			}
			if _, werr := client.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	client.Close()
	toServer.Wait()
}

func TestEnqueueReportsUnknownCommit(t *testing.T) {
	testUnknownCommit(t, nil)
}

// TestEnqueueReportsUnknownCommitOnFatalError: a connection pooler such
// as PgBouncer that loses its server connection while a COMMIT is under
// way answers the client with a FATAL error ("server conn crashed?"),
// although the server may have committed. An ERROR answer means the
// COMMIT failed; a FATAL one only that the connection is gone.
func TestEnqueueReportsUnknownCommitOnFatalError(t *testing.T) {
	testUnknownCommit(t, fatalErrorResponse("08P01", "server conn crashed?"))
}

// fatalErrorResponse is a protocol ErrorResponse message of severity
// FATAL.
func fatalErrorResponse(code, msg string) []byte {
	var body []byte
	for _, f := range []struct {
		t byte
		v string
	}{{'S', "FATAL"}, {'V', "FATAL"}, {'C', code}, {'M', msg}} {
		body = append(append(append(body, f.t), f.v...), 0)
	}
	body = append(body, 0)
	n := len(body) + 4
	return append([]byte{'E', byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}, body...)
}

// proxiedStore returns a store over direct's schema whose connections
// pass through a commitCutter, and the cutter. simple makes the pool use
// the simple protocol, so that a statement's text and its execution go
// in one message.
func proxiedStore(t *testing.T, ctx context.Context, direct *pgstore.Store, simple bool) (*pgstore.Store, *commitCutter) {
	cfg, err := pgxpool.ParseConfig(testPool(t).Config().ConnString())
	require.NoError(t, err)
	cutter := newCommitCutter(t, net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port))))
	host, port, err := net.SplitHostPort(cutter.ln.Addr().String())
	require.NoError(t, err)
	p, err := strconv.Atoi(port)
	require.NoError(t, err)
	cfg.ConnConfig.Host, cfg.ConnConfig.Port = host, uint16(p)
	cfg.ConnConfig.TLSConfig = nil
	cfg.ConnConfig.Fallbacks = nil
	cfg.MaxConns = 2
	if simple {
		cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	proxied, err := pgstore.New(pool, &pgstore.Config{Schema: direct.Schema()})
	require.NoError(t, err)
	return proxied, cutter
}

func testUnknownCommit(t *testing.T, answer []byte) {
	direct := newStore(t) // migrates the schema
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	proxied, cutter := proxiedStore(t, ctx, direct, false)
	cutter.answer = answer

	svc := newService(t, proxied)
	hook := createHook(t, svc, "http://127.0.0.1:1/")
	cutter.armed.Store(true)
	ids, err := svc.TriggerEvent(ctx, "order.created", map[string]any{"id": "o-1"}, "", webhook.WithIdempotencyKey("order o-1"))
	select {
	case <-cutter.cut:
	default:
		t.Fatalf("the proxy never saw the COMMIT; TriggerEvent returned %v, %v", ids, err)
	}
	require.ErrorIs(t, err, webhook.ErrCommitUnknown)
	assert.Empty(t, ids)

	// It did commit: the delivery is there, and a retry with the key
	// enqueues nothing more.
	ds, err := direct.ListDeliveries(ctx, webhook.ListDeliveriesParams{WebhookID: hook.ID})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	again, err := svc.TriggerEvent(ctx, "order.created", map[string]any{"id": "o-1"}, "", webhook.WithIdempotencyKey("order o-1"))
	require.NoError(t, err)
	assert.Equal(t, []string{ds[0].ID}, again)
}

// A webhook write is one statement that commits on its own: a connection
// lost after the server ran it is an unknown outcome too, not a failure.
func TestWebhookWritesReportUnknownCommit(t *testing.T) {
	direct := newStore(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	proxied, cutter := proxiedStore(t, ctx, direct, true)
	cutter.match = []byte(`insert into "` + direct.Schema() + `".webhooks`)
	svc := newService(t, proxied)
	cutter.armed.Store(true)
	_, err := svc.Create(ctx, &webhook.Webhook{Name: "w", URL: "https://example.com/", Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
	select {
	case <-cutter.cut:
	default:
		t.Fatalf("the proxy never saw the INSERT; Create returned %v", err)
	}
	require.ErrorIs(t, err, webhook.ErrCommitUnknown)
	ws, err := direct.ListWebhooks(ctx, webhook.ListWebhooksParams{})
	require.NoError(t, err)
	assert.Len(t, ws, 1, "the webhook was stored")
}

// A trigger call without an idempotency key is enqueued in one round
// trip (one batch, one implicit transaction): a connection lost after
// the server ran the batch is an unknown outcome, and it did commit; a
// statement of the batch that fails writes nothing.
func TestEnqueueBatchReportsUnknownCommit(t *testing.T) {
	for _, simple := range []bool{false, true} {
		t.Run(fmt.Sprintf("simple=%v", simple), func(t *testing.T) {
			direct := newStore(t)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			proxied, cutter := proxiedStore(t, ctx, direct, simple)
			// The NOTIFY's channel travels only with the batch's
			// execution (a bound parameter), never with a statement's
			// preparation.
			cutter.match = []byte(direct.Schema() + "_deliveries")

			svc := newService(t, proxied)
			hook := createHook(t, svc, "http://127.0.0.1:1/")
			cutter.armed.Store(true)
			ids, err := svc.TriggerEvent(ctx, "order.created", map[string]any{"id": "o-1"}, "")
			select {
			case <-cutter.cut:
			default:
				t.Fatalf("the proxy never saw the batch; TriggerEvent returned %v, %v", ids, err)
			}
			require.ErrorIs(t, err, webhook.ErrCommitUnknown)
			ds, err := direct.ListDeliveries(ctx, webhook.ListDeliveriesParams{WebhookID: hook.ID})
			require.NoError(t, err)
			assert.Len(t, ds, 1, "the batch committed")
		})
	}
}

// A batch is all or nothing: when its last statement fails, the payloads
// and the shared tail its first statements wrote are not stored.
func TestEnqueueBatchIsAllOrNothing(t *testing.T) {
	store := newStore(t)
	ctx := t.Context()
	now := time.Now().UTC()
	body := func(i int) []byte {
		return []byte(fmt.Sprintf(`{"id":"%d"`, i) + strings.Repeat(`,"x":"shared"`, 20) + `}`)
	}
	hook := "01900000-0000-7000-8000-0000000000aa"
	p := webhook.EnqueueParams{Now: now}
	taken := "01900000-0000-7000-8000-0000000000d1"
	for i := range 3 {
		pid := fmt.Sprintf("01900000-0000-7000-8000-%012d", 100+i)
		p.Payloads = append(p.Payloads, &webhook.Payload{ID: pid, WebhookID: hook, EventType: "e", Timestamp: now, Body: body(i)})
		p.Deliveries = append(p.Deliveries, &webhook.Delivery{ID: fmt.Sprintf("01900000-0000-7000-8000-%012d", 200+i), WebhookID: hook,
			PayloadID: pid, EventType: "e", Status: webhook.StatusPending, NextAttemptAt: now, CreatedAt: now})
	}
	// A delivery ID already used: the deliveries' insert fails.
	first := webhook.EnqueueParams{Now: now, Payloads: []*webhook.Payload{{ID: "01900000-0000-7000-8000-0000000000f1", WebhookID: hook, EventType: "e", Timestamp: now, Body: body(9)}},
		Deliveries: []*webhook.Delivery{{ID: taken, WebhookID: hook, PayloadID: "01900000-0000-7000-8000-0000000000f1", EventType: "e",
			Status: webhook.StatusPending, NextAttemptAt: now, CreatedAt: now}}}
	_, err := store.Enqueue(ctx, first)
	require.NoError(t, err)
	p.Deliveries[2].ID = taken
	_, err = store.Enqueue(ctx, p)
	require.Error(t, err)
	var payloads, tails int
	q := store.Schema()
	require.NoError(t, testPool(t).QueryRow(ctx, `SELECT (SELECT count(*) FROM `+q+`.payloads), (SELECT count(*) FROM `+q+`.payload_tails)`).Scan(&payloads, &tails))
	assert.Equal(t, 1, payloads, "only the first enqueue's payload")
	assert.Zero(t, tails, "the failed batch's shared tail is not stored")
	for _, pl := range p.Payloads {
		_, err := store.GetPayload(ctx, pl.ID)
		assert.ErrorIs(t, err, webhook.ErrNotFound)
	}
}
