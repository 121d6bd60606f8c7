package pgstore_test

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook/storage/pgstore"
)

// New warns when the pool is too small for a worker (pgxpool's default
// of 4 connections is), and says nothing otherwise. The pool connects
// lazily, so no database is needed.
func TestNewWarnsOfASmallPool(t *testing.T) {
	for _, c := range []struct {
		conns int32
		warn  bool
	}{{4, true}, {pgstore.MinPoolConns - 1, true}, {pgstore.MinPoolConns, false}, {32, false}} {
		cfg, err := pgxpool.ParseConfig("postgres://postgres@127.0.0.1:1/none")
		require.NoError(t, err)
		cfg.MaxConns = c.conns
		pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
		require.NoError(t, err)
		var logs bytes.Buffer
		_, err = pgstore.New(pool, &pgstore.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		pool.Close()
		require.NoError(t, err, "a small pool is not an error")
		if c.warn {
			assert.Contains(t, logs.String(), "level=WARN", "%d connections", c.conns)
			assert.Contains(t, logs.String(), "MinPoolConns", "%d connections", c.conns)
		} else {
			assert.Empty(t, logs.String(), "%d connections", c.conns)
		}
	}
}
