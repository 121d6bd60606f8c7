package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/analytics-webhooks/webhook"
)

// benchEvent is the event every throughput webhook subscribes to.
const benchEvent = "bench.event"

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// padCache holds the filler strings by length, built once each.
var padCache sync.Map

func padding(n int) string {
	if s, ok := padCache.Load(n); ok {
		return s.(string)
	}
	s, _ := padCache.LoadOrStore(n, strings.Repeat("x", n))
	return s.(string)
}

// eventData is the data of the i-th benchmark event: pad bytes of
// filler make a body of about 1 KiB.
func eventData(i, pad int) map[string]any {
	return map[string]any{"seq": i, "customer": "c_" + strconv.Itoa(i%1000), "pad": padding(pad)}
}

// envelope is the body the raw and River contenders send: the library's
// wire format, for the same size and shape.
func envelope(msgID, hookID string, i, pad int) []byte {
	return fmt.Appendf(nil, `{"id":%q,"webhook_id":%q,"event_type":%q,"timestamp":%q,"data":{"customer":"c_%d","pad":%q,"seq":%d},"environment":"production"}`,
		msgID, hookID, benchEvent, time.Now().UTC().Format(time.RFC3339Nano), i%1000, padding(pad), i)
}

// createHooks creates n webhooks posting to the receiver, subscribed to
// benchEvent.
func createHooks(ctx context.Context, svc *webhook.Service, receiver string, n int) ([]hookSpec, error) {
	out := make([]hookSpec, 0, n)
	for i := range n {
		h, err := svc.Create(ctx, &webhook.Webhook{
			Name:     "bench-" + strconv.Itoa(i),
			URL:      receiver + "/hook",
			Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent, Events: []string{benchEvent}}},
		})
		if err != nil {
			return nil, err
		}
		out = append(out, hookSpec{ID: h.ID, URL: h.URL, Secret: h.Secret})
	}
	return out, nil
}

func hookIDs(hs []hookSpec) []string {
	ids := make([]string, len(hs))
	for i, h := range hs {
		ids[i] = h.ID
	}
	return ids
}

func secretsOf(hs []hookSpec) map[string]string {
	m := make(map[string]string, len(hs))
	for _, h := range hs {
		m[h.ID] = h.Secret
	}
	return m
}

// countDelivered counts the delivered deliveries of the webhooks through
// the public history API.
func countDelivered(ctx context.Context, svc *webhook.Service, ids []string) (int, error) {
	n := 0
	for _, id := range ids {
		before := ""
		for {
			page, err := svc.ListDeliveries(ctx, webhook.ListDeliveriesParams{WebhookID: id, Status: webhook.StatusDelivered, Before: before, Limit: webhook.MaxPageSize})
			if err != nil {
				return n, err
			}
			n += len(page)
			if len(page) < webhook.PageLimit(webhook.MaxPageSize) {
				break
			}
			before = page[len(page)-1].ID
		}
	}
	return n, nil
}
