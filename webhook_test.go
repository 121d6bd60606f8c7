package webhook_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
)

func validWebhook() *webhook.Webhook {
	return &webhook.Webhook{
		Name:     "orders",
		URL:      "https://hooks.example.com/orders",
		Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent, Events: []string{"purchase"}}},
		Retry:    webhook.DefaultRetryPolicy(),
	}
}

// fields returns the field paths of a validation error.
func fields(t *testing.T, err error) []string {
	t.Helper()
	require.ErrorIs(t, err, webhook.ErrInvalid)
	var ve *webhook.ValidationError
	require.ErrorAs(t, err, &ve)
	out := make([]string, len(ve.Fields))
	for i, f := range ve.Fields {
		out[i] = f.Field
	}
	return out
}

func TestWebhookValidateOK(t *testing.T) {
	require.NoError(t, validWebhook().Validate())
	w := validWebhook()
	w.URL = "http://[2001:db8::1]:8443/path?q=1"
	w.Headers = map[string]string{"Authorization": "Bearer x", "X-Team": "growth\tanalytics"}
	w.Environments = []string{"production"}
	w.SignatureScheme = webhook.SchemeHex
	secret, err := webhook.NewSecret()
	require.NoError(t, err)
	w.Secret = secret
	require.NoError(t, w.Validate())
}

func TestWebhookValidateFields(t *testing.T) {
	cases := []struct {
		name  string
		mut   func(w *webhook.Webhook)
		field string
	}{
		{"empty name", func(w *webhook.Webhook) { w.Name = "  " }, "name"},
		{"long name", func(w *webhook.Webhook) { w.Name = strings.Repeat("n", 257) }, "name"},
		{"empty url", func(w *webhook.Webhook) { w.URL = "" }, "url"},
		{"relative url", func(w *webhook.Webhook) { w.URL = "/hooks" }, "url"},
		{"ftp url", func(w *webhook.Webhook) { w.URL = "ftp://example.com/x" }, "url"},
		{"javascript url", func(w *webhook.Webhook) { w.URL = "javascript:alert(1)" }, "url"},
		{"opaque url", func(w *webhook.Webhook) { w.URL = "http:example.com" }, "url"},
		{"no host", func(w *webhook.Webhook) { w.URL = "https:///path" }, "url"},
		{"credentials", func(w *webhook.Webhook) { w.URL = "https://user:pass@example.com/" }, "url"},
		{"user only", func(w *webhook.Webhook) { w.URL = "https://user@example.com/" }, "url"},
		{"fragment", func(w *webhook.Webhook) { w.URL = "https://example.com/#frag" }, "url"},
		{"bad port", func(w *webhook.Webhook) { w.URL = "https://example.com:99999/" }, "url"},
		{"zero port", func(w *webhook.Webhook) { w.URL = "https://example.com:0/" }, "url"},
		{"space in host", func(w *webhook.Webhook) { w.URL = "https://exa mple.com/" }, "url"},
		{"ipv6 zone", func(w *webhook.Webhook) { w.URL = "http://[fe80::1%25eth0]/" }, "url"},
		{"long url", func(w *webhook.Webhook) { w.URL = "https://example.com/" + strings.Repeat("a", 2048) }, "url"},
		{"bad secret", func(w *webhook.Webhook) { w.Secret = "hunter2" }, "secret"},
		{"short secret", func(w *webhook.Webhook) { w.Secret = "whsec_c2hvcnQ=" }, "secret"},
		{"bad header name", func(w *webhook.Webhook) { w.Headers = map[string]string{"Bad Header": "x"} }, `headers["Bad Header"]`},
		{"header name colon", func(w *webhook.Webhook) { w.Headers = map[string]string{"X-A:": "x"} }, `headers["X-A:"]`},
		{"header value newline", func(w *webhook.Webhook) { w.Headers = map[string]string{"X-A": "x\r\nInjected: 1"} }, `headers["X-A"]`},
		{"header value NUL", func(w *webhook.Webhook) { w.Headers = map[string]string{"X-A": "x\x00"} }, `headers["X-A"]`},
		{"header value long", func(w *webhook.Webhook) { w.Headers = map[string]string{"X-A": strings.Repeat("v", 4097)} }, `headers["X-A"]`},
		{"reserved webhook-id", func(w *webhook.Webhook) { w.Headers = map[string]string{"Webhook-Id": "x"} }, `headers["Webhook-Id"]`},
		{"reserved webhook-signature", func(w *webhook.Webhook) { w.Headers = map[string]string{"webhook-signature": "x"} }, `headers["webhook-signature"]`},
		{"reserved X-Webhook-Signature", func(w *webhook.Webhook) { w.Headers = map[string]string{"x-webhook-signature": "x"} }, `headers["x-webhook-signature"]`},
		{"reserved X-Webhook-Id", func(w *webhook.Webhook) { w.Headers = map[string]string{"X-WEBHOOK-ID": "x"} }, `headers["X-WEBHOOK-ID"]`},
		{"reserved X-Delivery-Id", func(w *webhook.Webhook) { w.Headers = map[string]string{"X-Delivery-Id": "x"} }, `headers["X-Delivery-Id"]`},
		{"reserved Content-Type", func(w *webhook.Webhook) { w.Headers = map[string]string{"content-type": "text/plain"} }, `headers["content-type"]`},
		{"reserved Content-Length", func(w *webhook.Webhook) { w.Headers = map[string]string{"Content-Length": "1"} }, `headers["Content-Length"]`},
		{"reserved Host", func(w *webhook.Webhook) { w.Headers = map[string]string{"Host": "internal"} }, `headers["Host"]`},
		{"reserved User-Agent", func(w *webhook.Webhook) { w.Headers = map[string]string{"User-Agent": "me"} }, `headers["User-Agent"]`},
		{"reserved Transfer-Encoding", func(w *webhook.Webhook) { w.Headers = map[string]string{"Transfer-Encoding": "chunked"} }, `headers["Transfer-Encoding"]`},
		{"header case duplicate", func(w *webhook.Webhook) { w.Headers = map[string]string{"X-A": "1", "x-a": "2"} }, `headers["x-a"]`},
		{"no triggers", func(w *webhook.Webhook) { w.Triggers = nil }, "triggers"},
		{"unknown trigger type", func(w *webhook.Webhook) { w.Triggers[0].Type = "sometimes" }, "triggers[0].trigger_type"},
		{"bad event pattern", func(w *webhook.Webhook) { w.Triggers[0].Events = []string{"check*out"} }, "triggers[0].events[0]"},
		{"empty event pattern", func(w *webhook.Webhook) { w.Triggers[0].Events = []string{""} }, "triggers[0].events[0]"},
		{"star prefix", func(w *webhook.Webhook) { w.Triggers[0].Events = []string{"*.done"} }, "triggers[0].events[0]"},
		{"events on error trigger", func(w *webhook.Webhook) {
			w.Triggers = []webhook.Trigger{{Type: webhook.TriggerError, Events: []string{"x"}}}
		}, "triggers[0].events"},
		{"unknown operator", func(w *webhook.Webhook) {
			w.Triggers[0].Filters = []webhook.Filter{{Property: "a", Operator: "like", Value: "x"}}
		}, "triggers[0].filters[0].operator"},
		{"empty property", func(w *webhook.Webhook) {
			w.Triggers[0].Filters = []webhook.Filter{{Operator: "is_set"}}
		}, "triggers[0].filters[0].property"},
		{"bad regex", func(w *webhook.Webhook) {
			w.Triggers[0].Filters = []webhook.Filter{{Property: "a", Operator: "regex", Value: "a(b"}}
		}, "triggers[0].filters[0].value"},
		{"regex too long", func(w *webhook.Webhook) {
			w.Triggers[0].Filters = []webhook.Filter{{Property: "a", Operator: "regex", Value: strings.Repeat("a", 1025)}}
		}, "triggers[0].filters[0].value"},
		{"wrong value type", func(w *webhook.Webhook) {
			w.Triggers[0].Filters = []webhook.Filter{{Property: "a", Operator: "gt", Value: "5"}}
		}, "triggers[0].filters[0].value"},
		{"threshold without conditions", func(w *webhook.Webhook) {
			w.Triggers = []webhook.Trigger{{Type: webhook.TriggerThreshold}}
		}, "triggers[0].conditions"},
		{"conditions on event trigger", func(w *webhook.Webhook) {
			w.Triggers[0].Conditions = []webhook.Condition{{Metric: "m", Operator: "gt", Value: 1}}
		}, "triggers[0].conditions"},
		{"condition NaN", func(w *webhook.Webhook) {
			w.Triggers = []webhook.Trigger{{Type: webhook.TriggerThreshold, Conditions: []webhook.Condition{{Metric: "m", Operator: "gt", Value: math.NaN()}}}}
		}, "triggers[0].conditions[0].value"},
		{"condition Inf", func(w *webhook.Webhook) {
			w.Triggers = []webhook.Trigger{{Type: webhook.TriggerThreshold, Conditions: []webhook.Condition{{Metric: "m", Operator: "lt", Value: math.Inf(-1)}}}}
		}, "triggers[0].conditions[0].value"},
		{"condition operator", func(w *webhook.Webhook) {
			w.Triggers = []webhook.Trigger{{Type: webhook.TriggerThreshold, Conditions: []webhook.Condition{{Metric: "m", Operator: "ne", Value: 1}}}}
		}, "triggers[0].conditions[0].operator"},
		{"condition metric", func(w *webhook.Webhook) {
			w.Triggers = []webhook.Trigger{{Type: webhook.TriggerThreshold, Conditions: []webhook.Condition{{Operator: "gt", Value: 1}}}}
		}, "triggers[0].conditions[0].metric"},
		{"condition window", func(w *webhook.Webhook) {
			w.Triggers = []webhook.Trigger{{Type: webhook.TriggerThreshold, Conditions: []webhook.Condition{{Metric: "m", Operator: "gt", Value: 1, WindowSeconds: -1}}}}
		}, "triggers[0].conditions[0].window_seconds"},
		{"retry attempts", func(w *webhook.Webhook) { w.Retry.MaxAttempts = 0 }, "retry.max_attempts"},
		{"retry multiplier", func(w *webhook.Webhook) { w.Retry.Multiplier = 0.9 }, "retry.backoff_multiplier"},
		{"empty environment", func(w *webhook.Webhook) { w.Environments = []string{""} }, "environments[0]"},
		{"NUL in tenant", func(w *webhook.Webhook) { w.TenantID = "t\x00" }, "tenant_id"},
		{"control character in name", func(w *webhook.Webhook) { w.Name = "a\rb" }, "name"},
		{"signature scheme", func(w *webhook.Webhook) { w.SignatureScheme = "md5" }, "signature_scheme"},
		{"timeout too short", func(w *webhook.Webhook) { w.Timeout = time.Millisecond }, "timeout_seconds"},
		{"timeout too long", func(w *webhook.Webhook) { w.Timeout = time.Hour }, "timeout_seconds"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := validWebhook()
			c.mut(w)
			assert.Equal(t, []string{c.field}, fields(t, w.Validate()))
		})
	}
}

func TestWebhookValidateListsEveryProblem(t *testing.T) {
	w := &webhook.Webhook{URL: "ftp://x", Triggers: []webhook.Trigger{{Type: "nope"}}}
	got := fields(t, w.Validate())
	assert.Subset(t, got, []string{"name", "url", "triggers[0].trigger_type", "retry.max_attempts"})
	assert.Contains(t, w.Validate().Error(), "name: must not be empty")
}

func TestWebhookJSON(t *testing.T) {
	// The specification's field names; "enabled" absent means enabled.
	in := `{"name":"n","url":"https://example.com","triggers":[{"trigger_type":"event","filters":[{"property":"plan","operator":"equals","value":"pro"}],"conditions":[]}],"headers":{"X-A":"1"},"retry":{"max_attempts":3,"initial_delay_seconds":1,"max_delay_seconds":60,"backoff_multiplier":2}}`
	var w webhook.Webhook
	require.NoError(t, json.Unmarshal([]byte(in), &w))
	assert.False(t, w.Disabled)
	assert.Equal(t, 3, w.Retry.MaxAttempts)
	assert.Equal(t, "pro", w.Triggers[0].Filters[0].Value)
	require.NoError(t, w.Validate())

	require.NoError(t, json.Unmarshal([]byte(`{"name":"n","enabled":false}`), &w))
	assert.True(t, w.Disabled)

	w = webhook.Webhook{ID: "id", Name: "n", URL: "https://e.com", Disabled: true, DisabledReason: "410",
		CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Retry: webhook.DefaultRetryPolicy()}
	b, err := json.Marshal(w)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	for _, k := range []string{"id", "name", "url", "enabled", "triggers", "headers", "retry", "created_at", "updated_at"} {
		assert.Contains(t, m, k)
	}
	assert.Equal(t, false, m["enabled"])
	assert.Equal(t, "410", m["disabled_reason"])
	var back webhook.Webhook
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, w, back)
}

func TestWebhookClone(t *testing.T) {
	w := validWebhook()
	w.Headers = map[string]string{"X-A": "1"}
	w.Triggers[0].Filters = []webhook.Filter{{Property: "tags", Operator: "in", Value: []any{"a"}}}
	c := w.Clone()
	require.Equal(t, w, c)
	c.Headers["X-A"] = "2"
	c.Triggers[0].Events[0] = "other"
	c.Triggers[0].Filters[0].Value.([]any)[0] = "b"
	assert.Equal(t, "1", w.Headers["X-A"])
	assert.Equal(t, "purchase", w.Triggers[0].Events[0])
	assert.Equal(t, "a", w.Triggers[0].Filters[0].Value.([]any)[0])
	assert.Nil(t, (*webhook.Webhook)(nil).Clone())
}

func TestActiveSecrets(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := &webhook.Webhook{Secret: "new", PreviousSecrets: []webhook.RetiredSecret{
		{Secret: "expired", ExpiresAt: now},
		{Secret: "old", ExpiresAt: now.Add(time.Hour)},
	}}
	assert.Equal(t, []string{"new", "old"}, w.ActiveSecrets(now))
}

func TestWebhookJSONIsStrict(t *testing.T) {
	const trig = `{"trigger_type":"event","events":["purchase"]}`
	cases := []struct {
		name, in, field, reason string
	}{
		{"event for events", `{"name":"n","triggers":[{"trigger_type":"event","event":["purchase"]}]}`, "triggers[0].event", "unknown field"},
		{"filter for filters", `{"name":"n","triggers":[{"trigger_type":"event","filter":[{"property":"p","operator":"is_set"}]}]}`, "triggers[0].filter", "unknown field"},
		{"top level", `{"name":"n","secrets":"x","triggers":[` + trig + `]}`, "secrets", "unknown field"},
		{"case differs", `{"Name":"n","triggers":[` + trig + `]}`, "Name", `did you mean "name"?`},
		{"repeated key", `{"name":"a","name":"b","triggers":[` + trig + `]}`, "name", "appears more than once"},
		{"repeated header", `{"name":"n","headers":{"X-A":"1","X-A":"2"}}`, `headers["X-A"]`, "appears more than once"},
		{"header not a string", `{"name":"n","headers":{"X-A":1}}`, `headers["X-A"]`, "must be a string"},
		{"retry", `{"name":"n","retry":{"max_attempt":3}}`, "retry.max_attempt", "unknown field"},
		{"filter", `{"triggers":[{"trigger_type":"event","filters":[{"property":"p","op":"is_set"}]}]}`, "triggers[0].filters[0].op", "unknown field"},
		{"condition", `{"triggers":[{"trigger_type":"threshold","conditions":[{"metric":"m","operator":"gt","value":1,"window":60}]}]}`, "triggers[0].conditions[0].window", "unknown field"},
		{"retired secret", `{"previous_secrets":[{"secret":"s","expires":"2026-01-01T00:00:00Z"}]}`, "previous_secrets[0].expires", "unknown field"},
		{"odd key", `{"a b":1}`, `["a b"]`, "unknown field"},
		{"wrong type", `{"name":5}`, "name", "must be a string"},
		{"fractional integer", `{"max_in_flight":1.5}`, "max_in_flight", "must be an integer"},
		{"null trigger", `{"triggers":[null]}`, "triggers[0]", "not null"},
		{"trigger not an object", `{"triggers":["event"]}`, "triggers[0]", "must be a JSON object"},
		{"bad time", `{"created_at":"yesterday"}`, "created_at", "RFC 3339"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := webhook.Webhook{Name: "before"}
			err := json.Unmarshal([]byte(c.in), &w)
			assert.Equal(t, []string{c.field}, fields(t, err))
			var ve *webhook.ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Contains(t, ve.Fields[0].Reason, c.reason)
			assert.Equal(t, webhook.Webhook{Name: "before"}, w, "a failed decode changes nothing")

			// A json.Decoder, with or without DisallowUnknownFields, is as strict.
			dec := json.NewDecoder(strings.NewReader(c.in))
			dec.DisallowUnknownFields()
			assert.ErrorIs(t, dec.Decode(&w), webhook.ErrInvalid)
			// And so is the secret-bearing form.
			var ws webhook.WebhookWithSecrets
			assert.ErrorIs(t, json.Unmarshal([]byte(c.in), &ws), webhook.ErrInvalid)
		})
	}

	// Every problem is listed, not only the first.
	var w webhook.Webhook
	got := fields(t, json.Unmarshal([]byte(`{"nme":"n","triggers":[{"trigger_type":"event","event":["x"]}],"retry":{"tries":1}}`), &w))
	assert.Equal(t, []string{"nme", "triggers[0].event", "retry.tries"}, got)

	// The nested types are strict on their own too, with relative paths.
	var tr webhook.Trigger
	assert.Equal(t, []string{"filters[0].operater"}, fields(t, json.Unmarshal([]byte(`{"trigger_type":"event","filters":[{"property":"p","operater":"is_set"}]}`), &tr)))
	var f webhook.Filter
	assert.Equal(t, []string{"values"}, fields(t, json.Unmarshal([]byte(`{"property":"p","operator":"in","values":[1]}`), &f)))
	var cond webhook.Condition
	assert.Equal(t, []string{"threshold"}, fields(t, json.Unmarshal([]byte(`{"metric":"m","threshold":1}`), &cond)))
	var p webhook.RetryPolicy
	assert.Equal(t, []string{"max_retries"}, fields(t, json.Unmarshal([]byte(`{"max_retries":3}`), &p)))
	var rs webhook.RetiredSecret
	assert.Equal(t, []string{"secrets"}, fields(t, json.Unmarshal([]byte(`{"secrets":"x"}`), &rs)))

	// null means absent; a null input leaves the value alone.
	w = webhook.Webhook{Name: "kept"}
	require.NoError(t, json.Unmarshal([]byte(`null`), &w))
	assert.Equal(t, "kept", w.Name)
	require.NoError(t, json.Unmarshal([]byte(`{"name":"n","enabled":null,"retry":null,"triggers":null}`), &w))
	assert.Equal(t, webhook.Webhook{Name: "n"}, w)
}

func TestWebhookJSONHidesSecrets(t *testing.T) {
	secret, err := webhook.NewSecret()
	require.NoError(t, err)
	old, err := webhook.NewSecret()
	require.NoError(t, err)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := validWebhook()
	w.ID = "id"
	w.Secret = secret
	w.PreviousSecrets = []webhook.RetiredSecret{{Secret: old, ExpiresAt: t0}}
	w.CreatedAt, w.UpdatedAt, w.Version = t0, t0, 3

	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("saved", "webhook", w, "value", *w, "retired", w.PreviousSecrets[0])
	printed := map[string]string{"log": logged.String()}
	for _, v := range []any{w, *w, []*webhook.Webhook{w}, map[string]webhook.Webhook{"w": *w}, w.PreviousSecrets, w.WithSecrets()} {
		if _, isWS := v.(webhook.WebhookWithSecrets); !isWS {
			b, err := json.Marshal(v)
			require.NoError(t, err)
			printed[fmt.Sprintf("json %T", v)] = string(b)
		}
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			printed[fmt.Sprintf("%s %T", verb, v)] = fmt.Sprintf(verb, v)
		}
	}
	for what, out := range printed {
		for _, s := range []string{secret, old, strings.TrimPrefix(secret, "whsec_"), strings.TrimPrefix(old, "whsec_")} {
			assert.NotContains(t, out, s, what)
		}
	}
	assert.Contains(t, printed["%#v *webhook.Webhook"], `Secret:"[redacted]"`)

	// The explicit form carries both, and decodes to the same webhook.
	b, err := json.Marshal(w.WithSecrets())
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	assert.Equal(t, secret, m["secret"])
	assert.Equal(t, []any{map[string]any{"secret": old, "expires_at": "2026-01-01T00:00:00Z"}}, m["previous_secrets"])
	var back webhook.WebhookWithSecrets
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, *w, back.Webhook)
	var plain webhook.Webhook
	require.NoError(t, json.Unmarshal(b, &plain), "a Webhook decodes the explicit form too")
	assert.Equal(t, *w, plain)

	// Without WithSecrets, the round trip drops the secrets.
	b, err = json.Marshal(w)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &plain))
	assert.Empty(t, plain.Secret)
	assert.Empty(t, plain.PreviousSecrets)
}

// FuzzWebhookJSON checks that decoding and validating any input never
// panics, that decoding fails only with ErrInvalid or a JSON syntax
// error, and that a webhook that decodes and validates encodes (with its
// secrets) and decodes to an equal webhook.
func FuzzWebhookJSON(f *testing.F) {
	secret := "whsec_" + strings.Repeat("A", 43) + "="
	f.Add(`{"name":"n","url":"https://example.com","triggers":[{"trigger_type":"event","events":["checkout.*"],"filters":[{"property":"order.total","operator":"gte","value":100}],"conditions":[]}],"headers":{"X-A":"1"},"retry":{"max_attempts":3,"initial_delay_seconds":1,"max_delay_seconds":60,"backoff_multiplier":2}}`)
	f.Add(`{"id":"x","name":"n","url":"http://[2001:db8::1]/","secret":"` + secret + `","previous_secrets":[{"secret":"` + secret + `","expires_at":"2026-01-01T00:00:00+02:00"}],"enabled":false,"disabled_reason":"410","triggers":[{"trigger_type":"threshold","conditions":[{"metric":"m","operator":"eq","value":-0,"window_seconds":0}]}],"retry":{"max_attempts":1,"initial_delay_seconds":1.5,"max_delay_seconds":2,"backoff_multiplier":1,"disable_jitter":true},"environments":["production"],"signature_scheme":"hex","timeout_seconds":1.000064438,"rate_limit":0.5,"max_in_flight":3,"consecutive_failures":2,"failing_since":"2026-01-01T00:00:00Z","created_at":"2026-01-01T00:00:00.123456789-07:00","updated_at":"2026-01-01T00:00:00Z","version":4}`)
	f.Add(`{"name":"n","url":"https://e.com","triggers":[{"trigger_type":"event","events":[],"filters":[{"property":"details.a","operator":"in","value":[1,"x",null,true]}]}],"retry":{"max_attempts":5,"initial_delay_seconds":5,"max_delay_seconds":3600,"backoff_multiplier":2},"headers":{},"environments":[]}`)
	f.Add(`{"name":"n","name":"n"}`)
	f.Add(`[1,2]`)
	f.Fuzz(func(t *testing.T, in string) {
		var w webhook.Webhook
		if err := json.Unmarshal([]byte(in), &w); err != nil {
			var se *json.SyntaxError
			if !errors.Is(err, webhook.ErrInvalid) && !errors.As(err, &se) {
				t.Fatalf("decoding %q: unexpected error %T %v", in, err, err)
			}
			return
		}
		if w.Validate() != nil {
			return
		}
		b, err := json.Marshal(w.WithSecrets())
		if err != nil {
			t.Fatalf("a valid webhook does not encode: %v", err)
		}
		var back webhook.Webhook
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s does not decode: %v", b, err)
		}
		if !assert.Equal(t, w, back) {
			t.Fatalf("round trip of %s", b)
		}
		if back.Validate() != nil {
			t.Fatalf("the round trip of a valid webhook is invalid: %v", back.Validate())
		}
	})
}
