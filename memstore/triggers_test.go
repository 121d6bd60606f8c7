package memstore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
)

// A state change whose enqueue the full queue refuses stores no state.
func TestSaveTriggerStateQueueFull(t *testing.T) {
	store := memstore.New(&memstore.Config{MaxActive: 1})
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	hook := uuid.NewString()
	message := func() *webhook.EnqueueParams {
		pid := uuid.NewString()
		return &webhook.EnqueueParams{
			Payloads: []*webhook.Payload{{ID: pid, WebhookID: hook, EventType: "e", Timestamp: now, Body: []byte(`{}`)}},
			Deliveries: []*webhook.Delivery{{ID: uuid.NewString(), WebhookID: hook, PayloadID: pid, EventType: "e",
				Status: webhook.StatusPending, NextAttemptAt: now, CreatedAt: now}},
			Now: now,
		}
	}
	st := &webhook.TriggerState{Key: "k", WebhookID: hook}
	if _, err := store.SaveTriggerState(t.Context(), webhook.SaveTriggerStateParams{State: st, Enqueue: message(), Now: now}); err != nil {
		t.Fatal(err)
	}
	st.Version = 1
	_, err := store.SaveTriggerState(t.Context(), webhook.SaveTriggerStateParams{State: st, Enqueue: message(), Now: now.Add(time.Second)})
	if !errors.Is(err, webhook.ErrQueueFull) {
		t.Fatalf("got %v, want ErrQueueFull", err)
	}
	got, err := store.TriggerStates(t.Context(), []string{hook})
	if err != nil || len(got) != 1 || got[0].Version != 1 || !got[0].UpdatedAt.Equal(now) {
		t.Fatalf("got %+v, %v: the refused change must store nothing", got, err)
	}
}
