package webhook

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// Alerts orphaned by an edit. A threshold condition's or anomaly
// trigger's state is keyed by a fingerprint of its definition, so that an
// edited alert starts afresh. An alert that was firing under the old
// definition would then never resolve, and the receiver (a pager, a
// ticket) would keep an incident open for ever. Update resolves such
// alerts instead: once, with reason "edited", to the webhook as updated.

// ReasonEdited is the reason of a "$threshold_resolved" or
// "$anomaly_resolved" sent because Update changed the condition or the
// anomaly trigger that was firing (or removed it, or stopped the webhook
// hearing the alert's environment).
const ReasonEdited = "edited"

// alertDef is one alert definition of a webhook: a threshold condition,
// or an anomaly trigger.
type alertDef struct {
	trigger int
	part    string
	cond    *Condition   // a threshold condition
	anomaly *anomalySpec // an anomaly trigger
}

// alertDefs returns w's alert definitions by the prefix of their state
// keys (the key without its environment).
func alertDefs(w *Webhook) map[string]alertDef {
	out := make(map[string]alertDef)
	for ti, t := range w.Triggers {
		switch t.Type {
		case TriggerThreshold:
			for ci, c := range t.Conditions {
				part := conditionPart(ci, c)
				out[stateKey("threshold", w.ID, ti, part, "")] = alertDef{trigger: ti, part: part, cond: &c}
			}
		case TriggerAnomaly:
			var ps problems
			sp := validateAnomaly(&ps, "", t)
			if len(ps.fields) == 0 {
				out[stateKey("anomaly", w.ID, ti, sp.part, "")] = alertDef{trigger: ti, part: sp.part, anomaly: sp}
			}
		}
	}
	return out
}

// resolveOrphans resolves the alerts of old that were firing and that
// updated no longer evaluates: their definition changed or went, or
// updated no longer hears their environment. A disabled webhook is told
// nothing (re-enabled, nothing is owed: the alert is gone). Update has
// succeeded when this runs, so its errors are logged, not returned.
func (s *Service) resolveOrphans(ctx context.Context, old, updated *Webhook) {
	ts, ok := s.stateStore()
	if !ok || old == nil || updated == nil || updated.Disabled {
		return
	}
	before := alertDefs(old)
	if len(before) == 0 {
		return
	}
	after := alertDefs(updated)
	states, err := ts.TriggerStates(ctx, []string{updated.ID})
	if err != nil {
		s.log.ErrorContext(ctx, "webhook: reading the alerts of an updated webhook failed; alerts firing under its old definition are not resolved",
			"webhook_id", updated.ID, "error", err)
		return
	}
	for _, st := range states {
		if st.Alert.Status != AlertFiring || !strings.HasSuffix(st.Key, st.Environment) {
			continue
		}
		prefix := st.Key[:len(st.Key)-len(st.Environment)]
		def, was := before[prefix]
		if !was {
			continue
		}
		if _, still := after[prefix]; still && updated.hasEnvironment(st.Environment) {
			continue
		}
		if err := s.resolveOrphan(ctx, updated, def, st); err != nil {
			s.log.ErrorContext(ctx, "webhook: resolving an alert of an updated webhook failed", "webhook_id", updated.ID,
				"state", st.Key, "error", err)
		}
	}
}

// resolveOrphan resolves the firing alert st of definition def, telling
// w (unless the condition turned resolution notices off).
func (s *Service) resolveOrphan(ctx context.Context, w *Webhook, def alertDef, st *TriggerState) error {
	kind := TriggerThreshold
	if def.anomaly != nil {
		kind = TriggerAnomaly
	}
	now := s.clock()
	_, err := s.updateState(ctx, st, func(st *TriggerState) (stateDecision, error) {
		if st.Alert.Status != AlertFiring {
			return stateDecision{}, nil // resolved meanwhile
		}
		st.Alert.Status, st.Alert.ResolvedAt = AlertOK, now
		d := stateDecision{changed: true, kind: kind, transition: transitionResolved}
		var (
			eventType, key string
			data           map[string]any
		)
		if def.cond != nil {
			if !def.cond.rule().notifyResolved {
				return d, nil
			}
			eventType, data, _ = alertMessage(*def.cond, &st.Alert, noticeResolved, alertObservation{value: st.Alert.LastValue})
			key = "alert:" + w.ID + ":" + strconv.Itoa(def.trigger) + ":" + def.part + ":" + st.Environment + ":" + st.Alert.EpisodeID + ":resolved"
		} else {
			sp, a := def.anomaly, st.Alert
			eventType = EventTypeAnomalyResolved
			data = map[string]any{
				"metric":           sp.metric,
				"value":            a.LastValue,
				"sensitivity":      sp.sensitivity,
				"status":           "resolved",
				"episode_id":       a.EpisodeID,
				"started_at":       a.StartedAt,
				"fired_at":         a.FiredAt,
				"resolved_at":      a.ResolvedAt,
				"duration_seconds": a.ResolvedAt.Sub(a.StartedAt).Seconds(),
				"aggregation":      string(sp.aggregation),
				"bucket_seconds":   int64(sp.bucket / time.Second),
			}
			if st.Detector != nil {
				data["direction"] = string(st.Detector.Side)
			}
			key = "anomaly:" + w.ID + ":" + strconv.Itoa(def.trigger) + ":" + st.Environment + ":" + a.EpisodeID + ":resolved"
		}
		data["reason"] = ReasonEdited
		msg, err := s.messageFor(w, eventType, data, st.Environment, key, now, now)
		if err != nil {
			return stateDecision{}, err
		}
		d.enqueue = msg
		return d, nil
	})
	return err
}
