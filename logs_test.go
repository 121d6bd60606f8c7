package webhook_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
)

// logRecord is one log line a captureHandler saw: its level, message
// and attributes (those of Logger.With included), flattened with their
// groups' names as prefixes ("g.key") and resolved (LogValuer values
// replaced by what they log).
type logRecord struct {
	level slog.Level
	msg   string
	attrs []slog.Attr
}

// attr returns the record's attribute key, if it has one.
func (r logRecord) attr(key string) (slog.Value, bool) {
	for _, a := range r.attrs {
		if a.Key == key {
			return a.Value, true
		}
	}
	return slog.Value{}, false
}

// String is the line as a text handler would write it, every value
// included: what a test searches for leaks.
func (r logRecord) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.level, r.msg)
	for _, a := range r.attrs {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value.Any())
	}
	return b.String()
}

// captureHandler is a slog.Handler that keeps every record at every
// level. Handlers made by WithAttrs and WithGroup share its records.
type captureHandler struct {
	mu      *sync.Mutex
	records *[]logRecord
	attrs   []slog.Attr
	group   string
}

func newCaptureHandler() *captureHandler {
	return &captureHandler{mu: new(sync.Mutex), records: new([]logRecord)}
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{level: r.Level, msg: r.Message, attrs: slices.Clone(h.attrs)}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs = flatten(rec.attrs, h.group, a)
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.records = append(*h.records, rec)
	return nil
}

func (h *captureHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = slices.Clone(h.attrs)
	for _, a := range as {
		c.attrs = flatten(c.attrs, h.group, a)
	}
	return &c
}

func (h *captureHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.group = h.group + name + "."
	return &c
}

// flatten appends a, resolved, with groups spelled out as key prefixes.
func flatten(out []slog.Attr, prefix string, a slog.Attr) []slog.Attr {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		for _, g := range v.Group() {
			out = flatten(out, prefix+a.Key+".", g)
		}
		return out
	}
	return append(out, slog.Attr{Key: prefix + a.Key, Value: v})
}

// all returns the records captured so far.
func (h *captureHandler) all() []logRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(*h.records)
}

func TestLogsNeverHoldSecretsOrSignatures(t *testing.T) {
	logs := newCaptureHandler()
	run := runScript(t, slog.New(logs))
	secrets := run.secretParts(t)
	require.NotEmpty(t, secrets)
	recs := logs.all()
	require.NotEmpty(t, recs, "the scripted run logs at debug level at least")
	levels := map[slog.Level]bool{}
	for _, r := range recs {
		levels[r.level] = true
		line := r.String()
		for _, s := range secrets {
			assert.NotContains(t, line, s, "a log line holds a secret or signature")
		}
	}
	for _, l := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn} {
		assert.True(t, levels[l], "the run logs at level %v, so that the check covers it", l)
	}
}

func TestLogsNameDeliveriesTheSameWay(t *testing.T) {
	logs := newCaptureHandler()
	runScript(t, slog.New(logs))
	n := 0
	for _, r := range logs.all() {
		if _, ok := r.attr("delivery_id"); !ok {
			continue
		}
		n++
		for _, key := range []string{"webhook_id", "attempt", "event_type"} {
			_, ok := r.attr(key)
			assert.True(t, ok, "%q: a line about a delivery names its %s", r.msg, key)
		}
	}
	assert.Positive(t, n, "the run logs lines about deliveries")
	for _, r := range logs.all() {
		for _, a := range r.attrs {
			assert.NotContains(t, []string{"webhookID", "deliveryID", "webhook", "delivery", "err", "tenant"}, a.Key,
				"%q: attribute names follow webhook_id, delivery_id, tenant_id, error", r.msg)
			if a.Key == "error" {
				assert.Contains(t, []slog.Kind{slog.KindAny, slog.KindString}, a.Value.Kind())
			}
		}
	}
}

// durationKey reports whether an attribute key names a duration: one
// that must be logged as a slog.Duration.
func durationKey(key string) bool {
	for _, k := range []string{"duration", "retry_in", "skew", "lease", "backoff", "wait", "delay", "timeout", "interval", "age"} {
		if key == k {
			return true
		}
	}
	for _, suffix := range []string{"_in", "_duration", "_after", "_timeout", "_interval", "_delay", "_age"} {
		if strings.HasSuffix(key, suffix) {
			return true
		}
	}
	return false
}

// assertDurationsAreDurations checks that no record logs a duration other
// than as a slog.Duration: no attribute with a duration's name of another
// kind, and no string that reads as a Go duration ("1s").
func assertDurationsAreDurations(t *testing.T, recs []logRecord) {
	t.Helper()
	for _, r := range recs {
		for _, a := range r.attrs {
			v := a.Value
			if v.Kind() == slog.KindDuration {
				continue
			}
			assert.False(t, durationKey(a.Key), "%q: %s=%v is logged as a %v, not a duration", r.msg, a.Key, v, v.Kind())
			if v.Kind() == slog.KindString {
				_, err := time.ParseDuration(v.String())
				assert.True(t, err != nil || v.String() == "0", "%q: %s=%q is a duration logged as a string", r.msg, a.Key, v.String())
			}
		}
	}
}

func TestLogsWriteEveryDurationAsADuration(t *testing.T) {
	t.Run("scripted run", func(t *testing.T) {
		logs := newCaptureHandler()
		runScript(t, slog.New(logs))
		assertDurationsAreDurations(t, logs.all())
	})
	// The retries of failed background work: the write of recorded
	// metrics, the evaluation rounds, at shutdown too.
	t.Run("failed metric writes and evaluations", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			logs := newCaptureHandler()
			store := &flakyMetrics{Store: memstore.New(nil)}
			store.failing.Store(true)
			svc, err := webhook.NewService(store, &webhook.Config{Logger: slog.New(logs), Doer: okDoer{}})
			require.NoError(t, err)
			thresholdHook(t, svc, webhook.Condition{Metric: "m", Operator: webhook.ConditionGT, Value: 1})
			worker, err := webhook.NewWorker(svc, nil)
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- worker.Run(ctx) }()
			require.NoError(t, svc.RecordMetric(ctx, "m", 5, time.Time{}, ""))
			time.Sleep(webhook.DefaultEvaluationInterval + time.Second)
			synctest.Wait()
			cancel()
			require.NoError(t, <-done)

			recs := logs.all()
			retries := map[string]bool{}
			for _, r := range recs {
				if _, ok := r.attr("retry_in"); ok {
					retries[r.msg] = true
				}
			}
			assert.Len(t, retries, 2, "the background write and the evaluation log their retries: %v", retries)
			assertDurationsAreDurations(t, recs)
		})
	})
}
