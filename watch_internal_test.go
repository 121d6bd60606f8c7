package webhook

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// hookMap is a Storage holding only webhooks, for tests of the index.
type hookMap struct {
	Storage // nil: other methods are not used
	m       map[string]*Webhook
}

func (h *hookMap) GetWebhook(_ context.Context, id string) (*Webhook, error) {
	w, ok := h.m[id]
	if !ok {
		return nil, fmt.Errorf("webhook %s: %w", id, ErrNotFound)
	}
	return w.Clone(), nil
}

func (h *hookMap) ListWebhooks(_ context.Context, p ListWebhooksParams) ([]*Webhook, error) {
	var out []*Webhook
	for _, w := range h.m {
		if w.ID > p.After {
			out = append(out, w.Clone())
		}
	}
	slices.SortFunc(out, func(a, b *Webhook) int { return strings.Compare(a.ID, b.ID) })
	return out[:min(len(out), PageLimit(p.Limit))], nil
}

func TestChangesElsewhereThatMatter(t *testing.T) {
	ctx := t.Context()
	hook := func(id string) *Webhook {
		return &Webhook{ID: id, Name: "n", URL: "https://example.com/" + id, Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
			Retry: DefaultRetryPolicy(), Triggers: []Trigger{{Type: TriggerEvent}}, Version: 1}
	}
	store := &hookMap{m: map[string]*Webhook{"a": hook("a")}}
	s, err := NewService(store, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.matters(ctx, "a") {
		t.Error("with no index loaded, nothing needs dropping")
	}
	if _, err := s.index(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func()
		want   bool
	}{
		{"nothing", func() {}, false},
		{"health counters only", func() {
			w := store.m["a"]
			w.ConsecutiveFailures, w.FailingSince, w.UpdatedAt, w.Version = 3, time.Now(), time.Now(), 2
		}, false},
		{"URL", func() { store.m["a"].URL += "x" }, true},
		{"triggers", func() { store.m["a"].Triggers[0].Events = []string{"e"} }, true},
		{"disabled", func() { store.m["a"].Disabled = true }, true},
		{"deleted", func() { delete(store.m, "a") }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := store.m["a"].Clone()
			tc.change()
			if got := s.matters(ctx, "a"); got != tc.want {
				t.Errorf("matters = %v, want %v", got, tc.want)
			}
			store.m["a"] = before
		})
	}
	store.m["b"] = hook("b")
	store.m["b"].Disabled = true
	if s.matters(ctx, "b") {
		t.Error("a new disabled webhook does not join the index")
	}
	store.m["b"].Disabled = false
	if !s.matters(ctx, "b") {
		t.Error("a new enabled webhook joins the index")
	}
	if s.matters(ctx, "never") {
		t.Error("a webhook that exists nowhere does not matter")
	}
}

func TestChangesCollapseWhenTooMany(t *testing.T) {
	c := &changes{ids: map[string]struct{}{}, signal: make(chan struct{}, 1)}
	c.add("a")
	if ids, all := c.take(); all || len(ids) != 1 {
		t.Fatalf("take = %v, %v; want one ID", ids, all)
	}
	for i := range maxPendingChanges + 1 {
		c.add(fmt.Sprint(i))
	}
	if ids, all := c.take(); !all || len(ids) != 0 {
		t.Fatalf("take = %d IDs, %v; want all", len(ids), all)
	}
	c.add("")
	if _, all := c.take(); !all {
		t.Fatal(`"" means anything may have changed`)
	}
}

// versionedHooks is a hookMap that stores updates, with versions.
type versionedHooks struct{ hookMap }

func (h *versionedHooks) UpdateWebhook(_ context.Context, w *Webhook) error {
	old, ok := h.m[w.ID]
	switch {
	case !ok:
		return fmt.Errorf("webhook %s: %w", w.ID, ErrNotFound)
	case old.Version != w.Version:
		return fmt.Errorf("webhook %s: %w", w.ID, ErrConflict)
	}
	c := w.Clone()
	c.Version++
	h.m[w.ID] = c
	return nil
}

// A health-counter write made by this Service, like one made elsewhere,
// keeps the matching index: a failing endpoint must not make every trigger
// call after each failure read every webhook again. A real change drops it.
func TestHealthWritesHereKeepTheIndex(t *testing.T) {
	ctx := t.Context()
	store := &versionedHooks{hookMap{m: map[string]*Webhook{"a": {ID: "a", Name: "n", URL: "https://example.com/a",
		Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", Retry: DefaultRetryPolicy(), Triggers: []Trigger{{Type: TriggerEvent}}, Version: 1}}}}
	s, err := NewService(store, nil)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := s.index(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.modify(ctx, "a", "health", func(w *Webhook) (*Webhook, error) {
		w.ConsecutiveFailures, w.FailingSince = w.ConsecutiveFailures+1, time.Now()
		return w, nil
	}); err != nil {
		t.Fatal(err)
	}
	if idx, err := s.index(ctx); err != nil || idx != loaded {
		t.Fatalf("after a health-counter write: index reloaded (%v)", err)
	}
	if _, err := s.modify(ctx, "a", "update", func(w *Webhook) (*Webhook, error) {
		w.URL += "x"
		return w, nil
	}); err != nil {
		t.Fatal(err)
	}
	idx, err := s.index(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if idx == loaded || idx.byID["a"].w.URL != "https://example.com/ax" {
		t.Fatal("after a URL change: the index still has the old URL")
	}
}
