// Command quickstart shows the library end to end in a few seconds, with
// no services to start: an in-memory store, a local receiver that
// verifies every signature, webhooks for events, errors and a threshold
// alert that fires once while the metric stays high and resolves once,
// one endpoint that fails twice before it succeeds, and the delivery
// history with every attempt.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
)

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// 1. A receiver, standing in for your customers' endpoints. It checks
	// each request's Standard Webhooks signature with the webhook's secret.
	var (
		mu      sync.Mutex
		secrets = map[string]string{} // webhook ID → secret
		flaky   atomic.Int32
	)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		secret := secrets[r.Header.Get("X-Webhook-Id")]
		mu.Unlock()
		if err := webhook.Verify(secret, r.Header, body); err != nil {
			fmt.Printf("  receiver %-8s rejected: %v\n", r.URL.Path, err)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if r.URL.Path == "/flaky" && flaky.Add(1) <= 2 {
			fmt.Printf("  receiver %-8s signature ok, answering 503 (try %d)\n", r.URL.Path, flaky.Load())
			http.Error(w, "warming up", http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path == "/alerts" {
			var msg struct {
				EventType string `json:"event_type"`
				Data      struct {
					Reason string   `json:"reason"`
					Value  *float64 `json:"value"`
				} `json:"data"`
			}
			_ = json.Unmarshal(body, &msg)
			value := "none"
			if msg.Data.Value != nil {
				value = fmt.Sprint(*msg.Data.Value)
			}
			fmt.Printf("  receiver %-8s signature ok, %s (%s, value %s)\n", r.URL.Path, msg.EventType, msg.Data.Reason, value)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		fmt.Printf("  receiver %-8s signature ok, webhook-id %s\n", r.URL.Path, r.Header.Get("webhook-id"))
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()

	// 2. The service and a worker over an in-memory store.
	// The receiver is on this machine: allow private addresses, which
	// the library refuses by default.
	svc, err := webhook.NewService(memstore.New(nil), &webhook.Config{Network: webhook.NetworkPolicy{AllowPrivate: true}})
	if err != nil {
		return err
	}
	worker, err := webhook.NewWorker(svc, &webhook.WorkerConfig{PollInterval: 100 * time.Millisecond})
	if err != nil {
		return err
	}
	workerCtx, stopWorker := context.WithCancel(ctx)
	defer stopWorker()
	workerDone := make(chan error, 1)
	go func() { workerDone <- worker.Run(workerCtx) }()

	// 3. Webhooks: one per trigger kind, and one flaky endpoint that
	// retries quickly so the demo stays short.
	recovery := 0.02
	fastRetry := webhook.RetryPolicy{MaxAttempts: 5, InitialDelay: time.Second, MaxDelay: time.Second, Multiplier: 1}
	hooks := []*webhook.Webhook{
		{Name: "orders", URL: receiver.URL + "/orders", Triggers: []webhook.Trigger{{
			Type: webhook.TriggerEvent, Events: []string{"checkout.*"},
			Filters: []webhook.Filter{{Property: "order.total", Operator: webhook.FilterGTE, Value: 100}},
		}}},
		{Name: "errors", URL: receiver.URL + "/errors", Triggers: []webhook.Trigger{{Type: webhook.TriggerError}}},
		// One delivery at a time, so the alert arrives before its
		// resolution.
		{Name: "alerts", URL: receiver.URL + "/alerts", MaxInFlight: 1, Triggers: []webhook.Trigger{{
			Type: webhook.TriggerThreshold,
			// Fires once when the error rate goes above 5%, and resolves
			// once when it is back at or below 2%.
			Conditions: []webhook.Condition{{Metric: "error_rate", Operator: webhook.ConditionGT, Value: 0.05, RecoveryValue: &recovery}},
		}}},
		{Name: "flaky", URL: receiver.URL + "/flaky", Retry: fastRetry, Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent, Events: []string{"signup"}}}},
	}
	fmt.Println("Creating webhooks:")
	for i, h := range hooks {
		created, err := svc.Create(ctx, h)
		if err != nil {
			return err
		}
		hooks[i] = created
		mu.Lock()
		secrets[created.ID] = created.Secret
		mu.Unlock()
		fmt.Printf("  %-7s %s  secret %s…\n", created.Name, created.URL, created.Secret[:12])
	}

	// 4. Your application's code calls the triggers.
	fmt.Println("\nTriggering:")
	var all []string
	report := func(what string) func([]string, error) error {
		return func(ids []string, err error) error {
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			fmt.Printf("  %-44s → deliveries: %d\n", what, len(ids))
			all = append(all, ids...)
			return nil
		}
	}
	for _, err := range []error{
		report(`TriggerEvent("checkout.completed", total 250)`)(svc.TriggerEvent(ctx, "checkout.completed", map[string]any{"order": map[string]any{"id": "o-1", "total": 250}}, "production")),
		report(`TriggerEvent("checkout.completed", total 20)`)(svc.TriggerEvent(ctx, "checkout.completed", map[string]any{"order": map[string]any{"id": "o-2", "total": 20}}, "production")),
		report(`TriggerError("TypeError")`)(svc.TriggerError(ctx, "TypeError", "x is undefined", map[string]any{"file": "app.js"}, "production")),
		report(`TriggerEvent("signup")`)(svc.TriggerEvent(ctx, "signup", map[string]any{"plan": "pro"}, "production")),
	} {
		if err != nil {
			return err
		}
	}
	// A threshold alert: the error rate stays high for three
	// measurements (one alert), sits between 2% and 5% (nothing), then
	// recovers (one resolution).
	for _, v := range []float64{0.08, 0.09, 0.12, 0.04, 0.01} {
		what := fmt.Sprintf(`TriggerThreshold("error_rate", %v, 0.05)`, v)
		if err := report(what)(svc.TriggerThreshold(ctx, "error_rate", v, 0.05, "production")); err != nil {
			return err
		}
	}

	// 5. Wait until every delivery is final, then stop the worker.
	fmt.Println("\nDelivering (the worker runs in the background):")
	for !allFinal(ctx, svc, all) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("deliveries did not finish: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	stopWorker()
	if err := <-workerDone; err != nil {
		return err
	}

	// 6. The history: every delivery with every attempt.
	fmt.Println("\nHistory:")
	for _, h := range hooks {
		ds, err := svc.Deliveries(ctx, h.ID, 10)
		if err != nil {
			return err
		}
		for _, d := range ds {
			fmt.Printf("  %-7s %-20s %-9s after %d attempt(s)\n", h.Name, d.EventType, d.Status, d.Attempt)
			for _, a := range d.Attempts {
				outcome := fmt.Sprintf("HTTP %d", a.StatusCode)
				if a.Error != "" {
					outcome = a.Error
				}
				fmt.Printf("            #%d at %s  %-28s %v\n", a.Number, a.StartedAt.Format("15:04:05.000"), outcome, a.Duration.Round(time.Millisecond))
			}
		}
	}
	for _, id := range all {
		d, err := svc.Delivery(ctx, id)
		if err != nil {
			return err
		}
		if d.Status != webhook.StatusDelivered {
			fmt.Fprintf(os.Stderr, "delivery %s ended %s\n", id, d.Status)
			os.Exit(1)
		}
	}
	fmt.Println("\nEvery delivery arrived, signed and verified.")
	return nil
}

func allFinal(ctx context.Context, svc *webhook.Service, ids []string) bool {
	for _, id := range ids {
		d, err := svc.Delivery(ctx, id)
		if err != nil || !d.Status.Final() {
			return false
		}
	}
	return true
}
