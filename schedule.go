package webhook

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	cron "github.com/netresearch/go-cron"
)

// Limits on scheduled triggers, enforced by validation.
const (
	// MinIntervalSeconds and MaxIntervalSeconds bound a scheduled
	// trigger's IntervalSeconds: one minute to 31 days. Longer or
	// calendar-aligned periods (monthly, weekly on Mondays) are cron
	// schedules.
	MinIntervalSeconds = 60
	MaxIntervalSeconds = 31 * 24 * 60 * 60
	// MaxScheduleLength is the longest cron expression, in bytes.
	MaxScheduleLength = 128
	// MaxTimezoneLength is the longest time zone name, in bytes.
	MaxTimezoneLength = 64
)

// cronOptions make go-cron read the five standard fields (minute, hour,
// day of month, month, day of week) with the standard rule that a day
// matches when it matches the day of month OR the day of week (when
// neither field is "*"), and nothing else: no seconds, descriptors
// (@daily), hashes (H) or extensions (L, W, #).
const cronOptions = cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.DowOrDom

// compiledSchedule is a scheduled trigger's validated schedule: an
// interval, or a cron expression read in a time zone.
//
// A cron schedule names wall-clock times. go-cron computes them on
// wall-clock readings held as UTC times (so that no time zone rule
// interferes), and firstInstant turns each reading into the instant it
// fires at: the first instant loc's clocks show it, so that a time in a
// repeated (fall-back) hour fires once, at its first occurrence, and a
// time in a skipped (spring-forward) hour fires once, at the instant the
// clocks jump past it. Several skipped times fire together, once.
type compiledSchedule struct {
	interval time.Duration      // an interval schedule; 0 for a cron one
	spec     *cron.SpecSchedule // a cron schedule over wall-clock readings
	loc      *time.Location     // the cron schedule's zone
	expr     string             // the cron expression, as given
	zone     string             // the zone's name, as given
	// fingerprint identifies the schedule's definition, so that an edited
	// schedule starts a new state (see summarize).
	fingerprint string
	// last caches the latest period found, until the next fire time.
	last atomic.Pointer[cachedPeriod]
}

// cachedPeriod is a cron schedule's period, latest from End until next.
type cachedPeriod struct {
	p    Period
	next time.Time
}

// validateSchedule adds the problems of a scheduled trigger's schedule
// fields to ps under prefix and returns the compiled schedule
// (meaningful only when no problem was added).
func validateSchedule(ps *problems, prefix string, t Trigger) *compiledSchedule {
	cs := &compiledSchedule{expr: t.Schedule, zone: t.Timezone, fingerprint: scheduleFingerprint(t)}
	switch {
	case t.IntervalSeconds != 0 && t.Schedule != "":
		ps.add(joinPath(prefix, "schedule"), "set either schedule or interval_seconds, not both")
	case t.IntervalSeconds == 0 && t.Schedule == "":
		ps.add(joinPath(prefix, "schedule"), `a scheduled trigger needs a schedule (a five-field cron expression such as "0 9 * * 1") or interval_seconds`)
	case t.IntervalSeconds != 0:
		if t.IntervalSeconds < MinIntervalSeconds || t.IntervalSeconds > MaxIntervalSeconds {
			ps.add(joinPath(prefix, "interval_seconds"), fmt.Sprintf("must be between %d (a minute) and %d (31 days)", MinIntervalSeconds, MaxIntervalSeconds))
		}
		if t.Timezone != "" {
			ps.add(joinPath(prefix, "timezone"), "applies only to a cron schedule: interval periods are aligned to UTC (they end at multiples of interval_seconds since 1970-01-01T00:00:00Z)")
		}
		cs.interval = time.Duration(t.IntervalSeconds) * time.Second
	default:
		cs.spec = parseCron(ps, joinPath(prefix, "schedule"), t.Schedule)
		cs.loc = loadZone(ps, joinPath(prefix, "timezone"), t.Timezone)
	}
	return cs
}

// parseCron parses a five-field cron expression, adding its problem to
// ps under field.
func parseCron(ps *problems, field, expr string) *cron.SpecSchedule {
	trimmed := strings.TrimSpace(expr)
	switch {
	case len(expr) > MaxScheduleLength || !printable(expr):
		ps.add(field, fmt.Sprintf("must be printable UTF-8 of at most %d bytes", MaxScheduleLength))
		return nil
	case strings.HasPrefix(trimmed, "TZ=") || strings.HasPrefix(trimmed, "CRON_TZ="):
		ps.add(field, "name the time zone in timezone, not in the expression")
		return nil
	case strings.HasPrefix(trimmed, "@"):
		ps.add(field, `descriptors such as @daily are not supported: write the five fields ("0 0 * * *")`)
		return nil
	}
	parser, err := cron.TryNewParser(cronOptions)
	if err != nil { // not reached: the options are valid
		ps.add(field, "cannot be parsed: "+err.Error())
		return nil
	}
	s, err := parser.Parse(trimmed)
	if err != nil {
		ps.add(field, "not a five-field cron expression (minute hour day-of-month month day-of-week): "+truncate(err.Error()))
		return nil
	}
	spec, ok := s.(*cron.SpecSchedule)
	if !ok {
		ps.add(field, "not a five-field cron expression")
		return nil
	}
	spec.Location = time.UTC // it reads wall-clock readings held as UTC times
	if spec.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		ps.add(field, "never matches a date (such as day 31 of a month that has 30)")
		return nil
	}
	return spec
}

// loadZone loads the IANA time zone name, adding its problem to ps under
// field. It reads the host's time zone database (see the README: a host
// without one imports time/tzdata).
func loadZone(ps *problems, field, name string) *time.Location {
	switch {
	case name == "":
		ps.add(field, `a cron schedule needs an IANA time zone, such as "Europe/Berlin" or "UTC"`)
	case len(name) > MaxTimezoneLength || !printable(name):
		ps.add(field, fmt.Sprintf("must be printable UTF-8 of at most %d bytes", MaxTimezoneLength))
	case name == "Local":
		ps.add(field, `must name an IANA time zone: "Local" is whatever the host is set to`)
	default:
		loc, err := time.LoadLocation(name)
		if err != nil {
			ps.add(field, fmt.Sprintf("unknown time zone %q (want an IANA name such as \"America/New_York\")", truncate(name)))
			return nil
		}
		return loc
	}
	return nil
}

// scheduleFingerprint returns a short hash of a scheduled trigger's
// schedule fields.
func scheduleFingerprint(t Trigger) string {
	h := sha256.Sum256([]byte(strconv.FormatInt(t.IntervalSeconds, 10) + "\x00" + t.Schedule + "\x00" + t.Timezone))
	return hex.EncodeToString(h[:6])
}

// maxScheduleSteps bounds the fire times one period search visits (the
// times of a repeated or skipped stretch of clock readings, at most a
// day's minutes).
const maxScheduleSteps = 2 * 24 * 60

// period returns the period that the schedule's latest fire time at or
// before now ended: End is that fire time and Start the one before it.
// ok is false if the schedule has not fired in the years before now.
// Interval periods are in UTC, cron periods in the schedule's zone.
func (cs *compiledSchedule) period(now time.Time) (p Period, ok bool) {
	if cs.interval > 0 {
		n, iv := now.Unix(), int64(cs.interval/time.Second)
		end := n - ((n%iv)+iv)%iv
		return Period{Start: time.Unix(end-iv, 0).UTC(), End: time.Unix(end, 0).UTC()}, true
	}
	if cs.spec == nil || cs.loc == nil {
		return Period{}, false
	}
	if c := cs.last.Load(); c != nil && !now.Before(c.p.End) && now.Before(c.next) {
		return c.p, true
	}
	w := wallClock(now, cs.loc).Truncate(time.Minute)
	c := cs.spec.Prev(w.Add(time.Minute)) // the latest reading ≤ w
	if c.IsZero() {
		return Period{}, false
	}
	end := firstInstant(c, cs.loc)
	// In a repeated hour, readings after w may have fired already, at
	// their first occurrence.
	var next time.Time
	for range maxScheduleSteps {
		n := cs.spec.Next(c)
		if n.IsZero() {
			break
		}
		if next = firstInstant(n, cs.loc); next.After(now) {
			break
		}
		c, end, next = n, next, time.Time{}
	}
	// The start is the latest fire time before end (skipped readings
	// fire together with end).
	for range maxScheduleSteps {
		if c = cs.spec.Prev(c); c.IsZero() {
			return Period{}, false
		}
		if start := firstInstant(c, cs.loc); start.Before(end) {
			p := Period{Start: start.In(cs.loc), End: end.In(cs.loc)}
			if !next.IsZero() {
				cs.last.Store(&cachedPeriod{p: p, next: next})
			}
			return p, true
		}
	}
	return Period{}, false
}

// wallClock returns the reading of loc's clocks at t, held as a UTC time.
func wallClock(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	y, mo, d := l.Date()
	h, mi, s := l.Clock()
	return time.Date(y, mo, d, h, mi, s, l.Nanosecond(), time.UTC)
}

// firstInstant returns the first instant at which loc's clocks read w (a
// reading held as a UTC time, see wallClock): in a repeated hour, its
// first occurrence; in a skipped one, which the clocks never read, the
// instant they jump past it.
func firstInstant(w time.Time, loc *time.Location) time.Time {
	// The instant is within the range of UTC offsets of w: walk the
	// zone's periods (of one offset each) that overlap it, in order.
	t := w.Add(-15 * time.Hour)
	for range 16 {
		l := t.In(loc)
		_, off := l.Zone()
		start, end := l.ZoneBounds()
		at := w.Add(-time.Duration(off) * time.Second)
		switch {
		case !start.IsZero() && at.Before(start):
			// The clocks read past w when the previous period ended and
			// before w when this one began: w was skipped.
			return start
		case end.IsZero() || at.Before(end):
			return at
		}
		t = end
	}
	return w // not reached for any real zone
}
