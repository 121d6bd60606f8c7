package webhook_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
)

// BenchmarkIsolation measures what one hanging endpoint costs the others:
// deliveries to 50 healthy webhooks arrive at a steady 400 per second,
// and, in the "hanging" case, one more webhook gets its share too but
// never answers (each attempt waits out the 30 s request timeout). It
// reports the healthy deliveries' latency from trigger to arrival.
// Compare p99-ms of the two cases: isolation holds when "hanging" stays
// within 2× of "baseline". Run with -benchtime=2000x or more.
func BenchmarkIsolation(b *testing.B) {
	for _, hanging := range []bool{false, true} {
		name := "baseline"
		if hanging {
			name = "hanging"
		}
		b.Run(name, func(b *testing.B) { benchIsolation(b, hanging) })
	}
}

func benchIsolation(b *testing.B, hanging bool) {
	const healthy = 50
	var (
		mu        sync.Mutex
		sent      = map[string]time.Time{} // delivery ID → triggered at
		latencies []time.Duration
		done      = make(chan struct{})
	)
	fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		if t, ok := sent[r.Header.Get("X-Delivery-Id")]; ok {
			latencies = append(latencies, now.Sub(t))
			if len(latencies) == b.N {
				close(done)
			}
		}
	}))
	defer fast.Close()
	stop := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(stop)

	ctx := context.Background()
	svc, err := webhook.NewService(memstore.New(nil), &webhook.Config{Network: webhook.NetworkPolicy{AllowPrivate: true}})
	if err != nil {
		b.Fatal(err)
	}
	for i := range healthy {
		if _, err := svc.Create(ctx, &webhook.Webhook{Name: fmt.Sprint("fast", i), URL: fast.URL, Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent, Events: []string{fmt.Sprint("e", i)}}}}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := svc.Create(ctx, &webhook.Webhook{Name: "slow", URL: slow.URL, Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent, Events: []string{"hang"}}}}); err != nil {
		b.Fatal(err)
	}
	w, err := webhook.NewWorker(svc, &webhook.WorkerConfig{ShutdownTimeout: time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	stopped := make(chan error)
	go func() { stopped <- w.Run(runCtx) }()

	b.ResetTimer()
	tick := time.NewTicker(time.Second / 400)
	for i := range b.N {
		<-tick.C
		if hanging && i%healthy == 0 {
			if _, err := svc.TriggerEvent(ctx, "hang", nil, ""); err != nil {
				b.Fatal(err)
			}
		}
		mu.Lock() // hold the receiver until the time is noted
		ids, err := svc.TriggerEvent(ctx, fmt.Sprint("e", i%healthy), nil, "")
		if err == nil {
			sent[ids[0]] = time.Now()
		}
		mu.Unlock()
		if err != nil {
			b.Fatal(err)
		}
	}
	tick.Stop()
	<-done
	b.StopTimer()
	cancel()
	<-stopped

	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkTriggerEvent measures a trigger call (matching, encoding and
// the atomic enqueue into memstore) with many webhooks of which few
// match: the index keeps the cost with the matches, not the total.
func BenchmarkTriggerEvent(b *testing.B) {
	for _, total := range []int{10, 10000} {
		b.Run(fmt.Sprintf("webhooks=%d", total), func(b *testing.B) {
			ctx := context.Background()
			svc, err := webhook.NewService(memstore.New(nil), &webhook.Config{WebhookCacheTTL: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			for i := range total {
				if _, err := svc.Create(ctx, &webhook.Webhook{Name: "w", URL: "https://example.com/", Triggers: []webhook.Trigger{{
					Type: webhook.TriggerEvent, Events: []string{fmt.Sprint("event.", i)},
					Filters: []webhook.Filter{{Property: "plan", Operator: webhook.FilterEquals, Value: "pro"}},
				}}}); err != nil {
					b.Fatal(err)
				}
			}
			data := map[string]any{"plan": "pro", "amount": 42, "user": map[string]any{"id": "u1", "country": "DE"}}
			if _, err := svc.TriggerEvent(ctx, "event.3", data, "production"); err != nil { // load the index
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				ids, err := svc.TriggerEvent(ctx, "event.3", data, "production")
				if err != nil || len(ids) != 1 {
					b.Fatal(ids, err)
				}
			}
		})
	}
}
