package webhook

import "time"

// The alert state machine shared by threshold conditions and anomaly
// triggers. It follows Prometheus and Grafana alerting:
//
//	ok      --breach, for 0-->       firing   (notify "fired")
//	ok      --breach, for > 0-->     pending
//	pending --breach held for-->     firing   (notify "fired")
//	pending --no breach-->           ok       (silently)
//	firing  --breach or in band-->   firing   (notify "renotify" once per repeat interval)
//	firing  --recovered or no data-->ok       (notify "resolved" unless turned off)
//
// It is pure: callers read the stored state, step it, and save it with
// a compare-and-set (TriggerStateStore.SaveTriggerState) together with
// the delivery the step asks for, so that concurrent evaluators send
// each notice once.

// alertRule is what a condition (or anomaly trigger) says about its
// alerts.
type alertRule struct {
	// forDur is how long a breach must hold before firing.
	forDur time.Duration
	// repeat, when positive, renotifies a firing alert this often.
	repeat time.Duration
	// notifyResolved says whether resolving notifies.
	notifyResolved bool
}

// alertObservation is one evaluation's verdict on the series.
type alertObservation struct {
	// breach: the firing condition holds.
	breach bool
	// recovered: the recovery condition holds. With hysteresis, neither
	// breach nor recovered may hold (the value is in the band between
	// them): a firing alert stays firing, a pending one clears.
	recovered bool
	// noData: there was no value to judge (an empty window). It clears
	// a pending alert and resolves a firing one.
	noData bool
	// value is the value judged, when there was one.
	value float64
}

// alertNotice is what a step asks the caller to send.
type alertNotice string

// The notices. The string is the notification's reason and, for
// renotify, part of its idempotency key.
const (
	noticeNone     alertNotice = ""
	noticeFired    alertNotice = "fired"
	noticeRenotify alertNotice = "renotify"
	noticeResolved alertNotice = "resolved"
)

// step advances st by one observation at now. It returns the notice to
// send (noticeNone for none) and whether st changed and must be saved.
// newEpisode makes the ID of an episode that starts.
func (st *AlertState) step(rule alertRule, obs alertObservation, now time.Time, newEpisode func() string) (alertNotice, bool) {
	switch st.Status {
	case AlertFiring:
		if obs.noData || (obs.recovered && !obs.breach) {
			st.Status = AlertOK
			st.ResolvedAt = now
			if !obs.noData {
				st.LastValue = obs.value
			}
			if rule.notifyResolved {
				return noticeResolved, true
			}
			return noticeNone, true
		}
		if rule.repeat > 0 && !now.Before(st.LastNotifiedAt.Add(rule.repeat)) {
			st.LastNotifiedAt = now
			st.NotificationCount++
			st.LastValue = obs.value
			return noticeRenotify, true
		}
		return noticeNone, false
	case AlertPending:
		if obs.noData || !obs.breach {
			// Cleared before it fired: nobody was told, nobody is.
			st.Status = AlertOK
			if !obs.noData {
				st.LastValue = obs.value
			}
			return noticeNone, true
		}
		if !now.Before(st.StartedAt.Add(rule.forDur)) {
			st.fire(obs.value, now)
			return noticeFired, true
		}
		return noticeNone, false
	default: // ok
		if obs.noData || !obs.breach {
			return noticeNone, false
		}
		*st = AlertState{
			Status:    AlertPending,
			EpisodeID: newEpisode(),
			StartedAt: now,
			LastValue: obs.value,
		}
		if rule.forDur <= 0 {
			st.fire(obs.value, now)
			return noticeFired, true
		}
		return noticeNone, true
	}
}

// The alert transitions counted by the webhook.alerts.transitions metric
// (its webhook.alert.transition attribute): the state changes of an
// alert, not its renotifications.
const (
	transitionPending  = "pending"  // ok → pending
	transitionFiring   = "firing"   // ok or pending → firing
	transitionResolved = "resolved" // firing → ok
	transitionCleared  = "cleared"  // pending → ok, before it fired
)

// transitionOf names the change of an alert from status before to
// after, or returns "" when the status stayed.
func transitionOf(before, after AlertStatus) string {
	norm := func(s AlertStatus) AlertStatus {
		if s == "" {
			return AlertOK
		}
		return s
	}
	before, after = norm(before), norm(after)
	switch {
	case before == after:
		return ""
	case after == AlertPending:
		return transitionPending
	case after == AlertFiring:
		return transitionFiring
	case before == AlertFiring:
		return transitionResolved
	default:
		return transitionCleared
	}
}

// fire moves a pending alert to firing.
func (st *AlertState) fire(value float64, now time.Time) {
	st.Status = AlertFiring
	st.FiredAt = now
	st.LastNotifiedAt = now
	st.NotificationCount = 1
	st.LastValue = value
}
