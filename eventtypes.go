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
func maybeTime(d string) map[string]any {
	return map[string]any{"type": []string{"string", "null"}, "format": "date-time", "description": d}
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

// alertEpisode is the part of an alert's data that describes its
// episode, from firing to resolution.
func alertEpisode() []prop {
	return []prop{
		{"status", map[string]any{"type": "string", "enum": []string{"firing", "resolved"}, "description": "firing while the condition holds, resolved once it no longer does"}},
		{"episode_id", str("identifies the alert episode: the same on the alert and on its resolution")},
		{"started_at", maybeTime("when the condition first held in this episode")},
		{"fired_at", maybeTime("when the alert fired")},
		{"resolved_at", maybeTime("when the episode resolved; null while firing")},
		{"duration_seconds", typed([]string{"number", "null"}, "how long the episode lasted, from started_at to resolved_at; null while firing")},
	}
}

// EventTypes returns the event types the library sends, each with the
// JSON Schema of its data, in a new slice: "$test", "$error",
// "$threshold_alert", "$threshold_resolved", "$anomaly",
// "$anomaly_resolved", "$scheduled_summary", "$funnel_complete" and
// "$cohort_entry". Events of event triggers are the host's own and are
// not listed.
func EventTypes() []EventType {
	threshold := append([]prop{
		{"metric", str("the metric's name")},
		{"value", num("the metric's value (aggregated over the window for windowed conditions)")},
		{"threshold", num("the condition's value")},
		{"exceeded", boolean("whether value is greater than threshold")},
		{"reason", str("why the alert fired or resolved, for people")},
		{"operator", map[string]any{"type": "string", "enum": []string{"gt", "gte", "lt", "lte", "eq"}, "description": "the condition's comparison"}},
		{"aggregation", str("how values in the window were aggregated: sum, avg, min, max, count or last")},
		{"window_seconds", integer("the condition's window; 0 for a value the host computed")},
		{"notification_count", integer("how many notifications this episode has sent, this one included")},
	}, alertEpisode()...)
	anomaly := append([]prop{
		{"metric", str("the metric's name")},
		{"value", num("the observed value")},
		{"expected", num("the value the detector expected")},
		{"lower", num("the lower bound of the expected band")},
		{"upper", num("the upper bound of the expected band")},
		{"score", num("how far the value lies from the expectation, in standard deviations")},
		{"direction", str("whether the value lies above or below the band")},
	}, alertEpisode()...)
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
				prop{"details", objectOf("the host's details about the error")}),
		},
		{
			Name:        EventTypeThresholdAlert,
			Description: "A metric breached a threshold condition; sent to webhooks with a threshold trigger.",
			Schema:      dataSchema("$threshold_alert", []string{"metric", "value", "threshold", "exceeded"}, threshold...),
		},
		{
			Name:        "$threshold_resolved",
			Description: "A threshold alert resolved: the metric no longer breaches the condition.",
			Schema:      dataSchema("$threshold_resolved", []string{"metric", "value", "threshold", "exceeded", "status"}, threshold...),
		},
		{
			Name:        "$anomaly",
			Description: "A metric left the band its detector expected; sent to webhooks with an anomaly trigger.",
			Schema:      dataSchema("$anomaly", []string{"metric", "value", "expected", "score"}, anomaly...),
		},
		{
			Name:        "$anomaly_resolved",
			Description: "An anomaly resolved: the metric is back within its expected band.",
			Schema:      dataSchema("$anomaly_resolved", []string{"metric", "value", "expected", "score", "status"}, anomaly...),
		},
		{
			Name:        "$scheduled_summary",
			Description: "A periodic summary, built by the host's summary function; sent to webhooks with a scheduled trigger, once per period.",
			Schema: dataSchema("$scheduled_summary", []string{"period_start", "period_end", "summary"},
				prop{"period_start", timeOf("the start of the period summarised")},
				prop{"period_end", timeOf("the end of the period summarised")},
				prop{"summary", objectOf("the host's summary of the period")}),
		},
		{
			Name:        "$funnel_complete",
			Description: "A user completed a funnel; sent to webhooks with a funnel_complete trigger.",
			Schema: dataSchema("$funnel_complete", []string{"funnel_id", "distinct_id", "completed_at"},
				prop{"funnel_id", str("the funnel's ID")},
				prop{"funnel_name", str("the funnel's name")},
				prop{"distinct_id", str("the user's distinct ID")},
				prop{"completed_at", timeOf("when the user completed the funnel")},
				prop{"steps", map[string]any{"type": "array", "description": "the funnel's steps as the user went through them"}},
				prop{"properties", objectOf("the host's properties of the completion")}),
		},
		{
			Name:        "$cohort_entry",
			Description: "A user entered a cohort; sent to webhooks with a cohort_entry trigger.",
			Schema: dataSchema("$cohort_entry", []string{"cohort_id", "distinct_id", "entered_at"},
				prop{"cohort_id", str("the cohort's ID")},
				prop{"cohort_name", str("the cohort's name")},
				prop{"distinct_id", str("the user's distinct ID")},
				prop{"entered_at", timeOf("when the user entered the cohort")},
				prop{"properties", objectOf("the host's properties of the entry")}),
		},
	}
}
