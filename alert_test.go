package webhook

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// episodes returns a newEpisode that numbers its episodes.
func episodes() func() string {
	n := 0
	return func() string { n++; return fmt.Sprintf("e%d", n) }
}

var (
	obsBreach  = alertObservation{breach: true, value: 10}
	obsBand    = alertObservation{value: 5}                  // neither breach nor recovered: hysteresis band
	obsRecover = alertObservation{recovered: true, value: 1} // at or past recovery
	obsNoData  = alertObservation{noData: true}
)

func TestAlertStepTransitions(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	pending := AlertState{Status: AlertPending, EpisodeID: "e0", StartedAt: t0, LastValue: 9}
	firing := AlertState{Status: AlertFiring, EpisodeID: "e0", StartedAt: t0, FiredAt: t0, LastNotifiedAt: t0, NotificationCount: 1, LastValue: 9}
	for _, c := range []struct {
		name    string
		from    AlertState
		rule    alertRule
		obs     alertObservation
		at      time.Duration // after t0
		notice  alertNotice
		changed bool
		want    AlertState
	}{
		// ok
		{"ok stays ok without breach", AlertState{}, alertRule{}, obsRecover, 0, noticeNone, false, AlertState{}},
		{"ok stays ok in band", AlertState{}, alertRule{}, obsBand, 0, noticeNone, false, AlertState{}},
		{"ok stays ok without data", AlertState{}, alertRule{}, obsNoData, 0, noticeNone, false, AlertState{}},
		{"ok fires at once", AlertState{Status: AlertOK, EpisodeID: "old", ResolvedAt: t0}, alertRule{}, obsBreach, time.Minute, noticeFired, true,
			AlertState{Status: AlertFiring, EpisodeID: "e1", StartedAt: t0.Add(time.Minute), FiredAt: t0.Add(time.Minute), LastNotifiedAt: t0.Add(time.Minute), NotificationCount: 1, LastValue: 10}},
		{"ok goes pending with for", AlertState{}, alertRule{forDur: time.Minute}, obsBreach, 0, noticeNone, true,
			AlertState{Status: AlertPending, EpisodeID: "e1", StartedAt: t0, LastValue: 10}},
		// pending
		{"pending holds before for", pending, alertRule{forDur: time.Minute}, obsBreach, 59 * time.Second, noticeNone, false, pending},
		{"pending fires at for", pending, alertRule{forDur: time.Minute}, obsBreach, time.Minute, noticeFired, true,
			AlertState{Status: AlertFiring, EpisodeID: "e0", StartedAt: t0, FiredAt: t0.Add(time.Minute), LastNotifiedAt: t0.Add(time.Minute), NotificationCount: 1, LastValue: 10}},
		{"pending clears silently", pending, alertRule{forDur: time.Minute}, obsRecover, time.Minute, noticeNone, true,
			AlertState{Status: AlertOK, EpisodeID: "e0", StartedAt: t0, LastValue: 1}},
		{"pending clears in band", pending, alertRule{forDur: time.Minute}, obsBand, time.Minute, noticeNone, true,
			AlertState{Status: AlertOK, EpisodeID: "e0", StartedAt: t0, LastValue: 5}},
		{"pending clears without data, keeping its last value", pending, alertRule{forDur: time.Minute}, obsNoData, time.Minute, noticeNone, true,
			AlertState{Status: AlertOK, EpisodeID: "e0", StartedAt: t0, LastValue: 9}},
		// firing
		{"firing stays on breach", firing, alertRule{}, obsBreach, time.Hour, noticeNone, false, firing},
		{"firing stays in band", firing, alertRule{}, obsBand, time.Hour, noticeNone, false, firing},
		{"firing resolves", firing, alertRule{notifyResolved: true}, obsRecover, time.Hour, noticeResolved, true,
			AlertState{Status: AlertOK, EpisodeID: "e0", StartedAt: t0, FiredAt: t0, ResolvedAt: t0.Add(time.Hour), LastNotifiedAt: t0, NotificationCount: 1, LastValue: 1}},
		{"firing resolves silently", firing, alertRule{}, obsRecover, time.Hour, noticeNone, true,
			AlertState{Status: AlertOK, EpisodeID: "e0", StartedAt: t0, FiredAt: t0, ResolvedAt: t0.Add(time.Hour), LastNotifiedAt: t0, NotificationCount: 1, LastValue: 1}},
		{"firing resolves on no data, keeping its last value", firing, alertRule{notifyResolved: true}, obsNoData, time.Hour, noticeResolved, true,
			AlertState{Status: AlertOK, EpisodeID: "e0", StartedAt: t0, FiredAt: t0, ResolvedAt: t0.Add(time.Hour), LastNotifiedAt: t0, NotificationCount: 1, LastValue: 9}},
		{"firing does not resolve when breach and recovered both hold", firing, alertRule{notifyResolved: true}, alertObservation{breach: true, recovered: true, value: 10}, time.Hour, noticeNone, false, firing},
		{"firing renotifies at the interval", firing, alertRule{repeat: time.Hour}, obsBand, time.Hour, noticeRenotify, true,
			AlertState{Status: AlertFiring, EpisodeID: "e0", StartedAt: t0, FiredAt: t0, LastNotifiedAt: t0.Add(time.Hour), NotificationCount: 2, LastValue: 5}},
		{"firing waits for the interval", firing, alertRule{repeat: time.Hour}, obsBreach, time.Hour - time.Second, noticeNone, false, firing},
		{"firing does not renotify without an interval", firing, alertRule{}, obsBreach, 1000 * time.Hour, noticeNone, false, firing},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := c.from
			notice, changed := st.step(c.rule, c.obs, t0.Add(c.at), episodes())
			assert.Equal(t, c.notice, notice)
			assert.Equal(t, c.changed, changed)
			assert.Equal(t, c.want, st)
			if !c.changed {
				assert.Equal(t, c.from, st, "an unchanged state is not touched")
			}
		})
	}
}

// TestAlertStepEpisodes drives one series through two episodes and
// counts the notices.
func TestAlertStepEpisodes(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rule := alertRule{forDur: 30 * time.Second, repeat: 5 * time.Minute, notifyResolved: true}
	var st AlertState
	newEpisode := episodes()
	count := map[alertNotice]int{}
	run := func(obs alertObservation, n int) {
		for range n {
			notice, _ := st.step(rule, obs, now, newEpisode)
			count[notice]++
			now = now.Add(10 * time.Second)
		}
	}
	run(obsBreach, 2) // 0 s, 10 s: pending
	assert.Equal(t, AlertPending, st.Status)
	run(obsBand, 1) // cleared
	assert.Equal(t, AlertOK, st.Status)
	assert.Zero(t, count[noticeFired])
	run(obsBreach, 100) // pending at once, fires at +30 s, renotifies every 5 min over 1000 s
	assert.Equal(t, AlertFiring, st.Status)
	assert.Equal(t, "e2", st.EpisodeID, "the cleared pending was episode e1")
	assert.Equal(t, 1, count[noticeFired])
	assert.Equal(t, 3, count[noticeRenotify], "fired at 30 s; renotified at 330, 630, 930 s")
	run(obsBand, 50)
	assert.Equal(t, AlertFiring, st.Status, "the band keeps it firing")
	run(obsRecover, 3)
	assert.Equal(t, 1, count[noticeResolved])
	assert.Equal(t, AlertOK, st.Status)
	run(obsBreach, 4)
	assert.Equal(t, "e3", st.EpisodeID)
	require.Equal(t, 2, count[noticeFired])
	assert.Equal(t, 1, st.NotificationCount, "a new episode counts afresh")
}
