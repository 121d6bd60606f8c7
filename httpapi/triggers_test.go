package httpapi_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
)

// TestCreateEveryTriggerType creates a webhook with each trigger type
// through the API, with every field its type takes, and reads it back:
// what was written is what is kept, and both exchanges fit the document.
func TestCreateEveryTriggerType(t *testing.T) {
	e := newEnv(t, nil)
	triggers := map[string]string{
		"event":    `{"trigger_type":"event","events":["checkout.*","purchase"],"filters":[{"property":"plan","operator":"in","value":["pro","team"]}]}`,
		"error":    `{"trigger_type":"error","filters":[{"property":"error_type","operator":"equals","value":"timeout"}]}`,
		"funnel":   `{"trigger_type":"funnel_complete","filters":[{"property":"funnel_id","operator":"equals","value":"signup"}]}`,
		"cohort":   `{"trigger_type":"cohort_entry","filters":[{"property":"cohort_id","operator":"starts_with","value":"vip"}]}`,
		"anomaly":  `{"trigger_type":"anomaly","metric":"signups","aggregation":"sum","bucket_seconds":300,"sensitivity":2.5,"direction":"below","filters":[{"property":"score","operator":"gt","value":4}]}`,
		"cron":     `{"trigger_type":"scheduled","schedule":"0 9 * * 1","timezone":"Europe/Berlin"}`,
		"interval": `{"trigger_type":"scheduled","interval_seconds":3600}`,
		"threshold": `{"trigger_type":"threshold","conditions":[` +
			`{"metric":"errors","operator":"gt","value":100,"window_seconds":300,"aggregation":"sum","for_seconds":60,"recovery_value":80,"repeat_interval_seconds":3600,"notify_resolved":false},` +
			`{"metric":"latency_ms","operator":"lte","value":5,"window_seconds":0}]}`,
	}
	for name, trig := range triggers {
		t.Run(name, func(t *testing.T) {
			body := `{"name":"` + name + `","url":"https://example.com/` + name + `","propagate_trace":true,"triggers":[` + trig + `]}`
			r := e.do(req{method: "POST", path: "/webhooks", tenant: "a", body: body})
			require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
			id := r.json(t)["id"].(string)
			r = e.do(req{method: "GET", path: "/webhooks/" + id, tenant: "a"})
			require.Equal(t, http.StatusOK, r.status, "%s", r.body)
			got := r.json(t)
			assert.Equal(t, true, got["propagate_trace"])
			read := got["triggers"].([]any)[0].(map[string]any)
			var sent map[string]any
			require.NoError(t, json.Unmarshal([]byte(trig), &sent))
			for k, v := range sent {
				assert.Equal(t, v, read[k], "triggers[0].%s reads back as written", k)
			}
			for k, v := range read {
				if _, ok := sent[k]; !ok {
					assert.Empty(t, v, "triggers[0].%s was not written: empty or absent", k)
				}
			}
			w, err := e.svc.Tenant("a").Get(t.Context(), id)
			require.NoError(t, err)
			assert.True(t, w.PropagateTrace)
		})
	}
}

// TestInvalidStatefulTriggers: a stateful trigger the library refuses is
// a 422 whose pointers name the fields at fault; a field the decoder does
// not know, or a field of the wrong type, is a 400.
func TestInvalidStatefulTriggers(t *testing.T) {
	e := newEnv(t, nil)
	cases := []struct {
		name, trigger string
		status        int
		pointers      []string
	}{
		{"threshold without conditions", `{"trigger_type":"threshold"}`, 422, []string{"/triggers/0/conditions"}},
		{"condition fields", `{"trigger_type":"threshold","conditions":[{"metric":"m","operator":"gt","value":1},` +
			`{"metric":"","operator":"above","value":1,"window_seconds":-1,"for_seconds":90000,"repeat_interval_seconds":5}]}`, 422,
			[]string{"/triggers/0/conditions/1/metric", "/triggers/0/conditions/1/operator", "/triggers/0/conditions/1/window_seconds",
				"/triggers/0/conditions/1/for_seconds", "/triggers/0/conditions/1/repeat_interval_seconds"}},
		{"negative for", `{"trigger_type":"threshold","conditions":[{"metric":"m","operator":"gt","value":1,"for_seconds":-5}]}`, 422,
			[]string{"/triggers/0/conditions/0/for_seconds"}},
		{"recovery on the wrong side", `{"trigger_type":"threshold","conditions":[{"metric":"m","operator":"gt","value":1,"recovery_value":2}]}`, 422,
			[]string{"/triggers/0/conditions/0/recovery_value"}},
		{"aggregation without window", `{"trigger_type":"threshold","conditions":[{"metric":"m","operator":"gt","value":1,"aggregation":"avg"}]}`, 422,
			[]string{"/triggers/0/conditions/0/aggregation"}},
		{"anomaly", `{"trigger_type":"anomaly","bucket_seconds":15,"sensitivity":11,"direction":"up","aggregation":"median"}`, 422,
			[]string{"/triggers/0/metric", "/triggers/0/bucket_seconds", "/triggers/0/sensitivity", "/triggers/0/direction", "/triggers/0/aggregation"}},
		{"cron and interval", `{"trigger_type":"scheduled","schedule":"0 9 * * *","timezone":"UTC","interval_seconds":3600}`, 422, []string{"/triggers/0/schedule"}},
		{"cron without zone", `{"trigger_type":"scheduled","schedule":"0 9 * * *"}`, 422, []string{"/triggers/0/timezone"}},
		{"bad zone", `{"trigger_type":"scheduled","schedule":"0 9 * * *","timezone":"Mars/Olympus"}`, 422, []string{"/triggers/0/timezone"}},
		{"bad cron", `{"trigger_type":"scheduled","schedule":"every monday","timezone":"UTC"}`, 422, []string{"/triggers/0/schedule"}},
		{"short interval", `{"trigger_type":"scheduled","interval_seconds":10}`, 422, []string{"/triggers/0/interval_seconds"}},
		{"fields of another type", `{"trigger_type":"event","metric":"m","schedule":"0 9 * * *","conditions":[{"metric":"m","operator":"gt","value":1}]}`, 422,
			[]string{"/triggers/0/metric", "/triggers/0/schedule", "/triggers/0/conditions"}},
		{"filters on threshold", `{"trigger_type":"threshold","filters":[{"property":"p","operator":"is_set"}],"conditions":[{"metric":"m","operator":"gt","value":1}]}`, 422,
			[]string{"/triggers/0/filters"}},
		{"unknown condition field", `{"trigger_type":"threshold","conditions":[{"metric":"m","operator":"gt","value":1,"for":60}]}`, 400,
			[]string{"/triggers/0/conditions/0/for"}},
		{"wrong type", `{"trigger_type":"threshold","conditions":[{"metric":"m","operator":"gt","value":1,"for_seconds":"1m"}]}`, 400,
			[]string{"/triggers/0/conditions/0/for_seconds"}},
		{"unknown trigger field", `{"trigger_type":"scheduled","cron":"0 9 * * *"}`, 400, []string{"/triggers/0/cron"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := `{"name":"x","url":"https://example.com/x","triggers":[` + c.trigger + `]}`
			r := e.do(req{method: "POST", path: "/webhooks", tenant: "a", body: body, invalid: true})
			require.Equal(t, c.status, r.status, "%s", r.body)
			var got []string
			for _, fe := range r.json(t)["errors"].([]any) {
				got = append(got, fe.(map[string]any)["pointer"].(string))
			}
			for _, want := range c.pointers {
				assert.Contains(t, got, want)
			}
		})
	}
	list := e.do(req{method: "GET", path: "/webhooks", tenant: "a"})
	assert.Empty(t, list.json(t)["data"], "nothing was created")

	// Updates answer the same: PUT and PATCH of a threshold trigger.
	body := `{"name":"x","url":"https://example.com/x","triggers":[{"trigger_type":"threshold","conditions":[{"metric":"m","operator":"gt","value":1}]}]}`
	r := e.do(req{method: "POST", path: "/webhooks", tenant: "a", body: body})
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	id := r.json(t)["id"].(string)
	bad := `{"name":"x","url":"https://example.com/x","triggers":[{"trigger_type":"threshold","conditions":[{"metric":"m","operator":"gt","value":1,"for_seconds":-1}]}]}`
	for _, u := range []req{
		{method: "PUT", path: "/webhooks/" + id, tenant: "a", body: bad, invalid: true},
		{method: "PATCH", path: "/webhooks/" + id, tenant: "a", body: bad, contentType: "application/merge-patch+json", invalid: true},
	} {
		r := e.do(u)
		require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s: %s", u.method, r.body)
		fe := r.json(t)["errors"].([]any)
		require.Len(t, fe, 1, "%s", r.body)
		assert.Equal(t, "/triggers/0/conditions/0/for_seconds", fe[0].(map[string]any)["pointer"], u.method)
	}
	r = e.do(req{method: "GET", path: "/webhooks/" + id, tenant: "a"})
	assert.EqualValues(t, 1, r.json(t)["version"], "neither update applied")
}

// TestOpenAPISchemasNameEveryField compares the document's schemas of
// triggers, filters and conditions with the library's JSON names, so
// that a field added to the library and not to the document (or the
// other way round) fails here, and says the schemas are closed as the
// decoder is strict.
func TestOpenAPISchemasNameEveryField(t *testing.T) {
	doc := loadDoc(t)
	for name, v := range map[string]any{"Trigger": webhook.Trigger{}, "Filter": webhook.Filter{}, "Condition": webhook.Condition{}} {
		s := doc.Components.Schemas[name].Value
		var documented []string
		for p := range s.Properties {
			documented = append(documented, p)
		}
		assert.ElementsMatch(t, jsonNames(reflect.TypeOf(v)), documented, name)
		require.NotNil(t, s.AdditionalProperties.Has, name)
		assert.False(t, *s.AdditionalProperties.Has, "%s is closed: the decoder refuses unknown fields", name)
	}
	// Every field a webhook body may hold is in WebhookWrite (or, for the
	// secrets, WebhookCreate), and every field of a response is in
	// WebhookFields.
	time1 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	full := webhook.Webhook{ID: "x", TenantID: "t", Name: "n", URL: "u", Secret: "s", PreviousSecrets: []webhook.RetiredSecret{{Secret: "o"}},
		Disabled: true, DisabledReason: "r", Environments: []string{"e"}, SignatureScheme: webhook.SchemeStandard, PropagateTrace: true,
		Timeout: 1, RateLimit: 1, MaxInFlight: 1, ConsecutiveFailures: 1, FailingSince: time1, CreatedAt: time1, UpdatedAt: time1, Version: 1}
	b, err := json.Marshal(full.WithSecrets())
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	var write, read []string
	for p := range doc.Components.Schemas["WebhookWrite"].Value.Properties {
		write = append(write, p)
	}
	for p := range doc.Components.Schemas["WebhookFields"].Value.Properties {
		read = append(read, p)
	}
	for k := range m {
		switch k {
		case "secret", "previous_secrets":
			assert.Contains(t, doc.Components.Schemas["WebhookCreate"].Value.Properties, k)
		default:
			assert.Contains(t, write, k, "WebhookWrite")
			assert.Contains(t, read, k, "WebhookFields")
		}
	}
	patch := doc.Components.Schemas["WebhookPatch"].Value.PropertyNames.Value.Enum
	for _, k := range write {
		assert.True(t, slices.Contains(patch, any(k)), "WebhookPatch names %s", k)
	}
}

// jsonNames returns the JSON names of a struct type's encoded fields.
func jsonNames(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
	}
	return names
}
