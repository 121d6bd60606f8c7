package webhook

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
)

func req(id string) recordReq { return recordReq{p: RecordAttemptParams{DeliveryID: id}} }

func ids(batch []recordReq) []string {
	out := make([]string, len(batch))
	for i, r := range batch {
		out[i] = r.p.DeliveryID
	}
	return out
}

// At an idle worker's pace a batch is written at once, with what is
// queued already.
func TestRecorderDoesNotWaitWhenIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &Worker{results: make(chan recordReq, 8)}
		w.results <- req("b")
		w.results <- req("c")
		linger := time.NewTimer(time.Hour)
		linger.Stop()
		start := time.Now()
		got := w.collect([]recordReq{req("a")}, false, linger)
		assert.Equal(t, []string{"a", "b", "c"}, ids(got))
		assert.Zero(t, time.Since(start))
	})
}

// While results come fast, a batch waits up to recordLinger for more,
// and stops waiting once it holds fullRecordBatch.
func TestRecorderLetsABusyBatchFill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &Worker{results: make(chan recordReq, 8)}
		go func() { // results at 0, 0.5, 1.5 and 3.5ms
			for _, gap := range []time.Duration{0, 500 * time.Microsecond, time.Millisecond, recordLinger} {
				time.Sleep(gap)
				w.results <- req(gap.String())
			}
		}()
		linger := time.NewTimer(time.Hour)
		linger.Stop()
		start := time.Now()
		got := w.collect([]recordReq{req("first")}, true, linger)
		assert.Equal(t, []string{"first", "0s", "500µs", "1ms"}, ids(got), "the results of the first %v", recordLinger)
		assert.Equal(t, recordLinger, time.Since(start))
		assert.Equal(t, recordLinger.String(), (<-w.results).p.DeliveryID, "left for the next batch")

		// A full batch is written at once.
		full := make(chan recordReq, fullRecordBatch)
		w.results = full
		for i := range fullRecordBatch - 1 {
			full <- req(string(rune('a' + i%26)))
		}
		start = time.Now()
		got = w.collect([]recordReq{req("first")}, true, linger)
		assert.Len(t, got, fullRecordBatch)
		assert.Zero(t, time.Since(start))

		// The recorder stopping ends the wait.
		w.results = make(chan recordReq)
		close(w.results)
		got = w.collect([]recordReq{req("last")}, true, linger)
		assert.Equal(t, []string{"last"}, ids(got))
	})
}
