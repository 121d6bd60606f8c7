package pgstore

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every shape of history page, filters and attempts included, reads an
// index in the page's order from the cursor on, also in the generic plan
// PostgreSQL may use for a statement pgx prepared: never every delivery
// of the table or of the webhook, nor a sort of the webhook's history.
func TestHistoryPagesReadIndexesInOrder(t *testing.T) {
	s, pool := unmigratedStore(t)
	require.NoError(t, s.Migrate(t.Context()))

	statusSets := map[string][]webhook.DeliveryStatus{
		"any":      nil,
		"one":      {webhook.StatusDelivered},
		"failed":   {webhook.StatusFailed},
		"final":    {webhook.StatusFailed, webhook.StatusDelivered},
		"pending":  {webhook.StatusPending},
		"unfinish": {webhook.StatusPending, webhook.StatusRetrying},
		"mixed":    {webhook.StatusFailed, webhook.StatusDelivering},
	}
	sorts := regexp.MustCompile(`(?m)^\s*(->\s+)?Sort\s+\(`)
	for name, statuses := range statusSets {
		for shape := range 32 {
			p := webhook.ListDeliveriesParams{WebhookID: "0190c2b4-8d1e-7000-8000-000000000001", Statuses: statuses, Limit: 100}
			if shape&1 != 0 {
				p.EventTypes = []string{"order.paid", "$error"}
			}
			if shape&2 != 0 {
				p.Since = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			}
			if shape&4 != 0 {
				p.Until = time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
			}
			p.NotRedelivered = shape&8 != 0
			attempts := shape&16 != 0
			label := fmt.Sprintf("statuses %s, shape %05b", name, shape)

			sql, args := s.listDeliveriesQuery(p, maxUUID, attempts)
			assert.NotContains(t, sql, "= ''", label) // no "($n = '' OR …)"
			plan := explainGeneric(t, pool, sql, args...)
			assert.NotContains(t, plan, "Seq Scan", "%s:\n%s", label, plan)
			assert.Regexp(t, `Index Cond: .*webhook_id = \(\$1\)::uuid`, plan, "%s: only the webhook's rows:\n%s", label, plan)
			// The history: the finished deliveries.
			switch name {
			case "any", "final":
				assert.Contains(t, plan, "Index Scan Backward using deliveries_webhook_idx", "%s:\n%s", label, plan)
			case "failed", "mixed":
				if p.NotRedelivered {
					assert.Contains(t, plan, "Index Scan Backward using deliveries_replayable_idx", "%s:\n%s", label, plan)
				} else {
					assert.Contains(t, plan, "Index Scan Backward using deliveries_webhook_status_idx", "%s:\n%s", label, plan)
				}
			case "one":
				assert.Contains(t, plan, "Index Scan Backward using deliveries_webhook_status_idx", "%s:\n%s", label, plan)
			default:
				assert.NotRegexp(t, ` on deliveries`, plan, "%s: no finished status selected:\n%s", label, plan)
			}
			// The queue: the unfinished ones.
			switch name {
			case "one", "failed", "final":
				assert.NotRegexp(t, ` on queue`, plan, "%s: no unfinished status selected:\n%s", label, plan)
			default:
				assert.Contains(t, plan, "Index Scan Backward using queue_webhook_idx", "%s:\n%s", label, plan)
			}
			if name == "any" || name == "unfinish" || name == "mixed" {
				// A page per stored status of the queue (pending,
				// retrying; delivering ones are leased ones of either),
				// merged: the sort is of at most two pages, below a loop
				// over the statuses.
				assert.Contains(t, plan, "Function Scan on unnest", "%s:\n%s", label, plan)
				assert.Len(t, sorts.FindAllString(plan, -1), 1, "%s:\n%s", label, plan)
			} else {
				assert.Empty(t, sorts.FindAllString(plan, -1), "%s:\n%s", label, plan)
			}
			if attempts {
				assert.Contains(t, plan, "attempts_pkey", "%s: attempts through their key:\n%s", label, plan)
			}
		}
	}
}
