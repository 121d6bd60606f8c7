package webhook

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
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

// FuzzIndexOffersEveryMatch checks the index of required property
// values: whenever a trigger's filters hold on the data, the index
// offers its webhook, whatever the operator and values (numbers of any
// form, -0, null, bools, strings, arrays, Go-typed data).
func FuzzIndexOffersEveryMatch(f *testing.F) {
	for _, c := range [][3]string{
		{"equals", `1`, `{"p":1.0}`}, {"equals", `-0`, `{"p":0}`}, {"equals", `null`, `{"p":null}`},
		{"in", `["a",2,true,null]`, `{"p":true}`}, {"equals", `"x"`, `{"p":{"q":"x"}}`}, {"equals", `[1]`, `{"p":[1]}`},
		{"in", `[1,2]`, `{"p":"1"}`}, {"equals", `false`, `{"p":false}`}, {"not_equals", `1`, `{}`},
	} {
		f.Add(c[0], "p", c[1], c[2], int64(0))
		f.Add(c[0], "p.q", c[1], c[2], int64(3))
	}
	f.Fuzz(func(t *testing.T, op, property, valueJSON, dataJSON string, n int64) {
		var value any
		if json.Unmarshal([]byte(valueJSON), &value) != nil {
			return
		}
		var data map[string]any
		if json.Unmarshal([]byte(dataJSON), &data) != nil || data == nil {
			return
		}
		w := &Webhook{ID: "w", Name: "n", URL: "https://example.com", Retry: DefaultRetryPolicy(),
			Triggers: []Trigger{{Type: TriggerEvent, Filters: []Filter{{Property: property, Operator: FilterOperator(op), Value: value}}}}}
		cw, err := w.compile()
		if err != nil {
			return
		}
		idx := newIndex()
		idx.add(cw)
		typed := map[string]any{"p": n, "n": int32(n), "u": uint8(n), "s": fmt.Sprint(n)}
		for _, d := range []map[string]any{data, typed} {
			offered := slices.Contains(idx.candidatesFor("", TriggerEvent, "e", func() map[string]any { return d }), cw)
			if cw.triggers[0].match("e", d) && !offered {
				t.Fatalf("filter %s %s %s holds on %v but the index does not offer the webhook", property, op, valueJSON, d)
			}
		}
		// A copy changed by removing and adding the webhook offers the same.
		b := fork(idx)
		b.remove("w")
		if got := b.idx.candidatesFor("", TriggerEvent, "e", func() map[string]any { return data }); len(got) != 0 {
			t.Fatalf("removed, still offered: %v", got)
		}
		b.insert(cw)
		if a, c := idx.candidatesFor("", TriggerEvent, "e", func() map[string]any { return data }), b.idx.candidatesFor("", TriggerEvent, "e", func() map[string]any { return data }); !slices.Equal(a, c) {
			t.Fatalf("the changed copy offers %v, the original %v", c, a)
		}
	})
}

// TestIndexCopiesLeaveTheOriginal checks that changing a copy of the
// index leaves the one it was made from as it was.
func TestIndexCopiesLeaveTheOriginal(t *testing.T) {
	idx := tenantIndex(t, 50, "a", "")
	before := len(idx.candidates("a", TriggerEvent, "checkout.done"))
	b := fork(idx)
	for id := range idx.byID {
		if id[0] == 'a' && id[len(id)-1] == '7' {
			b.remove(id)
		}
	}
	extra := tenantIndex(t, 1, "a")
	for _, cw := range extra.byID {
		cw.w.ID = "a-zzzz"
		b.insert(cw)
	}
	if got := len(idx.candidates("a", TriggerEvent, "checkout.done")); got != before {
		t.Fatalf("the original has %d candidates after the copy changed, want %d", got, before)
	}
	got := b.idx.candidates("a", TriggerEvent, "checkout.done")
	if len(got) != before-5+1 {
		t.Fatalf("the copy has %d candidates, want %d", len(got), before-5+1)
	}
	if !slices.IsSortedFunc(got, func(x, y *compiledWebhook) int { return strings.Compare(x.w.ID, y.w.ID) }) {
		t.Fatal("the copy's candidates are not in ID order")
	}
}
