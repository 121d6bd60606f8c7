package webhook

import (
	"context"
	"time"
)

// compiledSchedule is a scheduled trigger's validated schedule.
type compiledSchedule struct{}

// validateSchedule adds the problems of a scheduled trigger's schedule
// fields to ps under prefix and returns the compiled schedule
// (meaningful only when no problem was added).
func validateSchedule(ps *problems, prefix string, t Trigger) *compiledSchedule {
	ps.add(joinPath(prefix, "trigger_type"), `trigger type "scheduled" is not supported yet`)
	return nil
}

// evaluateSchedules enqueues the summaries of the periods ended by now.
func (s *Service) evaluateSchedules(ctx context.Context, now time.Time, idx *index) error {
	return nil
}
