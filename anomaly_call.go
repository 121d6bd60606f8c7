package webhook

import (
	"context"
	"fmt"
	"math"
)

// MaxIncidentIDLength is the longest Anomaly.IncidentID, in bytes.
const MaxIncidentIDLength = 200

// Anomaly is an anomaly the host detected itself (with its own models),
// raised with TriggerAnomaly.
type Anomaly struct {
	// Metric is the metric's name; anomaly triggers on this metric
	// match.
	Metric string
	// Value is the value found anomalous (or, when Resolved, the value
	// that ended the incident); Expected, Lower and Upper are what the
	// host's model expected and its band; Score is its anomaly score
	// (such as a z-score). All must be finite; any may be zero.
	Value, Expected, Lower, Upper, Score float64
	// Direction is the side of the band the value left: AnomalyAbove or
	// AnomalyBelow. When empty, a firing anomaly's side is Value compared
	// with Expected (neither, when they are equal, reaches only triggers
	// with direction both), and a resolution reaches every direction.
	// Pass the incident's Direction on its resolution too, so that the
	// resolution reaches exactly the webhooks the anomaly reached.
	Direction AnomalyDirection
	// IncidentID, when not empty, identifies the incident, so that it
	// notifies once: the first call with the ID enqueues "$anomaly" and
	// later ones nothing (they return the first call's delivery IDs), and
	// likewise for the first call with Resolved set, which enqueues one
	// "$anomaly_resolved". IDs are scoped like idempotency keys (see
	// WithIdempotencyKey): per tenant, and remembered as long as the
	// Storage keeps idempotency keys. Without an IncidentID every call
	// notifies. At most MaxIncidentIDLength bytes of printable UTF-8.
	IncidentID string
	// Resolved says that the incident is over: the call sends
	// "$anomaly_resolved" instead of "$anomaly".
	Resolved bool
	// Properties are more data for the webhooks, under "properties";
	// filters see them there ("properties.region").
	Properties map[string]any
}

// TriggerAnomaly enqueues an "$anomaly" delivery (or, with a.Resolved,
// "$anomaly_resolved") to every enabled webhook of the call's tenant (see
// WithTenant) with an anomaly trigger on a.Metric whose direction takes
// a's side (see Anomaly.Direction) and whose filters hold on the data.
// The data is {"metric", "value", "expected", "lower", "upper", "score",
// "status" ("firing" or "resolved"), "direction" (when known),
// "episode_id" (a.IncidentID, when given), "properties" (when given)}.
// With an IncidentID it notifies once per incident and once per
// resolution (see Anomaly.IncidentID); an idempotency key passed with
// WithIdempotencyKey replaces the one made from the incident ID.
//
// The trigger's own detector (see Trigger.Metric) is not involved: it
// judges the samples recorded with RecordMetric, and notifies on its
// own. It returns the new delivery IDs, with errors as TriggerEvent;
// numbers that are not finite, an unknown direction and an overlong
// incident ID are invalid.
func (s *Service) TriggerAnomaly(ctx context.Context, a Anomaly, environment string, opts ...TriggerOption) ([]string, error) {
	var ps problems
	checkName(&ps, "metric", a.Metric)
	for _, f := range []struct {
		name string
		v    float64
	}{{"value", a.Value}, {"expected", a.Expected}, {"lower", a.Lower}, {"upper", a.Upper}, {"score", a.Score}} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			ps.add(f.name, "must be a finite number")
		}
	}
	switch a.Direction {
	case "", AnomalyAbove, AnomalyBelow:
	default:
		ps.add("direction", fmt.Sprintf("unknown direction %q (want above, below or empty)", truncate(string(a.Direction))))
	}
	if len(a.IncidentID) > MaxIncidentIDLength || !printable(a.IncidentID) {
		ps.add("incident_id", fmt.Sprintf("must be printable UTF-8 of at most %d bytes", MaxIncidentIDLength))
	}
	if err := ps.err("anomaly"); err != nil {
		return nil, err
	}
	eventType, status, notice := EventTypeAnomaly, "firing", noticeFired
	if a.Resolved {
		eventType, status, notice = EventTypeAnomalyResolved, "resolved", noticeResolved
	}
	side := a.Direction
	if side == "" && !a.Resolved {
		switch {
		case a.Value > a.Expected:
			side = AnomalyAbove
		case a.Value < a.Expected:
			side = AnomalyBelow
		}
	}
	// The data as matching sees it: only JSON-decoded types.
	data := map[string]any{
		"metric": a.Metric, "value": a.Value, "expected": a.Expected,
		"lower": a.Lower, "upper": a.Upper, "score": a.Score, "status": status,
	}
	if side != "" {
		data["direction"] = string(side)
	}
	if a.IncidentID != "" {
		data["episode_id"] = a.IncidentID
		opts = append([]TriggerOption{WithIdempotencyKey("anomaly-incident:" + a.IncidentID + ":" + string(notice))}, opts...)
	}
	if len(a.Properties) > 0 {
		props, err := asSent(a.Properties)
		if err != nil {
			return nil, err
		}
		data["properties"] = props
	}
	return s.trigger(ctx, TriggerAnomaly, eventType, data, true, environment, opts)
}

// match reports whether data, raised by TriggerAnomaly, is about the
// trigger's metric and on a side its direction reports.
func (sp *anomalySpec) match(data map[string]any) bool {
	if m, _ := data["metric"].(string); m != sp.metric {
		return false
	}
	side, _ := data["direction"].(string)
	switch {
	case sp.direction == AnomalyBoth:
		return true
	case side == "":
		// A resolution of unknown side reaches every direction.
		status, _ := data["status"].(string)
		return status == "resolved"
	}
	return side == string(sp.direction)
}
