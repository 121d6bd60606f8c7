package webhook

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// QueueStats returns the state of the whole delivery queue, every
// tenant's and deleted webhooks' deliveries included: how many
// deliveries are pending, delivering and retrying, how many are due now,
// the earliest due time, and the topWebhooks webhooks with the largest
// backlogs (none for 0; at most MaxTopWebhooks). It reads the Storage's
// QueueStatsReader, which answers from indexes of the unfinished
// deliveries only, so it is cheap enough to poll. It returns an error
// wrapping errors.ErrUnsupported if the Storage does not implement
// QueueStatsReader, ErrInvalid for a negative topWebhooks, and the
// Storage's error otherwise.
func (s *Service) QueueStats(ctx context.Context, topWebhooks int) (QueueStats, error) {
	r, ok := s.store.(QueueStatsReader)
	if !ok {
		return QueueStats{}, fmt.Errorf("webhook: queue stats: %T does not implement QueueStatsReader: %w", s.store, errors.ErrUnsupported)
	}
	p, err := QueueStatsParams{TopWebhooks: topWebhooks, Now: s.clock()}.Validate()
	if err != nil {
		return QueueStats{}, err
	}
	q, err := r.QueueStats(ctx, p)
	if err != nil {
		return QueueStats{}, fmt.Errorf("webhook: queue stats: %w", err)
	}
	return q, nil
}

// DefaultStatsWindow is the window Stats summarises when since is zero.
const DefaultStatsWindow = 24 * time.Hour

// StatsFallbackLimit is the most deliveries Stats reads, newest first,
// from a Storage that does not implement StatsReader; a window with more
// is summarised from these and marked Partial.
const StatsFallbackLimit = 1000

// Stats summarises one webhook's deliveries created at or after since
// (DefaultStatsWindow ago for a zero since) and all their attempts:
// counts by status and outcome, success rates, attempt latency
// percentiles, the last success and failure, and the endpoint's health
// (consecutive failures, disabled and why). A Storage that implements
// StatsReader answers with queries over the webhook's own rows in the
// window (pgstore: an index on webhook and creation time); otherwise the
// newest StatsFallbackLimit deliveries are read and a window with more is
// marked Partial.
//
// It returns an error wrapping ErrNotFound for an unknown or deleted
// webhook, and the Storage's error otherwise.
func (s *Service) Stats(ctx context.Context, webhookID string, since time.Time) (*WebhookStats, error) {
	return s.stats(ctx, allTenants, webhookID, since)
}

// Stats summarises the tenant's webhook as Service.Stats does. Another
// tenant's webhook is not found.
func (t *TenantService) Stats(ctx context.Context, webhookID string, since time.Time) (*WebhookStats, error) {
	if t.err != nil {
		return nil, t.err
	}
	return t.svc.stats(ctx, t.sc, webhookID, since)
}

func (s *Service) stats(ctx context.Context, sc scope, webhookID string, since time.Time) (*WebhookStats, error) {
	w, err := s.get(ctx, sc, webhookID, "stats")
	if err != nil {
		return nil, err
	}
	if since.IsZero() {
		since = s.clock().Add(-DefaultStatsWindow)
	}
	p := StatsParams{WebhookID: w.ID, Since: since.UTC()}
	var st *WebhookStats
	if r, ok := s.store.(StatsReader); ok {
		st, err = r.WebhookStats(ctx, p)
	} else {
		st, err = s.statsByListing(ctx, p)
	}
	if err == nil && st == nil {
		err = fmt.Errorf("the storage %T returned no stats and no error", s.store)
	}
	if err != nil {
		return nil, fmt.Errorf("webhook %s: stats: %w", w.ID, err)
	}
	st.WebhookID, st.Since = w.ID, p.Since
	st.ConsecutiveFailures, st.FailingSince = w.ConsecutiveFailures, w.FailingSince
	st.Disabled, st.DisabledReason = w.Disabled, w.DisabledReason
	return st, nil
}

// statsByListing computes stats from the newest StatsFallbackLimit
// deliveries in the window. Delivery IDs are time-ordered, so listing
// stops at the first delivery created before the window.
func (s *Service) statsByListing(ctx context.Context, p StatsParams) (*WebhookStats, error) {
	b := NewStatsBuilder(p.WebhookID, p.Since)
	n, before := 0, ""
	for {
		ds, err := s.store.ListDeliveries(ctx, ListDeliveriesParams{WebhookID: p.WebhookID, Before: before, Limit: MaxPageSize})
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			if d == nil {
				continue // a faulty Storage's
			}
			if d.CreatedAt.Before(p.Since) {
				return b.Stats(), nil
			}
			if n == StatsFallbackLimit {
				st := b.Stats()
				st.Partial = true
				return st, nil
			}
			atts, err := s.store.ListAttempts(ctx, d.ID)
			if errors.Is(err, ErrNotFound) {
				continue // pruned since it was listed
			}
			if err != nil {
				return nil, err
			}
			b.Add(d, atts)
			n++
		}
		if len(ds) < MaxPageSize {
			return b.Stats(), nil
		}
		before = ds[len(ds)-1].ID
	}
}

// AttemptOutcome classifies a recorded attempt, as ClassifyAttempt does.
type AttemptOutcome string

// The attempt outcomes.
const (
	// AttemptSuccess: a 2xx response.
	AttemptSuccess AttemptOutcome = "success"
	// AttemptHTTPError: any other response (410 Gone included).
	AttemptHTTPError AttemptOutcome = "http_error"
	// AttemptNetworkError: no response, for another reason than those
	// below (connection refused or reset, DNS, TLS).
	AttemptNetworkError AttemptOutcome = "network_error"
	// AttemptTimeout: no response within the request's timeout.
	AttemptTimeout AttemptOutcome = "timeout"
	// AttemptBlocked: the NetworkPolicy refused the address.
	AttemptBlocked AttemptOutcome = "blocked"
	// AttemptAborted: the receiver answered "webhook-delivery:
	// abort-message", or no request was made or finished (the webhook
	// was deleted or disabled, the attempts were used up, a test send
	// was canceled, a worker's lease expired mid-attempt).
	AttemptAborted AttemptOutcome = "aborted"
)

// AttemptOutcomes returns every AttemptOutcome, in the order of their
// declaration, in a new slice.
func AttemptOutcomes() []AttemptOutcome {
	return []AttemptOutcome{AttemptSuccess, AttemptHTTPError, AttemptNetworkError, AttemptTimeout, AttemptBlocked, AttemptAborted}
}

// ClassifyAttempt returns the outcome of a recorded attempt, from its
// StatusCode and Error as the worker records them. Storages that
// classify attempts in their own query language (pgstore) follow the
// same rules; storagetest checks that they agree.
func ClassifyAttempt(a Attempt) AttemptOutcome {
	return classify(a.StatusCode, a.Error)
}

// The phrases of recorded errors that ClassifyAttempt looks for. They
// come from send.go, network.go, worker.go, deliveries.go and the
// Storages' lease expiry record.
const (
	phraseAbort    = "abort-message"
	phraseTimeout  = "request timed out"
	phraseBlocked  = "which webhooks may not reach"
	phraseNotSent  = "not sent"
	phraseCanceled = "canceled"
	phraseLease    = "lease of worker "
)

func classify(code int, msg string) AttemptOutcome {
	switch {
	case code >= 200 && code <= 299:
		return AttemptSuccess
	case code != 0 && strings.Contains(msg, phraseAbort):
		return AttemptAborted
	case code != 0:
		return AttemptHTTPError
	case strings.HasPrefix(msg, phraseTimeout):
		return AttemptTimeout
	case strings.Contains(msg, phraseBlocked):
		return AttemptBlocked
	case strings.HasPrefix(msg, phraseNotSent), strings.HasPrefix(msg, phraseCanceled), strings.HasPrefix(msg, phraseLease):
		return AttemptAborted
	}
	return AttemptNetworkError
}

// timed reports whether an attempt of outcome o with status code code
// reached the endpoint, and so counts towards latency: every attempt that
// got a response, timed out or failed on the network.
func timed(o AttemptOutcome, code int) bool {
	return code != 0 || o == AttemptTimeout || o == AttemptNetworkError
}

// WebhookStats summarises one webhook's recent deliveries and attempts;
// see Service.Stats. Its JSON form has snake_case names, with durations
// as milliseconds (latency_p50_ms, latency_p95_ms).
type WebhookStats struct {
	WebhookID string `json:"webhook_id"`
	// Since is the window's start: deliveries created at or after it
	// count, with all their attempts.
	Since time.Time `json:"since"`
	// Deliveries counts the window's deliveries by current status; all
	// five statuses are present.
	Deliveries map[DeliveryStatus]int64 `json:"deliveries"`
	// DeliveryOutcomes counts the window's finished deliveries (delivered
	// or failed) by the outcome of their last attempt; all outcomes are
	// present.
	DeliveryOutcomes map[AttemptOutcome]int64 `json:"delivery_outcomes"`
	// Attempts counts the window's attempts by outcome; all outcomes are
	// present.
	Attempts map[AttemptOutcome]int64 `json:"attempts"`
	// SuccessRate is the share of the finished deliveries that were
	// delivered, from 0 to 1; 0 when none finished.
	SuccessRate float64 `json:"success_rate"`
	// AttemptSuccessRate is the share of attempts that succeeded; 0
	// when there were none.
	AttemptSuccessRate float64 `json:"attempt_success_rate"`
	// LatencySamples counts the attempts that reached the endpoint
	// (answered, timed out or failed on the network); LatencyP50 and
	// LatencyP95 are the median and 95th percentile of their durations,
	// interpolated between the nearest samples (as PostgreSQL's
	// percentile_cont); 0 without samples.
	LatencySamples int64         `json:"latency_samples"`
	LatencyP50     time.Duration `json:"-"`
	LatencyP95     time.Duration `json:"-"`
	// LastSuccess and LastFailure are the latest attempts (by StartedAt)
	// that succeeded and that did not, without their ResponseBody; nil
	// when the window has none. LastFailureOutcome is LastFailure's
	// outcome.
	LastSuccess        *Attempt       `json:"last_success,omitempty"`
	LastFailure        *Attempt       `json:"last_failure,omitempty"`
	LastFailureOutcome AttemptOutcome `json:"last_failure_outcome,omitempty"`
	// ConsecutiveFailures, FailingSince, Disabled and DisabledReason are
	// the webhook's, now (see Webhook).
	ConsecutiveFailures int       `json:"consecutive_failures"`
	FailingSince        time.Time `json:"failing_since,omitzero"`
	Disabled            bool      `json:"disabled"`
	DisabledReason      string    `json:"disabled_reason,omitempty"`
	// Partial reports that the summary covers only the newest
	// StatsFallbackLimit deliveries of the window (see Service.Stats).
	Partial bool `json:"partial,omitempty"`
}

// MarshalJSON adds latency_p50_ms and latency_p95_ms, in milliseconds
// with microsecond precision.
func (st WebhookStats) MarshalJSON() ([]byte, error) {
	type plain WebhookStats
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return json.Marshal(struct {
		plain
		P50 float64 `json:"latency_p50_ms"`
		P95 float64 `json:"latency_p95_ms"`
	}{plain(st), ms(st.LatencyP50), ms(st.LatencyP95)})
}

// NewWebhookStats returns empty stats with every status and outcome
// present at 0, for backends to fill in.
func NewWebhookStats(webhookID string, since time.Time) *WebhookStats {
	st := &WebhookStats{
		WebhookID:        webhookID,
		Since:            since,
		Deliveries:       make(map[DeliveryStatus]int64, 5),
		DeliveryOutcomes: make(map[AttemptOutcome]int64, 6),
		Attempts:         make(map[AttemptOutcome]int64, 6),
	}
	for _, s := range []DeliveryStatus{StatusPending, StatusDelivering, StatusRetrying, StatusDelivered, StatusFailed} {
		st.Deliveries[s] = 0
	}
	for _, o := range AttemptOutcomes() {
		st.DeliveryOutcomes[o], st.Attempts[o] = 0, 0
	}
	return st
}

// SetRates sets SuccessRate and AttemptSuccessRate from the counts.
func (st *WebhookStats) SetRates() {
	if n := st.Deliveries[StatusDelivered] + st.Deliveries[StatusFailed]; n > 0 {
		st.SuccessRate = float64(st.Deliveries[StatusDelivered]) / float64(n)
	}
	var n int64
	for _, v := range st.Attempts {
		n += v
	}
	if n > 0 {
		st.AttemptSuccessRate = float64(st.Attempts[AttemptSuccess]) / float64(n)
	}
}

// StatsBuilder computes WebhookStats from deliveries and their attempts,
// for Storages that keep them in memory and for Service.Stats' fallback.
// The zero value is not usable; call NewStatsBuilder. It is not safe for
// concurrent use.
type StatsBuilder struct {
	st        *WebhookStats
	durations []int64
}

// NewStatsBuilder returns a builder of the stats of webhookID since since.
func NewStatsBuilder(webhookID string, since time.Time) *StatsBuilder {
	return &StatsBuilder{st: NewWebhookStats(webhookID, since)}
}

// Add counts one delivery of the window with its attempts (oldest
// first); a nil d is ignored. The caller decides what is in the window.
func (b *StatsBuilder) Add(d *Delivery, attempts []Attempt) {
	if d == nil {
		return
	}
	st := b.st
	st.Deliveries[d.Status]++
	if d.Status.Final() {
		st.DeliveryOutcomes[classify(d.StatusCode, d.Error)]++
	}
	for _, a := range attempts {
		o := ClassifyAttempt(a)
		st.Attempts[o]++
		if timed(o, a.StatusCode) {
			b.durations = append(b.durations, int64(a.Duration))
		}
		a.ResponseBody = ""
		if o == AttemptSuccess {
			if laterAttempt(&a, st.LastSuccess) {
				st.LastSuccess = &a
			}
		} else if laterAttempt(&a, st.LastFailure) {
			st.LastFailure, st.LastFailureOutcome = &a, o
		}
	}
}

// laterAttempt reports whether a is later than b (nil: none): by
// StartedAt, then delivery ID, then number, so that every Storage picks
// the same.
func laterAttempt(a, b *Attempt) bool {
	if b == nil {
		return true
	}
	return cmp.Or(a.StartedAt.Compare(b.StartedAt), strings.Compare(a.DeliveryID, b.DeliveryID), cmp.Compare(a.Number, b.Number)) > 0
}

// Stats returns the stats of what was added so far, the caller's own.
func (b *StatsBuilder) Stats() *WebhookStats {
	st := *b.st
	st.Deliveries, st.DeliveryOutcomes, st.Attempts = maps.Clone(st.Deliveries), maps.Clone(st.DeliveryOutcomes), maps.Clone(st.Attempts)
	slices.Sort(b.durations)
	st.LatencySamples = int64(len(b.durations))
	st.LatencyP50 = percentileCont(b.durations, 0.5)
	st.LatencyP95 = percentileCont(b.durations, 0.95)
	st.SetRates()
	return &st
}

// percentileCont returns the p-th quantile (0 ≤ p ≤ 1) of the sorted
// durations in nanoseconds, interpolated linearly between the nearest
// values, exactly as PostgreSQL's percentile_cont computes it, rounded to
// the nanosecond; 0 for none.
func percentileCont(sorted []int64, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	pos := p * float64(len(sorted)-1)
	lo, hi := math.Floor(pos), math.Ceil(pos)
	first := float64(sorted[int(lo)])
	if lo == hi {
		return time.Duration(math.Round(first))
	}
	second := float64(sorted[int(hi)])
	return time.Duration(math.Round(first + (second-first)*(pos-lo)))
}
