package pgstore_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/storage/pgstore"
)

// sink is a receiver that reports every webhook-id it gets.
func sink(t *testing.T) (*httptest.Server, <-chan string) {
	got := make(chan string, 1000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got <- r.Header.Get("webhook-id")
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func newService(t *testing.T, store webhook.Storage) *webhook.Service {
	t.Helper()
	svc, err := webhook.NewService(store, &webhook.Config{Network: testNetwork()})
	require.NoError(t, err)
	return svc
}

func createHook(t *testing.T, svc *webhook.Service, url string) *webhook.Webhook {
	t.Helper()
	w, err := svc.Create(t.Context(), &webhook.Webhook{Name: "sink", URL: url, Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
	require.NoError(t, err)
	return w
}

func TestMigrateIsIdempotentAndConcurrent(t *testing.T) {
	s := newStore(t) // migrated once
	p := testPool(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			again, err := pgstore.New(p, &pgstore.Config{Schema: s.Schema()})
			if err == nil {
				err = again.Migrate(context.Background())
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	var n int
	require.NoError(t, p.QueryRow(t.Context(), `SELECT count(*) FROM `+s.Schema()+`.schema_migrations`).Scan(&n))
	files, err := filepath.Glob("migrations/*.sql")
	require.NoError(t, err)
	assert.Equal(t, len(files), n, "each migration applied once")
}

func TestNewErrors(t *testing.T) {
	_, err := pgstore.New(nil, nil)
	require.ErrorIs(t, err, webhook.ErrInvalid)
	p := testPool(t)
	for _, bad := range []string{"Webhook", "a-b", "1abc", `x"; DROP TABLE y; --`, "averyveryveryveryveryveryveryverylongname1"} {
		_, err = pgstore.New(p, &pgstore.Config{Schema: bad})
		require.ErrorIs(t, err, webhook.ErrInvalid, bad)
	}
	s, err := pgstore.New(p, nil)
	require.NoError(t, err)
	assert.Equal(t, "webhook", s.Schema())
}

func TestOutboxTransaction(t *testing.T) {
	store := newStore(t)
	p := testPool(t)
	svc := newService(t, store)
	srv, got := sink(t)
	hook := createHook(t, svc, srv.URL)
	ctx := t.Context()
	_, err := p.Exec(ctx, `CREATE TABLE `+store.Schema()+`.orders (id text PRIMARY KEY)`)
	require.NoError(t, err)

	// Rolled back: the business write and its webhook vanish together.
	tx, err := p.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `INSERT INTO `+store.Schema()+`.orders VALUES ('o-1')`)
	require.NoError(t, err)
	rolledBack, err := svc.TriggerEvent(ctx, "order.created", map[string]any{"id": "o-1"}, "", webhook.WithEnqueuer(store.Tx(tx)))
	require.NoError(t, err)
	require.Len(t, rolledBack, 1)
	require.NoError(t, tx.Rollback(ctx))

	// Committed: both are there.
	tx, err = p.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `INSERT INTO `+store.Schema()+`.orders VALUES ('o-2')`)
	require.NoError(t, err)
	committed, err := svc.TriggerEvent(ctx, "order.created", map[string]any{"id": "o-2"}, "", webhook.WithEnqueuer(store.Tx(tx)))
	require.NoError(t, err)
	// Not visible outside the transaction before commit.
	_, err = store.GetDelivery(ctx, committed[0])
	require.ErrorIs(t, err, webhook.ErrNotFound)
	require.NoError(t, tx.Commit(ctx))

	w, err := webhook.NewWorker(svc, nil)
	require.NoError(t, err)
	n, err := w.RunOnce(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "only the committed delivery exists")
	<-got
	_, err = store.GetDelivery(ctx, rolledBack[0])
	require.ErrorIs(t, err, webhook.ErrNotFound, "a rolled-back enqueue leaves nothing")
	d, err := store.GetDelivery(ctx, committed[0])
	require.NoError(t, err)
	assert.Equal(t, webhook.StatusDelivered, d.Status)
	ds, err := store.ListDeliveries(ctx, webhook.ListDeliveriesParams{WebhookID: hook.ID})
	require.NoError(t, err)
	assert.Len(t, ds, 1)
}

func TestOutboxErrorKeepsTransactionUsable(t *testing.T) {
	store := newStore(t)
	p := testPool(t)
	ctx := t.Context()
	tx, err := p.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	// A delivery whose payload exists nowhere fails inside a savepoint.
	_, err = store.Tx(tx).Enqueue(ctx, webhook.EnqueueParams{Deliveries: []*webhook.Delivery{{
		ID: "018f0000-0000-7000-8000-000000000001", WebhookID: "018f0000-0000-7000-8000-000000000002",
		PayloadID: "018f0000-0000-7000-8000-000000000003", Status: webhook.StatusPending, Attempt: 0,
		NextAttemptAt: time.Now(), CreatedAt: time.Now(),
	}}, Now: time.Now()})
	require.ErrorIs(t, err, webhook.ErrNotFound)
	var one int
	require.NoError(t, tx.QueryRow(ctx, `SELECT 1`).Scan(&one), "the caller's transaction is still usable")
}

func TestNotifyWakesWorkerInAnotherProcess(t *testing.T) {
	store := newStore(t)
	srv, got := sink(t)
	// Two services over one database stand for two processes: A takes
	// the trigger calls, B runs the worker and never polls in this test.
	a := newService(t, store)
	createHook(t, a, srv.URL)
	b := newService(t, store)
	w, err := webhook.NewWorker(b, &webhook.WorkerConfig{PollInterval: time.Hour})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan error)
	go func() { stopped <- w.Run(ctx) }()
	defer func() { cancel(); require.NoError(t, <-stopped) }()

	// Run polls once at start; wait until the listener is up by
	// delivering a first event, then the rest can only arrive by NOTIFY.
	for range 3 {
		triggerAndAwait(t, a, got, "the worker was not woken by the other service's enqueue")
	}

	// Kill the listener's connection: it reconnects and keeps waking.
	p := testPool(t)
	_, err = p.Exec(t.Context(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid()`)
	require.NoError(t, err)
	triggerAndAwait(t, a, got, "no delivery after the listener lost its connection")
}

// triggerAndAwait triggers one event through svc and waits for the
// receiver to get it, failing with msg if it does not within 30 s.
func triggerAndAwait(t *testing.T, svc *webhook.Service, got <-chan string, msg string) {
	t.Helper()
	ids, err := svc.TriggerEvent(t.Context(), "e", nil, "")
	require.NoError(t, err)
	require.Len(t, ids, 1)
	select {
	case <-got:
	case <-time.After(30 * time.Second):
		t.Fatal(msg)
	}
}

func TestListenStopsWithContext(t *testing.T) {
	store := newStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	woke := make(chan struct{}, 10)
	done := make(chan error)
	go func() { done <- store.Listen(ctx, func() { woke <- struct{}{} }) }()
	<-woke // the first call comes once LISTEN is in place
	svc := newService(t, store)
	createHook(t, svc, "https://example.com/hook")
	_, err := svc.TriggerEvent(t.Context(), "e", nil, "")
	require.NoError(t, err)
	<-woke
	cancel()
	require.NoError(t, <-done, "Listen returns nil once its context is done")
}

func TestClaimSkipsRowsLockedElsewhere(t *testing.T) {
	store := newStore(t)
	svc := newService(t, store)
	for range 5 {
		createHook(t, svc, "https://example.com/hook")
	}
	ctx := t.Context()
	for range 20 {
		_, err := svc.TriggerEvent(ctx, "e", nil, "")
		require.NoError(t, err)
	}
	// Another claimer's transaction holds the ten earliest rows.
	tx, err := testPool(t).Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	_, err = tx.Exec(ctx, `SELECT id FROM `+store.Schema()+`.queue ORDER BY due_at, id LIMIT 10 FOR UPDATE`)
	require.NoError(t, err)

	for _, per := range []int{0, 1} {
		cs, err := store.ClaimDeliveries(ctx, webhook.ClaimParams{WorkerID: "w", Limit: 5, LeaseDuration: time.Minute, Now: time.Now(), MaxPerWebhook: per})
		require.NoError(t, err)
		assert.Len(t, cs, 5, "MaxPerWebhook %d: the free rows beyond the locked ones are claimed", per)
	}
}
