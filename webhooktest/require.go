package webhooktest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/analytics-webhooks/webhook"
)

// Messages returns the messages of eventType (every type for "") that
// svc's Storage holds for its webhooks, oldest first, each with its
// Delivery, whatever their status. Deliveries of deleted webhooks are not
// listed. It fails the test on a storage error.
func Messages(t testing.TB, svc *webhook.Service, eventType string) []*Message {
	t.Helper()
	ms, err := messages(t.Context(), svc, eventType)
	if err != nil {
		t.Fatalf("webhooktest: %v", err)
	}
	slices.Reverse(ms)
	return ms
}

// RequireEnqueued fails the test unless svc's Storage holds a delivery of
// eventType (any type for "") whose message match accepts (nil accepts
// any), in any status, and returns the most recent such message. Use it
// right after the call under test, before anything is sent.
func RequireEnqueued(t testing.TB, svc *webhook.Service, eventType string, match func(*Message) bool) *Message {
	t.Helper()
	return require(t, svc, eventType, match, "")
}

// RequireDelivered fails the test unless svc's Storage holds a delivered
// delivery (one whose endpoint answered 2xx) of eventType (any type for
// "") whose message match accepts (nil accepts any), and returns the
// most recent such message. Drain first.
func RequireDelivered(t testing.TB, svc *webhook.Service, eventType string, match func(*Message) bool) *Message {
	t.Helper()
	return require(t, svc, eventType, match, webhook.StatusDelivered)
}

// RequireNotEnqueued fails the test if svc's Storage holds any delivery
// of eventType (any type for "") whose message match accepts (nil
// accepts any).
func RequireNotEnqueued(t testing.TB, svc *webhook.Service, eventType string, match func(*Message) bool) {
	t.Helper()
	requireNot(t, svc, eventType, match, "")
}

// RequireNotDelivered fails the test if svc's Storage holds a delivered
// delivery of eventType (any type for "") whose message match accepts
// (nil accepts any). Deliveries still pending, retrying or failed do not
// count.
func RequireNotDelivered(t testing.TB, svc *webhook.Service, eventType string, match func(*Message) bool) {
	t.Helper()
	requireNot(t, svc, eventType, match, webhook.StatusDelivered)
}

func require(t testing.TB, svc *webhook.Service, eventType string, match func(*Message) bool, status webhook.DeliveryStatus) *Message {
	t.Helper()
	all, err := messages(t.Context(), svc, eventType)
	if err != nil {
		t.Fatalf("webhooktest: %v", err)
		return nil
	}
	for _, m := range all {
		if found(m, match, status) {
			return m
		}
	}
	t.Fatalf("webhooktest: no %s message%s matched; %s", describe(status), ofType(eventType), summary(all))
	return nil
}

func requireNot(t testing.TB, svc *webhook.Service, eventType string, match func(*Message) bool, status webhook.DeliveryStatus) {
	t.Helper()
	all, err := messages(t.Context(), svc, eventType)
	if err != nil {
		t.Fatalf("webhooktest: %v", err)
		return
	}
	for _, m := range all {
		if found(m, match, status) {
			t.Fatalf("webhooktest: want no %s message%s that matches, found delivery %s (%s) to webhook %s: %s",
				describe(status), ofType(eventType), m.Delivery.ID, m.Delivery.Status, m.WebhookID, dataOf(m))
			return
		}
	}
}

// found reports whether m is in status (any for "") and matches.
func found(m *Message, match func(*Message) bool, status webhook.DeliveryStatus) bool {
	return (status == "" || m.Delivery.Status == status) && (match == nil || match(m))
}

func describe(status webhook.DeliveryStatus) string {
	if status == "" {
		return "enqueued"
	}
	return string(status)
}

func ofType(eventType string) string {
	if eventType == "" {
		return ""
	}
	return fmt.Sprintf(" of event type %q", eventType)
}

// summary describes what was found, for a failure message.
func summary(all []*Message) string {
	if len(all) == 0 {
		return "there are none"
	}
	counts := map[string]int{}
	for _, m := range all {
		counts[fmt.Sprintf("%s (%s)", m.EventType, m.Delivery.Status)]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("found ")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d × %s", counts[k], k)
	}
	fmt.Fprintf(&b, "; the latest has data %s", dataOf(all[0]))
	return b.String()
}

func dataOf(m *Message) string {
	return fmt.Sprintf("%v", m.Data)
}

// messages lists the messages of eventType ("" for all) for every
// webhook of svc, newest first.
func messages(ctx context.Context, svc *webhook.Service, eventType string) ([]*Message, error) {
	store := svc.Storage()
	var out []*Message
	after := ""
	for {
		hooks, err := svc.List(ctx, webhook.ListWebhooksParams{After: after, Limit: webhook.MaxPageSize})
		if err != nil {
			return nil, fmt.Errorf("listing webhooks: %w", err)
		}
		for _, w := range hooks {
			before := ""
			for {
				ds, err := store.ListDeliveries(ctx, webhook.ListDeliveriesParams{WebhookID: w.ID, Before: before, Limit: webhook.MaxPageSize})
				if err != nil {
					return nil, fmt.Errorf("webhook %s: listing deliveries: %w", w.ID, err)
				}
				for _, d := range ds {
					if eventType != "" && d.EventType != eventType {
						continue
					}
					pl, err := store.GetPayload(ctx, d.PayloadID)
					if err != nil {
						return nil, fmt.Errorf("delivery %s: %w", d.ID, err)
					}
					m, err := DecodeMessage(pl.Body)
					if err != nil {
						return nil, fmt.Errorf("delivery %s: decoding its payload: %w", d.ID, err)
					}
					m.Delivery = d
					out = append(out, m)
				}
				if len(ds) < webhook.MaxPageSize {
					break
				}
				before = ds[len(ds)-1].ID
			}
		}
		if len(hooks) < webhook.MaxPageSize {
			break
		}
		after = hooks[len(hooks)-1].ID
	}
	// Newest first over all webhooks: IDs are time-ordered.
	sort.SliceStable(out, func(i, j int) bool { return out[i].Delivery.ID > out[j].Delivery.ID })
	return out, nil
}
