package webhook

import (
	"context"
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
// list. Page further back with Storage().ListDeliveries.
func (s *Service) Deliveries(ctx context.Context, webhookID string, limit int) ([]*Delivery, error) {
	ds, err := s.store.ListDeliveries(ctx, ListDeliveriesParams{WebhookID: webhookID, Limit: limit})
	if err != nil {
		return nil, fmt.Errorf("webhook %s: deliveries: %w", webhookID, err)
	}
	for _, d := range ds {
		if d.Attempts, err = s.store.ListAttempts(ctx, d.ID); err != nil {
			return nil, fmt.Errorf("webhook: deliveries: %w", err)
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
// fails is not an error but a failed delivery.
func (s *Service) Test(ctx context.Context, webhookID string) (*Delivery, error) {
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
	d.Status, d.Attempt = StatusDelivering, 1 // leased to this call below
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
	res := s.send(ctx, w, pl, d.ID, timeout)
	status := StatusFailed
	if res.outcome == OutcomeSuccess {
		status = StatusDelivered
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if err := s.store.RecordAttempt(rctx, RecordAttemptParams{DeliveryID: d.ID, Token: token, Attempt: res.attempt, Status: status, Now: s.clock()}); err != nil {
		return nil, fmt.Errorf("webhook %s: test: record: %w", webhookID, err)
	}
	return s.Delivery(rctx, d.ID)
}

// Redeliver queues a finished (delivered or failed) delivery again, as a
// new delivery of the same payload: same body, same webhook-id header, so
// receivers that already processed it can tell. It returns the new
// delivery's ID. It returns an error wrapping ErrNotFound if the delivery
// or its webhook no longer exists, and ErrInvalid if the delivery is
// still in progress or the webhook is disabled.
func (s *Service) Redeliver(ctx context.Context, deliveryID string) (string, error) {
	d, err := s.store.GetDelivery(ctx, deliveryID)
	if err != nil {
		return "", fmt.Errorf("webhook: redeliver: %w", err)
	}
	if !d.Status.Final() {
		return "", invalid("redelivery", "status", fmt.Sprintf("delivery %s is %s; only delivered or failed deliveries can be redelivered", d.ID, d.Status))
	}
	ids, err := s.redeliver(ctx, d.WebhookID, []*Delivery{d})
	if err != nil {
		return "", fmt.Errorf("delivery %s: redeliver: %w", deliveryID, err)
	}
	return ids[0], nil
}

// ReplayFailed queues again every failed delivery of the webhook created
// at or after since, for recovering from an endpoint's outage, and
// returns the new delivery IDs. Each page of up to MaxPageSize is queued
// atomically; on error, the IDs queued so far are returned with it.
func (s *Service) ReplayFailed(ctx context.Context, webhookID string, since time.Time) ([]string, error) {
	var all []string
	before := ""
	for {
		page, err := s.store.ListDeliveries(ctx, ListDeliveriesParams{WebhookID: webhookID, Status: StatusFailed, Before: before, Limit: MaxPageSize})
		if err != nil {
			return all, fmt.Errorf("webhook %s: replay: %w", webhookID, err)
		}
		var batch []*Delivery
		done := len(page) < MaxPageSize
		for _, d := range page {
			if d.CreatedAt.Before(since) {
				done = true // pages run newest first
				break
			}
			batch = append(batch, d)
		}
		if len(batch) > 0 {
			ids, err := s.redeliver(ctx, webhookID, batch)
			all = append(all, ids...)
			if err != nil {
				return all, fmt.Errorf("webhook: replay: %w", err)
			}
		}
		if done {
			return all, nil
		}
		before = page[len(page)-1].ID
	}
}

// redeliver enqueues new pending deliveries of the given deliveries'
// payloads to their (enabled) webhook.
func (s *Service) redeliver(ctx context.Context, webhookID string, ds []*Delivery) ([]string, error) {
	w, err := s.store.GetWebhook(ctx, webhookID)
	if err != nil {
		return nil, err
	}
	if w.Disabled {
		return nil, invalid("redelivery", "webhook", fmt.Sprintf("webhook %s is disabled; enable it first", w.ID))
	}
	now := s.clock()
	p := EnqueueParams{Now: now}
	for _, d := range ds {
		id, err := newID()
		if err != nil {
			return nil, err
		}
		p.Deliveries = append(p.Deliveries, &Delivery{
			ID: id, WebhookID: d.WebhookID, PayloadID: d.PayloadID, EventType: d.EventType,
			Status: StatusPending, NextAttemptAt: now, CreatedAt: now,
		})
	}
	res, err := s.store.Enqueue(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("webhook %s: %w", webhookID, err)
	}
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
