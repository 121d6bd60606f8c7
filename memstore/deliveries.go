package memstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/analytics-webhooks/webhook"
)

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
	if s.maxActive > 0 && s.unfinished+len(p.Deliveries) > s.maxActive {
		return webhook.EnqueueResult{}, fmt.Errorf("memstore: %d unfinished deliveries, the limit is %d: %w", s.unfinished, s.maxActive, webhook.ErrQueueFull)
	}
	// Check everything before changing anything: all or nothing.
	fresh := make(map[string]*webhook.Payload, len(p.Payloads))
	for _, pl := range p.Payloads {
		if _, ok := s.payloads[pl.ID]; ok || fresh[pl.ID] != nil {
			return webhook.EnqueueResult{}, fmt.Errorf("payload %s: %w", pl.ID, webhook.ErrDuplicate)
		}
		fresh[pl.ID] = pl
	}
	newDeliveries := make(map[string]bool, len(p.Deliveries))
	ids := make([]string, 0, len(p.Deliveries))
	var charge int64
	for _, d := range p.Deliveries {
		if _, ok := s.deliveries[d.ID]; ok || newDeliveries[d.ID] {
			return webhook.EnqueueResult{}, fmt.Errorf("delivery %s: %w", d.ID, webhook.ErrDuplicate)
		}
		newDeliveries[d.ID] = true
		size := 0
		if pl, ok := s.payloads[d.PayloadID]; ok {
			size = pl.size()
		} else if pl, ok := fresh[d.PayloadID]; ok {
			size = len(pl.Body)
		} else {
			return webhook.EnqueueResult{}, fmt.Errorf("delivery %s: payload %s: %w", d.ID, d.PayloadID, webhook.ErrNotFound)
		}
		charge += int64(size) + DeliveryOverheadBytes
		ids = append(ids, d.ID)
	}
	if s.maxActiveBytes > 0 && s.activeBytes+charge > s.maxActiveBytes {
		return webhook.EnqueueResult{}, fmt.Errorf("memstore: unfinished deliveries take %d bytes, %d more would pass the limit of %d: %w",
			s.activeBytes, charge, s.maxActiveBytes, webhook.ErrQueueFull)
	}
	if err := s.checkRedeliveries(p); err != nil {
		return webhook.EnqueueResult{}, err
	}
	added := newPayloads(p.Payloads)
	for _, pl := range added {
		s.payloads[pl.id] = pl
	}
	for _, d := range p.Deliveries {
		pl := s.payloads[d.PayloadID]
		sd := newDelivery(d, pl, p.Lease)
		pl.own(sd)
		if fresh[pl.id] != nil {
			// The delivery's and its new payload's IDs in one string.
			fresh[pl.id] = nil
			both := sd.id + pl.id
			sd.id, pl.id = both[:len(sd.id)], both[len(sd.id):]
			s.payloads[pl.id] = pl
		}
		s.deliveries[sd.id] = sd
		s.byWebhook[sd.webhookID] = append(s.byWebhook[sd.webhookID], sd)
		s.queueLocked(sd)
		if d.RedeliveryOf != "" {
			s.deliveries[d.RedeliveryOf].result().redeliveredBy = d.ID
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
		if p.Replay && ((orig.res != nil && orig.res.redeliveredBy != "") || seen[d.RedeliveryOf]) {
			return fmt.Errorf("delivery %s: already redelivered: %w", d.RedeliveryOf, webhook.ErrConflict)
		}
		seen[d.RedeliveryOf] = true
	}
	return nil
}

// ClaimDeliveries implements webhook.Storage. It takes the due
// deliveries from the per-webhook queues (queue.go) in due order, in
// O(k log n) for k claimed of n unfinished.
func (s *Store) ClaimDeliveries(ctx context.Context, p webhook.ClaimParams) ([]*webhook.Claim, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if p.Limit < 1 || p.LeaseDuration <= 0 {
		return nil, fmt.Errorf("%w: claim needs a positive limit and lease duration", webhook.ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dues, aside := s.takeDueLocked(p)
	defer s.restoreLocked(dues, aside) // by their new due times
	tokens, err := newTokens(len(dues))
	if err != nil {
		return nil, err // nothing changed yet
	}
	claims := make([]*webhook.Claim, 0, len(dues))
	for i, d := range dues {
		// A lease taken past the attempt budget sent nothing: no lost
		// attempt to record, and no attempt to count.
		delivering := d.status() == webhook.StatusDelivering
		pastBudget := delivering && d.maxAttempts > 0 && d.attempt > d.maxAttempts
		if delivering && !pastBudget {
			r := d.result()
			r.attempts = append(r.attempts, webhook.Attempt{
				DeliveryID: d.id,
				Number:     int(d.attempt),
				StartedAt:  d.lease.ExpiresAt,
				Error:      fmt.Sprintf("lease of worker %q expired before the attempt was recorded", d.lease.WorkerID),
			})
		}
		d.setStatus(webhook.StatusDelivering)
		if !pastBudget {
			d.attempt++
		}
		d.lease = &webhook.Lease{Token: tokens[i], WorkerID: p.WorkerID, ExpiresAt: p.Now.Add(p.LeaseDuration)}
		var version int64 // 0: the webhook does not exist
		if w, ok := s.webhooks[d.webhookID]; ok {
			version = w.Version
		}
		// The claim, its delivery and its payload in one allocation.
		cv := new(claimView)
		d.viewInto(&cv.d, false)
		d.pl.viewInto(&cv.p)
		cv.c = webhook.Claim{Delivery: &cv.d, Payload: &cv.p, Lease: *d.lease, WebhookVersion: version}
		claims = append(claims, &cv.c)
	}
	return claims, nil
}

// claimView is what a claim returns of one delivery.
type claimView struct {
	c webhook.Claim
	d webhook.Delivery
	p webhook.Payload
}

// newTokens returns n lease tokens, each 16 random bytes in hex, in
// one string of their own.
func newTokens(n int) ([]string, error) {
	if n == 0 {
		return nil, nil
	}
	const size = 16
	b := make([]byte, size*n, 3*size*n) // the random bytes, then their hex
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("memstore: lease token: %w", err)
	}
	all := string(hex.AppendEncode(b[len(b):], b))
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = all[2*size*i : 2*size*(i+1)]
	}
	return tokens, nil
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
	return s.recordLocked(p)
}

func (s *Store) recordLocked(p webhook.RecordAttemptParams) error {
	d, ok := s.deliveries[p.DeliveryID]
	if !ok {
		return fmt.Errorf("delivery %s: %w", p.DeliveryID, webhook.ErrNotFound)
	}
	if d.status() != webhook.StatusDelivering || p.Token == "" || d.lease.Token != p.Token {
		return fmt.Errorf("delivery %s: %w", p.DeliveryID, webhook.ErrLeaseLost)
	}
	if p.Released {
		d.lease = nil
		d.attempt--
		d.setStatus(webhook.StatusRetrying)
		if d.attempt <= 0 {
			d.attempt = 0
			d.setStatus(webhook.StatusPending)
		}
		d.next = micros(p.NextAttemptAt)
		s.requeueLocked(d)
		return nil
	}
	a := p.Attempt
	a.DeliveryID = d.id
	a.Number = int(d.attempt)
	r := d.result()
	r.attempts = append(r.attempts, a)
	r.statusCode, r.responseBody, r.duration, r.err = a.StatusCode, a.ResponseBody, a.Duration, a.Error
	if p.Status.Final() {
		s.dequeueLocked(d) // before the status changes: the heap orders by it
		d.lease = nil
		d.setStatus(p.Status)
		r.completed = p.Now
		d.next = micros(time.Time{})
	} else {
		d.lease = nil
		d.setStatus(p.Status)
		d.next = micros(p.NextAttemptAt)
		s.requeueLocked(d)
	}
	return nil
}

// RecordAttempts implements webhook.BatchRecorder: one lock for the
// batch.
func (s *Store) RecordAttempts(ctx context.Context, ps []webhook.RecordAttemptParams) ([]error, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	errs := make([]error, len(ps))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, p := range ps {
		if err := p.Validate(); err != nil {
			errs[i] = err
			continue
		}
		errs[i] = s.recordLocked(p)
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
	return d.view(false), nil
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
	ds := slices.Clone(s.byWebhook[p.WebhookID])
	slices.SortFunc(ds, func(a, b *delivery) int { return strings.Compare(a.id, b.id) })
	for _, d := range slices.Backward(ds) {
		if len(out) == limit {
			break
		}
		if p.Before != "" && d.id >= p.Before {
			continue
		}
		v := d.view(attempts)
		if !p.Selects(v) {
			continue
		}
		out = append(out, v)
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
	return slices.Clone(d.attempts()), nil
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
	return pl.view(), nil
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
		if d.status().Final() && d.res != nil && d.res.completed.Before(p.Before) {
			delete(s.deliveries, id)
			n++
		}
	}
	used := make(map[string]bool, len(s.deliveries))
	for _, d := range s.deliveries {
		used[d.pl.id] = true
	}
	for id := range s.payloads {
		if !used[id] {
			delete(s.payloads, id)
		}
	}
	for wid, ds := range s.byWebhook {
		ds = slices.DeleteFunc(ds, func(d *delivery) bool { _, ok := s.deliveries[d.id]; return !ok })
		if len(ds) == 0 {
			delete(s.byWebhook, wid)
		} else {
			s.byWebhook[wid] = ds
		}
	}
	for k, v := range s.keys {
		if v.at.Before(p.Before) {
			delete(s.keys, k)
		}
	}
	return n, nil
}
