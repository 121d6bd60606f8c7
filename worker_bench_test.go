package webhook_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
)

// countDoer answers 204 without a network, or passes each request to
// next, and counts the answers; done is closed at the want-th.
type countDoer struct {
	next webhook.Doer
	n    atomic.Int64
	want int64
	done chan struct{}
}

func (d *countDoer) Do(r *http.Request) (*http.Response, error) {
	var resp *http.Response
	var err error
	if d.next != nil {
		resp, err = d.next.Do(r)
	} else {
		_, _ = io.Copy(io.Discard, r.Body)
		resp = &http.Response{StatusCode: http.StatusNoContent, Header: http.Header{}, Body: http.NoBody}
	}
	if d.n.Add(1) == d.want {
		close(d.done)
	}
	return resp, err
}

// claimTally counts the claims made of a memstore.
type claimTally struct {
	*memstore.Store
	claims atomic.Int64
}

func (c *claimTally) ClaimDeliveries(ctx context.Context, p webhook.ClaimParams) ([]*webhook.Claim, error) {
	c.claims.Add(1)
	return c.Store.ClaimDeliveries(ctx, p)
}

// BenchmarkWorkerMemstore measures a Worker draining a memstore backlog
// of b.N deliveries to 50 webhooks, enqueued first (not timed) through
// TriggerEvent, as the bench harness's memstore contender does: CPU per
// delivery of the worker's own work ("instant": a Doer that answers at
// once) and with net/http to a local server ("http").
func BenchmarkWorkerMemstore(b *testing.B) {
	for _, mode := range []string{"instant", "http"} {
		b.Run(mode, func(b *testing.B) { benchWorkerMemstore(b, mode == "http") })
	}
}

func benchWorkerMemstore(b *testing.B, overHTTP bool) {
	const hooks = 50
	ctx := context.Background()
	doer := &countDoer{done: make(chan struct{})}
	url := "https://bench.example/hook"
	if overHTTP {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusNoContent)
		}))
		defer srv.Close()
		url = srv.URL + "/hook"
		doer.next = webhook.NewHTTPClient(&webhook.ClientConfig{Network: webhook.NetworkPolicy{AllowPrivate: true}})
	}
	store := &claimTally{Store: memstore.New(&memstore.Config{MaxActive: -1, MaxActiveBytes: -1})}
	svc, err := webhook.NewService(store,
		&webhook.Config{Doer: doer, Network: webhook.NetworkPolicy{AllowPrivate: true}})
	if err != nil {
		b.Fatal(err)
	}
	for i := range hooks {
		if _, err := svc.Create(ctx, &webhook.Webhook{Name: fmt.Sprint("bench-", i), URL: url,
			Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent, Events: []string{"bench.event"}}}}); err != nil {
			b.Fatal(err)
		}
	}
	events := (b.N + hooks - 1) / hooks
	doer.want = int64(events * hooks)
	pad := strings.Repeat("x", 860)
	for i := range events {
		if _, err := svc.TriggerEvent(ctx, "bench.event", map[string]any{"seq": i, "customer": fmt.Sprint("c_", i%1000), "pad": pad}, "production"); err != nil {
			b.Fatal(err)
		}
	}
	w, err := webhook.NewWorker(svc, &webhook.WorkerConfig{Concurrency: 32, MaxPerHost: 32})
	if err != nil {
		b.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	b.ResetTimer()
	go func() { runErr <- w.Run(runCtx) }()
	select {
	case <-doer.done:
	case <-time.After(5 * time.Minute):
		b.Fatal("timed out")
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(doer.want), "cpu-µs/delivery")
	b.ReportMetric(float64(store.claims.Load())/float64(doer.want), "claims/delivery")
	stop()
	if err := <-runErr; err != nil && !errors.Is(err, context.Canceled) {
		b.Fatal(err)
	}
}

// cpuTime returns the CPU time (user and system) the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
