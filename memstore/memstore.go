// Package memstore is an in-memory webhook.Storage: complete and safe for
// concurrent use, for tests, demos and single-process programs that can
// afford to lose their queue when they exit. Use storage/pgstore to keep
// deliveries across restarts and share them between processes.
package memstore

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/analytics-webhooks/webhook"
)

// Store is an in-memory webhook.Storage. The zero value is not usable;
// call New. A Store is safe for concurrent use.
type Store struct {
	maxActive  int
	mu         sync.Mutex
	webhooks   map[string]*webhook.Webhook
	payloads   map[string]*webhook.Payload
	deliveries map[string]*delivery
	byWebhook  map[string][]string                         // webhook ID → delivery IDs in insertion order
	active     map[string]*delivery                        // deliveries not yet final
	keys       map[string]idemKey                          // idempotency key → what it enqueued
	states     map[string]map[string]*webhook.TriggerState // webhook ID → key → state
	metrics    map[metricKey]*webhook.MetricBucket
}

type idemKey struct {
	deliveryIDs []string
	at          time.Time
}

// delivery is a stored delivery with its lease and attempts.
type delivery struct {
	d        webhook.Delivery
	lease    webhook.Lease
	attempts []webhook.Attempt
}

var (
	_ webhook.Storage           = (*Store)(nil)
	_ webhook.Pruner            = (*Store)(nil)
	_ webhook.BatchRecorder     = (*Store)(nil)
	_ webhook.HistoryReader     = (*Store)(nil)
	_ webhook.TriggerStateStore = (*Store)(nil)
	_ webhook.MetricStore       = (*Store)(nil)
)

// DefaultMaxActive is how many unfinished deliveries a Store holds at
// most unless Config.MaxActive says otherwise.
const DefaultMaxActive = 1_000_000

// Config configures a Store. The zero value is valid; as everywhere in
// the library, a zero field means its default and a negative one turns
// the limit off.
type Config struct {
	// MaxActive is how many unfinished (pending, delivering or retrying)
	// deliveries the Store holds: an Enqueue that would exceed it fails
	// with webhook.ErrQueueFull and stores nothing, so a flood of
	// triggers meets back-pressure instead of growing memory without
	// bound. Finished history is bounded by pruning
	// (webhook.Service.Prune). Negative means no limit. Defaults to
	// DefaultMaxActive.
	MaxActive int
}

// New returns an empty Store. A nil cfg means the defaults.
func New(cfg *Config) *Store {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	switch {
	case c.MaxActive == 0:
		c.MaxActive = DefaultMaxActive
	case c.MaxActive < 0:
		c.MaxActive = 0 // no limit
	}
	return &Store{
		maxActive:  c.MaxActive,
		webhooks:   make(map[string]*webhook.Webhook),
		payloads:   make(map[string]*webhook.Payload),
		deliveries: make(map[string]*delivery),
		byWebhook:  make(map[string][]string),
		active:     make(map[string]*delivery),
		keys:       make(map[string]idemKey),
		states:     make(map[string]map[string]*webhook.TriggerState),
		metrics:    make(map[metricKey]*webhook.MetricBucket),
	}
}

// CreateWebhook implements webhook.Storage.
func (s *Store) CreateWebhook(ctx context.Context, w *webhook.Webhook) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if w == nil || w.ID == "" {
		return fmt.Errorf("%w: webhook without ID", webhook.ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.webhooks[w.ID]; ok {
		return fmt.Errorf("webhook %s: %w", w.ID, webhook.ErrDuplicate)
	}
	s.webhooks[w.ID] = w.Clone()
	return nil
}

// GetWebhook implements webhook.Storage.
func (s *Store) GetWebhook(ctx context.Context, id string) (*webhook.Webhook, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.webhooks[id]
	if !ok {
		return nil, fmt.Errorf("webhook %s: %w", id, webhook.ErrNotFound)
	}
	return w.Clone(), nil
}

// UpdateWebhook implements webhook.Storage.
func (s *Store) UpdateWebhook(ctx context.Context, w *webhook.Webhook) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if w == nil {
		return fmt.Errorf("%w: nil webhook", webhook.ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.webhooks[w.ID]
	if !ok {
		return fmt.Errorf("webhook %s: %w", w.ID, webhook.ErrNotFound)
	}
	if old.Version != w.Version {
		return fmt.Errorf("webhook %s: version %d, stored %d: %w", w.ID, w.Version, old.Version, webhook.ErrConflict)
	}
	c := w.Clone()
	c.Version++
	s.webhooks[w.ID] = c
	return nil
}

// DeleteWebhook implements webhook.Storage.
func (s *Store) DeleteWebhook(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.webhooks[id]; !ok {
		return fmt.Errorf("webhook %s: %w", id, webhook.ErrNotFound)
	}
	delete(s.webhooks, id)
	delete(s.states, id)
	return nil
}

// ListWebhooks implements webhook.Storage.
func (s *Store) ListWebhooks(ctx context.Context, p webhook.ListWebhooksParams) ([]*webhook.Webhook, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	limit := webhook.PageLimit(p.Limit)
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.webhooks))
	for id, w := range s.webhooks {
		if id > p.After && (p.TenantID == "" || w.TenantID == p.TenantID) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	ids = ids[:min(limit, len(ids))]
	out := make([]*webhook.Webhook, len(ids))
	for i, id := range ids {
		out[i] = s.webhooks[id].Clone()
	}
	return out, nil
}

// Enqueue implements webhook.Storage.
func (s *Store) Enqueue(ctx context.Context, p webhook.EnqueueParams) (webhook.EnqueueResult, error) {
	if err := ctx.Err(); err != nil {
		return webhook.EnqueueResult{}, err
	}
	if err := p.Validate(); err != nil {
		return webhook.EnqueueResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.enqueueLocked(p)
}

// enqueueLocked enqueues p, which is valid, with s.mu held.
func (s *Store) enqueueLocked(p webhook.EnqueueParams) (webhook.EnqueueResult, error) {
	if p.IdempotencyKey != "" {
		if k, ok := s.keys[p.IdempotencyKey]; ok {
			return webhook.EnqueueResult{DeliveryIDs: slices.Clone(k.deliveryIDs), Duplicate: true}, nil
		}
	}
	if s.maxActive > 0 && len(s.active)+len(p.Deliveries) > s.maxActive {
		return webhook.EnqueueResult{}, fmt.Errorf("memstore: %d unfinished deliveries, the limit is %d: %w", len(s.active), s.maxActive, webhook.ErrQueueFull)
	}
	// Check everything before changing anything: all or nothing.
	newPayloads := make(map[string]bool, len(p.Payloads))
	for _, pl := range p.Payloads {
		if _, ok := s.payloads[pl.ID]; ok || newPayloads[pl.ID] {
			return webhook.EnqueueResult{}, fmt.Errorf("payload %s: %w", pl.ID, webhook.ErrDuplicate)
		}
		newPayloads[pl.ID] = true
	}
	newDeliveries := make(map[string]bool, len(p.Deliveries))
	ids := make([]string, 0, len(p.Deliveries))
	for _, d := range p.Deliveries {
		if _, ok := s.deliveries[d.ID]; ok || newDeliveries[d.ID] {
			return webhook.EnqueueResult{}, fmt.Errorf("delivery %s: %w", d.ID, webhook.ErrDuplicate)
		}
		newDeliveries[d.ID] = true
		if _, ok := s.payloads[d.PayloadID]; !ok && !newPayloads[d.PayloadID] {
			return webhook.EnqueueResult{}, fmt.Errorf("delivery %s: payload %s: %w", d.ID, d.PayloadID, webhook.ErrNotFound)
		}
		ids = append(ids, d.ID)
	}
	if err := s.checkRedeliveries(p); err != nil {
		return webhook.EnqueueResult{}, err
	}
	for _, pl := range p.Payloads {
		c := *pl
		c.Body = slices.Clone(pl.Body)
		s.payloads[c.ID] = &c
	}
	for _, d := range p.Deliveries {
		sd := &delivery{d: *d}
		sd.d.Attempts = nil
		if p.Lease != nil {
			sd.lease = *p.Lease
		}
		s.deliveries[d.ID] = sd
		s.active[d.ID] = sd
		s.byWebhook[d.WebhookID] = append(s.byWebhook[d.WebhookID], d.ID)
		if d.RedeliveryOf != "" {
			s.deliveries[d.RedeliveryOf].d.RedeliveredBy = d.ID
		}
	}
	if p.IdempotencyKey != "" {
		s.keys[p.IdempotencyKey] = idemKey{deliveryIDs: slices.Clone(ids), at: p.Now}
	}
	return webhook.EnqueueResult{DeliveryIDs: ids}, nil
}

// checkRedeliveries checks that the originals p's deliveries redeliver
// exist and, for a replay, are distinct and not redelivered yet.
func (s *Store) checkRedeliveries(p webhook.EnqueueParams) error {
	seen := make(map[string]bool)
	for _, d := range p.Deliveries {
		if d.RedeliveryOf == "" {
			continue
		}
		orig, ok := s.deliveries[d.RedeliveryOf]
		if !ok {
			return fmt.Errorf("delivery %s: redelivery of %s: %w", d.ID, d.RedeliveryOf, webhook.ErrNotFound)
		}
		if p.Replay && (orig.d.RedeliveredBy != "" || seen[d.RedeliveryOf]) {
			return fmt.Errorf("delivery %s: already redelivered: %w", d.RedeliveryOf, webhook.ErrConflict)
		}
		seen[d.RedeliveryOf] = true
	}
	return nil
}

// ClaimDeliveries implements webhook.Storage.
func (s *Store) ClaimDeliveries(ctx context.Context, p webhook.ClaimParams) ([]*webhook.Claim, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if p.Limit < 1 || p.LeaseDuration <= 0 {
		return nil, fmt.Errorf("%w: claim needs a positive limit and lease duration", webhook.ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	type due struct {
		at time.Time
		d  *delivery
	}
	var dues []due
	for _, d := range s.active {
		switch d.d.Status {
		case webhook.StatusPending, webhook.StatusRetrying:
			if !d.d.NextAttemptAt.After(p.Now) {
				dues = append(dues, due{d.d.NextAttemptAt, d})
			}
		case webhook.StatusDelivering:
			if !d.lease.ExpiresAt.After(p.Now) {
				dues = append(dues, due{d.lease.ExpiresAt, d})
			}
		}
	}
	slices.SortFunc(dues, func(a, b due) int {
		return cmp.Or(a.at.Compare(b.at), strings.Compare(a.d.d.ID, b.d.d.ID))
	})
	dues = pick(dues, p, func(x due) string { return x.d.d.WebhookID })
	claims := make([]*webhook.Claim, 0, len(dues))
	for _, x := range dues {
		d := x.d
		// A lease taken past the attempt budget sent nothing: no lost
		// attempt to record, and no attempt to count.
		pastBudget := d.d.Status == webhook.StatusDelivering && d.d.MaxAttempts > 0 && d.d.Attempt > d.d.MaxAttempts
		if d.d.Status == webhook.StatusDelivering && !pastBudget {
			d.attempts = append(d.attempts, webhook.Attempt{
				DeliveryID: d.d.ID,
				Number:     d.d.Attempt,
				StartedAt:  d.lease.ExpiresAt,
				Error:      fmt.Sprintf("lease of worker %q expired before the attempt was recorded", d.lease.WorkerID),
			})
		}
		token, err := newToken()
		if err != nil {
			return nil, err
		}
		d.d.Status = webhook.StatusDelivering
		if !pastBudget {
			d.d.Attempt++
		}
		d.lease = webhook.Lease{Token: token, WorkerID: p.WorkerID, ExpiresAt: p.Now.Add(p.LeaseDuration)}
		pl := *s.payloads[d.d.PayloadID]
		pl.Body = slices.Clone(pl.Body)
		dc := d.d
		var version int64 // 0: the webhook does not exist
		if w, ok := s.webhooks[d.d.WebhookID]; ok {
			version = w.Version
		}
		claims = append(claims, &webhook.Claim{Delivery: &dc, Payload: &pl, Lease: d.lease, WebhookVersion: version})
	}
	return claims, nil
}

// pick returns the first p.Limit items that p.ExcludeWebhooks and
// p.MaxPerWebhook allow.
func pick[T any](items []T, p webhook.ClaimParams, webhookOf func(T) string) []T {
	out := items[:0]
	per := map[string]int{}
	for _, it := range items {
		if len(out) == p.Limit {
			break
		}
		id := webhookOf(it)
		if slices.Contains(p.ExcludeWebhooks, id) || (p.MaxPerWebhook > 0 && per[id] >= p.MaxPerWebhook) {
			continue
		}
		per[id]++
		out = append(out, it)
	}
	return out
}

func newToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("memstore: lease token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// RecordAttempt implements webhook.Storage.
func (s *Store) RecordAttempt(ctx context.Context, p webhook.RecordAttemptParams) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := p.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.deliveries[p.DeliveryID]
	if !ok {
		return fmt.Errorf("delivery %s: %w", p.DeliveryID, webhook.ErrNotFound)
	}
	if d.d.Status != webhook.StatusDelivering || p.Token == "" || d.lease.Token != p.Token {
		return fmt.Errorf("delivery %s: %w", p.DeliveryID, webhook.ErrLeaseLost)
	}
	if p.Released {
		d.lease = webhook.Lease{}
		d.d.Attempt--
		d.d.Status = webhook.StatusRetrying
		if d.d.Attempt <= 0 {
			d.d.Attempt, d.d.Status = 0, webhook.StatusPending
		}
		d.d.NextAttemptAt = p.NextAttemptAt
		return nil
	}
	a := p.Attempt
	a.DeliveryID = d.d.ID
	a.Number = d.d.Attempt
	d.attempts = append(d.attempts, a)
	d.lease = webhook.Lease{}
	d.d.Status = p.Status
	d.d.StatusCode = a.StatusCode
	d.d.ResponseBody = a.ResponseBody
	d.d.Duration = a.Duration
	d.d.Error = a.Error
	if p.Status.Final() {
		d.d.CompletedAt = p.Now
		d.d.NextAttemptAt = time.Time{}
		delete(s.active, d.d.ID)
	} else {
		d.d.NextAttemptAt = p.NextAttemptAt
	}
	return nil
}

// RecordAttempts implements webhook.BatchRecorder.
func (s *Store) RecordAttempts(ctx context.Context, ps []webhook.RecordAttemptParams) ([]error, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = s.RecordAttempt(ctx, p)
	}
	return errs, nil
}

// GetDelivery implements webhook.Storage.
func (s *Store) GetDelivery(ctx context.Context, id string) (*webhook.Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.deliveries[id]
	if !ok {
		return nil, fmt.Errorf("delivery %s: %w", id, webhook.ErrNotFound)
	}
	c := d.d
	return &c, nil
}

// ListDeliveries implements webhook.Storage.
func (s *Store) ListDeliveries(ctx context.Context, p webhook.ListDeliveriesParams) ([]*webhook.Delivery, error) {
	return s.listDeliveries(ctx, p, false)
}

// ListDeliveriesWithAttempts implements webhook.HistoryReader.
func (s *Store) ListDeliveriesWithAttempts(ctx context.Context, p webhook.ListDeliveriesParams) ([]*webhook.Delivery, error) {
	return s.listDeliveries(ctx, p, true)
}

// listDeliveries returns a page of deliveries, with copies of their
// attempts if attempts is set.
func (s *Store) listDeliveries(ctx context.Context, p webhook.ListDeliveriesParams, attempts bool) ([]*webhook.Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	limit := webhook.PageLimit(p.Limit)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*webhook.Delivery
	ids := slices.Clone(s.byWebhook[p.WebhookID])
	slices.Sort(ids)
	for _, id := range slices.Backward(ids) {
		if len(out) == limit {
			break
		}
		if p.Before != "" && id >= p.Before {
			continue
		}
		d := s.deliveries[id]
		if !p.Selects(&d.d) {
			continue
		}
		c := d.d
		if attempts {
			c.Attempts = slices.Clone(d.attempts)
		}
		out = append(out, &c)
	}
	return out, nil
}

// ListAttempts implements webhook.Storage.
func (s *Store) ListAttempts(ctx context.Context, deliveryID string) ([]webhook.Attempt, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.deliveries[deliveryID]
	if !ok {
		return nil, fmt.Errorf("delivery %s: %w", deliveryID, webhook.ErrNotFound)
	}
	return slices.Clone(d.attempts), nil
}

// GetPayload implements webhook.Storage.
func (s *Store) GetPayload(ctx context.Context, id string) (*webhook.Payload, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pl, ok := s.payloads[id]
	if !ok {
		return nil, fmt.Errorf("payload %s: %w", id, webhook.ErrNotFound)
	}
	c := *pl
	c.Body = slices.Clone(pl.Body)
	return &c, nil
}

// Prune implements webhook.Pruner.
func (s *Store) Prune(ctx context.Context, p webhook.PruneParams) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, d := range s.deliveries {
		if d.d.Status.Final() && d.d.CompletedAt.Before(p.Before) {
			delete(s.deliveries, id)
			n++
		}
	}
	used := make(map[string]bool, len(s.deliveries))
	for _, d := range s.deliveries {
		used[d.d.PayloadID] = true
	}
	for id := range s.payloads {
		if !used[id] {
			delete(s.payloads, id)
		}
	}
	for wid, ids := range s.byWebhook {
		ids = slices.DeleteFunc(ids, func(id string) bool { _, ok := s.deliveries[id]; return !ok })
		if len(ids) == 0 {
			delete(s.byWebhook, wid)
		} else {
			s.byWebhook[wid] = ids
		}
	}
	for k, v := range s.keys {
		if v.at.Before(p.Before) {
			delete(s.keys, k)
		}
	}
	return n, nil
}
