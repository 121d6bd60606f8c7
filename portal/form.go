package portal

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/analytics-webhooks/webhook"
)

// maxFormBytes bounds a form's body.
const maxFormBytes = 64 << 10

// endpointForm is the create and edit form: the values as typed, and
// the problems found, keyed by the form field they name.
type endpointForm struct {
	Name, URL        string
	Events           []eventChoice
	Patterns         string // other event patterns, space-separated
	Filters, Headers string // one per line
	MaxAttempts      string
	InitialDelay     string
	MaxDelay         string
	Multiplier       string
	RateLimit        string
	Version          string
	// Kept says the endpoint's triggers are more than the form can
	// show (several event triggers, or triggers with different filters
	// or with conditions, set up through the API): the form shows them
	// but does not edit them, and saving keeps them as they are.
	Kept bool
	// Errors are the problems of each field, by its form name; ""
	// holds those of no field the form shows.
	Errors map[string][]string
}

// eventChoice is one checkbox of the event type catalogue.
type eventChoice struct {
	ID, Name, Description string
	Checked               bool
	// Fixed is an event whose trigger needs settings this form does
	// not edit (thresholds, anomalies, schedules): shown, not changed.
	Fixed bool
}

// HasErrors reports whether the form has problems.
func (f *endpointForm) HasErrors() bool { return len(f.Errors) > 0 }

// Err returns the problems of one field, joined.
func (f *endpointForm) Err(field string) string { return strings.Join(f.Errors[field], "; ") }

func (f *endpointForm) add(field, msg string) {
	if f.Errors == nil {
		f.Errors = map[string][]string{}
	}
	f.Errors[field] = append(f.Errors[field], msg)
}

// simpleTriggers are the trigger types the form edits, with the event
// type each sends; event triggers take the host's names and patterns.
var simpleTriggers = map[string]webhook.TriggerType{
	webhook.EventTypeError:          webhook.TriggerError,
	webhook.EventTypeFunnelComplete: webhook.TriggerFunnelComplete,
	webhook.EventTypeCohortEntry:    webhook.TriggerCohortEntry,
}

// fixedTriggers are the library's event types whose triggers need
// settings the form does not edit.
var fixedTriggers = map[string]webhook.TriggerType{
	webhook.EventTypeThresholdAlert:    webhook.TriggerThreshold,
	webhook.EventTypeThresholdResolved: webhook.TriggerThreshold,
	webhook.EventTypeAnomaly:           webhook.TriggerAnomaly,
	webhook.EventTypeAnomalyResolved:   webhook.TriggerAnomaly,
	webhook.EventTypeScheduledSummary:  webhook.TriggerScheduled,
}

// managed reports whether the form edits triggers of type t.
func managed(t webhook.TriggerType) bool {
	return t == webhook.TriggerEvent || slices.Contains(slices.Collect(maps.Values(simpleTriggers)), t)
}

// newForm returns the form of w; nil w is an empty form for a new
// endpoint.
func (h *Handler) newForm(w *webhook.Webhook) *endpointForm {
	f := &endpointForm{}
	checked := map[string]bool{}
	var patterns []string
	types := map[webhook.TriggerType]bool{}
	var filters []webhook.Filter
	filtersSet := false
	if w != nil {
		f.Kept = !formEdits(w.Triggers)
		f.Name, f.URL, f.Version = w.Name, w.URL, strconv.FormatInt(w.Version, 10)
		for _, t := range w.Triggers {
			types[t.Type] = true
			if managed(t.Type) && !filtersSet {
				filters, filtersSet = t.Filters, true
			}
			if t.Type != webhook.TriggerEvent {
				continue
			}
			if len(t.Events) == 0 {
				patterns = append(patterns, "*")
			}
			for _, e := range t.Events {
				if h.hostEvent(e) {
					checked[e] = true
				} else {
					patterns = append(patterns, e)
				}
			}
		}
		f.Filters = formatFilters(filters)
		f.Headers = formatHeaders(w.Headers)
		f.MaxAttempts = strconv.Itoa(w.Retry.MaxAttempts)
		f.InitialDelay = seconds(w.Retry.InitialDelay)
		f.MaxDelay = seconds(w.Retry.MaxDelay)
		f.Multiplier = strconv.FormatFloat(w.Retry.Multiplier, 'g', -1, 64)
		if w.RateLimit > 0 {
			f.RateLimit = strconv.FormatFloat(w.RateLimit, 'g', -1, 64)
		}
	}
	for name, t := range simpleTriggers {
		if types[t] {
			checked[name] = true
		}
	}
	for name, t := range fixedTriggers {
		if types[t] {
			checked[name] = true
		}
	}
	f.Patterns = strings.Join(patterns, " ")
	for i, et := range h.catalogue {
		_, fixed := fixedTriggers[et.Name]
		if fixed && !checked[et.Name] {
			continue // set up through the API only
		}
		f.Events = append(f.Events, eventChoice{ID: fmt.Sprintf("event-%d", i), Name: et.Name, Description: et.Description, Checked: checked[et.Name], Fixed: fixed || f.Kept})
	}
	return f
}

// hostEvent reports whether name is one of the host's event types.
func (h *Handler) hostEvent(name string) bool {
	if strings.HasPrefix(name, "$") {
		return false
	}
	return slices.ContainsFunc(h.catalogue, func(et webhook.EventType) bool { return et.Name == name })
}

func seconds(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return strconv.FormatFloat(d.Seconds(), 'g', -1, 64)
}

// readForm parses the request's form into f (keeping the catalogue's
// checkboxes) and applies it to w: its fields, and its triggers, the
// ones the form edits replaced and the others kept. It returns how many
// triggers the form built (they come first in w.Triggers). Problems of
// parsing are added to f.
func (h *Handler) readForm(r *http.Request, f *endpointForm, w *webhook.Webhook) (int, error) {
	if err := parseForm(r); err != nil {
		return 0, err
	}
	v := r.PostForm
	f.Name, f.URL = strings.TrimSpace(v.Get("name")), strings.TrimSpace(v.Get("url"))
	f.Patterns, f.Filters, f.Headers = v.Get("patterns"), v.Get("filters"), v.Get("headers")
	f.MaxAttempts, f.InitialDelay = strings.TrimSpace(v.Get("max_attempts")), strings.TrimSpace(v.Get("initial_delay_seconds"))
	f.MaxDelay, f.Multiplier = strings.TrimSpace(v.Get("max_delay_seconds")), strings.TrimSpace(v.Get("backoff_multiplier"))
	f.RateLimit, f.Version = strings.TrimSpace(v.Get("rate_limit")), v.Get("version")
	chosen := map[string]bool{}
	for _, e := range v["event"] {
		chosen[e] = true
	}
	for i := range f.Events {
		if !f.Events[i].Fixed {
			f.Events[i].Checked = chosen[f.Events[i].Name]
		}
	}

	w.Name, w.URL = f.Name, f.URL
	w.Headers = f.parseHeaders()
	w.Retry.MaxAttempts = int(f.number("max_attempts", f.MaxAttempts, true))
	w.Retry.InitialDelay = f.duration("initial_delay_seconds", f.InitialDelay)
	w.Retry.MaxDelay = f.duration("max_delay_seconds", f.MaxDelay)
	w.Retry.Multiplier = f.number("backoff_multiplier", f.Multiplier, false)
	w.RateLimit = f.number("rate_limit", f.RateLimit, false)
	if f.Version != "" {
		ver, err := strconv.ParseInt(f.Version, 10, 64)
		if err != nil || ver < 1 {
			return 0, badRequest("The form could not be read.")
		}
		w.Version = ver
	}
	if f.Kept {
		// The form showed the triggers without editing them.
		f.Patterns, f.Filters = h.newForm(w).Patterns, formatFilters(firstFilters(w.Triggers))
		return 0, nil
	}
	filters := f.parseFilters()
	var triggers []webhook.Trigger
	var events []string
	for _, c := range f.Events {
		if c.Checked && !c.Fixed && !strings.HasPrefix(c.Name, "$") {
			events = append(events, c.Name)
		}
	}
	events = append(events, strings.Fields(f.Patterns)...)
	if len(events) > 0 {
		triggers = append(triggers, webhook.Trigger{Type: webhook.TriggerEvent, Events: events, Filters: filters})
	}
	for _, c := range f.Events {
		if t, ok := simpleTriggers[c.Name]; ok && c.Checked {
			triggers = append(triggers, webhook.Trigger{Type: t, Filters: slices.Clone(filters)})
		}
	}
	n := len(triggers)
	for _, t := range w.Triggers {
		if !managed(t.Type) {
			triggers = append(triggers, t)
		}
	}
	w.Triggers = triggers
	return n, nil
}

// formEdits reports whether the form can show ts faithfully, so that
// saving it changes nothing the form did not show: at most one event
// trigger and one trigger of each simple type, all with the same
// filters and without conditions.
func formEdits(ts []webhook.Trigger) bool {
	types := map[webhook.TriggerType]bool{}
	filters, first := "", true
	for _, t := range ts {
		if !managed(t.Type) {
			continue
		}
		if types[t.Type] || len(t.Conditions) > 0 {
			return false
		}
		types[t.Type] = true
		fs := formatFilters(t.Filters)
		if !first && fs != filters {
			return false
		}
		filters, first = fs, false
	}
	return true
}

// firstFilters returns the filters of the first trigger the form
// edits, as the form shows them.
func firstFilters(ts []webhook.Trigger) []webhook.Filter {
	for _, t := range ts {
		if managed(t.Type) {
			return t.Filters
		}
	}
	return nil
}

// parseForm parses a form of at most maxFormBytes: 413 above, 400 when
// it cannot be read.
func parseForm(r *http.Request) error {
	r.Body = http.MaxBytesReader(nil, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return &pageError{status: http.StatusRequestEntityTooLarge, message: "The form is too large."}
		}
		return badRequest("The form could not be read.")
	}
	return nil
}

// number parses a number field; "" is 0.
func (f *endpointForm) number(field, s string, whole bool) float64 {
	if s == "" {
		return 0
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 || math.IsNaN(n) || math.IsInf(n, 0) || (whole && (n > 1e9 || n != math.Trunc(n))) {
		if whole {
			f.add(field, "must be a whole number")
		} else {
			f.add(field, "must be a number, such as 2 or 0.5")
		}
		return 0
	}
	return n
}

// duration parses a field in seconds; "" is 0.
func (f *endpointForm) duration(field, s string) time.Duration {
	n := f.number(field, s, false)
	if n > float64(webhook.MaxRetryDelay/time.Second)*2 {
		f.add(field, "is too long")
		return 0
	}
	return time.Duration(n * float64(time.Second))
}

// parseFilters reads the filters field: one "property operator value"
// per line, the value JSON or else a string.
func (f *endpointForm) parseFilters() []webhook.Filter {
	var out []webhook.Filter
	for i, line := range strings.Split(f.Filters, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		parts := strings.SplitN(line, " ", 3)
		if len(parts) < 2 {
			f.add("filters", fmt.Sprintf("line %d: write a property, an operator and a value, such as: plan equals \"pro\"", i+1))
			continue
		}
		flt := webhook.Filter{Property: parts[0], Operator: webhook.FilterOperator(parts[1])}
		if len(parts) == 3 {
			raw := strings.TrimSpace(parts[2])
			var val any
			if err := json.Unmarshal([]byte(raw), &val); err != nil {
				val = raw
			}
			flt.Value = val
		}
		out = append(out, flt)
	}
	return out
}

// formatFilters writes filters as the filters field reads them.
func formatFilters(fs []webhook.Filter) string {
	var b strings.Builder
	for _, flt := range fs {
		b.WriteString(flt.Property + " " + string(flt.Operator))
		if flt.Value != nil {
			v, err := json.Marshal(flt.Value)
			if err == nil {
				b.WriteString(" " + string(v))
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// parseHeaders reads the headers field: one "Name: value" per line.
func (f *endpointForm) parseHeaders() map[string]string {
	var out map[string]string
	for i, line := range strings.Split(f.Headers, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) == "" {
			f.add("headers", fmt.Sprintf("line %d: write a header as Name: value", i+1))
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[strings.TrimSpace(name)] = strings.TrimSpace(value)
	}
	return out
}

// formatHeaders writes headers as the headers field reads them.
func formatHeaders(hs map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(hs)) {
		b.WriteString(k + ": " + hs[k] + "\n")
	}
	return b.String()
}

// addValidation files the Service's validation problems under the
// form fields they name; n is how many triggers the form built.
func (f *endpointForm) addValidation(ve *webhook.ValidationError, n int) {
	for _, fe := range ve.Fields {
		field, msg := formField(fe.Field, n)
		f.add(field, msg+fe.Reason)
	}
}

// formField returns the form field of a validation path, and what to
// say before the reason.
func formField(path string, n int) (string, string) {
	switch {
	case path == "name", path == "url", path == "rate_limit":
		return path, ""
	case strings.HasPrefix(path, "retry."):
		return strings.TrimPrefix(path, "retry."), ""
	case strings.HasPrefix(path, "headers"):
		name := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(path, "headers"), `["`), `"]`)
		if name == "" {
			return "headers", ""
		}
		return "headers", name + ": "
	case path == "triggers":
		return "events", ""
	case strings.HasPrefix(path, "triggers["):
		rest := strings.TrimPrefix(path, "triggers[")
		idx, after, _ := strings.Cut(rest, "]")
		i, err := strconv.Atoi(idx)
		if err != nil || i >= n {
			return "", "a trigger set up outside this page: "
		}
		if strings.HasPrefix(after, ".filters[") {
			fi, tail, _ := strings.Cut(strings.TrimPrefix(after, ".filters["), "]")
			if k, err := strconv.Atoi(fi); err == nil {
				return "filters", fmt.Sprintf("filter %d%s: ", k+1, strings.Replace(tail, ".", " ", 1))
			}
			return "filters", ""
		}
		return "events", ""
	}
	return "", path + ": "
}
