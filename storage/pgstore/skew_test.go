package pgstore_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/storage/pgstore"
)

// skewed returns a service over store whose clock is off by skew.
func skewed(t *testing.T, store webhook.Storage, skew time.Duration) *webhook.Service {
	t.Helper()
	svc, err := webhook.NewService(store, &webhook.Config{
		Network:        testNetwork(),
		RequestTimeout: 5 * time.Second,
		Now:            func() time.Time { return time.Now().Add(skew) },
	})
	require.NoError(t, err)
	return svc
}

func TestClockSkewNeitherStealsLeasesNorBurnsAttempts(t *testing.T) {
	ctx := t.Context()
	var hits atomic.Int32
	arrived, release := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			close(arrived)
			select { // the first request hangs while its lease is live
			case <-release:
			case <-r.Context().Done():
			}
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	defer close(release)

	// Two machines on one database, their clocks 4 minutes apart: the
	// leases are 20 s.
	store := newStore(t)
	slow := skewed(t, store, -2*time.Minute)
	fast := skewed(t, sameSchema(t, store), 2*time.Minute)
	cfg := &webhook.WorkerConfig{LeaseDuration: 20 * time.Second, PollInterval: 50 * time.Millisecond}
	slowWorker, err := webhook.NewWorker(slow, cfg)
	require.NoError(t, err)
	fastWorker, err := webhook.NewWorker(fast, cfg)
	require.NoError(t, err)
	hook := createHook(t, slow, srv.URL)

	ids, err := slow.TriggerEvent(ctx, "e", nil, "")
	require.NoError(t, err)
	require.Len(t, ids, 1)
	runCtx, stop := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	go func() { stopped <- slowWorker.Run(runCtx) }()
	defer func() { stop(); require.NoError(t, awaitValue(t, stopped, "Run to return")) }()
	select {
	case <-arrived:
	case <-time.After(20 * time.Second):
		t.Fatal("the slow worker did not send")
	}

	// The slow worker's lease is live; by the fast worker's clock it
	// expired minutes ago. The fast worker must leave it alone.
	n, err := fastWorker.RunOnce(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "a live lease was claimed by a worker with a fast clock")
	assert.Equal(t, int32(1), hits.Load(), "the delivery was sent twice")

	select {
	case release <- struct{}{}:
	case <-time.After(20 * time.Second):
		t.Fatal("the first request no longer waits")
	}
	eventually(t, 20*time.Second, func() bool {
		d, err := store.GetDelivery(ctx, ids[0])
		require.NoError(t, err)
		return d.Status == webhook.StatusDelivered
	}, "the slow worker's attempt was not recorded")
	atts, err := store.ListAttempts(ctx, ids[0])
	require.NoError(t, err)
	require.Len(t, atts, 1, "no attempt was burned")
	assert.Equal(t, 1, atts[0].Number)
	assert.Equal(t, http.StatusNoContent, atts[0].StatusCode)

	// The fast worker measures its lease on its own clock: it sends,
	// rather than finding the lease (on the database's clock) too short.
	ids, err = fast.TriggerEvent(ctx, "e", nil, "")
	require.NoError(t, err)
	require.Len(t, ids, 1)
	stop()
	require.NoError(t, awaitValue(t, stopped, "Run to return"))
	stopped <- nil // for the deferred stop
	onceCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	n, err = fastWorker.RunOnce(onceCtx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	d, err := fast.Delivery(ctx, ids[0])
	require.NoError(t, err)
	assert.Equal(t, webhook.StatusDelivered, d.Status)
	assert.Equal(t, 1, d.Attempt)
	assert.Equal(t, hook.ID, d.WebhookID)
}

// A delivery enqueued already leased (as Service.Test does) keeps its
// lease for its whole duration on the database's clock, whatever the
// enqueuing caller's clock says: a caller ten minutes behind must not
// enqueue a lease that is expired the moment it lands.
func TestEnqueuedLeaseRunsOnTheDatabaseClock(t *testing.T) {
	ctx := t.Context()
	store := newStore(t)
	behind := time.Now().Add(-10 * time.Minute).UTC().Truncate(time.Microsecond)
	hookID, payloadID, deliveryID := uuid.NewString(), uuid.NewString(), uuid.NewString()
	_, err := store.Enqueue(ctx, webhook.EnqueueParams{
		Now: behind,
		Payloads: []*webhook.Payload{{
			ID: payloadID, WebhookID: hookID, EventType: webhook.EventTypeTest, Body: []byte(`{}`), Timestamp: behind,
		}},
		Deliveries: []*webhook.Delivery{{
			ID: deliveryID, WebhookID: hookID, PayloadID: payloadID, EventType: webhook.EventTypeTest,
			Status: webhook.StatusDelivering, Attempt: 1, NextAttemptAt: behind, CreatedAt: behind, MaxAttempts: 1,
		}},
		Lease: &webhook.Lease{Token: uuid.NewString(), WorkerID: "test", ExpiresAt: behind.Add(time.Minute)},
	})
	require.NoError(t, err)
	// Another worker, its clock right, claims: the lease is live for a
	// minute of database time, so nothing is claimed.
	claims, err := store.ClaimDeliveries(ctx, webhook.ClaimParams{
		Now: time.Now().UTC(), Limit: 10, WorkerID: "other", LeaseDuration: time.Minute,
	})
	require.NoError(t, err)
	assert.Empty(t, claims, "a live lease was claimed by another worker")
}

// A claim by a caller whose clock is far from the database's logs a
// warning, once, naming the skew; one within MaxClockSkew logs nothing.
// The skew logged is the caller's time minus the database's at the
// claim, a little less than the injected skew (the claim runs after its
// caller read the time), by however long the claim took to reach the
// database: under load, up to seconds.
func TestClaimWarnsOfClockSkew(t *testing.T) {
	const tolerance = 20 * time.Second // less than MaxClockSkew: a warning is still about the skew
	require.Less(t, tolerance, pgstore.MaxClockSkew)
	ctx := t.Context()
	base := newStore(t)
	for _, tc := range []struct {
		skew time.Duration
		warn bool
	}{{skew: 0, warn: false}, {skew: 5 * time.Minute, warn: true}, {skew: -5 * time.Minute, warn: true}} {
		logs := &recordedLogs{}
		store, err := pgstore.New(testPool(t), &pgstore.Config{Schema: base.Schema(), Logger: slog.New(logs)})
		require.NoError(t, err)
		svc := skewed(t, store, tc.skew)
		createHook(t, svc, "https://example.com/")
		for range 2 {
			_, err := svc.TriggerEvent(ctx, "e", nil, "")
			require.NoError(t, err)
			claims, err := store.ClaimDeliveries(ctx, webhook.ClaimParams{Now: time.Now().Add(tc.skew).UTC(), Limit: 10, WorkerID: "w", LeaseDuration: time.Minute})
			require.NoError(t, err)
			require.NotEmpty(t, claims)
		}
		var warnings []slog.Record
		for _, r := range logs.all() {
			if strings.Contains(r.Message, "clock is far from the database's") {
				warnings = append(warnings, r)
			}
		}
		if !tc.warn {
			assert.Empty(t, warnings, "no warning without skew")
			continue
		}
		require.Len(t, warnings, 1, "one warning for two claims")
		assert.Equal(t, slog.LevelWarn, warnings[0].Level)
		var logged slog.Value
		var found bool
		warnings[0].Attrs(func(a slog.Attr) bool {
			if a.Key == "skew" {
				logged, found = a.Value, true
			}
			return true
		})
		require.True(t, found, "the warning names the skew")
		require.Equal(t, slog.KindDuration, logged.Kind(), "the skew is a duration, not %v", logged.Kind())
		assert.InDelta(t, tc.skew, logged.Duration(), float64(tolerance), "logged skew %v, injected %v", logged.Duration(), tc.skew)
	}
}

// recordedLogs is a slog.Handler that keeps every record.
type recordedLogs struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *recordedLogs) Enabled(context.Context, slog.Level) bool { return true }

func (l *recordedLogs) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r.Clone())
	return nil
}

func (l *recordedLogs) WithAttrs([]slog.Attr) slog.Handler { return l } // pgstore adds none
func (l *recordedLogs) WithGroup(string) slog.Handler      { return l }

func (l *recordedLogs) all() []slog.Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.records)
}
