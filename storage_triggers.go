package webhook

import (
	"context"
	"fmt"
	"math"
	"time"
)

// TriggerStateStore is an optional interface for a Storage that keeps the
// state of stateful triggers: the alert state of threshold conditions and
// anomaly triggers, anomaly detectors, and the last period a scheduled
// trigger sent. Threshold, anomaly and scheduled triggers need it: a
// Service refuses to save them over a Storage without it. memstore and
// pgstore implement it.
//
// State changes are compare-and-set on TriggerState.Version, and the
// delivery a transition sends is enqueued in the same atomic step, so that
// several Services racing the same transition produce one delivery.
// DeleteWebhook deletes the webhook's trigger states too.
type TriggerStateStore interface {
	// TriggerStates returns the stored states of the given webhooks, in
	// ascending Key order; none for webhooks without state.
	TriggerStates(ctx context.Context, webhookIDs []string) ([]*TriggerState, error)
	// SaveTriggerState stores p.State with Version p.State.Version+1 if
	// the stored state with its Key has Version p.State.Version (0: no
	// state is stored under that Key yet), and, when p.Enqueue is not
	// nil, enqueues it as Enqueue does, all in one atomic step. It
	// returns ErrConflict, storing and enqueuing nothing, when the stored
	// version differs (another writer got there first: read again and
	// decide again). When p.Enqueue's idempotency key was used before,
	// the state is still saved and the result has Duplicate set. Any
	// error of the enqueue stores nothing.
	SaveTriggerState(ctx context.Context, p SaveTriggerStateParams) (EnqueueResult, error)
}

// SaveTriggerStateParams is one compare-and-set of a trigger state.
type SaveTriggerStateParams struct {
	// State is the new state. Its Version is the version it was read at
	// (0 for a state not stored before); the stored copy gets Version+1.
	State *TriggerState
	// Enqueue, when not nil, is enqueued in the same atomic step.
	Enqueue *EnqueueParams
	// Now is the time of the change; it becomes State.UpdatedAt.
	Now time.Time
}

// Validate checks what every Storage relies on: a state with a Key and a
// WebhookID, a non-negative Version, and a valid Enqueue. It returns an
// error wrapping ErrInvalid.
func (p SaveTriggerStateParams) Validate() error {
	switch {
	case p.State == nil:
		return fmt.Errorf("%w: no trigger state", ErrInvalid)
	case p.State.Key == "" || p.State.WebhookID == "":
		return fmt.Errorf("%w: trigger state without Key or WebhookID", ErrInvalid)
	case p.State.Version < 0:
		return fmt.Errorf("%w: trigger state %s: negative version", ErrInvalid, p.State.Key)
	}
	if p.Enqueue != nil {
		return p.Enqueue.Validate()
	}
	return nil
}

// TriggerState is the stored state of one stateful trigger series: one
// threshold condition or anomaly trigger in one environment, or one
// scheduled trigger.
type TriggerState struct {
	// Key identifies the series; the Service builds it from the
	// webhook, the trigger, the condition and the environment.
	Key string `json:"key"`
	// TenantID and WebhookID are the webhook's.
	TenantID  string `json:"tenant_id,omitempty"`
	WebhookID string `json:"webhook_id"`
	// Environment is the series' environment.
	Environment string `json:"environment,omitempty"`
	// Alert is the alert state of a threshold condition or anomaly
	// trigger; zero for a scheduled trigger.
	Alert AlertState `json:"alert"`
	// Detector is an anomaly trigger's detector; nil otherwise.
	Detector *DetectorState `json:"detector,omitempty"`
	// Schedule is a scheduled trigger's state; nil otherwise.
	Schedule *ScheduleState `json:"schedule,omitempty"`
	// Version counts the stored versions, from 1.
	Version int64 `json:"version"`
	// UpdatedAt is when it was last saved.
	UpdatedAt time.Time `json:"updated_at"`
}

// Clone returns a deep copy of st.
func (st *TriggerState) Clone() *TriggerState {
	if st == nil {
		return nil
	}
	c := *st
	if st.Detector != nil {
		d := *st.Detector
		c.Detector = &d
	}
	if st.Schedule != nil {
		s := *st.Schedule
		c.Schedule = &s
	}
	return &c
}

// AlertStatus is where an alert stands.
type AlertStatus string

// The alert statuses. The zero value means AlertOK.
const (
	// AlertOK: the condition does not hold (or has recovered).
	AlertOK AlertStatus = "ok"
	// AlertPending: the condition holds, but not yet for the condition's
	// for_seconds.
	AlertPending AlertStatus = "pending"
	// AlertFiring: the alert fired and has not resolved.
	AlertFiring AlertStatus = "firing"
)

// AlertState is the state of one alert series.
type AlertState struct {
	// Status is ok (or empty), pending or firing.
	Status AlertStatus `json:"status,omitempty"`
	// EpisodeID identifies the current or last episode: one run from
	// pending or firing back to ok.
	EpisodeID string `json:"episode_id,omitempty"`
	// StartedAt is when the episode's breach was first seen (pending or
	// firing); FiredAt when it fired; ResolvedAt when it last resolved.
	StartedAt  time.Time `json:"started_at,omitzero"`
	FiredAt    time.Time `json:"fired_at,omitzero"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	// LastValue is the value seen at the last transition.
	LastValue float64 `json:"last_value"`
	// LastNotifiedAt is when the episode last notified (fired or
	// renotified); NotificationCount how many times it did.
	LastNotifiedAt    time.Time `json:"last_notified_at,omitzero"`
	NotificationCount int       `json:"notification_count,omitempty"`
}

// DetectorState is the O(1) state of an anomaly detector (probabilistic
// EWMA) over closed buckets of a metric.
type DetectorState struct {
	// Buckets counts the buckets the detector has seen.
	Buckets int64 `json:"buckets"`
	// S1 and S2 are the detector's running weighted mean of the series
	// (the value it expects) and its running weighted variance around
	// that mean (see pewma.go).
	S1 float64 `json:"s1"`
	S2 float64 `json:"s2"`
	// LastBucket is the start of the last bucket seen (judged, or
	// skipped because it was empty).
	LastBucket time.Time `json:"last_bucket,omitzero"`
	// Side is the side of the current or last incident: above or below
	// the value the detector expected.
	Side AnomalyDirection `json:"side,omitempty"`
}

// ScheduleState is the state of a scheduled trigger.
type ScheduleState struct {
	// LastPeriodEnd is the end of the last period whose summary was
	// enqueued.
	LastPeriodEnd time.Time `json:"last_period_end,omitzero"`
}

// MetricResolution is the width of the time buckets that recorded metric
// samples are aggregated into in Storage. Condition windows and anomaly
// buckets are measured in whole buckets of this width.
const MetricResolution = 10 * time.Second

// MetricStore is an optional interface for a Storage that keeps recorded
// metric samples, pre-aggregated into buckets of MetricResolution, so that
// windows are right whichever process recorded the samples.
// Service.RecordMetric needs it, and so do windowed conditions and
// anomaly triggers. memstore and pgstore implement it.
type MetricStore interface {
	// AddMetricBuckets merges each bucket into the stored bucket with the
	// same TenantID, Metric, Environment and Start (creating it when
	// missing): counts and sums add, Min and Max take the least and the
	// greatest, and Last is the value with the latest LastAt (on a tie,
	// the given one). All buckets are merged in one atomic step, or none
	// when it returns an error. Starts must be multiples of
	// MetricResolution.
	AddMetricBuckets(ctx context.Context, buckets []MetricBucket) error
	// QueryMetric aggregates the stored buckets of q.TenantID and
	// q.Metric whose Start is in [q.From, q.To), for each environment in
	// q.Environments (all environments when nil), into one bucket per
	// environment and step: with a positive q.Step, steps start at q.From
	// + k·q.Step; with Step 0, one step spans the whole range. It returns
	// only steps that hold samples, ordered by Environment, then Start;
	// each result's Start is its step's start.
	QueryMetric(ctx context.Context, q MetricQuery) ([]MetricBucket, error)
	// PruneMetrics deletes buckets whose Start is before before, and
	// returns how many it deleted.
	PruneMetrics(ctx context.Context, before time.Time) (int, error)
}

// MetricBucket aggregates the samples of one metric series recorded in
// one time bucket.
type MetricBucket struct {
	TenantID    string
	Metric      string
	Environment string
	// Start is the bucket's start.
	Start time.Time
	// Count, Sum, Min and Max aggregate the samples.
	Count int64
	Sum   float64
	Min   float64
	Max   float64
	// Last is the value of the latest sample, taken at LastAt.
	Last   float64
	LastAt time.Time
}

// merge adds o's samples to b.
func (b *MetricBucket) merge(o MetricBucket) {
	if b.Count == 0 {
		*b = o
		return
	}
	b.Count += o.Count
	b.Sum += o.Sum
	b.Min = math.Min(b.Min, o.Min)
	b.Max = math.Max(b.Max, o.Max)
	if !o.LastAt.Before(b.LastAt) {
		b.Last, b.LastAt = o.Last, o.LastAt
	}
}

// MergeMetricBucket returns the aggregate of a and b's samples, by the rule
// of MetricStore.AddMetricBuckets, for backends that merge in memory.
// Only the aggregates are merged; a's series and Start are kept.
func MergeMetricBucket(a, b MetricBucket) MetricBucket {
	key := a
	a.merge(b)
	a.TenantID, a.Metric, a.Environment, a.Start = key.TenantID, key.Metric, key.Environment, key.Start
	return a
}

// MetricQuery selects and aggregates stored metric buckets; see
// MetricStore.QueryMetric.
type MetricQuery struct {
	TenantID string
	Metric   string
	// Environments restricts the query; nil means every environment.
	Environments []string
	// From and To bound the buckets' starts: From ≤ Start < To.
	From, To time.Time
	// Step splits the range; 0 aggregates it whole.
	Step time.Duration
}

// Validate checks a query: a metric, From before To, a Step that is
// zero or a positive multiple of MetricResolution. It returns an error
// wrapping ErrInvalid.
func (q MetricQuery) Validate() error {
	switch {
	case q.Metric == "":
		return fmt.Errorf("%w: metric query without a metric", ErrInvalid)
	case !q.From.Before(q.To):
		return fmt.Errorf("%w: metric query: From must be before To", ErrInvalid)
	case q.Step < 0 || q.Step%MetricResolution != 0:
		return fmt.Errorf("%w: metric query: Step must be 0 or a multiple of %v", ErrInvalid, MetricResolution)
	}
	return nil
}

// Validate checks a bucket to add: a metric, a Start on the resolution,
// a positive Count and finite aggregates. It returns an error wrapping
// ErrInvalid.
func (b MetricBucket) Validate() error {
	switch {
	case b.Metric == "":
		return fmt.Errorf("%w: metric bucket without a metric", ErrInvalid)
	case !b.Start.Equal(b.Start.Truncate(MetricResolution)):
		return fmt.Errorf("%w: metric bucket start %v is not a multiple of %v", ErrInvalid, b.Start, MetricResolution)
	case b.Count <= 0:
		return fmt.Errorf("%w: metric bucket without samples", ErrInvalid)
	}
	for _, v := range []float64{b.Sum, b.Min, b.Max, b.Last} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: metric bucket with a non-finite aggregate", ErrInvalid)
		}
	}
	return nil
}
