package webhook

import (
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
		idx := &index{byType: map[TriggerType]*typeIndex{}, byID: map[string]*compiledWebhook{}}
		idx.add(cw)
		offered := slices.Contains(idx.candidates(TriggerEvent, name), cw)
		want := MatchEventName(pattern, name)
		if want && !offered {
			t.Fatalf("pattern %q matches %q but the index does not offer the webhook", pattern, name)
		}
		if got := offered && cw.triggers[0].match(name, nil); got != want {
			t.Fatalf("pattern %q on %q: index and trigger say %v, MatchEventName says %v", pattern, name, got, want)
		}
	})
}
