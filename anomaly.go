package webhook

import (
	"context"
	"time"
)

// validateAnomaly adds the problems of an anomaly trigger's detector
// fields to ps under prefix.
func validateAnomaly(ps *problems, prefix string, t Trigger) {
	ps.add(joinPath(prefix, "trigger_type"), `trigger type "anomaly" is not supported yet`)
}

// evaluateAnomalies runs the detectors of the indexed webhooks' anomaly
// triggers over the buckets closed by now.
func (s *Service) evaluateAnomalies(ctx context.Context, now time.Time, idx *index) error {
	return nil
}
