package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/analytics-webhooks/webhook"
)

// testWebhook serves POST /webhooks/{id}/test: the "$test" delivery is
// sent at once and returned with its attempt, 200 whether the endpoint
// accepted it or not (see the delivery's status).
func (h *Handler) testWebhook(rq *request) error {
	if err := h.emptyBody(rq); err != nil {
		return err
	}
	d, err := rq.svc.Test(rq.r.Context(), rq.r.PathValue("id"))
	if err != nil {
		return err
	}
	rq.w.Header().Set("Location", h.location("/webhooks/"+d.WebhookID+"/deliveries/"+d.ID))
	return h.writeJSON(rq, http.StatusOK, d)
}

// emptyBody refuses a query string and a body other than nothing or an
// empty object, for the action routes without parameters.
func (h *Handler) emptyBody(rq *request) error {
	if _, err := query(rq.r, nil); err != nil {
		return err
	}
	b, err := h.body(rq, false, typeJSON)
	if err != nil {
		return err
	}
	return decodeFields(b, nil)
}

// deliveryQuery are the query parameters of the history.
var deliveryQuery = map[string]bool{"limit": false, "cursor": false, "status": true, "event_type": true, "since": false, "until": false}

func (h *Handler) listDeliveries(rq *request) error {
	q, err := query(rq.r, deliveryQuery)
	if err != nil {
		return err
	}
	p := webhook.ListDeliveriesParams{WebhookID: rq.r.PathValue("id")}
	limit, err := pageLimit(q.Get("limit"))
	if err != nil {
		return err
	}
	if p.Before, err = decodeCursor(cursorDeliveries, q.Get("cursor")); err != nil {
		return err
	}
	if err := historyFilters(q, &p); err != nil {
		return err
	}
	if _, ok := rq.svc.(*webhook.Service); ok {
		// The Service lists the history of any ID; the API answers 404
		// for a webhook that does not exist, as a TenantService does.
		if _, err := rq.svc.Get(rq.r.Context(), p.WebhookID); err != nil {
			return err
		}
	}
	p.Limit = min(limit+1, webhook.MaxPageSize)
	ds, err := rq.svc.ListDeliveries(rq.r.Context(), p)
	if err != nil {
		return cursorRefused(err, p.Before)
	}
	more := len(ds) > limit
	if more {
		ds = ds[:limit]
	} else if len(ds) == limit && p.Limit == limit {
		probe := p
		probe.Before, probe.Limit = ds[len(ds)-1].ID, 1
		next, err := rq.svc.ListDeliveries(rq.r.Context(), probe)
		if err != nil {
			return err
		}
		more = len(next) > 0
	}
	if ds == nil {
		ds = []*webhook.Delivery{}
	}
	out := page[*webhook.Delivery]{Data: ds, HasMore: more}
	if more {
		out.NextCursor = encodeCursor(cursorDeliveries, ds[len(ds)-1].ID)
	}
	b, err := marshalPage(out.Data, out.NextCursor, out.HasMore)
	if err != nil {
		return err
	}
	return h.writeJSON(rq, http.StatusOK, json.RawMessage(b))
}

// historyFilters parses the filters of the history into p.
func historyFilters(q map[string][]string, p *webhook.ListDeliveriesParams) error {
	var problems []fieldProblem
	statuses, types := q["status"], q["event_type"]
	if len(statuses) > webhook.MaxListFilterValues {
		problems = append(problems, fieldProblem{Parameter: "status", Detail: fmt.Sprintf("at most %d values", webhook.MaxListFilterValues)})
		statuses = nil
	}
	for _, s := range statuses {
		st := webhook.DeliveryStatus(s)
		if !st.Valid() {
			problems = append(problems, fieldProblem{Parameter: "status", Detail: "must be pending, delivering, retrying, delivered or failed"})
			break
		}
		p.Statuses = append(p.Statuses, st)
	}
	if len(types) > webhook.MaxListFilterValues {
		problems = append(problems, fieldProblem{Parameter: "event_type", Detail: fmt.Sprintf("at most %d values", webhook.MaxListFilterValues)})
		types = nil
	}
	for _, et := range types {
		if et == "" || len(et) > webhook.MaxEventNameLength || !printable(et) {
			problems = append(problems, fieldProblem{Parameter: "event_type", Detail: fmt.Sprintf("must be printable, of 1 to %d bytes", webhook.MaxEventNameLength)})
			break
		}
		p.EventTypes = append(p.EventTypes, et)
	}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &p.Since}, {"until", &p.Until}} {
		v := first(q[t.name])
		if v == "" {
			continue
		}
		ts, err := time.Parse(time.RFC3339Nano, v)
		if err != nil || ts.UTC().Year() < 1 || ts.UTC().Year() > 9999 {
			problems = append(problems, fieldProblem{Parameter: t.name, Detail: "must be an RFC 3339 time, such as 2026-11-28T09:00:00Z"})
			continue
		}
		*t.dst = ts.UTC()
	}
	if len(problems) == 0 && !p.Since.IsZero() && !p.Until.IsZero() && p.Until.Before(p.Since) {
		problems = append(problems, fieldProblem{Parameter: "until", Detail: "must not be before since"})
	}
	if len(problems) > 0 {
		return badRequest("invalid history filters", problems...)
	}
	return nil
}

func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// delivery reads a delivery of the webhook in the path, with its
// attempts: 404 if it is another webhook's.
func (h *Handler) delivery(rq *request, id string) (*webhook.Delivery, error) {
	d, err := rq.svc.Delivery(rq.r.Context(), id)
	if err != nil {
		return nil, err
	}
	if d.WebhookID != rq.r.PathValue("id") {
		return nil, notFound("not found")
	}
	return d, nil
}

func (h *Handler) getDelivery(rq *request) error {
	if _, err := query(rq.r, nil); err != nil {
		return err
	}
	d, err := h.delivery(rq, rq.r.PathValue("delivery_id"))
	if err != nil {
		return err
	}
	var body json.RawMessage
	pl, err := h.svc.Storage().GetPayload(rq.r.Context(), d.PayloadID)
	switch {
	case errors.Is(err, webhook.ErrNotFound):
	case err != nil:
		return err
	case json.Valid(pl.Body):
		body = pl.Body
	}
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	if len(body) > 0 && len(b) > 1 {
		b = append(append(append(b[:len(b)-1:len(b)-1], `,"request_body":`...), body...), '}')
	}
	return h.writeJSON(rq, http.StatusOK, json.RawMessage(b))
}

// redeliver serves POST .../redeliver: 202 with the new delivery,
// queued for the workers.
func (h *Handler) redeliver(rq *request) error {
	if err := h.emptyBody(rq); err != nil {
		return err
	}
	d, err := h.delivery(rq, rq.r.PathValue("delivery_id"))
	if err != nil {
		return err
	}
	id, err := rq.svc.Redeliver(rq.r.Context(), d.ID)
	if err != nil {
		return stateError(err)
	}
	nd, err := rq.svc.Delivery(rq.r.Context(), id)
	if err != nil {
		return err
	}
	rq.w.Header().Set("Location", h.location("/webhooks/"+nd.WebhookID+"/deliveries/"+nd.ID))
	return h.writeJSON(rq, http.StatusAccepted, nd)
}

// replay serves POST /webhooks/{id}/replay: 202 with what was queued
// again, or 200 with the count for a dry run.
func (h *Handler) replay(rq *request) error {
	if _, err := query(rq.r, nil); err != nil {
		return err
	}
	b, err := h.body(rq, false, typeJSON)
	if err != nil {
		return err
	}
	var p webhook.ReplayParams
	if b != nil {
		if err := json.Unmarshal(b, &p); err != nil {
			return decodeError(err)
		}
	}
	res, err := rq.svc.ReplayFailed(rq.r.Context(), rq.r.PathValue("id"), p)
	if err != nil {
		return stateError(err)
	}
	status := http.StatusAccepted
	if p.DryRun {
		status = http.StatusOK
	}
	return h.writeJSON(rq, status, res)
}

// stateError maps the ErrInvalid of Redeliver and ReplayFailed, which
// refuse what the state of the delivery or webhook does not allow (in
// progress, a test send, a disabled webhook), to 409.
func stateError(err error) error {
	var ve *webhook.ValidationError
	if !errors.As(err, &ve) || errors.Is(err, webhook.ErrNotFound) {
		return err
	}
	reasons := make([]string, 0, len(ve.Fields))
	for _, f := range ve.Fields {
		reasons = append(reasons, f.Reason)
	}
	return &apiError{status: http.StatusConflict, detail: strings.Join(reasons, "; "), cause: err}
}
