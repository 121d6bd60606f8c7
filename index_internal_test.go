package webhook

import (
	"fmt"
	"slices"
	"testing"
)

// FuzzIndexAgreesWithMatchEventName checks that the Service's event-name
// index, a separate implementation of the pattern rules, offers a webhook
// as a candidate whenever MatchEventName says its pattern matches, and
// that candidates plus the trigger's own check give exactly
// MatchEventName's answer.
func FuzzIndexAgreesWithMatchEventName(f *testing.F) {
	for _, c := range [][2]string{
		{"checkout.*", "checkout.done"}, {"checkout.*", "checkout"}, {"*", "x"},
		{"a.b.*", "a.b.c.d"}, {"a.*", "a."}, {"purchase", "purchase"}, {"x.*", "y.x.z"},
	} {
		f.Add(c[0], c[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		w := &Webhook{ID: "w", Name: "n", URL: "https://example.com", Retry: DefaultRetryPolicy(),
			Triggers: []Trigger{{Type: TriggerEvent, Events: []string{pattern}}}}
		cw, err := w.compile()
		if err != nil {
			return // an invalid pattern is refused on save
		}
		idx := newIndex()
		idx.add(cw)
		offered := slices.Contains(idx.candidates("", TriggerEvent, name), cw)
		want := MatchEventName(pattern, name)
		if want && !offered {
			t.Fatalf("pattern %q matches %q but the index does not offer the webhook", pattern, name)
		}
		if got := offered && cw.triggers[0].match(name, nil); got != want {
			t.Fatalf("pattern %q on %q: index and trigger say %v, MatchEventName says %v", pattern, name, got, want)
		}
	})
}

// tenantIndex returns an index of n catch-all webhooks of each tenant.
func tenantIndex(t testing.TB, n int, tenants ...string) *index {
	idx := newIndex()
	for _, tenant := range tenants {
		for i := range n {
			w := &Webhook{ID: fmt.Sprintf("%s-%04d", tenant, i), TenantID: tenant, Name: "n", URL: "https://example.com", Retry: DefaultRetryPolicy(),
				Triggers: []Trigger{{Type: TriggerEvent}, {Type: TriggerEvent, Events: []string{"checkout.*", "purchase"}}}}
			cw, err := w.compile()
			if err != nil {
				t.Fatal(err)
			}
			idx.add(cw)
		}
	}
	return idx
}

func TestIndexStartsFromTheTenant(t *testing.T) {
	idx := tenantIndex(t, 1000, "big")
	small := tenantIndex(t, 2, "a", "")
	for _, cw := range small.byID {
		idx.add(cw)
	}
	ids := func(tenant string) []string {
		var out []string
		for _, cw := range idx.candidates(tenant, TriggerEvent, "checkout.done") {
			out = append(out, cw.w.ID)
		}
		return out
	}
	if got, want := ids("a"), []string{"a-0000", "a-0001"}; !slices.Equal(got, want) {
		t.Errorf("tenant a's candidates are %v, want %v", got, want)
	}
	if got, want := ids(""), []string{"-0000", "-0001"}; !slices.Equal(got, want) {
		t.Errorf("the candidates without a tenant are %v, want %v", got, want)
	}
	if got := ids("nobody"); len(got) != 0 {
		t.Errorf("an unknown tenant has candidates %v", got)
	}
	if got := len(ids("big")); got != 1000 {
		t.Errorf("tenant big has %d candidates, want 1000", got)
	}
}

// BenchmarkCandidatesOneTenantOfMany shows that a tenant's lookup costs
// the same however many webhooks the other tenants have.
func BenchmarkCandidatesOneTenantOfMany(b *testing.B) {
	for _, others := range []int{0, 10000} {
		b.Run(fmt.Sprint("others=", others), func(b *testing.B) {
			idx := tenantIndex(b, others, "other")
			for _, cw := range tenantIndex(b, 3, "a").byID {
				idx.add(cw)
			}
			for b.Loop() {
				if len(idx.candidates("a", TriggerEvent, "checkout.done")) != 3 {
					b.Fatal("wrong candidates")
				}
			}
		})
	}
}
