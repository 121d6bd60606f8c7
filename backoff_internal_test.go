package webhook

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestClaimBackoffNeverWaitsLessThanThePollInterval(t *testing.T) {
	for _, poll := range []time.Duration{10 * time.Millisecond, time.Second, 45 * time.Second, time.Minute, 2 * time.Minute, time.Hour} {
		var b time.Duration
		for i := range 12 {
			prev := b
			b = claimBackoff(b, poll)
			assert.GreaterOrEqual(t, b/2, poll, "poll %v, failure %d: the shortest wait", poll, i+1)
			assert.GreaterOrEqual(t, b, prev, "poll %v, failure %d: waits do not shrink", poll, i+1)
			assert.LessOrEqual(t, b, max(maxClaimBackoff, 2*poll), "poll %v, failure %d: the longest wait", poll, i+1)
		}
	}
}
