package memstore

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/analytics-webhooks/webhook"
)

var _ webhook.QueueStatsReader = (*Store)(nil)

// QueueStats implements webhook.QueueStatsReader. It reads only the
// unfinished deliveries, so its cost follows the backlog.
func (s *Store) QueueStats(ctx context.Context, p webhook.QueueStatsParams) (webhook.QueueStats, error) {
	if err := ctx.Err(); err != nil {
		return webhook.QueueStats{}, err
	}
	p, err := p.Validate()
	if err != nil {
		return webhook.QueueStats{}, err
	}
	q := webhook.NewQueueStats()
	perWebhook := map[string]int64{}
	s.mu.Lock()
	for _, qu := range s.queues {
		if p.TopWebhooks > 0 {
			perWebhook[qu.webhookID] += int64(len(qu.h))
		}
		for _, d := range qu.h {
			q.Depth[d.status()]++
			if d.status() == webhook.StatusDelivering {
				continue
			}
			next := fromMicros(d.next)
			if !next.After(p.Now) {
				q.Due++
			}
			if q.OldestDue.IsZero() || next.Before(q.OldestDue) {
				q.OldestDue = next
			}
		}
	}
	s.mu.Unlock()
	if p.TopWebhooks > 0 {
		top := make([]webhook.WebhookBacklog, 0, len(perWebhook))
		for id, n := range perWebhook {
			top = append(top, webhook.WebhookBacklog{WebhookID: id, Unfinished: n})
		}
		slices.SortFunc(top, func(a, b webhook.WebhookBacklog) int {
			return cmp.Or(cmp.Compare(b.Unfinished, a.Unfinished), strings.Compare(a.WebhookID, b.WebhookID))
		})
		q.TopBacklog = top[:min(p.TopWebhooks, len(top))]
	}
	return q, nil
}

var _ webhook.StatsReader = (*Store)(nil)

// WebhookStats implements webhook.StatsReader. It reads the webhook's
// own deliveries only.
func (s *Store) WebhookStats(ctx context.Context, p webhook.StatsParams) (*webhook.WebhookStats, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	b := webhook.NewStatsBuilder(p.WebhookID, p.Since)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.byWebhook[p.WebhookID] {
		if fromMicros(d.created).Before(p.Since) {
			continue
		}
		b.Add(d.view(false), d.attempts())
	}
	return b.Stats(), nil
}
