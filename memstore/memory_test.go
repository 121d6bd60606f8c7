package memstore_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
	"github.com/google/uuid"
)

// queue enqueues n deliveries, fanout per call (each its own payload and
// webhook, with one body for every webhook but for its webhook_id, as a
// trigger call writes them), and returns the bytes of their bodies.
func queue(tb testing.TB, s *memstore.Store, n, fanout int, data string) int {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	bodies := 0
	// A trigger call names each webhook by the index's copy of its ID,
	// one string for all its deliveries.
	wids := make([]string, fanout)
	for j := range wids {
		wids[j] = fmt.Sprintf("00000000-0000-0000-0000-%012d", j)
	}
	for i := 0; i < n; i += fanout {
		var p webhook.EnqueueParams
		p.Now = now
		for j := range fanout {
			pid, did, wid := uuid.NewString(), uuid.NewString(), wids[j]
			body := []byte(`{"id":"` + pid + `","webhook_id":"` + wid + `","event_type":"e","timestamp":"2026-12-01T12:00:00Z","data":` + data + `,"environment":""}`)
			bodies += len(body)
			p.Payloads = append(p.Payloads, &webhook.Payload{ID: pid, WebhookID: wid, EventType: "e", Timestamp: now, Body: body})
			p.Deliveries = append(p.Deliveries, &webhook.Delivery{ID: did, WebhookID: wid, PayloadID: pid, EventType: "e",
				Status: webhook.StatusPending, NextAttemptAt: now, CreatedAt: now})
		}
		if _, err := s.Enqueue(ctx, p); err != nil {
			tb.Fatal(err)
		}
	}
	return bodies
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkQueuedMemory reports the heap a Store holds per queued
// delivery of 100,000, beyond the bytes of the request bodies:
// "B/delivery" for one delivery per trigger call, and, for fan-outs of
// 50 webhooks of a 1 KiB event, the heap per delivery in all
// ("fanout-B/delivery", its body included).
func BenchmarkQueuedMemory(b *testing.B) {
	const n = 100_000
	data := `{"plan":"pro"}`
	big := `{"blob":"` + fmt.Sprintf("%01000d", 0) + `"}`
	for b.Loop() {
		before := heap()
		s := memstore.New(&memstore.Config{MaxActive: -1})
		bodies := queue(b, s, n, 1, data)
		after := heap()
		b.ReportMetric(float64(int64(after)-int64(before)-int64(bodies))/n, "B/delivery")
		b.ReportMetric(float64(bodies)/n, "body-B")
		runtime.KeepAlive(s)

		before = heap()
		s = memstore.New(&memstore.Config{MaxActive: -1})
		bodies = queue(b, s, n, 50, big)
		after = heap()
		b.ReportMetric(float64(int64(after)-int64(before))/n, "fanout-B/delivery")
		b.ReportMetric(float64(bodies)/n, "fanout-body-B")
		runtime.KeepAlive(s)
	}
}
