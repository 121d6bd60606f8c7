package webhook

import (
	"context"
	"errors"
	"fmt"
)

// QueueStats returns the state of the whole delivery queue, every
// tenant's and deleted webhooks' deliveries included: how many
// deliveries are pending, delivering and retrying, how many are due now,
// the earliest due time, and the topWebhooks webhooks with the largest
// backlogs (none for 0; at most MaxTopWebhooks). It reads the Storage's
// QueueStatsReader, which answers from indexes of the unfinished
// deliveries only, so it is cheap enough to poll. It returns an error
// wrapping errors.ErrUnsupported if the Storage does not implement
// QueueStatsReader, ErrInvalid for a negative topWebhooks, and the
// Storage's error otherwise.
func (s *Service) QueueStats(ctx context.Context, topWebhooks int) (QueueStats, error) {
	r, ok := s.store.(QueueStatsReader)
	if !ok {
		return QueueStats{}, fmt.Errorf("webhook: queue stats: %T does not implement QueueStatsReader: %w", s.store, errors.ErrUnsupported)
	}
	p, err := QueueStatsParams{TopWebhooks: topWebhooks, Now: s.clock()}.Validate()
	if err != nil {
		return QueueStats{}, err
	}
	q, err := r.QueueStats(ctx, p)
	if err != nil {
		return QueueStats{}, fmt.Errorf("webhook: queue stats: %w", err)
	}
	return q, nil
}
