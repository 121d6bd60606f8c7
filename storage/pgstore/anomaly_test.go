package pgstore_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/storage/pgstore"
)

// anomalyClock is a settable clock shared by the Services of a test.
type anomalyClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *anomalyClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *anomalyClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// heldStore makes the next n TriggerStates calls return together (see
// hold), so that the Services reading them decide on the same version,
// and counts the compare-and-sets that lost.
type heldStore struct {
	*pgstore.Store
	mu      sync.Mutex
	waiting int
	release chan struct{}
	lost    int
}

func (h *heldStore) hold(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.waiting, h.release = n, make(chan struct{})
}

func (h *heldStore) TriggerStates(ctx context.Context, ids []string) ([]*webhook.TriggerState, error) {
	st, err := h.Store.TriggerStates(ctx, ids)
	h.mu.Lock()
	release := h.release
	if h.waiting > 0 {
		h.waiting--
		if h.waiting == 0 {
			close(release)
		}
	} else {
		release = nil
	}
	h.mu.Unlock()
	if release != nil {
		select {
		case <-release:
		case <-time.After(10 * time.Second):
			return nil, errors.New("heldStore: the other reader never came")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return st, err
}

func (h *heldStore) SaveTriggerState(ctx context.Context, p webhook.SaveTriggerStateParams) (webhook.EnqueueResult, error) {
	res, err := h.Store.SaveTriggerState(ctx, p)
	if errors.Is(err, webhook.ErrConflict) {
		h.mu.Lock()
		h.lost++
		h.mu.Unlock()
	}
	return res, err
}

// Two Services on one PostgreSQL database evaluating the same anomaly
// trigger at once, bucket after bucket, send one "$anomaly" and one
// "$anomaly_resolved", and the detector sees each bucket once.
func TestAnomalyTwoServicesNotifyOnce(t *testing.T) {
	store := &heldStore{Store: newStore(t)}
	t0 := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	clock := &anomalyClock{now: t0}
	one, err := webhook.NewService(store, &webhook.Config{Now: clock.Now})
	require.NoError(t, err)
	two, err := webhook.NewService(store, &webhook.Config{Now: clock.Now})
	require.NoError(t, err)
	ctx := t.Context()
	w, err := one.Tenant("acme").Create(ctx, &webhook.Webhook{Name: "race", URL: "https://example.com/race", Triggers: []webhook.Trigger{{
		Type: webhook.TriggerAnomaly, Metric: "signups", Aggregation: webhook.AggregateSum, BucketSeconds: 60, Sensitivity: 4.5,
	}}})
	require.NoError(t, err)

	r := rand.New(rand.NewPCG(3, 1))
	const n = 50
	for i := range n {
		v := 100 + 5*r.NormFloat64()
		if i == 40 {
			v = 300
		}
		start := t0.Add(time.Duration(i) * time.Minute)
		require.NoError(t, store.AddMetricBuckets(ctx, []webhook.MetricBucket{{
			TenantID: "acme", Metric: "signups", Environment: "production", Start: start,
			Count: 1, Sum: v, Min: v, Max: v, Last: v, LastAt: start,
		}}))
		clock.set(start.Add(time.Minute + 5*time.Second))
		store.hold(2)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for k, svc := range []*webhook.Service{one, two} {
			wg.Go(func() { errs[k] = svc.Evaluate(ctx) })
		}
		wg.Wait()
		require.NoError(t, errors.Join(errs...), "bucket %d", i)
	}

	ds, err := one.Deliveries(ctx, w.ID, 100)
	require.NoError(t, err)
	types := make(map[string]int)
	for _, d := range ds {
		types[d.EventType]++
	}
	assert.Equal(t, map[string]int{webhook.EventTypeAnomaly: 1, webhook.EventTypeAnomalyResolved: 1}, types)
	st, err := store.TriggerStates(ctx, []string{w.ID})
	require.NoError(t, err)
	require.Len(t, st, 1)
	assert.Equal(t, int64(n), st[0].Detector.Buckets, "no bucket twice")
	assert.Equal(t, "acme", st[0].TenantID)
	assert.Equal(t, webhook.AnomalyAbove, st[0].Detector.Side)
	store.mu.Lock()
	defer store.mu.Unlock()
	assert.Positive(t, store.lost, "the Services raced")
}
