package memstore_test

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
)

// model is what a claim must return, computed the slow way: every
// unfinished delivery sorted by due time, then ID.
type model struct {
	due     map[string]time.Time // unfinished delivery → due
	webhook map[string]string
	token   map[string]string // delivering → lease token
}

func (m *model) pick(p webhook.ClaimParams) []string {
	var ids []string
	for id, at := range m.due {
		if !at.After(p.Now) {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b string) int { return cmp.Or(m.due[a].Compare(m.due[b]), strings.Compare(a, b)) })
	var out []string
	per := map[string]int{}
	for _, id := range ids {
		w := m.webhook[id]
		if len(out) == p.Limit {
			break
		}
		if slices.Contains(p.ExcludeWebhooks, w) || (p.MaxPerWebhook > 0 && per[w] >= p.MaxPerWebhook) {
			continue
		}
		per[w]++
		out = append(out, id)
	}
	return out
}

// TestClaimsFollowDueOrder runs random enqueues, claims (with excluded
// webhooks, caps, expired leases) and results against the store and a
// model that sorts everything, and compares every claim.
func TestClaimsFollowDueOrder(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { claimsFollowDueOrder(t, seed) })
	}
}

func claimsFollowDueOrder(t *testing.T, seed uint64) {
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(seed, 2))
	s := memstore.New(nil)
	m := &model{due: map[string]time.Time{}, webhook: map[string]string{}, token: map[string]string{}}
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	now := t0
	hooks := []string{"a", "b", "c", "d", "e"}
	n := 0
	for step := range 3000 {
		switch r := rng.IntN(10); {
		case r < 4: // enqueue
			n++
			id, w := fmt.Sprintf("d%05d", n), hooks[rng.IntN(len(hooks))]
			at := now.Add(time.Duration(rng.IntN(20)-10) * time.Second)
			pid := "p" + id
			if _, err := s.Enqueue(ctx, webhook.EnqueueParams{Now: now,
				Payloads:   []*webhook.Payload{{ID: pid, WebhookID: w, Body: []byte(id)}},
				Deliveries: []*webhook.Delivery{{ID: id, WebhookID: w, PayloadID: pid, Status: webhook.StatusPending, NextAttemptAt: at, CreatedAt: now}},
			}); err != nil {
				t.Fatal(err)
			}
			m.due[id], m.webhook[id] = at, w
		case r < 7: // claim
			p := webhook.ClaimParams{WorkerID: "w", Limit: 1 + rng.IntN(8), LeaseDuration: time.Duration(1+rng.IntN(5)) * time.Second, Now: now}
			if rng.IntN(2) == 0 {
				p.ExcludeWebhooks = []string{hooks[rng.IntN(len(hooks))]}
			}
			if rng.IntN(2) == 0 {
				p.MaxPerWebhook = 1 + rng.IntN(3)
			}
			want := m.pick(p)
			pre := map[string]time.Time{}
			for _, id := range want {
				pre[id] = m.due[id]
			}
			cs, err := s.ClaimDeliveries(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]string, len(cs))
			for i, c := range cs {
				got[i] = c.Delivery.ID
				if string(c.Payload.Body) != c.Delivery.ID {
					t.Fatalf("claim of %s carries body %q", c.Delivery.ID, c.Payload.Body)
				}
				m.due[c.Delivery.ID] = c.Lease.ExpiresAt
				m.token[c.Delivery.ID] = c.Lease.Token
			}
			if !slices.Equal(got, want) {
				for _, id := range got {
					d, _ := s.GetDelivery(ctx, id)
					t.Logf("%s %s due %v status %s next %v attempt %d", id, m.webhook[id], pre[id], d.Status, d.NextAttemptAt, d.Attempt)
				}
				t.Fatalf("step %d: claim %+v got %v, want %v", step, p, got, want)
			}
		case r < 9: // record a result for a delivering one
			var leased []string
			for id := range m.token {
				leased = append(leased, id)
			}
			if len(leased) == 0 {
				continue
			}
			slices.Sort(leased)
			id := leased[rng.IntN(len(leased))]
			p := webhook.RecordAttemptParams{DeliveryID: id, Token: m.token[id], Now: now, Attempt: webhook.Attempt{StartedAt: now}}
			switch rng.IntN(3) {
			case 0:
				p.Status = webhook.StatusDelivered
			case 1:
				p.Status, p.NextAttemptAt = webhook.StatusRetrying, now.Add(time.Duration(rng.IntN(10))*time.Second)
			default:
				p.Released, p.NextAttemptAt = true, now.Add(time.Duration(rng.IntN(10))*time.Second)
			}
			// The model holds the latest token, also of a lease that
			// expired and was claimed again.
			if err := s.RecordAttempt(ctx, p); err != nil {
				t.Fatalf("step %d: record %s: %v", step, id, err)
			}
			delete(m.token, id)
			if p.Status.Final() {
				delete(m.due, id)
			} else {
				m.due[id] = p.NextAttemptAt
			}
		default:
			now = now.Add(time.Duration(rng.IntN(3)) * time.Second)
		}
	}
}

func TestMaxActiveBytes(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	enqueue := func(s *memstore.Store, id string, size int) error {
		_, err := s.Enqueue(ctx, webhook.EnqueueParams{Now: now,
			Payloads:   []*webhook.Payload{{ID: "p" + id, WebhookID: "w", Body: make([]byte, size)}},
			Deliveries: []*webhook.Delivery{{ID: id, WebhookID: "w", PayloadID: "p" + id, Status: webhook.StatusPending, NextAttemptAt: now, CreatedAt: now}},
		})
		return err
	}
	s := memstore.New(&memstore.Config{MaxActiveBytes: 3 * (1000 + memstore.DeliveryOverheadBytes)})
	for i := range 3 {
		if err := enqueue(s, fmt.Sprint("d", i), 1000); err != nil {
			t.Fatal(err)
		}
	}
	if err := enqueue(s, "d3", 1); !errors.Is(err, webhook.ErrQueueFull) {
		t.Fatalf("past the byte bound: %v, want ErrQueueFull", err)
	}
	if _, err := s.GetDelivery(ctx, "d3"); !errors.Is(err, webhook.ErrNotFound) {
		t.Fatalf("a refused enqueue stored its delivery: %v", err)
	}
	// A finished delivery frees its bytes.
	cs, err := s.ClaimDeliveries(ctx, webhook.ClaimParams{WorkerID: "w", Limit: 1, LeaseDuration: time.Minute, Now: now})
	if err != nil || len(cs) != 1 {
		t.Fatal(cs, err)
	}
	if err := s.RecordAttempt(ctx, webhook.RecordAttemptParams{DeliveryID: cs[0].Delivery.ID, Token: cs[0].Lease.Token, Status: webhook.StatusDelivered, Now: now}); err != nil {
		t.Fatal(err)
	}
	if err := enqueue(s, "d3", 1000); err != nil {
		t.Fatalf("after a delivery finished: %v", err)
	}
	off := memstore.New(&memstore.Config{MaxActiveBytes: -1})
	if err := enqueue(off, "big", 2*memstore.DefaultMaxActiveBytes/1024); err != nil {
		t.Fatalf("with the bound off: %v", err)
	}
}

// The payloads of one enqueue share their common tail in memory; each
// reads back byte for byte.
func TestFanOutBodiesReadBackExactly(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	s := memstore.New(nil)
	data := strings.Repeat("x", 500)
	var p webhook.EnqueueParams
	p.Now = now
	var bodies [][]byte
	for i := range 5 {
		id := fmt.Sprint(i)
		body := []byte(`{"id":"p` + id + `","webhook_id":"w` + id + `","data":"` + data + `"}`)
		if i == 3 {
			body = []byte("short")
		}
		bodies = append(bodies, body)
		p.Payloads = append(p.Payloads, &webhook.Payload{ID: "p" + id, WebhookID: "w" + id, Body: bytes.Clone(body)})
		p.Deliveries = append(p.Deliveries, &webhook.Delivery{ID: "d" + id, WebhookID: "w" + id, PayloadID: "p" + id, Status: webhook.StatusPending, NextAttemptAt: now, CreatedAt: now})
	}
	if _, err := s.Enqueue(ctx, p); err != nil {
		t.Fatal(err)
	}
	for _, pl := range p.Payloads {
		pl.Body[0] = '!' // the store keeps its own copy
	}
	for i, want := range bodies {
		got, err := s.GetPayload(ctx, fmt.Sprint("p", i))
		if err != nil || !bytes.Equal(got.Body, want) {
			t.Fatalf("payload %d: %q, %v; want %q", i, got.Body, err, want)
		}
		got.Body[len(got.Body)-1] = '!' // a reader's copy is its own
	}
	cs, err := s.ClaimDeliveries(ctx, webhook.ClaimParams{WorkerID: "w", Limit: 10, LeaseDuration: time.Minute, Now: now})
	if err != nil || len(cs) != 5 {
		t.Fatal(len(cs), err)
	}
	for _, c := range cs {
		i := int(c.Delivery.ID[1] - '0')
		if !bytes.Equal(c.Payload.Body, bodies[i]) {
			t.Fatalf("claim %d: %q, want %q", i, c.Payload.Body, bodies[i])
		}
	}
}

// Pages of webhooks stay in ID order, each once, whatever order they
// were created in and after one is deleted and created again.
func TestListWebhooksOrder(t *testing.T) {
	ctx := t.Context()
	s := memstore.New(nil)
	for _, id := range []string{"c", "a", "d", "b"} {
		if err := s.CreateWebhook(ctx, &webhook.Webhook{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteWebhook(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateWebhook(ctx, &webhook.Webhook{ID: "b"}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteWebhook(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	var got []string
	after := ""
	for {
		page, err := s.ListWebhooks(ctx, webhook.ListWebhooksParams{After: after, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range page {
			got = append(got, w.ID)
		}
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1].ID
	}
	if want := []string{"a", "b", "c"}; !slices.Equal(got, want) {
		t.Fatalf("pages list %v, want %v", got, want)
	}
}
