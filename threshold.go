package webhook

import (
	"context"
	"fmt"
	"math"
	"time"
)

// validateCondition adds the problems of one threshold condition to ps
// under field ("triggers[0].conditions[1]").
func validateCondition(ps *problems, field string, c Condition) {
	if c.Metric == "" {
		ps.add(field+".metric", "must not be empty")
	} else if len(c.Metric) > MaxEventNameLength || !printable(c.Metric) {
		ps.add(field+".metric", fmt.Sprintf("must be printable UTF-8 of at most %d bytes", MaxEventNameLength))
	}
	switch c.Operator {
	case ConditionGT, ConditionGTE, ConditionLT, ConditionLTE, ConditionEQ:
	default:
		ps.add(field+".operator", fmt.Sprintf("unknown condition operator %q (want gt, gte, lt, lte or eq)", truncate(string(c.Operator))))
	}
	if math.IsNaN(c.Value) || math.IsInf(c.Value, 0) {
		ps.add(field+".value", "must be a finite number")
	}
	if c.WindowSeconds != 0 {
		ps.add(field+".window_seconds", "windows are not supported yet: must be 0 (TriggerThreshold compares the value it is given)")
	}
}

// evaluateThresholds evaluates the threshold conditions of the indexed
// webhooks at now.
func (s *Service) evaluateThresholds(ctx context.Context, now time.Time, idx *index) error {
	return nil
}
