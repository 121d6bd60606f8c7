package memstore_test

import (
	"errors"
	"testing"

	"go.uber.org/goleak"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
	"github.com/analytics-webhooks/webhook/storage/storagetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) webhook.Storage { return memstore.New(nil) })
}

func TestQueueLimit(t *testing.T) {
	store := memstore.New(&memstore.Config{MaxActive: 3})
	svc, err := webhook.NewService(store, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := svc.Create(t.Context(), &webhook.Webhook{Name: "w", URL: "https://example.com/", Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}}); err != nil {
			t.Fatal(i, err)
		}
	}
	if ids, err := svc.TriggerEvent(t.Context(), "e", nil, ""); err != nil || len(ids) != 2 {
		t.Fatalf("first trigger: %v, %v", ids, err)
	}
	// Two more would make four unfinished deliveries: refused, all or nothing.
	ids, err := svc.TriggerEvent(t.Context(), "e", nil, "")
	if !errors.Is(err, webhook.ErrQueueFull) || ids != nil {
		t.Fatalf("second trigger: %v, %v; want ErrQueueFull", ids, err)
	}
	w, err := svc.Create(t.Context(), &webhook.Webhook{Name: "other", URL: "https://example.com/", Triggers: []webhook.Trigger{{Type: webhook.TriggerError}}})
	if err != nil {
		t.Fatal(err)
	}
	if ids, err := svc.TriggerError(t.Context(), "E", "m", nil, ""); err != nil || len(ids) != 1 {
		t.Fatalf("a trigger that fits: %v, %v", ids, err)
	}
	if ds, _ := store.ListDeliveries(t.Context(), webhook.ListDeliveriesParams{WebhookID: w.ID}); len(ds) != 1 {
		t.Fatalf("got %d deliveries", len(ds))
	}
}

func TestNegativeMaxActiveMeansNoLimit(t *testing.T) {
	for _, tc := range []struct {
		max  int
		full bool
	}{{max: 2, full: true}, {max: -1, full: false}} {
		svc, err := webhook.NewService(memstore.New(&memstore.Config{MaxActive: tc.max}), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Create(t.Context(), &webhook.Webhook{Name: "w", URL: "https://example.com/", Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}}); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err = svc.TriggerEvent(t.Context(), "e", nil, ""); err != nil {
				t.Fatal(err)
			}
		}
		_, err = svc.TriggerEvent(t.Context(), "e", nil, "")
		if got := errors.Is(err, webhook.ErrQueueFull); got != tc.full {
			t.Errorf("MaxActive %d, third trigger: %v; want queue full %v", tc.max, err, tc.full)
		}
	}
}
