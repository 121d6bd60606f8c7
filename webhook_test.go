package webhook_test

import (
	"encoding/json"
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
		}, "triggers[0].filters[0]"},
		{"bad regex", func(w *webhook.Webhook) {
			w.Triggers[0].Filters = []webhook.Filter{{Property: "a", Operator: "regex", Value: "a(b"}}
		}, "triggers[0].filters[0]"},
		{"regex too long", func(w *webhook.Webhook) {
			w.Triggers[0].Filters = []webhook.Filter{{Property: "a", Operator: "regex", Value: strings.Repeat("a", 1025)}}
		}, "triggers[0].filters[0]"},
		{"wrong value type", func(w *webhook.Webhook) {
			w.Triggers[0].Filters = []webhook.Filter{{Property: "a", Operator: "gt", Value: "5"}}
		}, "triggers[0].filters[0]"},
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
