package pgstore_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/storage/pgstore"
)

var crashFull = flag.Bool("crash.full", false, "run the process crash test at full size (5,000 deliveries, a minute of kills)")

// The crash test re-executes the test binary as a worker process when
// this variable names a schema.
const crashWorkerEnv = "PGSTORE_CRASH_WORKER_SCHEMA"

func init() {
	if schema := os.Getenv(crashWorkerEnv); schema != "" {
		os.Exit(crashWorker(schema))
	}
}

// crashWorker runs one worker process until it is killed or told to stop.
func crashWorker(schema string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	pool, err := pgxpool.New(ctx, os.Getenv(urlEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer pool.Close()
	store, err := pgstore.New(pool, &pgstore.Config{Schema: schema})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	svc, err := webhook.NewService(store, &webhook.Config{Network: testNetwork(), RequestTimeout: time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	w, err := webhook.NewWorker(svc, &webhook.WorkerConfig{LeaseDuration: 12 * time.Second, PollInterval: 200 * time.Millisecond, MaxPerWebhook: 8})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := w.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestCrashRecovery starts three worker processes on one database, kills
// them with SIGKILL again and again while they deliver, restarts them,
// and checks that every delivery arrives and that every duplicate the
// receiver saw carries the same webhook-id as the original.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash test starts processes; skipped with -short")
	}
	store := newStore(t)
	total, killFor := 1000, 6*time.Second
	if *crashFull {
		total, killFor = 5000, time.Minute
	}
	const hooks, workers = 10, 3

	var (
		mu       sync.Mutex
		byDeliv  = map[string]map[string]bool{} // X-Delivery-Id → webhook-ids seen
		requests int
	)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		// A little latency, so that kills land mid-attempt.
		time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)
		mu.Lock()
		d := r.Header.Get("X-Delivery-Id")
		if byDeliv[d] == nil {
			byDeliv[d] = map[string]bool{}
		}
		byDeliv[d][r.Header.Get("webhook-id")] = true
		requests++
		mu.Unlock()
	}))
	defer receiver.Close()

	svc := newService(t, store)
	ctx := t.Context()
	for i := range hooks {
		_, err := svc.Create(ctx, &webhook.Webhook{
			Name: fmt.Sprint("hook", i), URL: receiver.URL, Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}},
			Retry: webhook.RetryPolicy{MaxAttempts: 50, InitialDelay: time.Second, MaxDelay: 2 * time.Second, Multiplier: 1},
		})
		require.NoError(t, err)
	}
	var ids []string
	for i := range total / hooks {
		got, err := svc.TriggerEvent(ctx, "crash.test", map[string]any{"i": i}, "")
		require.NoError(t, err)
		ids = append(ids, got...)
	}
	require.Len(t, ids, total)

	exe, err := os.Executable()
	require.NoError(t, err)
	start := func() *exec.Cmd {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), crashWorkerEnv+"="+store.Schema())
		cmd.Stderr = os.Stderr
		require.NoError(t, cmd.Start())
		return cmd
	}
	procs := make([]*exec.Cmd, workers)
	for i := range procs {
		procs[i] = start()
	}
	defer func() {
		for _, p := range procs {
			_ = p.Process.Signal(syscall.SIGTERM)
			_ = p.Wait()
		}
	}()

	kills := 0
	deadline := time.Now().Add(killFor)
	for time.Now().Before(deadline) {
		time.Sleep(time.Duration(150+rand.IntN(250)) * time.Millisecond)
		i := rand.IntN(workers)
		require.NoError(t, procs[i].Process.Kill()) // SIGKILL: no cleanup at all
		_ = procs[i].Wait()
		procs[i] = start()
		kills++
	}

	// Leases of killed workers expire after 12 s; then everything
	// finishes. Poll the database for the end state.
	var delivered, other int
	for end := time.Now().Add(2 * time.Minute); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		require.NoError(t, testPool(t).QueryRow(ctx, `SELECT (SELECT count(*) FILTER (WHERE status = 'delivered') FROM `+store.Schema()+`.deliveries), (SELECT count(*) FILTER (WHERE status <> 'delivered') FROM `+store.Schema()+`.deliveries) + (SELECT count(*) FROM `+store.Schema()+`.queue)`).Scan(&delivered, &other))
		if other == 0 {
			break
		}
	}
	require.Equal(t, total, delivered, "every delivery is delivered; %d are not", other)

	mu.Lock()
	defer mu.Unlock()
	dups := 0
	for _, id := range ids {
		seen := byDeliv[id]
		require.NotEmpty(t, seen, "delivery %s never reached the receiver", id)
		require.Len(t, seen, 1, "delivery %s arrived with different webhook-ids", id)
	}
	dups = requests - len(ids)
	t.Logf("%d deliveries, %d kills, %d requests (%d duplicates, all with the original webhook-id)", total, kills, requests, dups)
}
