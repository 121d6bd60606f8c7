package memstore_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
	"github.com/analytics-webhooks/webhook/storage/storagetest"
)

// BenchmarkHistoryPage reads a page of 100 deliveries with their three
// attempts each through Service.ListDeliveries: "batched" through
// HistoryReader, "per-delivery" with a ListAttempts per delivery after
// the page (a Storage without HistoryReader).
func BenchmarkHistoryPage(b *testing.B) {
	s := memstore.New(nil)
	hook := uuid.Must(uuid.NewV7()).String()
	storagetest.FillHistory(b, s, hook, 100, 3)
	for _, path := range []struct {
		name  string
		store webhook.Storage
	}{{"batched", s}, {"per-delivery", struct{ webhook.Storage }{s}}} {
		b.Run(path.name, func(b *testing.B) {
			svc, err := webhook.NewService(path.store, nil)
			if err != nil {
				b.Fatal(err)
			}
			p := webhook.ListDeliveriesParams{WebhookID: hook, Limit: 100}
			for b.Loop() {
				ds, err := svc.ListDeliveries(b.Context(), p)
				if err != nil || len(ds) != 100 || len(ds[0].Attempts) != 3 {
					b.Fatalf("%d deliveries, %v", len(ds), err)
				}
			}
		})
	}
}
