package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// warnings is a slog.Handler that keeps the messages of warnings and
// errors.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, r.Message)
	return nil
}

func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }

// The example runs against the tests' database in a schema of its own,
// which it drops, with a pool pgstore does not warn about.
func TestRunsOnPostgres(t *testing.T) {
	dbURL := os.Getenv("WEBHOOK_TEST_DATABASE_URL")
	if dbURL == "" {
		t.Skip("WEBHOOK_TEST_DATABASE_URL is not set")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	logs := &warnings{}
	require.NoError(t, run(dbURL, schema, 3, 50, false, slog.New(logs)))
	assert.Empty(t, logs.msgs, "no warning: the pool is large enough for the workers")

	pool, err := pgxpool.New(t.Context(), dbURL)
	require.NoError(t, err)
	defer pool.Close()
	var exists bool
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists))
	if exists { // the run failed before dropping it
		_, err = pool.Exec(context.Background(), `DROP SCHEMA `+pgx.Identifier{schema}.Sanitize()+` CASCADE`)
		require.NoError(t, err)
	}
	assert.False(t, exists, "the example drops its schema")
}

func TestPoolAllowsEnoughConnectionsPerWorker(t *testing.T) {
	ctx := t.Context()
	for _, c := range []struct {
		url     string
		workers int
		want    int32
	}{
		{"postgres://u@127.0.0.1:1/db", 3, 24},
		{"postgres://u@127.0.0.1:1/db?pool_max_conns=100", 3, 100},
		{"postgres://u@127.0.0.1:1/db?pool_max_conns=2", 1, 8},
	} {
		pool, err := newPool(ctx, c.url, c.workers) // connects lazily
		require.NoError(t, err)
		assert.Equal(t, c.want, pool.Config().MaxConns, c.url)
		pool.Close()
	}
	assert.Error(t, run("postgres://u@127.0.0.1:1/db", "s", 0, 1, false, slog.New(slog.DiscardHandler)))
}
