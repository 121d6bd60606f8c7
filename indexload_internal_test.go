package webhook

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// gatedHooks is a hookMap whose ListWebhooks, once gated, takes its
// snapshot, reports it has started, and waits for release before
// returning it: a reload that read the webhooks before what happens
// while it waits.
type gatedHooks struct {
	versionedHooks
	mu      sync.Mutex
	lists   int
	gated   bool
	started chan struct{}
	release chan struct{}
}

func (g *gatedHooks) ListWebhooks(ctx context.Context, p ListWebhooksParams) ([]*Webhook, error) {
	g.mu.Lock()
	g.lists++
	gated := g.gated
	out, err := g.hookMap.ListWebhooks(ctx, p)
	g.mu.Unlock()
	if gated {
		g.started <- struct{}{}
		<-g.release
	}
	return out, err
}

func (g *gatedHooks) GetWebhook(ctx context.Context, id string) (*Webhook, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.hookMap.GetWebhook(ctx, id)
}

func (g *gatedHooks) CreateWebhook(_ context.Context, w *Webhook) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.m[w.ID] = w.Clone()
	return nil
}

func (g *gatedHooks) UpdateWebhook(ctx context.Context, w *Webhook) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.versionedHooks.UpdateWebhook(ctx, w)
}

func (g *gatedHooks) DeleteWebhook(_ context.Context, id string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.m, id)
	return nil
}

// discardEnqueuer stores nothing.
type discardEnqueuer struct{}

func (discardEnqueuer) Enqueue(_ context.Context, p EnqueueParams) (EnqueueResult, error) {
	var r EnqueueResult
	for _, d := range p.Deliveries {
		r.DeliveryIDs = append(r.DeliveryIDs, d.ID)
	}
	return r, nil
}

// testClock is a clock that moves only when told.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func matchedHooks(t *testing.T, s *Service) []string {
	t.Helper()
	ids, err := s.TriggerEvent(t.Context(), "e", map[string]any{"plan": "pro"}, "", WithEnqueuer(discardEnqueuer{}))
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func wait(t *testing.T, ch chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not happen within 10s", what)
	}
}

// A reload runs in the background while trigger calls go on with the
// current index; changes made through the Service while it reads apply
// at once and survive it, and what it read is seen once it is done.
func TestReloadServesTheCurrentIndex(t *testing.T) {
	store := &gatedHooks{versionedHooks: versionedHooks{hookMap{m: map[string]*Webhook{}}}, started: make(chan struct{}), release: make(chan struct{})}
	clock := &testClock{now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	s, err := NewService(store, &Config{Now: clock.Now, WebhookCacheTTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	newHook := func(name string) *Webhook {
		return &Webhook{Name: name, URL: "https://example.com/" + name, Triggers: []Trigger{{Type: TriggerEvent, Filters: []Filter{{Property: "plan", Operator: FilterEquals, Value: "pro"}}}}}
	}
	first, err := s.Create(ctx, newHook("first"))
	if err != nil {
		t.Fatal(err)
	}
	if got := matchedHooks(t, s); len(got) != 1 {
		t.Fatalf("first load: %d matches, want 1", len(got))
	}
	// Written behind the Service's back: seen after the next reload.
	behind := newHook("behind")
	behind.ID, behind.Secret, behind.Version = "behind", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 1
	prepare(behind)
	if err := store.CreateWebhook(ctx, behind); err != nil {
		t.Fatal(err)
	}
	store.mu.Lock()
	store.gated = true
	store.mu.Unlock()

	clock.Advance(6 * time.Second) // past half the TTL
	if got := matchedHooks(t, s); len(got) != 1 {
		t.Fatalf("while the reload starts: %d matches, want the current index's 1", len(got))
	}
	wait(t, store.started, "the background reload")
	// The reload is reading; calls go on, and local changes apply.
	second, err := s.Create(ctx, newHook("second"))
	if err != nil {
		t.Fatal(err)
	}
	first.Triggers = []Trigger{{Type: TriggerEvent, Events: []string{"other"}}}
	if _, err := s.Update(ctx, first); err != nil {
		t.Fatal(err)
	}
	clock.Advance(5 * time.Second) // past the TTL, but a reload is under way
	if got := matchedHooks(t, s); len(got) != 1 {
		t.Fatalf("during the reload: %d matches, want 1 (second only)", len(got))
	}
	store.mu.Lock()
	store.gated = false // later reloads read at once
	store.mu.Unlock()
	close(store.release)
	// Wait for the reload to finish: it holds the semaphore until then.
	select {
	case s.reload <- struct{}{}:
		<-s.reload
	case <-time.After(10 * time.Second):
		t.Fatal("the reload did not finish")
	}
	idx := s.idx.Load()
	var ids []string
	for id := range idx.byID {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	want := []string{"behind", first.ID, second.ID}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Fatalf("after the reload the index has %v, want %v", ids, want)
	}
	if cw := idx.byID[second.ID]; cw == nil || cw.w.Version != 1 {
		t.Fatal("the webhook created during the reload is missing")
	}
	if cw := idx.byID[first.ID]; cw.w.Version != 2 || !slices.Equal(cw.w.Triggers[0].Events, []string{"other"}) {
		t.Fatalf("the update made during the reload was undone by it: %+v", cw.w)
	}
	if got := matchedHooks(t, s); len(got) != 2 {
		t.Fatalf("after the reload: %d matches, want 2", len(got))
	}
}

// Changes made through the Service change the index without reading
// every webhook again.
func TestLocalChangesDoNotReload(t *testing.T) {
	store := &gatedHooks{versionedHooks: versionedHooks{hookMap{m: map[string]*Webhook{}}}}
	s, err := NewService(store, &Config{WebhookCacheTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if got := matchedHooks(t, s); len(got) != 0 {
		t.Fatal(got)
	}
	var hooks []*Webhook
	for i := range 3 {
		w, err := s.Create(ctx, &Webhook{Name: fmt.Sprint("w", i), URL: "https://example.com/", Triggers: []Trigger{{Type: TriggerEvent, Filters: []Filter{{Property: "plan", Operator: FilterIn, Value: []any{"pro", "team"}}}}}})
		if err != nil {
			t.Fatal(err)
		}
		hooks = append(hooks, w)
		if got := matchedHooks(t, s); len(got) != i+1 {
			t.Fatalf("after create %d: %d matches", i, len(got))
		}
	}
	hooks[0].Triggers[0].Filters[0].Value = []any{"team"}
	if _, err := s.Update(ctx, hooks[0]); err != nil {
		t.Fatal(err)
	}
	if got := matchedHooks(t, s); len(got) != 2 {
		t.Fatalf("after an update: %d matches, want 2", len(got))
	}
	if _, err := s.Disable(ctx, hooks[1].ID, "test"); err != nil {
		t.Fatal(err)
	}
	if got := matchedHooks(t, s); len(got) != 1 {
		t.Fatalf("after a disable: %d matches, want 1", len(got))
	}
	if err := s.Delete(ctx, hooks[2].ID); err != nil {
		t.Fatal(err)
	}
	if got := matchedHooks(t, s); len(got) != 0 {
		t.Fatalf("after a delete: %d matches, want 0", len(got))
	}
	if store.lists != 1 {
		t.Fatalf("%d loads of every webhook, want the first only", store.lists)
	}
}
