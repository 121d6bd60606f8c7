package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/analytics-webhooks/webhook"
)

func (h *Handler) enable(rq *request) error {
	if err := h.emptyBody(rq); err != nil {
		return err
	}
	w, err := rq.svc.Enable(rq.r.Context(), rq.r.PathValue("id"))
	if err != nil {
		return err
	}
	return h.writeWebhook(rq, w)
}

func (h *Handler) disable(rq *request) error {
	if _, err := query(rq.r, nil); err != nil {
		return err
	}
	b, err := h.body(rq, false, typeJSON)
	if err != nil {
		return err
	}
	var reason string
	if err := decodeFields(b, map[string]field{"reason": into(&reason, "a string")}); err != nil {
		return err
	}
	w, err := rq.svc.Disable(rq.r.Context(), rq.r.PathValue("id"), reason)
	if err != nil {
		return err
	}
	return h.writeWebhook(rq, w)
}

// secretJSON is the response of the secret endpoints.
type secretJSON struct {
	WebhookID string `json:"webhook_id"`
	Secret    string `json:"secret"`
	// PreviousSecrets still sign beside Secret until they expire.
	PreviousSecrets []retiredJSON `json:"previous_secrets"`
}

type retiredJSON struct {
	Secret    string    `json:"secret"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (h *Handler) writeSecret(rq *request, w *webhook.Webhook) error {
	out := secretJSON{WebhookID: w.ID, Secret: w.Secret, PreviousSecrets: make([]retiredJSON, 0, len(w.PreviousSecrets))}
	for _, r := range w.PreviousSecrets {
		out.PreviousSecrets = append(out.PreviousSecrets, retiredJSON(r))
	}
	rq.w.Header().Set("Cache-Control", "no-store")
	return h.writeJSON(rq, http.StatusOK, out)
}

func (h *Handler) getSecret(rq *request) error {
	if _, err := query(rq.r, nil); err != nil {
		return err
	}
	w, err := rq.svc.Get(rq.r.Context(), rq.r.PathValue("id"))
	if err != nil {
		return err
	}
	return h.writeSecret(rq, w)
}

// maxGraceSeconds bounds grace_seconds of a rotation: 30 days.
const maxGraceSeconds = 30 * 24 * 3600

// rotateSecret serves POST /webhooks/{id}/secret/rotate, with an
// optional {"grace_seconds": n}: how long the old secret keeps signing,
// 0 to stop it (and any earlier one) at once; the service's
// SecretRotationGrace when absent.
func (h *Handler) rotateSecret(rq *request) error {
	if _, err := query(rq.r, nil); err != nil {
		return err
	}
	b, err := h.body(rq, false, typeJSON)
	if err != nil {
		return err
	}
	var grace *int64
	if err := decodeFields(b, map[string]field{"grace_seconds": into(&grace, "an integer")}); err != nil {
		return err
	}
	var p webhook.RotateSecretParams
	switch {
	case grace == nil: // the service's grace
	case *grace < 0 || *grace > maxGraceSeconds:
		return &apiError{status: http.StatusUnprocessableEntity, detail: "the rotation is invalid",
			errors: []fieldProblem{{Pointer: ptr("/grace_seconds"), Detail: "must be from 0 to " + strconv.Itoa(maxGraceSeconds) + " (30 days)"}}}
	case *grace == 0:
		p.Grace = -1
	default:
		p.Grace = time.Duration(*grace) * time.Second
	}
	w, err := rq.svc.RotateSecretWith(rq.r.Context(), rq.r.PathValue("id"), p)
	if err != nil {
		return err
	}
	return h.writeSecret(rq, w)
}

func (h *Handler) listEventTypes(rq *request) error {
	if _, err := query(rq.r, nil); err != nil {
		return err
	}
	hd := rq.w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("X-Content-Type-Options", "nosniff")
	_, _ = rq.w.Write(h.eventTypes)
	return nil
}

func (h *Handler) openAPI(rq *request) error {
	if _, err := query(rq.r, nil); err != nil {
		return err
	}
	hd := rq.w.Header()
	hd.Set("Content-Type", "application/yaml")
	hd.Set("X-Content-Type-Options", "nosniff")
	_, _ = rq.w.Write(h.openapi)
	return nil
}
