package pgstore_test

import (
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/storage/pgstore"
	"github.com/analytics-webhooks/webhook/storage/storagetest"
)

// The suite passes over a pool that uses the simple protocol too (as
// some connection poolers need), where pgx writes parameters into the
// statement's text: a []byte, for one, becomes a bytea literal.
func TestConformanceSimpleProtocol(t *testing.T) {
	cfg, err := pgxpool.ParseConfig(testPool(t).Config().ConnString())
	require.NoError(t, err)
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	simple, err := pgxpool.NewWithConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(simple.Close)
	storagetest.Run(t, func(t *testing.T) webhook.Storage {
		migrated := newStore(t)
		s, err := pgstore.New(simple, &pgstore.Config{Schema: migrated.Schema()})
		require.NoError(t, err)
		s.UseCallerClock()
		return s
	})
}
