package pgstore

import (
	"errors"
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
// filters gets a statement of its own, each of which reads an index in
// the page's order (see TestHistoryPagesReadIndexesInOrder):
//
//   - no status filter: deliveries_webhook_idx backwards from the
//     cursor, other filters checked on the way;
//   - one status: deliveries_webhook_status_idx the same way, or
//     deliveries_replayable_idx for the failed deliveries not
//     redelivered that a replay reads;
//   - several statuses: one such read of at most a page per status, in a
//     lateral join over the statuses, merged newest first, so that the
//     cost follows the page size and the number of statuses, not the
//     length of the history.
//
// Event types, Since and Until are checked on the rows an index read
// returns: a page filtered by them alone reads the webhook's deliveries
// newest first until it is full.
func (s *Store) listDeliveriesQuery(p webhook.ListDeliveriesParams, before string, attempts bool) (string, []any) {
	table := pgx.Identifier{s.schema}.Sanitize() + ".deliveries"
	limit := webhook.PageLimit(p.Limit)
	args := []any{p.WebhookID, before, limit}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	statuses := p.SelectedStatuses()
	conds := []string{"x.webhook_id = $1::uuid", "x.id < $2::uuid"}
	switch {
	case len(statuses) == 1 && statuses[0] == webhook.StatusFailed && p.NotRedelivered:
		// The predicate of the partial index, spelt as in its definition.
		conds = append(conds, "x.status = 'failed'", "x.redelivered_by IS NULL")
	case len(statuses) == 1:
		conds = append(conds, "x.status = "+arg(string(statuses[0])))
	case len(statuses) > 1:
		conds = append(conds, "x.status = st.status")
	}
	if p.NotRedelivered && !(len(statuses) == 1 && statuses[0] == webhook.StatusFailed) {
		conds = append(conds, "x.redelivered_by IS NULL")
	}
	if len(p.EventTypes) > 0 {
		conds = append(conds, "x.event_type = ANY ("+arg(p.EventTypes)+"::text[])")
	}
	if !p.Since.IsZero() {
		conds = append(conds, "x.created_at >= "+arg(p.Since)+"::timestamptz")
	}
	if !p.Until.IsZero() {
		conds = append(conds, "x.created_at < "+arg(p.Until)+"::timestamptz")
	}
	page := `SELECT x.* FROM ` + table + ` x WHERE ` + strings.Join(conds, " AND ") + ` ORDER BY x.id DESC LIMIT $3`
	if len(statuses) > 1 {
		names := make([]string, len(statuses))
		for i, st := range statuses {
			names[i] = string(st)
		}
		page = `SELECT y.* FROM unnest(` + arg(names) + `::text[]) AS st(status) CROSS JOIN LATERAL (` + page + `) y
			ORDER BY y.id DESC LIMIT $3`
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
