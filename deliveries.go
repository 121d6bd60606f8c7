package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Delivery returns a delivery with its attempts, or an error wrapping
// ErrNotFound.
func (s *Service) Delivery(ctx context.Context, id string) (*Delivery, error) {
	d, err := s.store.GetDelivery(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("webhook: delivery: %w", err)
	}
	if d.Attempts, err = s.store.ListAttempts(ctx, id); err != nil {
		return nil, fmt.Errorf("webhook: delivery: %w", err)
	}
	return d, nil
}

// Deliveries returns up to limit of a webhook's most recent deliveries,
// newest first, each with its attempts (limit as in PageLimit). A deleted
// webhook's history stays and is listed; an unknown ID gives an empty
// list. It is ListDeliveries with only WebhookID and Limit set; page
// further back, or filter, with ListDeliveries.
func (s *Service) Deliveries(ctx context.Context, webhookID string, limit int) ([]*Delivery, error) {
	return s.ListDeliveries(ctx, ListDeliveriesParams{WebhookID: webhookID, Limit: limit})
}

// ListDeliveries returns one page of a webhook's deliveries that pass
// p's filters, newest first, each with its attempts oldest first (see
// ListDeliveriesParams; pass the last ID of a page as the next page's
// Before). A deleted webhook's history stays and is listed; an unknown ID
// gives an empty list.
//
// A Storage that implements HistoryReader (memstore and pgstore do)
// reads the page and its attempts in one round trip and one snapshot;
// with any other, each delivery's attempts are read after the page, one
// call each, and a delivery pruned in between fails the call with an
// error wrapping ErrNotFound.
//
// It returns an error wrapping ErrInvalid (a *ValidationError) when
// p.Validate fails, and the Storage's errors otherwise.
func (s *Service) ListDeliveries(ctx context.Context, p ListDeliveriesParams) ([]*Delivery, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if hr, ok := s.store.(HistoryReader); ok {
		ds, err := hr.ListDeliveriesWithAttempts(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("webhook %s: deliveries: %w", p.WebhookID, err)
		}
		return ds, nil
	}
	ds, err := s.store.ListDeliveries(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("webhook %s: deliveries: %w", p.WebhookID, err)
	}
	for _, d := range ds {
		if d.Attempts, err = s.store.ListAttempts(ctx, d.ID); err != nil {
			return nil, fmt.Errorf("webhook %s: deliveries: %w", p.WebhookID, err)
		}
	}
	return ds, nil
}

// Test sends a "$test" payload to the webhook at once, waits for the
// answer and returns the recorded delivery with its one attempt. It uses
// the same Doer and rules as the workers, so a test send never succeeds
// where real deliveries would be refused. It does not retry, and works
// on disabled webhooks too (to check an endpoint before enabling it
// again); a 410 answer does not disable the webhook. The payload's data
// is {"message", "webhook_name"} and its environment "test".
//
// It returns an error wrapping ErrNotFound for an unknown webhook, and a
// Storage error if the delivery could not be recorded; an endpoint that
// fails is not an error but a failed delivery. If ctx ends before the
// endpoint answers, it returns ctx's error (errors.Is(err,
// context.Canceled) after a cancel); a delivery stored by then is
// recorded as failed with an error saying the test was canceled.
func (s *Service) Test(ctx context.Context, webhookID string) (*Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("webhook %s: test: %w", webhookID, err)
	}
	w, err := s.store.GetWebhook(ctx, webhookID)
	if err != nil {
		return nil, fmt.Errorf("webhook: test: %w", err)
	}
	data, err := encodeJSON(map[string]any{"message": "This is a test webhook delivery", "webhook_name": w.Name})
	if err != nil {
		return nil, err
	}
	now := s.clock()
	pl, d, err := newMessage(w.ID, EventTypeTest, now, now, data, "test")
	if err != nil {
		return nil, err
	}
	d.Status, d.Attempt, d.MaxAttempts = StatusDelivering, 1, 1 // leased to this call below
	token, err := newID()
	if err != nil {
		return nil, err
	}
	timeout := s.timeout
	if w.Timeout > 0 {
		timeout = w.Timeout
	}
	lease := &Lease{Token: token, WorkerID: "test-send", ExpiresAt: now.Add(timeout + leaseMargin)}
	if _, err := s.store.Enqueue(ctx, EnqueueParams{Payloads: []*Payload{pl}, Deliveries: []*Delivery{d}, Lease: lease, Now: now}); err != nil {
		return nil, fmt.Errorf("webhook %s: test: %w", webhookID, err)
	}
	res := s.send(ctx, w, pl, d.ID, 0, timeout)
	status := StatusFailed
	if res.outcome == OutcomeSuccess {
		status = StatusDelivered
	}
	canceled := ctx.Err() != nil && res.attempt.StatusCode == 0
	if canceled {
		// The caller gave up before an answer came: that is not the
		// endpoint's failure, and the record must not say it is.
		res.attempt.Error = "canceled before the endpoint answered: " + context.Cause(ctx).Error()
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if err := s.store.RecordAttempt(rctx, RecordAttemptParams{DeliveryID: d.ID, Token: token, Attempt: res.attempt, Status: status, Now: s.clock()}); err != nil {
		return nil, fmt.Errorf("webhook %s: test: record: %w", webhookID, err)
	}
	if canceled {
		return nil, fmt.Errorf("webhook %s: test: %w", webhookID, ctx.Err())
	}
	return s.Delivery(rctx, d.ID)
}

// Redeliver queues a finished (delivered or failed) delivery again, as a
// new delivery of the same payload: same body, same webhook-id header, so
// receivers that already processed it can tell. The new delivery's
// RedeliveryOf names the original, whose RedeliveredBy names the new
// one, so ReplayFailed does not queue the original again. It returns the
// new delivery's ID. It returns an error wrapping ErrNotFound if the
// delivery or its webhook no longer exists, and ErrInvalid if the
// delivery is still in progress, is a test send (call Test again
// instead) or the webhook is disabled.
func (s *Service) Redeliver(ctx context.Context, deliveryID string) (string, error) {
	d, err := s.store.GetDelivery(ctx, deliveryID)
	if err != nil {
		return "", fmt.Errorf("webhook: redeliver: %w", err)
	}
	if !d.Status.Final() {
		return "", invalid("redelivery", "status", fmt.Sprintf("delivery %s is %s; only delivered or failed deliveries can be redelivered", d.ID, d.Status))
	}
	if d.EventType == EventTypeTest {
		return "", invalid("redelivery", "event_type", fmt.Sprintf("delivery %s is a test send, which workers never send; call Test instead", d.ID))
	}
	w, err := s.webhookForRedelivery(ctx, d.WebhookID)
	if err != nil {
		return "", fmt.Errorf("delivery %s: redeliver: %w", deliveryID, err)
	}
	ids, err := s.redeliver(ctx, w, []*Delivery{d}, false)
	if err != nil {
		return "", fmt.Errorf("delivery %s: redeliver: %w", deliveryID, err)
	}
	return ids[0], nil
}

// ReplayParams selects what ReplayFailed queues again. Its JSON form is
// the body of the REST API's POST /webhooks/{id}/replay.
type ReplayParams struct {
	// Since selects the failed deliveries created at or after it; the
	// zero time selects all.
	Since time.Time `json:"since,omitzero"`
	// DryRun, when true, only counts the deliveries a replay would queue
	// again, and queues nothing.
	DryRun bool `json:"dry_run,omitempty"`
}

// UnmarshalJSON decodes {"since", "dry_run"} strictly, as
// Webhook.UnmarshalJSON does: an unknown or repeated key ("dryRun"), or
// a value of the wrong type, is a *ValidationError (errors.Is
// ErrInvalid) naming it, and p is left unchanged, so that a misspelt
// dry run never replays for real.
func (p *ReplayParams) UnmarshalJSON(b []byte) error {
	return unmarshalStrict(b, "replay", p, func(p *ReplayParams, raw json.RawMessage, path string, ps *problems) {
		decodeObject(raw, path, ps, map[string]jsonField{
			"since":   timeField(&p.Since),
			"dry_run": into(&p.DryRun, "true or false"),
		})
	})
}

// ReplayResult reports what ReplayFailed did.
type ReplayResult struct {
	// Count is how many failed deliveries were queued again, or with
	// DryRun would be.
	Count int `json:"count"`
	// DeliveryIDs are the new deliveries' IDs, newest original first;
	// empty with DryRun.
	DeliveryIDs []string `json:"delivery_ids"`
}

// maxReplayConflicts bounds how often ReplayFailed reads a page again
// because a concurrent replay queued some of its deliveries first.
const maxReplayConflicts = 8

// ReplayFailed queues again the webhook's failed deliveries created at
// or after p.Since, for recovering from an endpoint's outage, and
// returns how many it queued with the new delivery IDs. It is
// idempotent: a delivery that was queued again already (by an earlier
// replay or by Redeliver; its RedeliveredBy is set) is skipped, so
// replaying twice, or from two processes at once, queues each failed
// message once; a redelivery that fails in its turn is replayed by the
// next call. Test sends are never replayed. With p.DryRun it only
// counts.
//
// It returns an error wrapping ErrNotFound for an unknown webhook and
// ErrInvalid for a disabled one (with DryRun too, since the replay
// would fail). Each page of up to MaxPageSize is queued atomically; on
// error, what was queued so far is returned with it.
func (s *Service) ReplayFailed(ctx context.Context, webhookID string, p ReplayParams) (ReplayResult, error) {
	res := ReplayResult{DeliveryIDs: []string{}}
	w, err := s.webhookForRedelivery(ctx, webhookID)
	if err != nil {
		return res, fmt.Errorf("webhook: replay: %w", err)
	}
	before := ""
	conflicts := 0
	for {
		page, err := s.store.ListDeliveries(ctx, ListDeliveriesParams{WebhookID: w.ID, Status: StatusFailed, NotRedelivered: true, Before: before, Limit: MaxPageSize})
		if err != nil {
			return res, fmt.Errorf("webhook: replay: %w", err)
		}
		var batch []*Delivery
		done := len(page) < MaxPageSize
		for _, d := range page {
			if d.CreatedAt.Before(p.Since) {
				done = true // pages run newest first
				break
			}
			if d.EventType != EventTypeTest {
				batch = append(batch, d)
			}
		}
		switch {
		case len(batch) == 0:
		case p.DryRun:
			res.Count += len(batch)
		default:
			ids, err := s.redeliver(ctx, w, batch, true)
			if errors.Is(err, ErrConflict) && conflicts < maxReplayConflicts {
				// A concurrent replay queued some of these first; the
				// page read again leaves them out.
				conflicts++
				continue
			}
			if err != nil {
				return res, fmt.Errorf("webhook: replay: %w", err)
			}
			res.Count += len(ids)
			res.DeliveryIDs = append(res.DeliveryIDs, ids...)
		}
		if done {
			return res, nil
		}
		before = page[len(page)-1].ID
	}
}

// webhookForRedelivery returns the webhook, or ErrInvalid if it is
// disabled.
func (s *Service) webhookForRedelivery(ctx context.Context, id string) (*Webhook, error) {
	w, err := s.store.GetWebhook(ctx, id)
	if err != nil {
		return nil, err
	}
	if w.Disabled {
		return nil, invalid("redelivery", "webhook", fmt.Sprintf("webhook %s is disabled; enable it first", w.ID))
	}
	return w, nil
}

// redeliver enqueues new pending deliveries of the given deliveries'
// payloads to w, each marking its original as redelivered; replay makes
// the enqueue fail with ErrConflict if an original was redelivered
// already.
func (s *Service) redeliver(ctx context.Context, w *Webhook, ds []*Delivery, replay bool) ([]string, error) {
	now := s.clock()
	p := EnqueueParams{Now: now, Replay: replay}
	for _, d := range ds {
		id, err := newID()
		if err != nil {
			return nil, err
		}
		p.Deliveries = append(p.Deliveries, &Delivery{
			ID: id, WebhookID: d.WebhookID, PayloadID: d.PayloadID, EventType: d.EventType,
			Status: StatusPending, NextAttemptAt: now, CreatedAt: now,
			MaxAttempts: w.Retry.MaxAttempts, RedeliveryOf: d.ID,
		})
	}
	res, err := s.store.Enqueue(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("webhook %s: %w", w.ID, err)
	}
	s.tel.enqueuedDeliveries(ctx, kindRedelivery, len(res.DeliveryIDs))
	s.notify()
	return res.DeliveryIDs, nil
}

// Prune deletes the history of deliveries that finished before the
// cut-off, when the Storage implements Pruner (memstore and pgstore do);
// otherwise it returns an error wrapping ErrInvalid. It returns how many
// deliveries it deleted.
func (s *Service) Prune(ctx context.Context, before time.Time) (int, error) {
	p, ok := s.store.(Pruner)
	if !ok {
		return 0, fmt.Errorf("%w: the storage %T cannot prune", ErrInvalid, s.store)
	}
	n, err := p.Prune(ctx, PruneParams{Before: before})
	if err != nil {
		return n, fmt.Errorf("webhook: prune: %w", err)
	}
	return n, nil
}
