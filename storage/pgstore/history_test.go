package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/storage/pgstore"
	"github.com/analytics-webhooks/webhook/storage/storagetest"
)

// queryCounter is a pgx tracer counting the statements sent.
type queryCounter struct {
	n atomic.Int64
}

func (c *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}

func (c *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// countedStore returns a migrated store in a schema of its own (dropped
// when the test ends) over a pool of its own whose statements c counts.
func countedStore(t *testing.T, c *queryCounter) *pgstore.Store {
	t.Helper()
	testPool(t) // skips without a database
	cfg, err := pgxpool.ParseConfig(os.Getenv(urlEnv))
	require.NoError(t, err)
	cfg.ConnConfig.Tracer = c
	p, err := pgxpool.NewWithConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	s, err := pgstore.New(p, &pgstore.Config{Schema: schema})
	require.NoError(t, err)
	require.NoError(t, s.Migrate(t.Context()))
	t.Cleanup(func() { _, _ = p.Exec(context.Background(), `DROP SCHEMA `+schema+` CASCADE`) })
	return s
}

// withoutHistoryReader hides a Storage's HistoryReader, for the Service's
// per-delivery path.
type withoutHistoryReader struct{ webhook.Storage }

// A history page of 100 deliveries with their attempts is one statement,
// through the Service too; without HistoryReader it is one per delivery
// more.
func TestHistoryPageIsOneStatement(t *testing.T) {
	var c queryCounter
	s := countedStore(t, &c)
	hook := uuid.Must(uuid.NewV7()).String()
	storagetest.FillHistory(t, s, hook, 100, 3)
	p := webhook.ListDeliveriesParams{WebhookID: hook, Statuses: []webhook.DeliveryStatus{webhook.StatusFailed, webhook.StatusRetrying}}

	c.n.Store(0)
	ds, err := s.ListDeliveriesWithAttempts(t.Context(), p)
	require.NoError(t, err)
	require.Len(t, ds, 100)
	require.Len(t, ds[99].Attempts, 3)
	require.EqualValues(t, 1, c.n.Load())

	svc, err := webhook.NewService(s, nil)
	require.NoError(t, err)
	c.n.Store(0)
	viaService, err := svc.ListDeliveries(t.Context(), p)
	require.NoError(t, err)
	require.EqualValues(t, 1, c.n.Load())
	require.Equal(t, ds, viaService)

	old, err := webhook.NewService(withoutHistoryReader{s}, nil)
	require.NoError(t, err)
	c.n.Store(0)
	perDelivery, err := old.ListDeliveries(t.Context(), p)
	require.NoError(t, err)
	require.EqualValues(t, 101, c.n.Load())
	require.Equal(t, ds, perDelivery, "both paths read the same")
}
