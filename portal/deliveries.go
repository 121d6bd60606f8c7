package portal

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/analytics-webhooks/webhook"
)

// historyPage is how many deliveries a page of the history shows.
const historyPage = 25

// statuses are the delivery statuses the history filters by.
var statuses = []webhook.DeliveryStatus{webhook.StatusPending, webhook.StatusDelivering, webhook.StatusRetrying, webhook.StatusDelivered, webhook.StatusFailed}

// deliveriesView is the data of the history page.
type deliveriesView struct {
	W          *webhook.Webhook
	Deliveries []*webhook.Delivery
	Status     string
	EventType  string
	Statuses   []webhook.DeliveryStatus
	EventTypes []string
	// Next is the URL of the next (older) page; "" on the last.
	Next string
	// First is set on pages after the first.
	First string
}

func (h *Handler) deliveriesPage(rq *request) error {
	w, err := h.endpoint(rq)
	if err != nil {
		return err
	}
	q := rq.r.URL.Query()
	v := deliveriesView{W: w, Statuses: statuses, Status: q.Get("status"), EventType: q.Get("event_type")}
	v.EventTypes = append([]string{webhook.EventTypeTest}, names(h.catalogue)...)
	p := webhook.ListDeliveriesParams{WebhookID: w.ID, Limit: historyPage + 1, Before: q.Get("before")}
	if v.Status != "" {
		st := webhook.DeliveryStatus(v.Status)
		if !st.Valid() {
			return badRequest("Choose one of the statuses offered.")
		}
		p.Status = st
	}
	if v.EventType != "" {
		if len(v.EventType) > webhook.MaxEventNameLength || !printable(v.EventType) {
			return badRequest("That is not an event type.")
		}
		p.EventTypes = []string{v.EventType}
		if !slices.Contains(v.EventTypes, v.EventType) {
			v.EventTypes = append(v.EventTypes, v.EventType)
		}
	}
	if len(p.Before) > 256 || !printable(p.Before) {
		return badRequest("That is not a page of this list.")
	}
	ds, err := rq.svc.ListDeliveries(rq.r.Context(), p)
	if err != nil {
		return err
	}
	filters := url.Values{}
	if v.Status != "" {
		filters.Set("status", v.Status)
	}
	if v.EventType != "" {
		filters.Set("event_type", v.EventType)
	}
	base := h.path("/endpoints", w.ID, "deliveries")
	if len(ds) > historyPage {
		ds = ds[:historyPage]
		next := url.Values{}
		for k, vs := range filters {
			next[k] = vs
		}
		next.Set("before", ds[len(ds)-1].ID)
		v.Next = base + "?" + next.Encode()
	}
	if p.Before != "" {
		v.First = base
		if len(filters) > 0 {
			v.First += "?" + filters.Encode()
		}
	}
	v.Deliveries = ds
	return h.page(rq, "deliveries", &view{Title: "Deliveries of " + w.Name, Endpoint: w, Data: v})
}

func names(ets []webhook.EventType) []string {
	out := make([]string, len(ets))
	for i, et := range ets {
		out[i] = et.Name
	}
	return out
}

// deliveryView is the data of one delivery's page.
type deliveryView struct {
	W *webhook.Webhook
	D *webhook.Delivery
	// Body is the exact request body sent, "" when its payload was
	// pruned.
	Body string
	// CanRedeliver says whether the redeliver form is offered.
	CanRedeliver bool
}

// delivery reads the delivery in the path, of the endpoint in the path.
func (h *Handler) delivery(rq *request) (*webhook.Webhook, *webhook.Delivery, error) {
	w, err := h.endpoint(rq)
	if err != nil {
		return nil, nil, err
	}
	d, err := rq.svc.Delivery(rq.r.Context(), rq.r.PathValue("did"))
	if err != nil {
		return nil, nil, err
	}
	if d.WebhookID != w.ID {
		return nil, nil, notFound()
	}
	return w, d, nil
}

func (h *Handler) deliveryPage(rq *request) error {
	w, d, err := h.delivery(rq)
	if err != nil {
		return err
	}
	v := deliveryView{W: w, D: d, CanRedeliver: d.Status.Final() && d.EventType != webhook.EventTypeTest && !w.Disabled}
	pl, err := h.svc.Storage().GetPayload(rq.r.Context(), d.PayloadID)
	switch {
	case errors.Is(err, webhook.ErrNotFound):
	case err != nil:
		return err
	default:
		v.Body = string(pl.Body)
	}
	slices.Reverse(d.Attempts) // newest first, as the history
	return h.page(rq, "delivery", &view{Title: "Delivery " + d.ID, Endpoint: w, Data: v})
}

func (h *Handler) redeliver(rq *request) error {
	w, d, err := h.delivery(rq)
	if err != nil {
		return err
	}
	id, err := rq.svc.Redeliver(rq.r.Context(), d.ID)
	if err != nil {
		return err
	}
	return h.redirect(rq, h.path("/endpoints", w.ID, "deliveries", id), "redelivered")
}

// replayView is the data of the replay page: its form, then the count
// to confirm, then what was queued.
type replayView struct {
	W     *webhook.Webhook
	Since string
	Error string
	// Step is "ask", "confirm" or "done".
	Step  string
	Count int
}

// sinceLayout is the replay form's time, as an input of type
// datetime-local sends it; it is read in UTC.
const sinceLayout = "2006-01-02T15:04"

func (h *Handler) replayPage(rq *request) error {
	w, err := h.endpoint(rq)
	if err != nil {
		return err
	}
	since := h.now().Add(-24 * time.Hour).UTC().Format(sinceLayout)
	return h.page(rq, "replay", &view{Title: "Replay failed deliveries", Endpoint: w, Data: replayView{W: w, Since: since, Step: "ask"}})
}

// replay serves the replay form in two steps: without confirm, a dry
// run that shows how many failed deliveries would be queued again; with
// confirm, the replay itself.
func (h *Handler) replay(rq *request) error {
	w, err := h.endpoint(rq)
	if err != nil {
		return err
	}
	if err := postForm(rq); err != nil {
		return err
	}
	v := replayView{W: w, Since: strings.TrimSpace(rq.r.PostForm.Get("since")), Step: "ask"}
	since, perr := time.Parse(sinceLayout, v.Since)
	if perr != nil {
		v.Error = "Write a date and time, such as 2026-11-28T09:00 (UTC)."
		return h.page(rq, "replay", &view{Title: "Replay failed deliveries", Endpoint: w, Data: v})
	}
	confirm := rq.r.PostForm.Get("confirm") == "yes"
	res, err := rq.svc.ReplayFailed(rq.r.Context(), w.ID, webhook.ReplayParams{Since: since, DryRun: !confirm})
	if err != nil {
		return err
	}
	v.Count = res.Count
	v.Step = "confirm"
	if confirm {
		v.Step = "done"
	}
	return h.page(rq, "replay", &view{Title: "Replay failed deliveries", Endpoint: w, Data: v})
}

// healthWindow is the span the health view measures, and healthCap how
// many of its deliveries it reads at most.
const (
	healthWindow = 24 * time.Hour
	healthCap    = 1000
)

// health is an endpoint's record over the last day, counted from its
// delivery history.
type health struct {
	Delivered, Failed, InProgress int
	// Rate is Delivered over the finished deliveries; Valid when any
	// finished.
	Rate  float64
	Valid bool
	// Median and P95 are the attempts' durations.
	Median, P95 time.Duration
	Attempts    int
	// Capped says the history held more deliveries than were counted.
	Capped bool
}

// health counts the endpoint's deliveries of the last day from its
// history, newest first, up to healthCap deliveries.
func (h *Handler) health(rq *request, id string) (health, error) {
	var hl health
	var durations []time.Duration
	p := webhook.ListDeliveriesParams{WebhookID: id, Since: h.now().Add(-healthWindow), Limit: webhook.MaxPageSize}
	seen := 0
	for {
		ds, err := rq.svc.ListDeliveries(rq.r.Context(), p)
		if err != nil {
			return hl, err
		}
		for _, d := range ds {
			if seen == healthCap {
				hl.Capped = true
				break
			}
			seen++
			switch d.Status {
			case webhook.StatusDelivered:
				hl.Delivered++
			case webhook.StatusFailed:
				hl.Failed++
			default:
				hl.InProgress++
			}
			for _, a := range d.Attempts {
				durations = append(durations, a.Duration)
			}
		}
		if hl.Capped || len(ds) < p.Limit {
			break
		}
		p.Before = ds[len(ds)-1].ID
	}
	if done := hl.Delivered + hl.Failed; done > 0 {
		hl.Rate, hl.Valid = float64(hl.Delivered)/float64(done), true
	}
	if len(durations) > 0 {
		slices.Sort(durations)
		hl.Attempts = len(durations)
		hl.Median = durations[(len(durations)-1)/2]
		hl.P95 = durations[(len(durations)*95+99)/100-1]
	}
	return hl, nil
}
