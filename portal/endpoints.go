package portal

import (
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/analytics-webhooks/webhook"
)

// listPageSize is how many endpoints a page of the list shows.
const listPageSize = 100

// endpointRow is one endpoint of the list, with its status.
type endpointRow struct {
	W      *webhook.Webhook
	Status status
}

// status is an endpoint's state as the pages show it.
type status struct {
	// Class is "enabled", "disabled" or "failing", for the badge.
	Class, Label, Detail string
}

// statusOf tells an endpoint's state: disabled (with the reason),
// failing (deliveries failed for good one after the other), or enabled.
func statusOf(w *webhook.Webhook) status {
	switch {
	case w.Disabled:
		detail := w.DisabledReason
		if detail == "" {
			detail = "disabled by hand"
		}
		return status{Class: "disabled", Label: "Disabled", Detail: detail}
	case w.ConsecutiveFailures > 0:
		detail := strconv.Itoa(w.ConsecutiveFailures) + " deliveries in a row failed"
		if w.ConsecutiveFailures == 1 {
			detail = "the last delivery failed"
		}
		if !w.FailingSince.IsZero() {
			detail += ", since " + formatTime(w.FailingSince)
		}
		return status{Class: "failing", Label: "Failing", Detail: detail}
	}
	return status{Class: "enabled", Label: "Enabled"}
}

// listView is the data of the list page.
type listView struct {
	Rows []endpointRow
	// Next is the URL of the next page; "" on the last.
	Next string
	// First is set on pages after the first.
	First string
}

func (h *Handler) listPage(rq *request) error {
	after := rq.r.URL.Query().Get("after")
	if len(after) > 256 || !printable(after) {
		return badRequest("That is not a page of this list.")
	}
	ws, err := rq.svc.List(rq.r.Context(), webhook.ListWebhooksParams{After: after, Limit: listPageSize + 1})
	if err != nil {
		if after != "" && storageRefused(err) {
			return badRequest("That is not a page of this list.")
		}
		return err
	}
	var v listView
	if len(ws) > listPageSize {
		ws = ws[:listPageSize]
		v.Next = h.path("/") + "?" + url.Values{"after": {ws[len(ws)-1].ID}}.Encode()
	}
	if after != "" {
		v.First = h.path("/")
	}
	for _, w := range ws {
		v.Rows = append(v.Rows, endpointRow{W: w, Status: statusOf(w)})
	}
	return h.page(rq, "list", &view{Title: "Webhook endpoints", Data: v})
}

// storageRefused reports whether err is a bare webhook.ErrInvalid, as
// pgstore answers a cursor that is not one of its IDs (not a UUID).
func storageRefused(err error) bool {
	var ve *webhook.ValidationError
	return errors.Is(err, webhook.ErrInvalid) && !errors.As(err, &ve)
}

// formPage is the data of the create and edit form.
type formPage struct {
	Form   *endpointForm
	Action string
	New    bool
}

func (h *Handler) newPage(rq *request) error {
	f := h.newForm(nil)
	return h.page(rq, "form", &view{Title: "New endpoint", Data: formPage{Form: f, Action: h.path("/new"), New: true}})
}

func (h *Handler) create(rq *request) error {
	f := h.newForm(nil)
	w := &webhook.Webhook{}
	n, err := h.readForm(rq.r, f, w)
	if err != nil {
		return err
	}
	f.Version = ""
	if f.HasErrors() {
		validateToo(f, w, n)
	} else {
		created, err := rq.svc.Create(rq.r.Context(), w)
		if err == nil {
			return h.redirect(rq, h.path("/endpoints", created.ID), "created")
		}
		if !formProblem(f, err, n) {
			return err
		}
	}
	return h.formAgain(rq, &view{Title: "New endpoint", Data: formPage{Form: f, Action: h.path("/new"), New: true}})
}

// formProblem files a validation error under the form's fields, and
// reports whether err was one.
func formProblem(f *endpointForm, err error, n int) bool {
	var ve *webhook.ValidationError
	if !errors.As(err, &ve) || errors.Is(err, webhook.ErrTenantRequired) {
		return false
	}
	f.addValidation(ve, n)
	return true
}

// validateToo adds the problems Webhook.Validate finds in w to a form
// that already has problems of its own, so that one submission shows
// them all; fields with a problem already keep only theirs.
func validateToo(f *endpointForm, w *webhook.Webhook, n int) {
	c := w.Clone()
	d := webhook.DefaultRetryPolicy()
	if c.Retry.MaxAttempts == 0 {
		c.Retry.MaxAttempts = d.MaxAttempts
	}
	if c.Retry.InitialDelay == 0 {
		c.Retry.InitialDelay = d.InitialDelay
	}
	if c.Retry.MaxDelay == 0 {
		c.Retry.MaxDelay = max(d.MaxDelay, c.Retry.InitialDelay)
	}
	if c.Retry.Multiplier == 0 {
		c.Retry.Multiplier = d.Multiplier
	}
	var ve *webhook.ValidationError
	if !errors.As(c.Validate(), &ve) {
		return
	}
	had := maps.Clone(f.Errors)
	for _, fe := range ve.Fields {
		field, msg := formField(fe.Field, n)
		if _, ok := had[field]; !ok {
			f.add(field, msg+fe.Reason)
		}
	}
}

// formAgain shows a form with its problems: 422.
func (h *Handler) formAgain(rq *request, v *view) error {
	v.Tenant = rq.tenant
	h.render(rq.w, rq.r, http.StatusUnprocessableEntity, "form", v)
	return nil
}

// endpoint reads the endpoint in the path.
func (h *Handler) endpoint(rq *request) (*webhook.Webhook, error) {
	return rq.svc.Get(rq.r.Context(), rq.r.PathValue("id"))
}

// endpointView is the data of an endpoint's page.
type endpointView struct {
	W      *webhook.Webhook
	Status status
	// Secret is set only on the response to the reveal form.
	Secret string
	// Retired are the previous secrets still signing, with their ends.
	Retired  []time.Time
	Events   []string
	Health   health
	Defaults webhook.RetryPolicy
}

func (h *Handler) endpointPage(rq *request) error {
	w, err := h.endpoint(rq)
	if err != nil {
		return err
	}
	return h.showEndpoint(rq, w, "")
}

// showEndpoint renders an endpoint's page, with its secret if revealed.
func (h *Handler) showEndpoint(rq *request, w *webhook.Webhook, secret string) error {
	hl, err := h.health(rq, w.ID)
	if err != nil {
		return err
	}
	ev := endpointView{W: w, Status: statusOf(w), Secret: secret, Health: hl}
	now := h.now()
	for _, r := range w.PreviousSecrets {
		if now.Before(r.ExpiresAt) {
			ev.Retired = append(ev.Retired, r.ExpiresAt)
		}
	}
	for _, t := range w.Triggers {
		ev.Events = append(ev.Events, describeTrigger(t))
	}
	return h.page(rq, "endpoint", &view{Title: w.Name, Endpoint: w, Data: ev})
}

// describeTrigger says in words what a trigger sends.
func describeTrigger(t webhook.Trigger) string {
	var s string
	switch t.Type {
	case webhook.TriggerEvent:
		if len(t.Events) == 0 {
			s = "every event"
		} else {
			s = "events " + strings.Join(t.Events, ", ")
		}
	default:
		s = string(t.Type) + " events"
	}
	if len(t.Filters) > 0 {
		s += " (" + strconv.Itoa(len(t.Filters)) + " filters)"
		if len(t.Filters) == 1 {
			s = strings.TrimSuffix(s, "s)") + ")"
		}
	}
	if len(t.Conditions) > 0 {
		s += " (" + strconv.Itoa(len(t.Conditions)) + " conditions)"
	}
	return s
}

func (h *Handler) editPage(rq *request) error {
	w, err := h.endpoint(rq)
	if err != nil {
		return err
	}
	return h.page(rq, "form", &view{Title: "Edit " + w.Name, Endpoint: w, Data: formPage{Form: h.newForm(w), Action: h.path("/endpoints", w.ID, "edit")}})
}

func (h *Handler) edit(rq *request) error {
	w, err := h.endpoint(rq)
	if err != nil {
		return err
	}
	f := h.newForm(w)
	n, err := h.readForm(rq.r, f, w)
	if err != nil {
		return err
	}
	if f.HasErrors() {
		validateToo(f, w, n)
	} else {
		_, err := rq.svc.Update(rq.r.Context(), w)
		if err == nil {
			return h.redirect(rq, h.path("/endpoints", w.ID), "saved")
		}
		if !formProblem(f, err, n) {
			return err
		}
	}
	return h.formAgain(rq, &view{Title: "Edit " + w.Name, Endpoint: w, Data: formPage{Form: f, Action: h.path("/endpoints", w.ID, "edit")}})
}

// postForm parses a small form (see parseForm).
func postForm(rq *request) error { return parseForm(rq.r) }

func (h *Handler) enable(rq *request) error {
	w, err := rq.svc.Enable(rq.r.Context(), rq.r.PathValue("id"))
	if err != nil {
		return err
	}
	return h.redirect(rq, h.path("/endpoints", w.ID), "enabled")
}

func (h *Handler) disable(rq *request) error {
	if err := postForm(rq); err != nil {
		return err
	}
	reason := strings.TrimSpace(rq.r.PostForm.Get("reason"))
	if len(reason) > 256 || !printable(reason) {
		return badRequest("The reason must be printable text of at most 256 bytes.")
	}
	if reason == "" {
		reason = "disabled in the portal"
	}
	w, err := rq.svc.Disable(rq.r.Context(), rq.r.PathValue("id"), reason)
	if err != nil {
		return err
	}
	return h.redirect(rq, h.path("/endpoints", w.ID), "disabled")
}

func (h *Handler) deletePage(rq *request) error {
	w, err := h.endpoint(rq)
	if err != nil {
		return err
	}
	return h.page(rq, "delete", &view{Title: "Delete " + w.Name, Endpoint: w, Data: w})
}

func (h *Handler) delete(rq *request) error {
	if err := rq.svc.Delete(rq.r.Context(), rq.r.PathValue("id")); err != nil {
		return err
	}
	return h.redirect(rq, h.path("/"), "deleted")
}

// revealSecret answers the reveal form with the endpoint's page showing
// its secret. It is a POST so that the secret is never in a URL, a
// history entry or a cache (the page is no-store).
func (h *Handler) revealSecret(rq *request) error {
	w, err := h.endpoint(rq)
	if err != nil {
		return err
	}
	return h.showEndpoint(rq, w, w.Secret)
}

// graceChoices are the rotate form's grace periods, in hours; 0 means
// the Service's default and -1 none.
var graceChoices = []int{0, -1, 1, 24, 72, 168}

func (h *Handler) rotate(rq *request) error {
	if err := postForm(rq); err != nil {
		return err
	}
	p := webhook.RotateSecretParams{}
	if g := rq.r.PostForm.Get("grace_hours"); g != "" {
		hours, err := strconv.Atoi(g)
		if err != nil || !slices.Contains(graceChoices, hours) {
			return badRequest("Choose one of the grace periods offered.")
		}
		p.Grace = time.Duration(hours) * time.Hour
		if hours < 0 {
			p.Grace = -1
		}
	}
	w, err := rq.svc.RotateSecretWith(rq.r.Context(), rq.r.PathValue("id"), p)
	if err != nil {
		return err
	}
	return h.redirect(rq, h.path("/endpoints", w.ID), "rotated")
}

func (h *Handler) test(rq *request) error {
	d, err := rq.svc.Test(rq.r.Context(), rq.r.PathValue("id"))
	if err != nil {
		return err
	}
	return h.redirect(rq, h.path("/endpoints", d.WebhookID, "deliveries", d.ID), "tested")
}
