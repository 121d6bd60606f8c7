package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/analytics-webhooks/webhook"
)

// maxUpdateRetries bounds how often PUT and PATCH without a version
// read the webhook again after it changed under them (the library's
// health counters change it too).
const maxUpdateRetries = 5

func (h *Handler) listWebhooks(rq *request) error {
	q, err := query(rq.r, map[string]bool{"limit": false, "cursor": false})
	if err != nil {
		return err
	}
	limit, err := pageLimit(q.Get("limit"))
	if err != nil {
		return err
	}
	after, err := decodeCursor(cursorWebhooks, q.Get("cursor"))
	if err != nil {
		return err
	}
	fetch := min(limit+1, webhook.MaxPageSize)
	rows, err := h.webhookRows(rq, after, fetch)
	if err != nil {
		return cursorRefused(err, after)
	}
	more := len(rows) > limit
	if more {
		rows = rows[:limit]
	} else if len(rows) == limit && fetch == limit {
		// A full page of the largest size: look one row further.
		next, err := h.webhookRows(rq, rows[len(rows)-1].id, 1)
		if err != nil {
			return err
		}
		more = len(next) > 0
	}
	out := page[*webhook.Webhook]{Data: make([]*webhook.Webhook, 0, len(rows)), HasMore: more}
	for _, r := range rows {
		if r.w != nil {
			out.Data = append(out.Data, r.w)
		}
	}
	if more {
		out.NextCursor = encodeCursor(cursorWebhooks, rows[len(rows)-1].id)
	}
	b, err := marshalPage(out.Data, out.NextCursor, out.HasMore)
	if err != nil {
		return err
	}
	return h.writeJSON(rq, http.StatusOK, json.RawMessage(b))
}

// webhookRow is a listed webhook, nil when its stored row could not be
// read back: it is left out of the page but counts for the cursor.
type webhookRow struct {
	id string
	w  *webhook.Webhook
}

// webhookRows lists up to limit rows after the ID, in ID order.
func (h *Handler) webhookRows(rq *request, after string, limit int) ([]webhookRow, error) {
	ws, err := rq.svc.List(rq.r.Context(), webhook.ListWebhooksParams{After: after, Limit: limit})
	var corrupt []*webhook.CorruptWebhookError
	if errors.Is(err, webhook.ErrCorruptWebhook) {
		corrupt = webhook.CorruptWebhooks(err)
		slices.SortFunc(corrupt, func(a, b *webhook.CorruptWebhookError) int { return strings.Compare(a.ID, b.ID) })
		h.log.WarnContext(rq.r.Context(), "httpapi: stored webhooks that cannot be read are left out of the list", "count", len(corrupt), "error", err)
		err = nil
	}
	if err != nil {
		return nil, err
	}
	rows := make([]webhookRow, 0, len(ws)+len(corrupt))
	i, j := 0, 0
	for i < len(ws) || j < len(corrupt) {
		if j == len(corrupt) || (i < len(ws) && ws[i].ID < corrupt[j].ID) {
			rows = append(rows, webhookRow{id: ws[i].ID, w: ws[i]})
			i++
		} else {
			rows = append(rows, webhookRow{id: corrupt[j].ID})
			j++
		}
	}
	return rows, nil
}

func (h *Handler) createWebhook(rq *request) error {
	if _, err := query(rq.r, nil); err != nil {
		return err
	}
	key, err := idempotencyKey(rq.r)
	if err != nil {
		return err
	}
	b, err := h.body(rq, true, typeJSON)
	if err != nil {
		return err
	}
	var in webhook.Webhook
	if err := json.Unmarshal(b, &in); err != nil {
		return decodeError(err)
	}
	in.TenantID = "" // the request's tenant, or none
	w, created, err := rq.svc.CreateWith(rq.r.Context(), &in, webhook.CreateParams{IdempotencyKey: key})
	if err != nil {
		return err
	}
	hd := rq.w.Header()
	hd.Set("Location", h.location("/webhooks/"+w.ID))
	hd.Set("ETag", etag(w.Version))
	hd.Set("Cache-Control", "no-store")
	if !created {
		hd.Set("Idempotent-Replayed", "true")
	}
	return h.writeJSON(rq, http.StatusCreated, w.WithSecrets())
}

// idempotencyKey returns the request's Idempotency-Key, "" if none.
func idempotencyKey(r *http.Request) (string, error) {
	vs := r.Header.Values("Idempotency-Key")
	if len(vs) == 0 {
		return "", nil
	}
	if len(vs) > 1 || vs[0] == "" || len(vs[0]) > webhook.MaxIdempotencyKeyLength || !printable(vs[0]) {
		return "", badRequest("invalid Idempotency-Key", fieldProblem{Header: "Idempotency-Key",
			Detail: "must appear once, printable, of 1 to " + strconv.Itoa(webhook.MaxIdempotencyKeyLength) + " bytes"})
	}
	return vs[0], nil
}

func (h *Handler) getWebhook(rq *request) error {
	if _, err := query(rq.r, nil); err != nil {
		return err
	}
	w, err := rq.svc.Get(rq.r.Context(), rq.r.PathValue("id"))
	if err != nil {
		return err
	}
	return h.writeWebhook(rq, w)
}

// writeWebhook writes a webhook, without its secrets, with its ETag.
func (h *Handler) writeWebhook(rq *request, w *webhook.Webhook) error {
	rq.w.Header().Set("ETag", etag(w.Version))
	return h.writeJSON(rq, http.StatusOK, w)
}

func (h *Handler) deleteWebhook(rq *request) error {
	if _, err := query(rq.r, nil); err != nil {
		return err
	}
	if err := rq.svc.Delete(rq.r.Context(), rq.r.PathValue("id")); err != nil {
		return err
	}
	rq.w.WriteHeader(http.StatusNoContent)
	return nil
}

// replaceWebhook serves PUT: the body replaces the webhook's
// configuration. Omitted fields take their defaults as on create,
// except "enabled" (and "disabled_reason"), which keep their current
// values: a PUT never enables or disables a webhook unless it says so.
// Read-only fields (id, tenant_id, created_at, updated_at,
// consecutive_failures, failing_since) are ignored, but "id" must be
// the URL's; "version", like If-Match, makes the update conditional.
// Secrets cannot be set: rotate them.
func (h *Handler) replaceWebhook(rq *request) error {
	id := rq.r.PathValue("id")
	if _, err := query(rq.r, nil); err != nil {
		return err
	}
	match, err := parseIfMatch(rq.r)
	if err != nil {
		return err
	}
	b, err := h.body(rq, true, typeJSON)
	if err != nil {
		return err
	}
	var in webhook.Webhook
	if err := json.Unmarshal(b, &in); err != nil {
		return decodeError(err)
	}
	keys := presentKeys(b)
	if err := checkFixed(keys, &in, id); err != nil {
		return err
	}
	return h.update(rq, id, match, bodyVersion(keys, in.Version), func(cur *webhook.Webhook) (*webhook.Webhook, error) {
		w := in.Clone()
		if !keys["enabled"] {
			w.Disabled, w.DisabledReason = cur.Disabled, cur.DisabledReason
		}
		return w, nil
	})
}

// presentKeys returns the top-level keys of a JSON object whose values
// are not null.
func presentKeys(b []byte) map[string]bool {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(b, &m) // the body decoded as a webhook already
	out := make(map[string]bool, len(m))
	for k, v := range m {
		if !bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			out[k] = true
		}
	}
	return out
}

// checkFixed refuses an update body that sets secrets or another ID.
func checkFixed(keys map[string]bool, in *webhook.Webhook, id string) error {
	var problems []fieldProblem
	for _, k := range []string{"secret", "previous_secrets"} {
		if keys[k] {
			problems = append(problems, fieldProblem{Pointer: ptr("/" + k), Detail: "cannot be changed by an update; rotate the secret with POST /webhooks/{id}/secret/rotate"})
		}
	}
	if keys["id"] && in.ID != id {
		problems = append(problems, fieldProblem{Pointer: ptr("/id"), Detail: "must be the ID in the URL, or be left out"})
	}
	if len(problems) > 0 {
		return badRequest("the request body sets fields an update cannot change", problems...)
	}
	return nil
}

// bodyVersion returns the version a body asks to update, 0 for none.
func bodyVersion(keys map[string]bool, v int64) int64 {
	if !keys["version"] {
		return 0
	}
	return v
}

// update reads the webhook, builds its next configuration and stores
// it, conditional on the version the client named (If-Match or the
// body's "version"): 412 or 409 when it is no longer current. Without
// one, a webhook that changed meanwhile is read again and the update
// built anew, so that a concurrent change (say, of the enabled state)
// is never overwritten with an older value.
func (h *Handler) update(rq *request, id string, match *ifMatch, version int64, build func(cur *webhook.Webhook) (*webhook.Webhook, error)) error {
	for attempt := 0; ; attempt++ {
		cur, err := rq.svc.Get(rq.r.Context(), id)
		if err != nil {
			return err
		}
		if match != nil && !match.matches(cur.Version) {
			return newError(http.StatusPreconditionFailed, "If-Match does not name the webhook's current version (its ETag)")
		}
		if version != 0 && version != cur.Version {
			return &apiError{status: http.StatusConflict, detail: "the webhook changed since the version given; read it again and retry",
				errors: []fieldProblem{{Pointer: ptr("/version"), Detail: "is " + strconv.FormatInt(version, 10) + ", current is " + strconv.FormatInt(cur.Version, 10)}}}
		}
		w, err := build(cur)
		if err != nil {
			return err
		}
		w.ID, w.Version = id, cur.Version
		got, err := rq.svc.Update(rq.r.Context(), w)
		switch {
		case errors.Is(err, webhook.ErrConflict) && match == nil && version == 0 && attempt < maxUpdateRetries:
			continue
		case errors.Is(err, webhook.ErrConflict) && match != nil:
			return newError(http.StatusPreconditionFailed, "the webhook changed; If-Match no longer names its current version")
		case err != nil:
			return err
		}
		return h.writeWebhook(rq, got)
	}
}

// etag is the entity tag of a webhook version.
func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// ifMatch is a parsed If-Match header.
type ifMatch struct {
	any      bool
	versions []int64
}

func (m *ifMatch) matches(v int64) bool {
	if m.any {
		return true
	}
	for _, x := range m.versions {
		if x == v {
			return true
		}
	}
	return false
}

// parseIfMatch returns the request's If-Match, nil if none. Weak tags
// and tags that are not versions never match (RFC 9110 compares
// If-Match strongly).
func parseIfMatch(r *http.Request) (*ifMatch, error) {
	vs := r.Header.Values("If-Match")
	if len(vs) == 0 {
		return nil, nil
	}
	m := &ifMatch{}
	for _, v := range vs {
		for tag := range strings.SplitSeq(v, ",") {
			tag = strings.TrimSpace(tag)
			if tag == "*" {
				m.any = true
				continue
			}
			inner, ok := strings.CutPrefix(tag, `"`)
			if inner, ok2 := strings.CutSuffix(inner, `"`); ok && ok2 {
				if n, err := strconv.ParseInt(inner, 10, 64); err == nil && n > 0 {
					m.versions = append(m.versions, n)
				}
			}
		}
	}
	return m, nil
}
