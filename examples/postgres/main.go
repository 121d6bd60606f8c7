// Command postgres runs several webhook workers in one program against a
// PostgreSQL database, as several processes on several machines would:
// they share the queue, never send the same delivery at once, and wake
// each other through LISTEN/NOTIFY. It also shows the transactional
// outbox: webhooks enqueued inside your own transaction exist only if it
// commits.
//
//	go run ./examples/postgres -db postgres://postgres@127.0.0.1:5432/test?sslmode=disable
//
// The URL defaults to $DATABASE_URL. The tables go into their own schema
// (-schema), dropped at the end unless -keep is given. The pool allows
// pgstore.MinPoolConns connections per worker, as each worker's own
// process would (see the pgstore package documentation), or the URL's
// pool_max_conns if that is more.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/storage/pgstore"
)

func main() {
	dbURL := flag.String("db", os.Getenv("DATABASE_URL"), "PostgreSQL URL (default $DATABASE_URL)")
	schema := flag.String("schema", "webhook_example", "schema for the example's tables")
	workers := flag.Int("workers", 3, "workers to run")
	events := flag.Int("events", 300, "events to trigger")
	keep := flag.Bool("keep", false, "keep the schema and its data")
	flag.Parse()
	if *dbURL == "" {
		*dbURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	if err := run(*dbURL, *schema, *workers, *events, *keep, slog.Default()); err != nil {
		log.Fatal(err)
	}
}

// maxWorkers bounds -workers.
const maxWorkers = 64

// newPool connects to dbURL with room for workers workers. A process
// that runs a Worker needs at least pgstore.MinPoolConns connections,
// more than pgxpool's default (4, or the number of CPUs): the listener
// holds one while the worker runs, and claims, result writes and trigger
// calls take one each. Here every worker stands for a process of its
// own, so the one pool allows MinPoolConns for each.
func newPool(ctx context.Context, dbURL string, workers int) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = max(cfg.MaxConns, int32(workers*pgstore.MinPoolConns))
	return pgxpool.NewWithConfig(ctx, cfg)
}

func run(dbURL, schema string, workers, events int, keep bool, logger *slog.Logger) error {
	if workers < 1 || workers > maxWorkers {
		return fmt.Errorf("-workers must be between 1 and %d", maxWorkers)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pool, err := newPool(ctx, dbURL, workers)
	if err != nil {
		return err
	}
	defer pool.Close()
	store, err := pgstore.New(pool, &pgstore.Config{Schema: schema, Logger: logger})
	if err != nil {
		return err
	}
	if err := store.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate (is PostgreSQL running at %s?): %w", dbURL, err)
	}
	if !keep {
		defer pool.Exec(context.Background(), `DROP SCHEMA `+pgx.Identifier{schema}.Sanitize()+` CASCADE`)
	}

	// A receiver that verifies signatures and counts what it gets.
	var (
		mu       sync.Mutex
		secret   string
		received = map[string]int{} // webhook-id → requests
		total    atomic.Int64
	)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := webhook.Verify(secret, r.Header, body); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		received[r.Header.Get("webhook-id")]++
		total.Add(1)
	}))
	defer receiver.Close()

	// The receiver runs on this machine, so private addresses are allowed.
	cfg := &webhook.Config{Network: webhook.NetworkPolicy{AllowPrivate: true}}
	svc, err := webhook.NewService(store, cfg)
	if err != nil {
		return err
	}
	hook, err := svc.Create(ctx, &webhook.Webhook{Name: "orders", URL: receiver.URL, Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
	if err != nil {
		return err
	}
	mu.Lock()
	secret = hook.Secret
	mu.Unlock()

	// Several workers, each with a Service of its own, as if each ran in
	// a process of its own.
	runCtx, stopWorkers := context.WithCancel(ctx)
	defer stopWorkers()
	var wg sync.WaitGroup
	for i := range workers {
		wsvc, err := webhook.NewService(store, cfg)
		if err != nil {
			return err
		}
		w, err := webhook.NewWorker(wsvc, &webhook.WorkerConfig{WorkerID: fmt.Sprint("worker-", i+1)})
		if err != nil {
			return err
		}
		wg.Go(func() {
			if err := w.Run(runCtx); err != nil {
				log.Print(err)
			}
		})
	}

	// The transactional outbox: the order row and its webhook commit or
	// roll back together.
	if _, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+pgx.Identifier{schema, "orders"}.Sanitize()+` (id text PRIMARY KEY)`); err != nil {
		return err
	}
	outbox := func(orderID string, commit bool) error {
		tx, err := pool.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, `INSERT INTO `+pgx.Identifier{schema, "orders"}.Sanitize()+` VALUES ($1)`, orderID); err != nil {
			return err
		}
		if _, err := svc.TriggerEvent(ctx, "order.created", map[string]any{"order_id": orderID}, "production", webhook.WithEnqueuer(store.Tx(tx))); err != nil {
			return err
		}
		if commit {
			return tx.Commit(ctx)
		}
		return nil // rolled back by the deferred Rollback
	}
	if err := outbox("o-committed", true); err != nil {
		return err
	}
	if err := outbox("o-rolled-back", false); err != nil {
		return err
	}

	start := time.Now()
	for i := range events {
		if _, err := svc.TriggerEvent(ctx, "page.viewed", map[string]any{"n": i}, "production"); err != nil {
			return err
		}
	}
	want := int64(events + 1) // plus the committed order
	for total.Load() < want {
		select {
		case <-ctx.Done():
			return errors.New("timed out waiting for deliveries")
		case <-time.After(20 * time.Millisecond):
		}
	}
	elapsed := time.Since(start)
	stopWorkers()
	wg.Wait()
	var stored int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{schema, "deliveries"}.Sanitize()).Scan(&stored); err != nil {
		return err
	}
	if stored != want {
		return fmt.Errorf("%d deliveries stored, want %d: the rolled-back transaction enqueued one", stored, want)
	}

	mu.Lock()
	defer mu.Unlock()
	dups := 0
	for _, n := range received {
		dups += n - 1
	}
	fmt.Printf("%d workers delivered %d webhooks in %v (%d duplicates); the rolled-back order sent none.\n",
		workers, len(received), elapsed.Round(time.Millisecond), dups)
	return nil
}
