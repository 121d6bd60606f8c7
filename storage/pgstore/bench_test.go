package pgstore_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/storage/pgstore"
	"github.com/jackc/pgx/v5"
)

// enqueueN stores at least n due deliveries spread over hooks webhooks,
// in batches, and returns how many.
func enqueueN(b *testing.B, svc *webhook.Service, n int) int {
	b.Helper()
	i := 0
	for i < n {
		ids, err := svc.TriggerEvent(context.Background(), "bench", map[string]any{"i": i, "pad": "0123456789abcdef0123456789abcdef"}, "")
		if err != nil {
			b.Fatal(err)
		}
		i += len(ids)
	}
	return i
}

func benchService(b *testing.B, hooks int, url string) (*webhook.Service, webhook.Storage) {
	b.Helper()
	store := newStore(b)
	svc, err := webhook.NewService(store, &webhook.Config{Network: testNetwork()})
	if err != nil {
		b.Fatal(err)
	}
	for i := range hooks {
		if _, err := svc.Create(context.Background(), &webhook.Webhook{Name: fmt.Sprint("h", i), URL: url, Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}}); err != nil {
			b.Fatal(err)
		}
	}
	return svc, store
}

// BenchmarkClaimRecord measures the storage side of delivery: claiming
// batches of 32 with a lease and recording their results in one batch,
// from several goroutines at once, without HTTP. Reports deliveries per
// second.
func BenchmarkClaimRecord(b *testing.B) {
	for _, claimers := range []int{1, 4, 8} {
		b.Run(fmt.Sprintf("claimers=%d", claimers), func(b *testing.B) {
			svc, store := benchService(b, 10, "https://example.com/")
			enqueueN(b, svc, b.N)
			b.ResetTimer()
			cpu := startCPU(b)
			start := time.Now()
			var wg sync.WaitGroup
			for c := range claimers {
				wg.Go(func() {
					ctx := context.Background()
					for {
						cs, err := store.ClaimDeliveries(ctx, webhook.ClaimParams{WorkerID: fmt.Sprint("c", c), Limit: 32, LeaseDuration: time.Minute, Now: time.Now()})
						if err != nil {
							b.Error(err)
							return
						}
						if len(cs) == 0 {
							return
						}
						ps := make([]webhook.RecordAttemptParams, len(cs))
						for i, cl := range cs {
							ps[i] = webhook.RecordAttemptParams{
								DeliveryID: cl.Delivery.ID, Token: cl.Lease.Token, Status: webhook.StatusDelivered,
								Attempt: webhook.Attempt{StartedAt: time.Now(), StatusCode: 200}, Now: time.Now(),
							}
						}
						errs, err := store.(webhook.BatchRecorder).RecordAttempts(ctx, ps)
						if err != nil {
							b.Error(err)
							return
						}
						for _, err := range errs {
							if err != nil {
								b.Error(err)
								return
							}
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
			cpu.report(b.N)
		})
	}
}

// BenchmarkDeliveryThroughput measures delivery end to end: workers in
// one process claim, sign, POST to a loopback receiver, and record.
// Reports deliveries per second.
func BenchmarkDeliveryThroughput(b *testing.B) {
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()
	// All 50 webhooks share the one receiver, so the per-host cap
	// applies: by default a quarter of the pool (8 requests at once);
	// host=32 lifts it to the whole pool.
	// only: the workers' Service is not the one that enqueued, as in a
	// process that only runs workers (its matching index never loads).
	for _, c := range []struct {
		workers, maxPerHost int
		only                bool
	}{{1, 0, false}, {4, 0, false}, {1, 32, false}, {4, 32, false}, {1, 32, true}} {
		workers := c.workers
		host := "default"
		if c.maxPerHost > 0 {
			host = fmt.Sprint(c.maxPerHost)
		}
		name := fmt.Sprintf("workers=%d/host=%s", workers, host)
		if c.only {
			name += "/worker-only"
		}
		b.Run(name, func(b *testing.B) {
			svc, store := benchService(b, 50, receiver.URL)
			enqueued := enqueueN(b, svc, b.N)
			if c.only {
				var err error
				if svc, err = webhook.NewService(store, &webhook.Config{Network: testNetwork()}); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			cpu := startCPU(b)
			start := time.Now()
			var wg sync.WaitGroup
			var settled atomic.Int64
			for range workers {
				w, err := webhook.NewWorker(svc, &webhook.WorkerConfig{Concurrency: 32, MaxPerWebhook: 4, MaxPerHost: c.maxPerHost})
				if err != nil {
					b.Fatal(err)
				}
				wg.Go(func() {
					n, err := w.RunOnce(context.Background())
					if err != nil {
						b.Error(err)
					}
					settled.Add(int64(n))
				})
			}
			wg.Wait()
			if got := settled.Load(); got != int64(enqueued) {
				b.Errorf("%d deliveries settled, want %d", got, enqueued)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
			cpu.report(b.N)
		})
	}
}

// BenchmarkEnqueueFanOut measures TriggerEvent calls that each match 50
// webhooks with about 1 KiB of data: deliveries enqueued per second,
// CPU per delivery, and the bytes the payloads take in the database per
// delivery (tables, indexes and TOAST).
func BenchmarkEnqueueFanOut(b *testing.B) {
	svc, store := benchService(b, 50, "https://example.com/")
	ctx := context.Background()
	data := map[string]any{"pad": strings.Repeat("0123456789abcdef", 64)}
	b.ResetTimer()
	cpu := startCPU(b)
	start := time.Now()
	n := 0
	for i := range b.N {
		data["i"] = i
		ids, err := svc.TriggerEvent(ctx, "bench", data, "")
		if err != nil {
			b.Fatal(err)
		}
		n += len(ids)
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "deliveries/s")
	cpu.report(n)
	b.StopTimer()
	var size int64
	q := pgx.Identifier{store.(*pgstore.Store).Schema()}.Sanitize()
	if err := testPool(b).QueryRow(ctx, `SELECT pg_total_relation_size('`+q+`.payloads')
		+ coalesce(pg_total_relation_size(to_regclass('`+q+`.payload_tails')), 0)`).Scan(&size); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(size)/float64(n), "payload-B/delivery")
}

// BenchmarkTriggerEventOne measures one caller's TriggerEvent calls that
// match one webhook, with and without an idempotency key (a key makes the
// enqueue wait for the key's insert before it writes the rest).
func BenchmarkTriggerEventOne(b *testing.B) {
	for _, keyed := range []bool{false, true} {
		b.Run(fmt.Sprintf("keyed=%v", keyed), func(b *testing.B) {
			svc, _ := benchService(b, 1, "https://example.com/")
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				var opts []webhook.TriggerOption
				if keyed {
					opts = append(opts, webhook.WithIdempotencyKey(fmt.Sprint("k", i)))
				}
				if _, err := svc.TriggerEvent(ctx, "bench", map[string]any{"i": i}, "", opts...); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
