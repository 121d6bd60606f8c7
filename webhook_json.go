package webhook

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// webhookJSON is the wire form of Webhook.
type webhookJSON struct {
	ID              string              `json:"id"`
	TenantID        string              `json:"tenant_id,omitempty"`
	Name            string              `json:"name"`
	URL             string              `json:"url"`
	Secret          string              `json:"secret,omitempty"`
	PreviousSecrets []retiredSecretJSON `json:"previous_secrets,omitempty"`
	Enabled         bool                `json:"enabled"`
	DisabledReason  string              `json:"disabled_reason,omitempty"`
	Triggers        []Trigger           `json:"triggers"`
	Headers         map[string]string   `json:"headers"`
	Retry           RetryPolicy         `json:"retry"`
	Environments    []string            `json:"environments,omitempty"`
	SignatureScheme SignatureScheme     `json:"signature_scheme,omitempty"`
	PropagateTrace  bool                `json:"propagate_trace,omitempty"`
	TimeoutSeconds  float64             `json:"timeout_seconds,omitempty"`
	RateLimit       float64             `json:"rate_limit,omitempty"`
	MaxInFlight     int                 `json:"max_in_flight,omitempty"`
	Failures        int                 `json:"consecutive_failures,omitempty"`
	FailingSince    time.Time           `json:"failing_since,omitzero"`
	CreatedAt       time.Time           `json:"created_at"`
	UpdatedAt       time.Time           `json:"updated_at"`
	Version         int64               `json:"version,omitempty"`
}

// retiredSecretJSON is the wire form of RetiredSecret in
// WebhookWithSecrets.
type retiredSecretJSON struct {
	Secret    string    `json:"secret"`
	ExpiresAt time.Time `json:"expires_at"`
}

// MarshalJSON encodes the webhook in the specification's field names,
// without "secret" and "previous_secrets", so that a webhook written to a
// response, a log or a file never discloses them. Use WithSecrets for the
// form that includes them.
func (w Webhook) MarshalJSON() ([]byte, error) {
	return w.marshal(false)
}

func (w Webhook) marshal(secrets bool) ([]byte, error) {
	j := webhookJSON{
		ID: w.ID, TenantID: w.TenantID, Name: w.Name, URL: w.URL,
		Enabled: !w.Disabled, DisabledReason: w.DisabledReason,
		Triggers: w.Triggers, Headers: w.Headers, Retry: w.Retry,
		Environments: w.Environments, SignatureScheme: w.SignatureScheme, PropagateTrace: w.PropagateTrace,
		TimeoutSeconds: w.Timeout.Seconds(), RateLimit: w.RateLimit, MaxInFlight: w.MaxInFlight,
		Failures: w.ConsecutiveFailures, FailingSince: w.FailingSince,
		CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt, Version: w.Version,
	}
	if secrets {
		j.Secret = w.Secret
		for _, r := range w.PreviousSecrets {
			j.PreviousSecrets = append(j.PreviousSecrets, retiredSecretJSON(r))
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes the specification's field names, strictly: a key
// that is not a field of Webhook (or, nested, of Trigger, Filter,
// Condition, RetryPolicy or RetiredSecret), a key in another case than
// the field's ("Events"), a key given twice (in headers too), and a value
// of the wrong JSON type are each an error. The error is a
// *ValidationError (errors.Is ErrInvalid) whose Fields name every such
// key by its path, such as "triggers[0].event"; w is left unchanged.
//
// A null value means the same as an absent key. An absent "enabled"
// means enabled; an absent "retry" (or any zero retry field) means the
// default policy once the webhook is saved. Times decode in UTC.
//
// "secret" and "previous_secrets" are accepted, so that a request may
// supply a secret for Create (Update never changes secrets), and so that
// the output of WithSecrets decodes. Decoding does not validate: call
// Validate, or let Create and Update do it.
//
// Unlike encoding/json's merge into an existing struct, a successful
// decode replaces all of *w: fields absent from the JSON are zero
// afterwards. To apply a partial update, decode into a copy of the
// changes and set the fields you mean to change.
//
// Stored webhooks are decoded the same way (pgstore does), so a row
// written by a newer version of the library with a field this version
// does not know reads as unreadable (ErrCorruptWebhook) rather than with
// that setting dropped: during a rolling upgrade its deliveries wait for
// the upgraded processes.
func (w *Webhook) UnmarshalJSON(b []byte) error {
	return unmarshalStrict(b, "webhook", w, decodeWebhookJSON)
}

func decodeWebhookJSON(w *Webhook, raw json.RawMessage, path string, ps *problems) {
	decodeObject(raw, path, ps, map[string]jsonField{
		"id":               into(&w.ID, "a string"),
		"tenant_id":        into(&w.TenantID, "a string"),
		"name":             into(&w.Name, "a string"),
		"url":              into(&w.URL, "a string"),
		"secret":           into(&w.Secret, "a string"),
		"previous_secrets": objectList(&w.PreviousSecrets, decodeRetiredSecret),
		"enabled": func(raw json.RawMessage, path string, ps *problems) {
			var on bool
			into(&on, "true or false")(raw, path, ps)
			w.Disabled = !on
		},
		"disabled_reason":  into(&w.DisabledReason, "a string"),
		"triggers":         objectList(&w.Triggers, decodeTrigger),
		"headers":          stringMap(&w.Headers),
		"retry":            object(&w.Retry, decodeRetryPolicy),
		"environments":     stringList(&w.Environments),
		"signature_scheme": into(&w.SignatureScheme, "a string"),
		"propagate_trace":  into(&w.PropagateTrace, "true or false"),
		"timeout_seconds": func(raw json.RawMessage, path string, ps *problems) {
			var s float64
			into(&s, "a number")(raw, path, ps)
			w.Timeout = secondsToDuration(s)
		},
		"rate_limit":           into(&w.RateLimit, "a number"),
		"max_in_flight":        into(&w.MaxInFlight, "an integer"),
		"consecutive_failures": into(&w.ConsecutiveFailures, "an integer"),
		"failing_since":        timeField(&w.FailingSince),
		"created_at":           timeField(&w.CreatedAt),
		"updated_at":           timeField(&w.UpdatedAt),
		"version":              into(&w.Version, "an integer"),
	})
	if len(w.PreviousSecrets) == 0 {
		w.PreviousSecrets = nil // the encoder omits an empty list
	}
}

// WebhookWithSecrets is a Webhook whose JSON form includes "secret" and
// "previous_secrets": the form for storing a webhook or for the one
// response that shows a secret to its owner (after Create or
// RotateSecret). Get one with Webhook.WithSecrets; decode into one as
// into a Webhook (the decoding is the same). Printing and logging it
// still hide the secrets.
type WebhookWithSecrets struct {
	Webhook
}

// WithSecrets returns w in the form whose JSON includes its secrets.
func (w Webhook) WithSecrets() WebhookWithSecrets {
	return WebhookWithSecrets{w}
}

// MarshalJSON encodes the webhook as Webhook.MarshalJSON does, with
// "secret" and "previous_secrets" ([{"secret", "expires_at"}]).
func (w WebhookWithSecrets) MarshalJSON() ([]byte, error) {
	return w.Webhook.marshal(true)
}

// UnmarshalJSON decodes as Webhook.UnmarshalJSON does.
func (w *WebhookWithSecrets) UnmarshalJSON(b []byte) error {
	return w.Webhook.UnmarshalJSON(b)
}

// String describes the webhook without its secrets, so that printing one
// with %v or %s never leaks them.
func (w Webhook) String() string {
	return fmt.Sprintf("webhook %s %q → %s", w.ID, w.Name, w.URL)
}

// GoString prints the webhook as %#v would, with its secrets redacted.
func (w Webhook) GoString() string {
	type plain Webhook // without methods, so %#v prints the fields
	p := plain(w)
	if p.Secret != "" {
		p.Secret = redacted
	}
	return strings.Replace(fmt.Sprintf("%#v", p), "webhook.plain", "webhook.Webhook", 1)
}

// LogValue logs the webhook without its secrets.
func (w Webhook) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", w.ID), slog.String("name", w.Name), slog.String("url", w.URL), slog.Bool("enabled", !w.Disabled))
}

// redacted replaces a secret in printed output.
const redacted = "[redacted]"

// String describes the retired secret without the secret.
func (r RetiredSecret) String() string {
	return "retired secret, expires " + r.ExpiresAt.Format(time.RFC3339)
}

// GoString prints the retired secret as %#v would, with the secret
// redacted.
func (r RetiredSecret) GoString() string {
	return fmt.Sprintf("webhook.RetiredSecret{Secret:%q, ExpiresAt:%#v}", redacted, r.ExpiresAt)
}

// LogValue logs the retired secret's expiry only.
func (r RetiredSecret) LogValue() slog.Value {
	return slog.GroupValue(slog.Time("expires_at", r.ExpiresAt))
}

// MarshalJSON encodes {"expires_at"}, without the secret; the secret is
// encoded only by WebhookWithSecrets.
func (r RetiredSecret) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		ExpiresAt time.Time `json:"expires_at"`
	}{r.ExpiresAt})
}

// UnmarshalJSON decodes {"secret", "expires_at"} strictly, as
// Webhook.UnmarshalJSON does.
func (r *RetiredSecret) UnmarshalJSON(b []byte) error {
	return unmarshalStrict(b, "retired secret", r, decodeRetiredSecret)
}

func decodeRetiredSecret(r *RetiredSecret, raw json.RawMessage, path string, ps *problems) {
	decodeObject(raw, path, ps, map[string]jsonField{
		"secret":     into(&r.Secret, "a string"),
		"expires_at": timeField(&r.ExpiresAt),
	})
}

// UnmarshalJSON decodes {"trigger_type", "events", "filters",
// "conditions"} and the anomaly and schedule fields strictly, as Webhook.UnmarshalJSON does; field paths are
// relative to the trigger ("filters[0].operator"). An empty "events"
// decodes as nil: both mean every event.
func (t *Trigger) UnmarshalJSON(b []byte) error {
	return unmarshalStrict(b, "trigger", t, decodeTrigger)
}

func decodeTrigger(t *Trigger, raw json.RawMessage, path string, ps *problems) {
	decodeObject(raw, path, ps, map[string]jsonField{
		"trigger_type": into(&t.Type, "a string"),
		"events":       stringList(&t.Events),
		"filters":      objectList(&t.Filters, decodeFilter),
		"conditions":   objectList(&t.Conditions, decodeCondition),
		// Anomaly triggers.
		"metric":         into(&t.Metric, "a string"),
		"aggregation":    into(&t.Aggregation, "a string"),
		"bucket_seconds": into(&t.BucketSeconds, "an integer"),
		"sensitivity":    into(&t.Sensitivity, "a number"),
		"direction":      into(&t.Direction, "a string"),
		// Scheduled triggers.
		"interval_seconds": into(&t.IntervalSeconds, "an integer"),
		"schedule":         into(&t.Schedule, "a string"),
		"timezone":         into(&t.Timezone, "a string"),
	})
}

// UnmarshalJSON decodes {"property", "operator", "value"} strictly, as
// Webhook.UnmarshalJSON does. JSON numbers in the value decode as float64.
func (f *Filter) UnmarshalJSON(b []byte) error {
	return unmarshalStrict(b, "filter", f, decodeFilter)
}

func decodeFilter(f *Filter, raw json.RawMessage, path string, ps *problems) {
	decodeObject(raw, path, ps, map[string]jsonField{
		"property": into(&f.Property, "a string"),
		"operator": into(&f.Operator, "a string"),
		"value":    into(&f.Value, "a JSON value"),
	})
}

// UnmarshalJSON decodes {"metric", "operator", "value", "window_seconds"}
// and the alert fields strictly, as Webhook.UnmarshalJSON does.
func (c *Condition) UnmarshalJSON(b []byte) error {
	return unmarshalStrict(b, "condition", c, decodeCondition)
}

func decodeCondition(c *Condition, raw json.RawMessage, path string, ps *problems) {
	decodeObject(raw, path, ps, map[string]jsonField{
		"metric":                  into(&c.Metric, "a string"),
		"operator":                into(&c.Operator, "a string"),
		"value":                   into(&c.Value, "a number"),
		"window_seconds":          into(&c.WindowSeconds, "an integer"),
		"aggregation":             into(&c.Aggregation, "a string"),
		"for_seconds":             into(&c.ForSeconds, "an integer"),
		"recovery_value":          into(&c.RecoveryValue, "a number"),
		"repeat_interval_seconds": into(&c.RepeatIntervalSeconds, "an integer"),
		"notify_resolved":         into(&c.NotifyResolved, "true or false"),
	})
}
