package pgstore

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The queue view reads the partial index of unfinished deliveries (never
// the whole table, whose size follows the history).
func TestQueueStatsReadsTheUnfinishedIndex(t *testing.T) {
	s, pool := unmigratedStore(t)
	require.NoError(t, s.Migrate(t.Context()))
	for name, q := range map[string]struct {
		sql  string
		args []any
	}{
		"depth": {queueDepthSQL, []any{"2026-03-04T05:06:07Z"}},
		"top":   {queueTopSQL, []any{10}},
	} {
		text := explainGeneric(t, pool, s.stmt(q.sql), q.args...)
		assert.Regexp(t, `(Index|Index Only|Bitmap Index) Scan (using|on) deliveries_unfinished_idx`, text, "%s:\n%s", name, text)
		assert.NotContains(t, text, "Seq Scan", "%s:\n%s", name, text)
	}
}
