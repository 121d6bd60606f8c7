package webhook

import (
	"encoding/json"
)

// EventType describes an event that webhooks can subscribe to: its name
// (the payload's event_type), what it means, and the JSON Schema (draft
// 2020-12) of its payload's data.
type EventType struct {
	// Name is the payload's event_type, such as "$error".
	Name string `json:"name"`
	// Description says when the event is sent, for people.
	Description string `json:"description"`
	// Schema is a JSON Schema 2020-12 document describing the payload's
	// data, or empty when the event's data is not described.
	Schema json.RawMessage `json:"schema,omitempty"`
}

// jsonSchemaDialect is the $schema of every EventType.Schema.
const jsonSchemaDialect = "https://json-schema.org/draft/2020-12/schema"

// prop is one property of an event's data: its name and its schema.
type prop struct {
	name   string
	schema map[string]any
}

func typed(t any, description string) map[string]any {
	return map[string]any{"type": t, "description": description}
}

func str(d string) map[string]any      { return typed("string", d) }
func num(d string) map[string]any      { return typed("number", d) }
func integer(d string) map[string]any  { return typed("integer", d) }
func boolean(d string) map[string]any  { return typed("boolean", d) }
func objectOf(d string) map[string]any { return typed("object", d) }
func timeOf(d string) map[string]any {
	return map[string]any{"type": "string", "format": "date-time", "description": d}
}

// dataSchema returns the JSON Schema of an object with the given
// properties, the required ones named. Other properties are allowed:
// later versions may add some.
func dataSchema(title string, required []string, props ...prop) json.RawMessage {
	ps := make(map[string]any, len(props))
	for _, p := range props {
		ps[p.name] = p.schema
	}
	b, err := json.Marshal(map[string]any{
		"$schema":    jsonSchemaDialect,
		"title":      title,
		"type":       "object",
		"properties": ps,
		"required":   required,
	})
	if err != nil {
		// Only literal maps of strings, lists and maps are encoded.
		return nil
	}
	return b
}

func oneOf(d string, values ...string) map[string]any {
	return map[string]any{"type": "string", "enum": values, "description": d}
}

// alertEpisode is the part of an alert's data that describes its
// episode: on the alert (status firing), or on its resolution (status
// resolved, with resolved_at and duration_seconds).
func alertEpisode(resolved bool) []prop {
	ps := []prop{
		{"episode_id", str("identifies the alert episode: the same on the alert and on its resolution")},
		{"started_at", timeOf("when the condition first held in this episode")},
		{"fired_at", timeOf("when the alert fired")},
	}
	if !resolved {
		return append(ps, prop{"status", oneOf("the alert's status", "firing")})
	}
	return append(ps,
		prop{"status", oneOf("the alert's status", "resolved")},
		prop{"resolved_at", timeOf("when the episode resolved")},
		prop{"duration_seconds", num("how long the episode lasted, from started_at to resolved_at")})
}

// EventTypes returns the event types the library sends, each with the
// JSON Schema of its data, in a new slice: "$test", "$error",
// "$threshold_alert", "$threshold_resolved", "$anomaly",
// "$anomaly_resolved", "$scheduled_summary", "$funnel_complete" and
// "$cohort_entry". Events of event triggers are the host's own and are
// not listed. Each schema names every property the library sends in
// that event's data, and requires those it always sends.
func EventTypes() []EventType {
	threshold := func(resolved bool) []prop {
		reason := oneOf("why this was sent: fired, or renotify while it keeps firing past the condition's repeat interval", "fired", "renotify")
		if resolved {
			reason = oneOf("why this was sent: recovered, or no_data when the window emptied", "recovered", "no_data")
		}
		return append([]prop{{"reason", reason},
			{"metric", str("the condition's metric")},
			{"value", typed([]string{"number", "null"}, "the metric's value: aggregated over the window for a windowed condition, as reported otherwise; null when the window holds no samples")},
			{"threshold", num("the condition's value")},
			{"exceeded", boolean("whether value breaches the condition")},
			{"operator", oneOf("the condition's comparison", "gt", "gte", "lt", "lte", "eq")},
			{"aggregation", oneOf("how the window's samples were aggregated", "sum", "avg", "min", "max", "count", "last")},
			{"window_seconds", integer("the condition's window; 0 for a value as reported")},
			{"recovery_value", num("where the alert resolves, when the condition sets one")},
			{"notification_count", integer("how many alerts this episode has sent, renotifications included")},
			{"reported_threshold", num("the threshold given to TriggerThreshold, when that call sent this")},
		}, alertEpisode(resolved)...)
	}
	thresholdRequired := []string{"metric", "value", "threshold", "exceeded", "reason", "operator", "aggregation",
		"window_seconds", "notification_count", "status", "episode_id", "started_at", "fired_at"}
	anomaly := func(resolved bool) []prop {
		return append([]prop{
			{"metric", str("the metric's name")},
			{"value", num("the observed value: the bucket's aggregate, or the value reported to TriggerAnomaly")},
			{"expected", num("the value the detector expected")},
			{"lower", num("the lower bound of the expected band")},
			{"upper", num("the upper bound of the expected band")},
			{"score", num("how far the value lies from the expectation, in standard deviations")},
			{"direction", oneOf("whether the anomaly lies above or below the band (on the resolution: where it lay); absent when unknown", "above", "below")},
			{"sensitivity", num("the trigger's sensitivity, in standard deviations; absent for a reported anomaly")},
			{"aggregation", oneOf("how the bucket's samples were aggregated; absent for a reported anomaly", "sum", "avg", "min", "max", "count", "last")},
			{"bucket_seconds", integer("the width of the buckets the detector judges; absent for a reported anomaly")},
			{"bucket_start", timeOf("the start of the bucket judged; absent for a reported anomaly")},
			{"properties", objectOf("the host's properties of a reported anomaly")},
		}, alertEpisode(resolved)...)
	}
	anomalyRequired := []string{"metric", "value", "expected", "lower", "upper", "score", "status"}
	return []EventType{
		{
			Name:        EventTypeTest,
			Description: "A test delivery, sent by Service.Test (POST /webhooks/{id}/test) to check an endpoint.",
			Schema: dataSchema("$test", []string{"message", "webhook_name"},
				prop{"message", str("a fixed text saying this is a test")},
				prop{"webhook_name", str("the webhook's name")}),
		},
		{
			Name:        EventTypeError,
			Description: "An error the host reported with TriggerError; sent to webhooks with an error trigger.",
			Schema: dataSchema("$error", []string{"error_type", "error_message", "details"},
				prop{"error_type", str("the kind of error, such as timeout")},
				prop{"error_message", str("the error's message")},
				prop{"details", objectOf("the host's details about the error; empty when it gave none")}),
		},
		{
			Name: EventTypeThresholdAlert,
			Description: "A metric breached a condition of a threshold trigger (reason fired), or still does after the condition's " +
				"repeat interval (reason renotify); sent once per episode however many processes evaluate it.",
			Schema: dataSchema("$threshold_alert", thresholdRequired, threshold(false)...),
		},
		{
			Name: EventTypeThresholdResolved,
			Description: "A threshold alert resolved: the metric no longer breaches the condition (reason recovered) or its " +
				"window holds no samples (reason no_data). Not sent for conditions with notify_resolved false.",
			Schema: dataSchema("$threshold_resolved", append(thresholdRequired, "resolved_at", "duration_seconds"), threshold(true)...),
		},
		{
			Name: EventTypeAnomaly,
			Description: "A metric left the band its detector expected, or the host reported an anomaly with TriggerAnomaly; " +
				"sent to webhooks with an anomaly trigger on the metric.",
			Schema: dataSchema("$anomaly", anomalyRequired, anomaly(false)...),
		},
		{
			Name:        EventTypeAnomalyResolved,
			Description: "An anomaly resolved: the metric is back within its expected band, or the host reported the incident over.",
			Schema:      dataSchema("$anomaly_resolved", anomalyRequired, anomaly(true)...),
		},
		{
			Name: EventTypeScheduledSummary,
			Description: "A periodic summary, built by the host's Config.Summary; sent to webhooks with a scheduled trigger, " +
				"once per period.",
			Schema: dataSchema("$scheduled_summary", []string{"period_start", "period_end", "summary"},
				prop{"period_start", timeOf("the start of the period summarised")},
				prop{"period_end", timeOf("the end of the period summarised")},
				prop{"summary", typed([]string{"object", "null"}, "the host's summary of the period; null without a Config.Summary")},
				prop{"interval_seconds", integer("the trigger's interval, for an interval schedule")},
				prop{"schedule", str("the trigger's cron expression, for a cron schedule")},
				prop{"timezone", str("the time zone of the cron expression, for a cron schedule")}),
		},
		{
			Name:        EventTypeFunnelComplete,
			Description: "A user completed a funnel; sent to webhooks with a funnel_complete trigger.",
			Schema: dataSchema("$funnel_complete", []string{"funnel_id", "funnel_name", "distinct_id", "completed_at", "steps", "properties"},
				prop{"funnel_id", str("the funnel's ID")},
				prop{"funnel_name", str("the funnel's name; empty when the host gave none")},
				prop{"distinct_id", str("the user's distinct ID")},
				prop{"completed_at", timeOf("when the user completed the funnel")},
				prop{"steps", map[string]any{
					"type": "array", "description": "the funnel's steps as the user went through them",
					"items": map[string]any{"type": "object", "required": []string{"name"}, "properties": map[string]any{
						"name":         str("the step's name"),
						"completed_at": timeOf("when the user completed the step, when the host said"),
					}},
				}},
				prop{"properties", objectOf("the host's properties of the completion; empty when it gave none")}),
		},
		{
			Name:        EventTypeCohortEntry,
			Description: "A user entered a cohort; sent to webhooks with a cohort_entry trigger.",
			Schema: dataSchema("$cohort_entry", []string{"cohort_id", "cohort_name", "distinct_id", "entered_at", "properties"},
				prop{"cohort_id", str("the cohort's ID")},
				prop{"cohort_name", str("the cohort's name; empty when the host gave none")},
				prop{"distinct_id", str("the user's distinct ID")},
				prop{"entered_at", timeOf("when the user entered the cohort")},
				prop{"properties", objectOf("the host's properties of the entry; empty when it gave none")}),
		},
	}
}
