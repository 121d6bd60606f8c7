package webhook

import (
	"cmp"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// compileSchedule compiles a cron schedule in zone, failing the test on
// a validation problem.
func compileSchedule(t *testing.T, spec, zone string) *compiledSchedule {
	t.Helper()
	var ps problems
	cs := validateSchedule(&ps, "", Trigger{Type: TriggerScheduled, Schedule: spec, Timezone: zone})
	require.NoError(t, ps.err("trigger"))
	return cs
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

// fireTimes returns the period ends an evaluator ticking every step
// from from to to sees, after from, checking that each period starts
// where the one before ended.
func fireTimes(t *testing.T, cs *compiledSchedule, from, to time.Time, step time.Duration) []string {
	t.Helper()
	first, ok := cs.period(from)
	require.True(t, ok)
	last := first.End
	var out []string
	for now := from; !now.After(to); now = now.Add(step) {
		p, ok := cs.period(now)
		require.True(t, ok, now)
		require.False(t, p.End.After(now), "period of %v ends after it: %v", now, p.End)
		if p.End.Equal(last) {
			continue
		}
		require.True(t, p.End.After(last), "at %v: period end went back from %v to %v", now, last, p.End)
		require.True(t, p.Start.Equal(last), "at %v: period starts at %v, the previous ended at %v", now, p.Start, last)
		last = p.End
		out = append(out, p.End.UTC().Format(time.RFC3339))
	}
	return out
}

func TestScheduleAcrossDaylightSavingChanges(t *testing.T) {
	cases := []struct {
		name, zone, spec string
		from, to         string
		want             []string
		step             time.Duration // 0: 30 seconds
	}{
		{"New York spring: 02:30 is skipped, runs at 03:00", "America/New_York", "30 2 * * *", "2026-03-07T00:00:00Z", "2026-03-09T12:00:00Z",
			[]string{"2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"}, 0},
		{"New York spring: 02:00 and 03:00 run once together", "America/New_York", "0 2,3 * * *", "2026-03-07T00:00:00Z", "2026-03-09T12:00:00Z",
			[]string{"2026-03-07T07:00:00Z", "2026-03-07T08:00:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:00:00Z", "2026-03-09T07:00:00Z"}, 0},
		{"New York spring: hourly", "America/New_York", "0 * * * *", "2026-03-08T05:30:00Z", "2026-03-08T09:30:00Z",
			[]string{"2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z", "2026-03-08T09:00:00Z"}, 0},
		{"New York fall: 01:30 runs once, in EDT", "America/New_York", "30 1 * * *", "2026-10-31T00:00:00Z", "2026-11-02T12:00:00Z",
			[]string{"2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"}, 0},
		{"New York fall: hourly skips the repeated 01:00", "America/New_York", "0 * * * *", "2026-11-01T03:30:00Z", "2026-11-01T08:30:00Z",
			[]string{"2026-11-01T04:00:00Z", "2026-11-01T05:00:00Z", "2026-11-01T07:00:00Z", "2026-11-01T08:00:00Z"}, 0},
		{"New York fall: every 20 minutes of 01:xx, once", "America/New_York", "*/20 1 * * *", "2026-11-01T04:00:00Z", "2026-11-01T12:00:00Z",
			[]string{"2026-11-01T05:00:00Z", "2026-11-01T05:20:00Z", "2026-11-01T05:40:00Z"}, 0},
		{"Berlin spring: 02:30 is skipped, runs at 03:00", "Europe/Berlin", "30 2 * * *", "2026-03-28T00:00:00Z", "2026-03-30T12:00:00Z",
			[]string{"2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"}, 0},
		{"Berlin spring: four skipped times run once", "Europe/Berlin", "*/15 2 * * *", "2026-03-28T00:00:00Z", "2026-03-30T12:00:00Z",
			[]string{"2026-03-28T01:00:00Z", "2026-03-28T01:15:00Z", "2026-03-28T01:30:00Z", "2026-03-28T01:45:00Z",
				"2026-03-29T01:00:00Z",
				"2026-03-30T00:00:00Z", "2026-03-30T00:15:00Z", "2026-03-30T00:30:00Z", "2026-03-30T00:45:00Z"}, 0},
		{"Berlin fall: 02:30 runs once, in CEST", "Europe/Berlin", "30 2 * * *", "2026-10-24T00:00:00Z", "2026-10-26T12:00:00Z",
			[]string{"2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"}, 0},
		{"Berlin fall: 01:30 is not repeated", "Europe/Berlin", "30 1 * * *", "2026-10-24T00:00:00Z", "2026-10-26T12:00:00Z",
			[]string{"2026-10-24T23:30:00Z", "2026-10-26T00:30:00Z"}, 0},
		{"day of month OR day of week", "UTC", "0 0 1 * MON", "2026-06-01T12:00:00Z", "2026-07-14T00:00:00Z",
			[]string{"2026-06-08T00:00:00Z", "2026-06-15T00:00:00Z", "2026-06-22T00:00:00Z", "2026-06-29T00:00:00Z",
				"2026-07-01T00:00:00Z", "2026-07-06T00:00:00Z", "2026-07-13T00:00:00Z"}, time.Hour},
		{"day of month alone when day of week is *", "UTC", "0 0 1 * *", "2026-06-01T12:00:00Z", "2026-08-02T00:00:00Z",
			[]string{"2026-07-01T00:00:00Z", "2026-08-01T00:00:00Z"}, time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cs := compileSchedule(t, tc.spec, tc.zone)
			step := cmp.Or(tc.step, 30*time.Second)
			assert.Equal(t, tc.want, fireTimes(t, cs, utc(tc.from), utc(tc.to), step))
		})
	}
}

func TestSchedulePeriodBounds(t *testing.T) {
	ny := compileSchedule(t, "30 1 * * *", "America/New_York")
	// 01:45 EST, in the repeated hour: the period ended at 01:30 EDT.
	p, ok := ny.period(utc("2026-11-01T06:45:00Z"))
	require.True(t, ok)
	assert.Equal(t, utc("2026-10-31T05:30:00Z"), p.Start.UTC())
	assert.Equal(t, utc("2026-11-01T05:30:00Z"), p.End.UTC())
	assert.Equal(t, "America/New_York", p.End.Location().String(), "cron periods are in the schedule's zone")
	// The next day's period is 25 hours long.
	p, _ = ny.period(utc("2026-11-02T07:00:00Z"))
	assert.Equal(t, 25*time.Hour, p.End.Sub(p.Start))
	// A period end is "at or before now": exactly at the fire time.
	p, _ = ny.period(utc("2026-11-02T06:30:00Z"))
	assert.Equal(t, utc("2026-11-02T06:30:00Z"), p.End.UTC())
	p, _ = ny.period(utc("2026-11-02T06:29:59.999999Z"))
	assert.Equal(t, utc("2026-11-01T05:30:00Z"), p.End.UTC())

	var ps problems
	hourly := validateSchedule(&ps, "", Trigger{Type: TriggerScheduled, IntervalSeconds: 3600})
	require.NoError(t, ps.err("trigger"))
	p, ok = hourly.period(utc("2026-11-28T09:59:59Z"))
	require.True(t, ok)
	assert.Equal(t, Period{Start: utc("2026-11-28T08:00:00Z"), End: utc("2026-11-28T09:00:00Z")}, p)
	p, _ = hourly.period(utc("2026-11-28T10:00:00Z"))
	assert.Equal(t, utc("2026-11-28T10:00:00Z"), p.End)
	weekly := validateSchedule(&ps, "", Trigger{Type: TriggerScheduled, IntervalSeconds: 7 * 86400})
	p, _ = weekly.period(utc("2026-11-28T10:00:00Z"))
	assert.Equal(t, time.Thursday, p.End.Weekday(), "interval periods are aligned to the Unix epoch, a Thursday")
}

func TestFirstInstant(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	wall := func(s string) time.Time { return utc(s) } // a reading held as UTC
	assert.Equal(t, utc("2026-03-08T07:00:00Z"), firstInstant(wall("2026-03-08T02:30:00Z"), ny).UTC(), "skipped: when the clocks jump")
	assert.Equal(t, utc("2026-03-08T07:00:00Z"), firstInstant(wall("2026-03-08T02:00:00Z"), ny).UTC())
	assert.Equal(t, utc("2026-03-08T07:00:00Z"), firstInstant(wall("2026-03-08T03:00:00Z"), ny).UTC())
	assert.Equal(t, utc("2026-03-08T06:59:00Z"), firstInstant(wall("2026-03-08T01:59:00Z"), ny).UTC())
	assert.Equal(t, utc("2026-11-01T05:30:00Z"), firstInstant(wall("2026-11-01T01:30:00Z"), ny).UTC(), "repeated: the first")
	assert.Equal(t, utc("2026-11-01T07:00:00Z"), firstInstant(wall("2026-11-01T02:00:00Z"), ny).UTC())
	assert.Equal(t, utc("2026-06-01T13:00:00Z"), firstInstant(wall("2026-06-01T09:00:00Z"), ny).UTC())
	assert.Equal(t, utc("2026-06-01T09:00:00Z"), firstInstant(wall("2026-06-01T09:00:00Z"), time.UTC).UTC())
}

// TestScheduleMatchesAReferenceClock compares the periods with an
// independent model of a clock that fires each matching reading once:
// stepping real time minute by minute, the readings matched since the
// last (greatest) reading seen fire at the first instant the clock shows
// one at or past them. That is what "a skipped time runs at the first
// valid instant after it; a repeated time runs once" means.
func TestScheduleMatchesAReferenceClock(t *testing.T) {
	zones := []string{"America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "America/Santiago", "Pacific/Apia"}
	specs := []string{"*/15 * * * *", "30 2 * * *", "0 * * * *", "45 1 * * 0", "0 0 1 * MON", "5,35 0-3 * * *"}
	for _, zone := range zones {
		loc, err := time.LoadLocation(zone)
		require.NoError(t, err)
		// The zone's transitions in 2026 (and Apia's skipped day in 2011).
		var changes []time.Time
		for _, from := range []time.Time{utc("2011-12-01T00:00:00Z"), utc("2026-01-01T00:00:00Z")} {
			for at, n := from, 0; n < 2; n++ {
				_, end := at.In(loc).ZoneBounds()
				if end.IsZero() || end.Year() != from.Year() {
					break
				}
				changes = append(changes, end)
				at = end
			}
		}
		for _, spec := range specs {
			cs := compileSchedule(t, spec, zone)
			for _, change := range changes {
				t.Run(fmt.Sprintf("%s %s %s", zone, spec, change.Format(time.DateOnly)), func(t *testing.T) {
					from, to := change.Add(-18*time.Hour).Truncate(time.Minute), change.Add(18*time.Hour)
					maxSeen := wallClock(from.Add(-time.Minute), loc)
					var lastFire time.Time
					for m := from; m.Before(to); m = m.Add(time.Minute) {
						r := wallClock(m, loc)
						if n := cs.spec.Next(maxSeen); !n.After(r) {
							lastFire = m
						}
						if r.After(maxSeen) {
							maxSeen = r
						}
						if lastFire.IsZero() {
							continue
						}
						cs.last.Store(nil) // at m uncached, at m+30s from the cache
						for _, at := range []time.Time{m, m.Add(30 * time.Second)} {
							p, ok := cs.period(at)
							require.True(t, ok)
							require.True(t, p.End.Equal(lastFire), "at %v (%v): period ends %v, want %v", at, at.In(loc), p.End, lastFire.In(loc))
						}
					}
				})
			}
		}
	}
}

func TestValidateSchedule(t *testing.T) {
	cases := []struct {
		name  string
		tr    Trigger
		field string
		says  string
	}{
		{"nothing", Trigger{}, "schedule", "needs a schedule"},
		{"both", Trigger{Schedule: "0 9 * * *", Timezone: "UTC", IntervalSeconds: 3600}, "schedule", "not both"},
		{"interval too short", Trigger{IntervalSeconds: 59}, "interval_seconds", "between 60"},
		{"interval negative", Trigger{IntervalSeconds: -3600}, "interval_seconds", "between 60"},
		{"interval too long", Trigger{IntervalSeconds: MaxIntervalSeconds + 1}, "interval_seconds", "31 days"},
		{"interval with a zone", Trigger{IntervalSeconds: 3600, Timezone: "Europe/Berlin"}, "timezone", "aligned to UTC"},
		{"cron without a zone", Trigger{Schedule: "0 9 * * *"}, "timezone", "IANA"},
		{"unknown zone", Trigger{Schedule: "0 9 * * *", Timezone: "Mars/Olympus_Mons"}, "timezone", "unknown time zone"},
		{"Local", Trigger{Schedule: "0 9 * * *", Timezone: "Local"}, "timezone", "IANA"},
		{"path as zone", Trigger{Schedule: "0 9 * * *", Timezone: "../../etc/passwd"}, "timezone", "unknown time zone"},
		{"six fields", Trigger{Schedule: "0 0 9 * * *", Timezone: "UTC"}, "schedule", "five-field"},
		{"four fields", Trigger{Schedule: "0 9 * *", Timezone: "UTC"}, "schedule", "five-field"},
		{"out of range", Trigger{Schedule: "60 9 * * *", Timezone: "UTC"}, "schedule", "five-field"},
		{"descriptor", Trigger{Schedule: "@daily", Timezone: "UTC"}, "schedule", "descriptors"},
		{"zone in the expression", Trigger{Schedule: "TZ=UTC 0 9 * * *", Timezone: "UTC"}, "schedule", "timezone"},
		{"never", Trigger{Schedule: "0 0 31 4 *", Timezone: "UTC"}, "schedule", "never matches"},
		{"extended syntax", Trigger{Schedule: "0 0 L * *", Timezone: "UTC"}, "schedule", "five-field"},
		{"control characters", Trigger{Schedule: "0 9 * * *\n", Timezone: "UTC"}, "schedule", "printable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ps problems
			tc.tr.Type = TriggerScheduled
			validateSchedule(&ps, "triggers[0]", tc.tr)
			require.NotEmpty(t, ps.fields)
			assert.Equal(t, "triggers[0]."+tc.field, ps.fields[0].Field)
			assert.Contains(t, ps.fields[0].Reason, tc.says)
		})
	}
	for _, ok := range []Trigger{
		{Schedule: "0 9 * * 1", Timezone: "Europe/Berlin"},
		{Schedule: " */5 * * * * ", Timezone: "UTC"},
		{Schedule: "0 0 29 2 *", Timezone: "Asia/Tokyo"},
		{Schedule: "0 8-18 * * mon-fri", Timezone: "America/New_York"},
		{IntervalSeconds: 60},
		{IntervalSeconds: MaxIntervalSeconds},
	} {
		var ps problems
		ok.Type = TriggerScheduled
		validateSchedule(&ps, "", ok)
		assert.NoError(t, ps.err("trigger"), "%+v", ok)
	}
}

func FuzzValidateSchedule(f *testing.F) {
	for _, s := range []string{"0 9 * * 1", "*/15 2 * * *", "0 0 31 2 *", "@every 1s", "TZ=UTC 0 0 * * *", "H * * * *", "1-60/0 * * * *", "0 0 1 * MON#3"} {
		f.Add(s, "Europe/Berlin", int64(0))
	}
	f.Add("", "", int64(3600))
	f.Fuzz(func(t *testing.T, spec, zone string, interval int64) {
		var ps problems
		cs := validateSchedule(&ps, "", Trigger{Type: TriggerScheduled, Schedule: spec, Timezone: zone, IntervalSeconds: interval})
		if len(ps.fields) > 0 {
			return
		}
		now := time.Date(2026, 11, 1, 6, 15, 0, 0, time.UTC)
		if p, ok := cs.period(now); ok {
			if p.End.After(now) || !p.Start.Before(p.End) {
				t.Fatalf("%q in %q: period %v–%v at %v", spec, zone, p.Start, p.End, now)
			}
		}
	})
}

// BenchmarkSchedulePeriod measures the period search Evaluate runs for
// every scheduled trigger.
func BenchmarkSchedulePeriod(b *testing.B) {
	for _, spec := range []string{"0 9 * * 1", "0 0 1 * *", "*/5 * * * *"} {
		for _, cached := range []bool{true, false} {
			b.Run(fmt.Sprintf("%s/cached=%v", spec, cached), func(b *testing.B) {
				var ps problems
				cs := validateSchedule(&ps, "", Trigger{Type: TriggerScheduled, Schedule: spec, Timezone: "Europe/Berlin"})
				now := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
				for b.Loop() {
					now = now.Add(10 * time.Second)
					if !cached {
						cs.last.Store(nil)
					}
					if _, ok := cs.period(now); !ok {
						b.Fatal("no period")
					}
				}
			})
		}
	}
}
