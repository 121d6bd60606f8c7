package webhook_test

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
)

func TestMatchEventName(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"purchase", "purchase", true},
		{"purchase", "purchases", false},
		{"purchase", "Purchase", false},
		{"*", "anything.at.all", true},
		{"", "anything", true},
		{"checkout.*", "checkout.started", true},
		{"checkout.*", "checkout.payment.done", true},
		{"checkout.*", "checkout", false},
		{"checkout.*", "checkout.", false},
		{"checkout.*", "checkoutx.started", false},
		{"checkout.*", "pre.checkout.started", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, webhook.MatchEventName(tt.pattern, tt.name), "%q ~ %q", tt.pattern, tt.name)
	}
}

// data is event data as a JSON receiver would decode it.
func data(t *testing.T, js string) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(js), &m))
	return m
}

func TestFilterOperators(t *testing.T) {
	d := data(t, `{
		"plan": "pro", "amount": 42, "ratio": 0.5, "beta": true, "nothing": null,
		"tags": ["a", "b", 3], "email": "ann@example.com",
		"user": {"country": "DE", "age": 31, "address": {"city": "Köln"}},
		"items": [{"sku": "X1"}, {"sku": "Y2"}],
		"a.b": "dotted key"
	}`)
	tests := []struct {
		name  string
		f     webhook.Filter
		want  bool
		notes string
	}{
		// equals / not_equals
		{"equals string", webhook.Filter{Property: "plan", Operator: "equals", Value: "pro"}, true, ""},
		{"equals string differs", webhook.Filter{Property: "plan", Operator: "equals", Value: "free"}, false, ""},
		{"equals number by value", webhook.Filter{Property: "amount", Operator: "equals", Value: 42.0}, true, ""},
		{"equals Go int vs JSON number", webhook.Filter{Property: "amount", Operator: "equals", Value: 42}, true, ""},
		{"equals type mismatch", webhook.Filter{Property: "amount", Operator: "equals", Value: "42"}, false, ""},
		{"equals bool", webhook.Filter{Property: "beta", Operator: "equals", Value: true}, true, ""},
		{"equals null", webhook.Filter{Property: "nothing", Operator: "equals", Value: nil}, true, ""},
		{"equals missing", webhook.Filter{Property: "missing", Operator: "equals", Value: nil}, false, "missing is not null"},
		{"equals array", webhook.Filter{Property: "tags", Operator: "equals", Value: []any{"a", "b", 3}}, true, ""},
		{"equals object", webhook.Filter{Property: "user.address", Operator: "equals", Value: map[string]any{"city": "Köln"}}, true, ""},
		{"not_equals differs", webhook.Filter{Property: "plan", Operator: "not_equals", Value: "free"}, true, ""},
		{"not_equals same", webhook.Filter{Property: "plan", Operator: "not_equals", Value: "pro"}, false, ""},
		{"not_equals missing", webhook.Filter{Property: "missing", Operator: "not_equals", Value: "pro"}, true, ""},
		{"not_equals type mismatch", webhook.Filter{Property: "amount", Operator: "not_equals", Value: "42"}, true, ""},
		// contains
		{"contains substring", webhook.Filter{Property: "email", Operator: "contains", Value: "@example"}, true, ""},
		{"contains substring absent", webhook.Filter{Property: "email", Operator: "contains", Value: "@other"}, false, ""},
		{"contains array element", webhook.Filter{Property: "tags", Operator: "contains", Value: "b"}, true, ""},
		{"contains array number", webhook.Filter{Property: "tags", Operator: "contains", Value: 3}, true, ""},
		{"contains array absent", webhook.Filter{Property: "tags", Operator: "contains", Value: "z"}, false, ""},
		{"contains on number", webhook.Filter{Property: "amount", Operator: "contains", Value: "4"}, false, ""},
		{"contains number in string", webhook.Filter{Property: "email", Operator: "contains", Value: 4}, false, ""},
		{"contains missing", webhook.Filter{Property: "missing", Operator: "contains", Value: "a"}, false, ""},
		// is_set / not_set
		{"is_set present", webhook.Filter{Property: "plan", Operator: "is_set"}, true, ""},
		{"is_set null", webhook.Filter{Property: "nothing", Operator: "is_set"}, true, "present even if null"},
		{"is_set missing", webhook.Filter{Property: "missing", Operator: "is_set"}, false, ""},
		{"is_set nested", webhook.Filter{Property: "user.address.city", Operator: "is_set"}, true, ""},
		{"not_set missing", webhook.Filter{Property: "user.phone", Operator: "not_set"}, true, ""},
		{"not_set present", webhook.Filter{Property: "plan", Operator: "not_set"}, false, ""},
		// gt / gte / lt / lte
		{"gt", webhook.Filter{Property: "amount", Operator: "gt", Value: 41}, true, ""},
		{"gt equal", webhook.Filter{Property: "amount", Operator: "gt", Value: 42}, false, ""},
		{"gte equal", webhook.Filter{Property: "amount", Operator: "gte", Value: 42}, true, ""},
		{"lt", webhook.Filter{Property: "ratio", Operator: "lt", Value: 0.6}, true, ""},
		{"lt equal", webhook.Filter{Property: "ratio", Operator: "lt", Value: 0.5}, false, ""},
		{"lte equal", webhook.Filter{Property: "ratio", Operator: "lte", Value: 0.5}, true, ""},
		{"gt on string", webhook.Filter{Property: "plan", Operator: "gt", Value: 1}, false, "type mismatch never matches"},
		{"gt on missing", webhook.Filter{Property: "missing", Operator: "gt", Value: 1}, false, ""},
		{"gt nested", webhook.Filter{Property: "user.age", Operator: "gt", Value: 30}, true, ""},
		// in / not_in
		{"in", webhook.Filter{Property: "user.country", Operator: "in", Value: []any{"FR", "DE"}}, true, ""},
		{"in absent", webhook.Filter{Property: "user.country", Operator: "in", Value: []any{"FR", "US"}}, false, ""},
		{"in numbers by value", webhook.Filter{Property: "amount", Operator: "in", Value: []any{1, 42.0}}, true, ""},
		{"in Go slice", webhook.Filter{Property: "plan", Operator: "in", Value: []string{"pro", "team"}}, true, ""},
		{"in missing", webhook.Filter{Property: "missing", Operator: "in", Value: []any{"x"}}, false, ""},
		{"not_in", webhook.Filter{Property: "user.country", Operator: "not_in", Value: []any{"FR", "US"}}, true, ""},
		{"not_in member", webhook.Filter{Property: "user.country", Operator: "not_in", Value: []any{"DE"}}, false, ""},
		{"not_in missing", webhook.Filter{Property: "missing", Operator: "not_in", Value: []any{"DE"}}, true, ""},
		// starts_with / ends_with
		{"starts_with", webhook.Filter{Property: "email", Operator: "starts_with", Value: "ann@"}, true, ""},
		{"starts_with no", webhook.Filter{Property: "email", Operator: "starts_with", Value: "bob@"}, false, ""},
		{"starts_with on number", webhook.Filter{Property: "amount", Operator: "starts_with", Value: "4"}, false, ""},
		{"ends_with", webhook.Filter{Property: "email", Operator: "ends_with", Value: ".com"}, true, ""},
		{"ends_with no", webhook.Filter{Property: "email", Operator: "ends_with", Value: ".org"}, false, ""},
		{"ends_with missing", webhook.Filter{Property: "missing", Operator: "ends_with", Value: ".org"}, false, ""},
		// regex
		{"regex", webhook.Filter{Property: "email", Operator: "regex", Value: `^[a-z]+@example\.com$`}, true, ""},
		{"regex no", webhook.Filter{Property: "email", Operator: "regex", Value: `^bob`}, false, ""},
		{"regex unicode", webhook.Filter{Property: "user.address.city", Operator: "regex", Value: `^K.ln$`}, true, ""},
		{"regex on number", webhook.Filter{Property: "amount", Operator: "regex", Value: `4`}, false, ""},
		// paths
		{"array index path", webhook.Filter{Property: "items.1.sku", Operator: "equals", Value: "Y2"}, true, ""},
		{"array index out of range", webhook.Filter{Property: "items.5.sku", Operator: "is_set"}, false, ""},
		{"array bad index", webhook.Filter{Property: "items.x.sku", Operator: "is_set"}, false, ""},
		{"path through scalar", webhook.Filter{Property: "plan.x", Operator: "is_set"}, false, ""},
		{"dotted top-level key", webhook.Filter{Property: "a.b", Operator: "equals", Value: "dotted key"}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.f.Match(d)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got, tt.notes)
		})
	}
}

func TestFilterGoTypedData(t *testing.T) {
	// Callers testing rules may pass Go-typed data, not just decoded JSON.
	type plan string
	d := map[string]any{
		"n":    int64(7),
		"u":    uint8(3),
		"f32":  float32(1.5),
		"tags": []string{"x", "y"},
		"m":    map[string]int{"k": 2},
		"plan": plan("pro"),
	}
	cases := []struct {
		f    webhook.Filter
		want bool
	}{
		{webhook.Filter{Property: "n", Operator: "equals", Value: 7.0}, true},
		{webhook.Filter{Property: "u", Operator: "lt", Value: 4}, true},
		{webhook.Filter{Property: "f32", Operator: "gte", Value: 1.5}, true},
		{webhook.Filter{Property: "tags", Operator: "contains", Value: "y"}, true},
		{webhook.Filter{Property: "tags.1", Operator: "equals", Value: "y"}, true},
		{webhook.Filter{Property: "m.k", Operator: "equals", Value: 2}, true},
		{webhook.Filter{Property: "plan", Operator: "starts_with", Value: "pr"}, true},
		{webhook.Filter{Property: "plan", Operator: "equals", Value: "pro"}, true},
	}
	for _, c := range cases {
		got, err := c.f.Match(d)
		require.NoError(t, err)
		assert.Equal(t, c.want, got, "%+v", c.f)
	}
}

func TestFilterInvalid(t *testing.T) {
	tests := []struct {
		name string
		f    webhook.Filter
		msg  string
	}{
		{"unknown operator", webhook.Filter{Property: "p", Operator: "matches", Value: "x"}, "unknown filter operator"},
		{"empty operator", webhook.Filter{Property: "p", Value: "x"}, "unknown filter operator"},
		{"empty property", webhook.Filter{Operator: "equals", Value: "x"}, "property"},
		{"long property", webhook.Filter{Property: strings.Repeat("a", webhook.MaxPropertyLength+1), Operator: "is_set"}, "property"},
		{"bad regex", webhook.Filter{Property: "p", Operator: "regex", Value: "(unclosed"}, "missing closing )"},
		{"long regex", webhook.Filter{Property: "p", Operator: "regex", Value: strings.Repeat("a", webhook.MaxRegexLength+1)}, "longer than"},
		{"regex not string", webhook.Filter{Property: "p", Operator: "regex", Value: 3}, "needs a string"},
		{"gt string", webhook.Filter{Property: "p", Operator: "gt", Value: "10"}, "needs a number"},
		{"lte bool", webhook.Filter{Property: "p", Operator: "lte", Value: true}, "needs a number"},
		{"in scalar", webhook.Filter{Property: "p", Operator: "in", Value: "DE"}, "needs an array"},
		{"in nested array", webhook.Filter{Property: "p", Operator: "not_in", Value: []any{[]any{"a"}}}, "array of strings"},
		{"starts_with number", webhook.Filter{Property: "p", Operator: "starts_with", Value: 1}, "needs a string"},
		{"contains object", webhook.Filter{Property: "p", Operator: "contains", Value: map[string]any{}}, "contains needs"},
		{"is_set with value", webhook.Filter{Property: "p", Operator: "is_set", Value: true}, "must be null"},
		{"NaN value", webhook.Filter{Property: "p", Operator: "gt", Value: math.NaN()}, "finite"},
		{"Inf value", webhook.Filter{Property: "p", Operator: "equals", Value: math.Inf(1)}, "finite"},
		{"func value", webhook.Filter{Property: "p", Operator: "equals", Value: func() {}}, "JSON value"},
		{"NaN json.Number", webhook.Filter{Property: "p", Operator: "equals", Value: json.Number("NaN")}, "finite"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.f.Match(map[string]any{"p": "x"})
			require.ErrorIs(t, err, webhook.ErrInvalid)
			assert.False(t, got)
			assert.Contains(t, err.Error(), tt.msg)
		})
	}
}

func TestMatchFilters(t *testing.T) {
	d := data(t, `{"plan":"pro","amount":42}`)
	ok, err := webhook.MatchFilters(nil, d)
	require.NoError(t, err)
	assert.True(t, ok, "no filters match everything")
	ok, err = webhook.MatchFilters([]webhook.Filter{
		{Property: "plan", Operator: "equals", Value: "pro"},
		{Property: "amount", Operator: "gt", Value: 40},
	}, d)
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = webhook.MatchFilters([]webhook.Filter{
		{Property: "plan", Operator: "equals", Value: "pro"},
		{Property: "amount", Operator: "gt", Value: 50},
	}, d)
	require.NoError(t, err)
	assert.False(t, ok, "filters are AND-ed")
	_, err = webhook.MatchFilters([]webhook.Filter{{Property: "plan", Operator: "equals"}, {Property: "x", Operator: "nope"}}, d)
	var ve *webhook.ValidationError
	require.ErrorAs(t, err, &ve)
	require.Len(t, ve.Fields, 1)
	assert.Equal(t, "filters[1].operator", ve.Fields[0].Field)
}

func TestConditionMatch(t *testing.T) {
	tests := []struct {
		op        webhook.ConditionOperator
		threshold float64
		value     float64
		want      bool
	}{
		{"gt", 10, 10.5, true}, {"gt", 10, 10, false},
		{"gte", 10, 10, true}, {"gte", 10, 9.99, false},
		{"lt", 10, 9, true}, {"lt", 10, 10, false},
		{"lte", 10, 10, true}, {"lte", 10, 10.01, false},
		{"eq", 0.3, 0.1 + 0.2, true}, {"eq", 1e12, 1e12 + 1e-3, true}, {"eq", 10, 10.001, false},
		{"gt", 10, math.NaN(), false}, {"bogus", 10, 11, false},
	}
	for _, tt := range tests {
		c := webhook.Condition{Metric: "m", Operator: tt.op, Value: tt.threshold}
		assert.Equal(t, tt.want, c.Match("m", tt.value), "%v %s %v", tt.value, tt.op, tt.threshold)
	}
	assert.False(t, webhook.Condition{Metric: "m", Operator: "gt", Value: 0}.Match("other", 1), "the metric must match")
}

func TestTriggerMatch(t *testing.T) {
	tr := webhook.Trigger{
		Type:    webhook.TriggerEvent,
		Events:  []string{"purchase", "checkout.*"},
		Filters: []webhook.Filter{{Property: "plan", Operator: "equals", Value: "pro"}},
	}
	for _, c := range []struct {
		event string
		plan  string
		want  bool
	}{
		{"purchase", "pro", true},
		{"checkout.done", "pro", true},
		{"refund", "pro", false},
		{"purchase", "free", false},
	} {
		got, err := tr.Match(c.event, map[string]any{"plan": c.plan})
		require.NoError(t, err)
		assert.Equal(t, c.want, got, "%s/%s", c.event, c.plan)
	}

	th := webhook.Trigger{Type: webhook.TriggerThreshold, Conditions: []webhook.Condition{
		{Metric: "error_rate", Operator: "gt", Value: 0.05},
		{Metric: "latency_p99", Operator: "gte", Value: 800},
	}}
	// Threshold triggers fire from their alert state (TriggerThreshold,
	// RecordMetric), never by matching an occurrence.
	for _, c := range []struct {
		metric string
		value  any
	}{
		{"error_rate", 0.07},
		{"error_rate", 0.01},
		{"latency_p99", 800.0},
	} {
		got, err := th.Match(webhook.EventTypeThresholdAlert, map[string]any{"metric": c.metric, "value": c.value})
		require.NoError(t, err)
		assert.False(t, got, "%s=%v", c.metric, c.value)
	}
	_, err := th.Match(webhook.EventTypeThresholdAlert, nil)
	require.NoError(t, err, "a valid threshold trigger is valid to Match")
	_, err = webhook.Trigger{Type: webhook.TriggerThreshold}.Match(webhook.EventTypeThresholdAlert, nil)
	require.ErrorIs(t, err, webhook.ErrInvalid, "an invalid one is not")

	_, err = webhook.Trigger{Type: "sometimes"}.Match("x", nil)
	require.ErrorIs(t, err, webhook.ErrInvalid)
}

func TestTriggerTypeValid(t *testing.T) {
	for _, typ := range []webhook.TriggerType{"event", "error", "threshold", "anomaly", "scheduled", "funnel_complete", "cohort_entry"} {
		assert.True(t, typ.Valid(), typ)
	}
	assert.False(t, webhook.TriggerType("Event").Valid())
	assert.False(t, webhook.TriggerType("").Valid())
}

// FuzzFilterMatch checks that compiling and matching any filter against
// any data never panics, and that a filter that compiles is consistent:
// not_equals is the negation of equals, not_in of in, not_set of is_set.
func FuzzFilterMatch(f *testing.F) {
	f.Add("plan", "equals", `"pro"`, `{"plan":"pro"}`)
	f.Add("a.b.0", "in", `[1,"x",null]`, `{"a":{"b":[1,2]}}`)
	f.Add("email", "regex", `"^(a+)+$"`, `{"email":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!"}`)
	f.Add("x", "gt", `1e308`, `{"x":-1e308}`)
	f.Add("tags", "contains", `"b"`, `{"tags":["a","b"]}`)
	f.Add("..", "is_set", `null`, `{"":{"":1}}`)
	f.Fuzz(func(t *testing.T, property, op, valueJSON, dataJSON string) {
		var value any
		if json.Unmarshal([]byte(valueJSON), &value) != nil {
			value = valueJSON
		}
		var d map[string]any
		_ = json.Unmarshal([]byte(dataJSON), &d)
		fl := webhook.Filter{Property: property, Operator: webhook.FilterOperator(op), Value: value}
		got, err := fl.Match(d)
		if err != nil {
			if got {
				t.Fatal("an invalid filter matched")
			}
			return
		}
		neg := map[webhook.FilterOperator]webhook.FilterOperator{
			webhook.FilterEquals: webhook.FilterNotEquals, webhook.FilterIn: webhook.FilterNotIn, webhook.FilterIsSet: webhook.FilterNotSet,
		}
		if n, ok := neg[fl.Operator]; ok {
			fl.Operator = n
			other, err := fl.Match(d)
			if err != nil || other == got {
				t.Fatalf("%s and %s agree (%v, err %v) on %s", op, n, got, err, dataJSON)
			}
		}
	})
}

// matchService returns a Service on a fresh memstore, for comparing the
// pure matching functions with what the Service delivers.
func matchService(t testing.TB) *webhook.Service {
	t.Helper()
	svc, err := webhook.NewService(memstore.New(nil), nil)
	require.NoError(t, err)
	return svc
}

func TestEveryTriggerTypeIsSupported(t *testing.T) {
	for _, typ := range []webhook.TriggerType{webhook.TriggerEvent, webhook.TriggerError, webhook.TriggerThreshold,
		webhook.TriggerAnomaly, webhook.TriggerScheduled, webhook.TriggerFunnelComplete, webhook.TriggerCohortEntry} {
		assert.True(t, typ.Valid(), typ)
		assert.True(t, typ.Supported(), typ)
	}
	assert.False(t, webhook.TriggerType("sometimes").Valid())
}

func TestTriggerMatchNeedsItsType(t *testing.T) {
	cases := []struct {
		typ   webhook.TriggerType
		event string
		want  bool
	}{
		{webhook.TriggerEvent, "purchase", true},
		{webhook.TriggerEvent, webhook.EventTypeError, false},
		{webhook.TriggerError, webhook.EventTypeError, true},
		{webhook.TriggerError, "purchase", false},
		{webhook.TriggerError, webhook.EventTypeThresholdAlert, false},
	}
	for _, c := range cases {
		got, err := webhook.Trigger{Type: c.typ}.Match(c.event, map[string]any{"error_type": "x"})
		require.NoError(t, err)
		assert.Equal(t, c.want, got, "%s on %s", c.typ, c.event)
	}
	th := webhook.Trigger{Type: webhook.TriggerThreshold, Conditions: []webhook.Condition{{Metric: "m", Operator: "gt", Value: 1}}}
	got, err := th.Match("purchase", map[string]any{"metric": "m", "value": 2})
	require.NoError(t, err)
	assert.False(t, got, "a threshold trigger matches nothing")
	got, err = th.Match(webhook.EventTypeThresholdAlert, map[string]any{"metric": "m", "value": 2})
	require.NoError(t, err)
	assert.False(t, got, "not even $threshold_alert: its deliveries come from its alert state")
}

// TestMatchSeesWhatTheServiceSees checks the pure functions against
// TriggerEvent for data that is not already decoded JSON: structs,
// typed slices, invalid UTF-8.
func TestMatchSeesWhatTheServiceSees(t *testing.T) {
	type item struct {
		SKU string `json:"sku"`
	}
	type order struct {
		Total    int    `json:"total"`
		Items    []item `json:"items"`
		Internal string `json:"-"`
		Untagged bool
	}
	data := map[string]any{
		"order": order{Total: 250, Items: []item{{SKU: "X1"}}, Internal: "secret", Untagged: true},
		"name":  "caf\xe9",
		"raw":   []byte("hi"),
	}
	cases := []struct {
		f    webhook.Filter
		want bool
	}{
		{webhook.Filter{Property: "order.total", Operator: webhook.FilterGTE, Value: 100}, true},
		{webhook.Filter{Property: "order.items.0.sku", Operator: webhook.FilterEquals, Value: "X1"}, true},
		{webhook.Filter{Property: "order.Total", Operator: webhook.FilterIsSet}, false},
		{webhook.Filter{Property: "order.Internal", Operator: webhook.FilterIsSet}, false},
		{webhook.Filter{Property: "order.Untagged", Operator: webhook.FilterEquals, Value: true}, true},
		{webhook.Filter{Property: "name", Operator: webhook.FilterEquals, Value: "caf\uFFFD"}, true},
		{webhook.Filter{Property: "raw", Operator: webhook.FilterEquals, Value: "aGk="}, true},
	}
	for _, c := range cases {
		svc := matchService(t)
		tr := webhook.Trigger{Type: webhook.TriggerEvent, Filters: []webhook.Filter{c.f}}
		_, err := svc.Create(t.Context(), &webhook.Webhook{Name: "n", URL: "https://example.com/hook", Triggers: []webhook.Trigger{tr}})
		require.NoError(t, err)
		ids, err := svc.TriggerEvent(t.Context(), "purchase", data, "")
		require.NoError(t, err)
		assert.Equal(t, c.want, len(ids) == 1, "the Service on %+v", c.f)

		got, err := c.f.Match(data)
		require.NoError(t, err)
		assert.Equal(t, c.want, got, "Filter.Match on %+v", c.f)
		got, err = webhook.MatchFilters([]webhook.Filter{c.f}, data)
		require.NoError(t, err)
		assert.Equal(t, c.want, got, "MatchFilters on %+v", c.f)
		got, err = tr.Match("purchase", data)
		require.NoError(t, err)
		assert.Equal(t, c.want, got, "Trigger.Match on %+v", c.f)
	}

	// Data the Service refuses is refused by the pure functions too.
	bad := map[string]any{"x": math.NaN()}
	f := webhook.Filter{Property: "x", Operator: webhook.FilterIsSet}
	_, err := matchService(t).TriggerEvent(t.Context(), "purchase", bad, "")
	require.ErrorIs(t, err, webhook.ErrInvalid)
	_, err = f.Match(bad)
	assert.Equal(t, []string{"data"}, fields(t, err))
	_, err = webhook.MatchFilters([]webhook.Filter{f}, bad)
	assert.Equal(t, []string{"data"}, fields(t, err))
}

// TestMatchFieldPaths checks that each pure function names fields
// relative to its own input, as FieldError documents.
func TestMatchFieldPaths(t *testing.T) {
	_, err := webhook.Filter{Property: "p", Operator: "gt", Value: "x"}.Match(nil)
	assert.Equal(t, []string{"value"}, fields(t, err))
	_, err = webhook.Filter{Operator: "is_set"}.Match(nil)
	assert.Equal(t, []string{"property"}, fields(t, err))
	_, err = webhook.Filter{Property: "p", Operator: "like"}.Match(nil)
	assert.Equal(t, []string{"operator"}, fields(t, err))
	_, err = webhook.MatchFilters([]webhook.Filter{{Property: "p", Operator: "is_set"}, {Property: "p", Operator: "in", Value: 1}}, nil)
	assert.Equal(t, []string{"filters[1].value"}, fields(t, err))
	_, err = webhook.Trigger{Type: "nope", Events: []string{""}, Filters: []webhook.Filter{{Property: "p", Operator: "regex", Value: "("}}}.Match("x", nil)
	assert.Equal(t, []string{"trigger_type", "events[0]", "filters[0].value"}, fields(t, err))
	_, err = webhook.Trigger{Type: webhook.TriggerThreshold, Conditions: []webhook.Condition{{Operator: "gt"}}}.Match("x", nil)
	assert.Equal(t, []string{"conditions[0].metric"}, fields(t, err))
	err = webhook.RetryPolicy{}.Validate()
	assert.Equal(t, []string{"max_attempts", "initial_delay_seconds", "max_delay_seconds", "backoff_multiplier"}, fields(t, err))
}

type fuzzItem struct {
	SKU string `json:"sku"`
}

type fuzzOrder struct {
	Total int64      `json:"total"`
	Items []fuzzItem `json:"items"`
	Tags  []string   `json:"tags,omitempty"`
	Note  string     // no tag: "Note"
}

// FuzzTriggerAgreesWithService checks end to end that Trigger.Match
// claims a match exactly when a trigger call on a Service enqueues a
// delivery to a webhook with that trigger, and that the trigger is
// invalid for Match exactly when Create refuses it. The data mixes
// decoded JSON with Go structs and slices, which the Service sees through
// their JSON encoding.
func FuzzTriggerAgreesWithService(f *testing.F) {
	f.Add(uint8(0), "checkout.completed", "checkout.*", "order.total", "gte", `100`, `{"plan":"pro"}`, int64(250), "X1")
	f.Add(uint8(0), "purchase", "", "order.items.0.sku", "equals", `"X1"`, `{}`, int64(1), "X1")
	f.Add(uint8(0), "purchase", "purchase", "order.Note", "is_set", `null`, `{"order":1}`, int64(1), "")
	f.Add(uint8(0), "$error", "*", "plan", "not_set", `null`, `{}`, int64(0), "")
	f.Add(uint8(1), "timeout", "", "details.plan", "in", `["pro","team"]`, `{"plan":"pro"}`, int64(0), "boom")
	f.Add(uint8(1), "timeout", "", "error_message", "regex", `"^b"`, `{}`, int64(0), "boom")
	f.Add(uint8(2), "error_rate", "error_rate", "exceeded", "equals", `true`, `{}`, int64(7), "")
	f.Add(uint8(2), "latency", "latency", "value", "lt", `5`, `{}`, int64(3), "")
	f.Add(uint8(0), "purchase", "purchase", "order.tags", "contains", `"\u00e9"`, `{}`, int64(1), "\xe9")
	f.Fuzz(func(t *testing.T, kind uint8, name, pattern, property, op, valueJSON, dataJSON string, total int64, text string) {
		var value any
		if json.Unmarshal([]byte(valueJSON), &value) != nil {
			value = valueJSON
		}
		var d map[string]any
		_ = json.Unmarshal([]byte(dataJSON), &d)
		if d == nil {
			d = map[string]any{}
		}
		if _, taken := d["order"]; !taken {
			d["order"] = fuzzOrder{Total: total, Items: []fuzzItem{{SKU: text}}, Tags: []string{text}, Note: text}
		}
		tr := webhook.Trigger{Type: webhook.TriggerEvent, Filters: []webhook.Filter{{Property: property, Operator: webhook.FilterOperator(op), Value: value}}}
		switch kind % 3 {
		case 0:
			if pattern != "" {
				tr.Events = []string{pattern}
			}
		case 1:
			tr.Type = webhook.TriggerError
		case 2:
			tr.Type = webhook.TriggerThreshold
			tr.Conditions = []webhook.Condition{{Metric: pattern, Operator: webhook.ConditionGT, Value: 0}}
		}

		svc := matchService(t)
		ctx := t.Context()
		_, createErr := svc.Create(ctx, &webhook.Webhook{Name: "fuzz", URL: "https://example.com/hook", Triggers: []webhook.Trigger{tr}})

		var ids []string
		var callErr error
		var event string
		var data map[string]any
		switch kind % 3 {
		case 0:
			event, data = name, d
			ids, callErr = svc.TriggerEvent(ctx, name, d, "")
		case 1:
			event, data = webhook.EventTypeError, map[string]any{"error_type": name, "error_message": text, "details": d}
			ids, callErr = svc.TriggerError(ctx, name, text, d, "")
		case 2:
			v := float64(total)
			event, data = webhook.EventTypeThresholdAlert, map[string]any{"metric": name, "value": v, "threshold": 0.0, "exceeded": v > 0}
			ids, callErr = svc.TriggerThreshold(ctx, name, v, 0, "")
		}
		matched, matchErr := tr.Match(event, data)

		if createErr != nil {
			if !errors.Is(createErr, webhook.ErrInvalid) {
				t.Fatalf("Create: %v", createErr)
			}
			if !errors.Is(matchErr, webhook.ErrInvalid) {
				t.Fatalf("Create refuses %+v (%v), but Match accepts it (%v, %v)", tr, createErr, matched, matchErr)
			}
			if len(ids) > 0 {
				t.Fatalf("a delivery without a webhook: %v", ids)
			}
			return
		}
		if callErr != nil {
			if !errors.Is(callErr, webhook.ErrInvalid) {
				t.Fatalf("trigger call: %v", callErr)
			}
			return // the Service refused the occurrence itself
		}
		if matchErr != nil {
			t.Fatalf("Create accepts %+v, the trigger call %q %v succeeds, but Match fails: %v", tr, event, data, matchErr)
		}
		if tr.Type == webhook.TriggerThreshold {
			// Match never claims a threshold trigger; the Service's first
			// value fires exactly when the condition holds.
			want := tr.Conditions[0].Match(name, float64(total))
			if matched || want != (len(ids) == 1) || len(ids) > 1 {
				t.Fatalf("Trigger.Match = %v, condition holds = %v, but the Service enqueued %d deliveries, for %+v on %q %v", matched, want, len(ids), tr, name, total)
			}
			return
		}
		if matched != (len(ids) == 1) || len(ids) > 1 {
			t.Fatalf("Trigger.Match = %v, but the Service enqueued %d deliveries, for %+v on %q %#v", matched, len(ids), tr, event, data)
		}
	})
}
