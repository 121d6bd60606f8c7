package pgstore

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/jackc/pgx/v5"
)

// listDeliveriesQuery returns the statement and arguments that read a
// page of deliveries (deliveryColumns, newest first) for p, which
// Validate accepted, below the cursor before (a UUID), followed with
// attempts set by the columns scanAttemptArrays reads.
//
// The statement holds a condition only for each filter that is set, never
// "($n = ” OR column = $n)": pgx prepares a statement once per connection
// and PostgreSQL may then plan it once for all arguments (a generic
// plan), which could then use no index for the filters. So each shape of
// filters gets a statement of its own, each of which reads indexes in
// the page's order (see TestHistoryPagesReadIndexesInOrder).
//
// Finished deliveries are in the history table, unfinished ones in the
// queue (migration 008); a page reads the tables its statuses are in,
// at most a page from each, merged newest first:
//
//   - the history: deliveries_webhook_idx backwards from the cursor when
//     no status or both final ones are selected, other filters checked
//     on the way; deliveries_webhook_status_idx for one status, or
//     deliveries_replayable_idx for the failed deliveries not redelivered
//     that a replay reads;
//   - the queue: queue_webhook_idx (webhook_id, status, id), one read of
//     at most a page per stored status (pending, retrying) a selected
//     status may be under (a delivering delivery is a leased one of
//     either), in a lateral join over them,
//
// so that the cost follows the page size and the number of statuses,
// not the length of the history or of the backlog.
//
// Event types, Since and Until are checked on the rows an index read
// returns: a page filtered by them alone reads the webhook's deliveries
// newest first until it is full.
func (s *Store) listDeliveriesQuery(p webhook.ListDeliveriesParams, before string, attempts bool) (string, []any) {
	schema := pgx.Identifier{s.schema}.Sanitize()
	limit := webhook.PageLimit(p.Limit)
	args := []any{p.WebhookID, before, limit}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	statuses := p.SelectedStatuses()
	var final, open []string
	for _, st := range statuses {
		if st.Final() {
			final = append(final, string(st))
		} else {
			open = append(open, string(st))
		}
	}
	if len(statuses) == 0 {
		open = []string{string(webhook.StatusPending), string(webhook.StatusRetrying), string(webhook.StatusDelivering)}
	}
	common := []string{"x.webhook_id = $1::uuid", "x.id < $2::uuid"}
	if len(p.EventTypes) > 0 {
		common = append(common, "x.event_type = ANY ("+arg(p.EventTypes)+"::text[])")
	}
	if !p.Since.IsZero() {
		common = append(common, "x.created_at >= "+arg(p.Since)+"::timestamptz")
	}
	if !p.Until.IsZero() {
		common = append(common, "x.created_at < "+arg(p.Until)+"::timestamptz")
	}
	read := func(table string, conds []string) string {
		return `SELECT x.* FROM ` + schema + `.` + table + ` x WHERE ` + strings.Join(conds, " AND ") + ` ORDER BY x.id DESC LIMIT $3`
	}
	var branches []string
	if len(statuses) == 0 || len(final) > 0 {
		conds := slices.Clone(common)
		replayable := len(final) == 1 && final[0] == string(webhook.StatusFailed) && p.NotRedelivered
		switch {
		case replayable:
			// The predicate of the partial index, spelt as in its definition.
			conds = append(conds, "x.status = 'failed'", "x.redelivered_by IS NULL")
		case len(final) == 1:
			conds = append(conds, "x.status = "+arg(final[0]))
		}
		if p.NotRedelivered && !replayable {
			conds = append(conds, "x.redelivered_by IS NULL")
		}
		branches = append(branches, read("deliveries", conds))
	}
	if len(open) > 0 {
		// The queue's status column says pending or retrying; a leased
		// delivery is delivering (statusColumn). Read the stored
		// statuses a selected status may be under, and check the
		// derived one unless every unfinished status is selected.
		delivering := slices.Contains(open, string(webhook.StatusDelivering))
		var stored []string
		for _, st := range []string{string(webhook.StatusPending), string(webhook.StatusRetrying)} {
			if delivering || slices.Contains(open, st) {
				stored = append(stored, st)
			}
		}
		conds := slices.Clone(common)
		if p.NotRedelivered {
			conds = append(conds, "x.redelivered_by IS NULL")
		}
		if len(open) < 3 {
			conds = append(conds, "(CASE WHEN x.lease_token IS NULL THEN x.status ELSE 'delivering' END) = ANY ("+arg(open)+"::text[])")
		}
		if len(stored) == 1 {
			branches = append(branches, read("queue", append(conds, "x.status = "+arg(stored[0]))))
		} else {
			branches = append(branches, `SELECT y.* FROM unnest(`+arg(stored)+`::text[]) AS st(status) CROSS JOIN LATERAL (`+
				read("queue", append(conds, "x.status = st.status"))+`) y`)
		}
	}
	page := `SELECT u.* FROM ((` + strings.Join(branches, `) UNION ALL (`) + `)) u ORDER BY u.id DESC LIMIT $3`
	if len(branches) == 1 && !strings.HasPrefix(branches[0], "SELECT y.*") {
		page = branches[0]
	}
	if !attempts {
		return `SELECT ` + deliveryColumns + ` FROM (` + page + `) d ORDER BY d.id DESC`, args
	}
	// One row per delivery, its attempts in arrays (oldest first) read
	// through the attempts' primary key.
	return `SELECT ` + deliveryColumns + `, a.numbers, a.started, a.durations, a.codes, a.bodies, a.errors
		FROM (` + page + `) d CROSS JOIN LATERAL (
			SELECT array_agg(number ORDER BY number) AS numbers, array_agg(started_at ORDER BY number) AS started,
				array_agg(duration_ns ORDER BY number) AS durations, array_agg(status_code ORDER BY number) AS codes,
				array_agg(response_body ORDER BY number) AS bodies, array_agg(error ORDER BY number) AS errors
			FROM ` + pgx.Identifier{s.schema}.Sanitize() + `.attempts WHERE delivery_id = d.id
		) a
		ORDER BY d.id DESC`, args
}

// attemptArrays holds a delivery's attempts as listDeliveriesQuery
// returns them, while scanning.
type attemptArrays struct {
	numbers, codes []int32
	started        []time.Time
	durations      []int64
	bodies, errors []string
}

func (a *attemptArrays) dest() []any {
	return []any{&a.numbers, &a.started, &a.durations, &a.codes, &a.bodies, &a.errors}
}

// attempts returns the attempts of delivery id; an error if the arrays
// disagree, which the statement rules out.
func (a *attemptArrays) attempts(id string) ([]webhook.Attempt, error) {
	n := len(a.numbers)
	if len(a.started) != n || len(a.durations) != n || len(a.codes) != n || len(a.bodies) != n || len(a.errors) != n {
		return nil, errAttemptArrays
	}
	out := make([]webhook.Attempt, n)
	for i := range out {
		out[i] = webhook.Attempt{
			DeliveryID: id, Number: int(a.numbers[i]), StartedAt: a.started[i].UTC(), Duration: time.Duration(a.durations[i]),
			StatusCode: int(a.codes[i]), ResponseBody: a.bodies[i], Error: a.errors[i],
		}
	}
	return out, nil
}

// errAttemptArrays reports attempt arrays of different lengths.
var errAttemptArrays = errors.New("pgstore: attempt columns of different lengths")
