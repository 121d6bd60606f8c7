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
		if p.Before != "" && storageRefused(err) {
			// The storage refused the cursor (pgstore: not a UUID).
			return badRequest("That is not a page of this list.")
		}
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

// healthWindow is the span the health view summarises.
const healthWindow = 24 * time.Hour

// health is an endpoint's record over the last day, from Service.Stats.
type health struct {
	Delivered, Failed, InProgress int64
	// Rate is Delivered over the finished deliveries; Valid when any
	// finished.
	Rate  float64
	Valid bool
	// Median and P95 are the durations of the attempts that reached
	// the endpoint, Samples how many there were.
	Median, P95 time.Duration
	Samples     int64
	// Partial says the history held more deliveries than were counted.
	Partial bool
}

// health summarises the endpoint's deliveries of the last day.
func (h *Handler) health(rq *request, id string) (health, error) {
	st, err := rq.svc.Stats(rq.r.Context(), id, h.now().Add(-healthWindow))
	if err != nil {
		return health{}, err
	}
	hl := health{
		Delivered: st.Deliveries[webhook.StatusDelivered],
		Failed:    st.Deliveries[webhook.StatusFailed],
		Median:    st.LatencyP50, P95: st.LatencyP95, Samples: st.LatencySamples,
		Partial: st.Partial, Rate: st.SuccessRate,
	}
	hl.InProgress = st.Deliveries[webhook.StatusPending] + st.Deliveries[webhook.StatusDelivering] + st.Deliveries[webhook.StatusRetrying]
	hl.Valid = hl.Delivered+hl.Failed > 0
	return hl, nil
}
