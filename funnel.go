package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// MaxFunnelSteps is the most steps a FunnelCompletion may list.
const MaxFunnelSteps = 64

// FunnelCompletion is one person completing a funnel of the host's
// analytics: the occurrence TriggerFunnelComplete sends as
// "$funnel_complete".
type FunnelCompletion struct {
	// FunnelID identifies the funnel; required, printable UTF-8 of at
	// most MaxEventNameLength bytes.
	FunnelID string
	// FunnelName is the funnel's name for people; optional, at most
	// MaxNameLength bytes.
	FunnelName string
	// DistinctID identifies the person (or device) who completed the
	// funnel, as the host's analytics know them; required, printable
	// UTF-8 of at most MaxEventNameLength bytes.
	DistinctID string
	// CompletedAt is when the funnel's last step was completed. Defaults
	// to the current time.
	CompletedAt time.Time
	// Steps are the funnel's steps in order, with when the person
	// completed each; optional, at most MaxFunnelSteps.
	Steps []FunnelStep
	// Properties are the host's data about the completion (the person's
	// plan, the campaign, the order); optional. Filters see them under
	// "properties" ("properties.plan").
	Properties map[string]any
}

// FunnelStep is one step of a completed funnel.
type FunnelStep struct {
	// Name is the step's name, usually the event that completes it
	// ("signup"); required, as FunnelCompletion.FunnelID.
	Name string
	// CompletedAt is when the person completed the step; zero leaves it
	// out of the payload.
	CompletedAt time.Time
}

// CohortEntry is one person entering a cohort of the host's analytics:
// the occurrence TriggerCohortEntry sends as "$cohort_entry".
type CohortEntry struct {
	// CohortID identifies the cohort; required, printable UTF-8 of at
	// most MaxEventNameLength bytes.
	CohortID string
	// CohortName is the cohort's name for people; optional, at most
	// MaxNameLength bytes.
	CohortName string
	// DistinctID identifies the person who entered the cohort; required,
	// as FunnelCompletion.DistinctID.
	DistinctID string
	// EnteredAt is when the person entered the cohort. Defaults to the
	// current time.
	EnteredAt time.Time
	// Properties are the host's data about the person or the entry;
	// optional. Filters see them under "properties".
	Properties map[string]any
}

// TriggerFunnelComplete enqueues a "$funnel_complete" delivery to every
// enabled webhook of the call's tenant (see WithTenant) with a matching
// funnel_complete trigger, and returns the new delivery IDs. The data is
// {"funnel_id", "funnel_name", "distinct_id", "completed_at", "steps":
// [{"name", "completed_at"}], "properties"}, with times in RFC 3339
// (UTC); filters see those fields ("funnel_id equals f1",
// "properties.plan equals pro"). The payload's timestamp is CompletedAt.
//
// The call has a default idempotency key per funnel, person and UTC day
// of CompletedAt, so that a pipeline that replays its completions
// notifies each webhook once a day per person and funnel: the same
// completion twice enqueues once, and the second call returns the first
// call's delivery IDs. A completion that no webhook matches records no
// key. WithIdempotencyKey replaces the default key, and
// WithIdempotencyKey("") turns it off. Errors are as TriggerEvent's, with
// the *ValidationError naming the completion's fields ("funnel_id",
// "steps[0].name").
func (s *Service) TriggerFunnelComplete(ctx context.Context, c FunnelCompletion, environment string, opts ...TriggerOption) ([]string, error) {
	var ps problems
	checkName(&ps, "funnel_id", c.FunnelID)
	checkLabel(&ps, "funnel_name", c.FunnelName)
	checkName(&ps, "distinct_id", c.DistinctID)
	checkTime(&ps, "completed_at", c.CompletedAt)
	if len(c.Steps) > MaxFunnelSteps {
		ps.add("steps", fmt.Sprintf("at most %d steps", MaxFunnelSteps))
	}
	steps := make([]any, 0, len(c.Steps))
	for i, st := range c.Steps {
		checkName(&ps, indexPath("steps", i)+".name", st.Name)
		checkTime(&ps, indexPath("steps", i)+".completed_at", st.CompletedAt)
		step := map[string]any{"name": st.Name}
		if !st.CompletedAt.IsZero() {
			step["completed_at"] = formatTime(st.CompletedAt)
		}
		steps = append(steps, step)
	}
	if err := ps.err("funnel completion"); err != nil {
		return nil, err
	}
	at := c.CompletedAt
	if at.IsZero() {
		at = s.clock()
	}
	data := map[string]any{
		"funnel_id":    c.FunnelID,
		"funnel_name":  c.FunnelName,
		"distinct_id":  c.DistinctID,
		"completed_at": formatTime(at),
		"steps":        steps,
		"properties":   orEmpty(c.Properties),
	}
	opts = append([]TriggerOption{withDefaultKey(dailyKey("funnel", c.FunnelID, c.DistinctID, at)), WithTimestamp(at)}, opts...)
	return s.trigger(ctx, TriggerFunnelComplete, EventTypeFunnelComplete, data, false, environment, opts)
}

// TriggerCohortEntry enqueues a "$cohort_entry" delivery to every enabled
// webhook of the call's tenant (see WithTenant) with a matching
// cohort_entry trigger, and returns the new delivery IDs. The data is
// {"cohort_id", "cohort_name", "distinct_id", "entered_at",
// "properties"}; filters see those fields ("cohort_id equals power-users").
// The payload's timestamp is EnteredAt. Like TriggerFunnelComplete, the
// call has a default idempotency key, per cohort, person and UTC day of
// EnteredAt, which WithIdempotencyKey replaces; errors are as
// TriggerEvent's.
func (s *Service) TriggerCohortEntry(ctx context.Context, e CohortEntry, environment string, opts ...TriggerOption) ([]string, error) {
	var ps problems
	checkName(&ps, "cohort_id", e.CohortID)
	checkLabel(&ps, "cohort_name", e.CohortName)
	checkName(&ps, "distinct_id", e.DistinctID)
	checkTime(&ps, "entered_at", e.EnteredAt)
	if err := ps.err("cohort entry"); err != nil {
		return nil, err
	}
	at := e.EnteredAt
	if at.IsZero() {
		at = s.clock()
	}
	data := map[string]any{
		"cohort_id":   e.CohortID,
		"cohort_name": e.CohortName,
		"distinct_id": e.DistinctID,
		"entered_at":  formatTime(at),
		"properties":  orEmpty(e.Properties),
	}
	opts = append([]TriggerOption{withDefaultKey(dailyKey("cohort", e.CohortID, e.DistinctID, at)), WithTimestamp(at)}, opts...)
	return s.trigger(ctx, TriggerCohortEntry, EventTypeCohortEntry, data, false, environment, opts)
}

// withDefaultKey sets a default idempotency key, which a later
// WithIdempotencyKey replaces, and which is not recorded when no webhook
// matches.
func withDefaultKey(key string) TriggerOption {
	return func(o *triggerOptions) { o.key, o.implicit = key, true }
}

// dailyKey returns the default idempotency key of an occurrence of kind
// for the object id and the person distinctID on the UTC day of at:
// "funnel:2026-11-28:" and a hash of the two IDs (unambiguous whatever
// they hold, and short).
func dailyKey(kind, id, distinctID string, at time.Time) string {
	h := sha256.Sum256([]byte(id + "\x00" + distinctID))
	return kind + ":" + at.UTC().Format(time.DateOnly) + ":" + hex.EncodeToString(h[:16])
}

// checkLabel checks an optional name for people.
func checkLabel(ps *problems, field, v string) {
	if len(v) > MaxNameLength || !printable(v) {
		ps.add(field, fmt.Sprintf("must be printable UTF-8 of at most %d bytes", MaxNameLength))
	}
}

// checkTime checks an optional time argument: zero, or one JSON can hold.
func checkTime(ps *problems, field string, t time.Time) {
	if !t.IsZero() && (t.Year() < 1 || t.Year() > 9999) {
		ps.add(field, "must be a time between the years 1 and 9999")
	}
}

// formatTime formats a time of a payload's data: RFC 3339 in UTC, to the
// microsecond.
func formatTime(t time.Time) string {
	return t.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano)
}

// orEmpty returns m, or an empty map for nil.
func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}
