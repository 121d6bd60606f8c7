// Package memstore is an in-memory webhook.Storage: complete and safe for
// concurrent use, for tests, demos and single-process programs that can
// afford to lose their queue when they exit. Use storage/pgstore to keep
// deliveries across restarts and share them between processes.
package memstore

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/analytics-webhooks/webhook"
)

// Store is an in-memory webhook.Storage. The zero value is not usable;
// call New. A Store is safe for concurrent use.
type Store struct {
	maxActive      int
	maxActiveBytes int64
	mu             sync.Mutex
	webhooks       map[string]*webhook.Webhook
	ids            []string // the webhooks' IDs, in order unless idsDirty, for ListWebhooks' pages
	idsDirty       bool     // ids may be out of order or name deleted webhooks
	payloads       map[string]*payload
	deliveries     map[string]*delivery
	byWebhook      map[string][]*delivery                      // webhook ID → its deliveries in insertion order
	queues         map[string]*queue                           // webhook ID → its unfinished deliveries (queue.go)
	top            topHeap                                     // the non-empty queues by their first due delivery
	unfinished     int                                         // deliveries in the queues
	activeBytes    int64                                       // what the unfinished deliveries are charged (delivery.charge)
	keys           map[string]idemKey                          // idempotency key → what it enqueued
	states         map[string]map[string]*webhook.TriggerState // webhook ID → key → state
	metrics        map[metricKey]*webhook.MetricBucket
}

type idemKey struct {
	deliveryIDs []string
	at          time.Time
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

// DefaultMaxActiveBytes is how many bytes of unfinished deliveries a
// Store holds at most unless Config.MaxActiveBytes says otherwise.
const DefaultMaxActiveBytes = 1 << 30

// DeliveryOverheadBytes is what a Store charges each unfinished delivery
// beyond its request body towards Config.MaxActiveBytes: about what it
// holds in memory for it (BenchmarkQueuedMemory measures it).
const DeliveryOverheadBytes = 400

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
	// MaxActiveBytes bounds the memory of the unfinished deliveries as
	// MaxActive bounds their number: each is charged the length of its
	// request body plus DeliveryOverheadBytes, and an Enqueue that would
	// take the total past MaxActiveBytes fails with webhook.ErrQueueFull
	// and stores nothing. The bodies of one trigger call's deliveries
	// share their data in memory, so the Store holds less than it is
	// charged. Negative means no limit. Defaults to DefaultMaxActiveBytes.
	MaxActiveBytes int64
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
	switch {
	case c.MaxActiveBytes == 0:
		c.MaxActiveBytes = DefaultMaxActiveBytes
	case c.MaxActiveBytes < 0:
		c.MaxActiveBytes = 0 // no limit
	}
	return &Store{
		maxActive:      c.MaxActive,
		maxActiveBytes: c.MaxActiveBytes,
		webhooks:       make(map[string]*webhook.Webhook),
		payloads:       make(map[string]*payload),
		deliveries:     make(map[string]*delivery),
		byWebhook:      make(map[string][]*delivery),
		queues:         make(map[string]*queue),
		keys:           make(map[string]idemKey),
		states:         make(map[string]map[string]*webhook.TriggerState),
		metrics:        make(map[metricKey]*webhook.MetricBucket),
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
	if n := len(s.ids); n > 0 && s.ids[n-1] > w.ID {
		s.idsDirty = true
	}
	s.ids = append(s.ids, w.ID)
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
	s.idsDirty = true
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
	if s.idsDirty { // sorted once per batch of changes, not per page
		s.ids = slices.DeleteFunc(s.ids, func(id string) bool { _, ok := s.webhooks[id]; return !ok })
		slices.Sort(s.ids)
		s.ids = slices.Compact(s.ids) // a webhook deleted and created again
		s.idsDirty = false
	}
	i, found := slices.BinarySearch(s.ids, p.After)
	if found {
		i++
	}
	var out []*webhook.Webhook
	for _, id := range s.ids[i:] {
		if len(out) == limit {
			break
		}
		if w := s.webhooks[id]; p.TenantID == "" || w.TenantID == p.TenantID {
			out = append(out, w.Clone())
		}
	}
	if out == nil {
		out = []*webhook.Webhook{}
	}
	return out, nil
}
