package httpapi

import (
	"net/http"
	"time"
)

// statsQuery are the query parameters of the stats.
var statsQuery = map[string]bool{"since": false}

// webhookStats serves GET /webhooks/{id}/stats: the webhook's
// webhook.WebhookStats over the deliveries created at or after since
// (RFC 3339; webhook.DefaultStatsWindow ago when absent).
func (h *Handler) webhookStats(rq *request) error {
	q, err := query(rq.r, statsQuery)
	if err != nil {
		return err
	}
	var since time.Time
	if v := q.Get("since"); v != "" {
		ts, err := time.Parse(time.RFC3339Nano, v)
		if err != nil || ts.UTC().Year() < 1 || ts.UTC().Year() > 9999 {
			return badRequest("invalid stats window",
				fieldProblem{Parameter: "since", Detail: "must be an RFC 3339 time, such as 2026-11-28T09:00:00Z"})
		}
		since = ts.UTC()
	}
	st, err := rq.svc.Stats(rq.r.Context(), rq.r.PathValue("id"), since)
	if err != nil {
		return err
	}
	return h.writeJSON(rq, http.StatusOK, st)
}
