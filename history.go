package webhook

import (
	"context"
	"fmt"
	"slices"
)

// HistoryReader is an optional interface for a Storage that reads a page
// of deliveries together with their attempts in one round trip. The
// Service's ListDeliveries and Deliveries use it when the Storage
// implements it (memstore and pgstore do), and otherwise read each
// delivery's attempts with a call of its own.
type HistoryReader interface {
	// ListDeliveriesWithAttempts returns what ListDeliveries returns for
	// p, with each delivery's Attempts set to what ListAttempts returns
	// for it (oldest first; empty for a delivery without attempts), all
	// read in one atomic step: a delivery and its attempts always agree.
	// Its errors are ListDeliveries'.
	ListDeliveriesWithAttempts(ctx context.Context, p ListDeliveriesParams) ([]*Delivery, error)
}

// MaxListFilterValues is how many values ListDeliveriesParams.Statuses and
// EventTypes hold at most.
const MaxListFilterValues = 100

// Validate checks what every Storage relies on: a WebhookID, statuses
// that are among the five (Status and each of Statuses), at most
// MaxListFilterValues statuses and event types, no empty event type, and
// an Until that is not before Since. It returns a *ValidationError
// (errors.Is ErrInvalid) naming each problem's field: "webhook_id",
// "status", "statuses[i]", "event_types[i]" or "until". Backends call it
// before reading anything.
func (p ListDeliveriesParams) Validate() error {
	var ps problems
	if p.WebhookID == "" {
		ps.add("webhook_id", "must not be empty: deliveries are listed per webhook")
	}
	if p.Status != "" && !p.Status.Valid() {
		ps.add("status", fmt.Sprintf("unknown status %q: want pending, delivering, retrying, delivered or failed", p.Status))
	}
	if len(p.Statuses) > MaxListFilterValues {
		ps.add("statuses", fmt.Sprintf("at most %d statuses", MaxListFilterValues))
	} else {
		for i, st := range p.Statuses {
			if !st.Valid() {
				ps.add(fmt.Sprintf("statuses[%d]", i), fmt.Sprintf("unknown status %q: want pending, delivering, retrying, delivered or failed", st))
			}
		}
	}
	if len(p.EventTypes) > MaxListFilterValues {
		ps.add("event_types", fmt.Sprintf("at most %d event types", MaxListFilterValues))
	} else {
		for i, et := range p.EventTypes {
			if et == "" {
				ps.add(fmt.Sprintf("event_types[%d]", i), "must not be empty")
			}
		}
	}
	if !p.Since.IsZero() && !p.Until.IsZero() && p.Until.Before(p.Since) {
		ps.add("until", fmt.Sprintf("%s is before since (%s)", p.Until.Format(timeLayout), p.Since.Format(timeLayout)))
	}
	return ps.err("delivery list")
}

// timeLayout is how Validate shows times.
const timeLayout = "2006-01-02T15:04:05.999999Z07:00"

// SelectedStatuses returns the statuses p lists, Status and Statuses
// together, sorted and without repeats; nil when p lists every status.
func (p ListDeliveriesParams) SelectedStatuses() []DeliveryStatus {
	if p.Status == "" && len(p.Statuses) == 0 {
		return nil
	}
	out := make([]DeliveryStatus, 0, len(p.Statuses)+1)
	if p.Status != "" {
		out = append(out, p.Status)
	}
	out = append(out, p.Statuses...)
	slices.Sort(out)
	return slices.Compact(out)
}

// Selects reports whether d passes p's filters (its webhook, statuses,
// event types, creation window and NotRedelivered); the cursor and the
// limit are not filters. A Storage that filters in Go can use it.
func (p ListDeliveriesParams) Selects(d *Delivery) bool {
	switch {
	case d.WebhookID != p.WebhookID:
		return false
	case p.NotRedelivered && d.RedeliveredBy != "":
		return false
	case !p.Since.IsZero() && d.CreatedAt.Before(p.Since):
		return false
	case !p.Until.IsZero() && !d.CreatedAt.Before(p.Until):
		return false
	case len(p.EventTypes) > 0 && !slices.Contains(p.EventTypes, d.EventType):
		return false
	case p.Status == "" && len(p.Statuses) == 0:
		return true
	}
	return d.Status == p.Status || slices.Contains(p.Statuses, d.Status)
}
