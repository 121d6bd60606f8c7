package webhook_test

import (
	"context"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
)

// BenchmarkInstrumentation measures a trigger call, and a trigger call
// with its delivery (claim, request through a Doer that answers at once,
// record), on memstore: "default" with the default providers (the
// global ones, with no SDK installed: what a host that installs none
// pays), "sdk" with the OpenTelemetry SDK recording every span and
// metric. BenchmarkTelemetryCalls (internal) measures the
// instrumentation's own calls for the same work.
func BenchmarkInstrumentation(b *testing.B) {
	for _, sdk := range []bool{false, true} {
		name := "default"
		cfg := &webhook.Config{WebhookCacheTTL: time.Hour, Doer: &instantDoer{}}
		if sdk {
			name = "sdk"
			cfg.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			cfg.TracerProvider = sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
		}
		b.Run("TriggerEvent/"+name, func(b *testing.B) {
			svc, _ := benchService(b, cfg)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if ids, err := svc.TriggerEvent(ctx, "purchase", map[string]any{"amount": 42}, "production"); err != nil || len(ids) != 1 {
					b.Fatal(ids, err)
				}
			}
		})
		b.Run("TriggerAndDeliver/"+name, func(b *testing.B) {
			svc, worker := benchService(b, cfg)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if ids, err := svc.TriggerEvent(ctx, "purchase", map[string]any{"amount": 42}, "production"); err != nil || len(ids) != 1 {
					b.Fatal(ids, err)
				}
				if n, err := worker.RunOnce(ctx); err != nil || n != 1 {
					b.Fatal(n, err)
				}
			}
		})
	}
}

func benchService(b *testing.B, cfg *webhook.Config) (*webhook.Service, *webhook.Worker) {
	b.Helper()
	svc, err := webhook.NewService(memstore.New(nil), cfg)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := svc.Create(context.Background(), &webhook.Webhook{Name: "w", URL: "https://example.com/hook",
		Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}}); err != nil {
		b.Fatal(err)
	}
	worker, err := webhook.NewWorker(svc, nil)
	if err != nil {
		b.Fatal(err)
	}
	return svc, worker
}
