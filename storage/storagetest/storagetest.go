// Package storagetest is the conformance suite for webhook.Storage
// implementations. Every backend runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) webhook.Storage { return memstore.New(nil) })
//	}
//
// The suite checks every method and every promise written on
// webhook.Storage, including those about concurrency: two claimers never
// hold the same delivery, an expired lease is reclaimed and its stale
// holder's result refused, an enqueue is all-or-nothing, and an
// idempotency key enqueues once however calls race. The optional
// interfaces a Storage implements (webhook.TriggerStateStore, webhook.MetricStore) are checked
// too, the races of their compare-and-set included; the cases of those it
// does not implement are skipped.
//
// The suite simulates time through the parameters' Now, leases included:
// a Storage that keeps leases on a clock of its own (pgstore uses the
// database's) runs the suite in a mode that measures leases with the
// callers' Now instead, and tests its own clock separately.
package storagetest

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
)

// NewStore returns an empty Storage for one test. Register cleanup on t.
type NewStore func(t *testing.T) webhook.Storage

// t0 is the suite's clock origin, at microsecond precision as every
// Storage must keep.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 891011000, time.UTC)

// Run runs the whole suite, each case as a subtest on a new store.
func Run(t *testing.T, newStore NewStore) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
	for _, tc := range triggerCases {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			ts, ok := s.(webhook.TriggerStateStore)
			if !ok {
				t.Skip("the Storage does not implement webhook.TriggerStateStore")
			}
			tc.fn(t, s, ts)
		})
	}
	for _, tc := range metricCases {
		t.Run(tc.name, func(t *testing.T) {
			ms, ok := newStore(t).(webhook.MetricStore)
			if !ok {
				t.Skip("the Storage does not implement webhook.MetricStore")
			}
			tc.fn(t, ms)
		})
	}
}

var cases = []struct {
	name string
	fn   func(t *testing.T, s webhook.Storage)
}{
	{"WebhookRoundTrip", testWebhookRoundTrip},
	{"WebhookNotFound", testWebhookNotFound},
	{"WebhookDuplicate", testWebhookDuplicate},
	{"WebhookUpdateDelete", testWebhookUpdateDelete},
	{"WebhookCopiesAreIndependent", testWebhookCopies},
	{"ListWebhooksPages", testListWebhooksPages},
	{"EnqueueRoundTrip", testEnqueueRoundTrip},
	{"EnqueueAllOrNothing", testEnqueueAllOrNothing},
	{"EnqueueDuplicateOfFinished", testEnqueueDuplicateOfFinished},
	{"EnqueueRedelivery", testEnqueueRedelivery},
	{"EnqueueInvalid", testEnqueueInvalid},
	{"IdempotencyKey", testIdempotencyKey},
	{"IdempotencyKeyConcurrent", testIdempotencyKeyConcurrent},
	{"ClaimDue", testClaimDue},
	{"ClaimLimitAndOrder", testClaimLimitAndOrder},
	{"ClaimInvalid", testClaimInvalid},
	{"ClaimExcludeAndPerWebhookCap", testClaimExcludeAndCap},
	{"ClaimCapsByWebhook", testClaimCapsByWebhook},
	{"ClaimHugeLimitAndCaps", testClaimHugeLimitAndCaps},
	{"ClaimZeroCapBesideABacklog", testClaimZeroCapBesideABacklog},
	{"ClaimConcurrentDisjoint", testClaimConcurrent},
	{"ClaimCarriesWebhookVersion", testClaimWebhookVersion},
	{"LeaseExpiryReclaims", testLeaseExpiry},
	{"LateResultBeforeReclaim", testLateResultBeforeReclaim},
	{"RecordDelivered", testRecordDelivered},
	{"RecordRetrying", testRecordRetrying},
	{"RecordFailed", testRecordFailed},
	{"RecordErrors", testRecordErrors},
	{"EnqueueLeased", testEnqueueLeased},
	{"ListDeliveriesPages", testListDeliveries},
	{"ListDeliveriesFilters", testListDeliveriesFilters},
	{"ListDeliveriesFilteredPages", testListDeliveriesFilteredPages},
	{"ListDeliveriesInvalid", testListDeliveriesInvalid},
	{"HistoryWithAttempts", testHistoryWithAttempts},
	{"HistoryPageOfManyAttempts", testHistoryPageOfManyAttempts},
	{"HistoryNotFound", testHistoryNotFound},
	{"CanceledContext", testCanceledContext},
	{"ReleaseWithoutOutcome", testRelease},
	{"HistoryOutlivesWebhook", testHistoryOutlivesWebhook},
	{"DeliveryCopiesAreIndependent", testDeliveryCopies},
	{"Prune", testPrune},
	{"RecordAttemptsBatch", testRecordAttemptsBatch},
	{"UpdateWebhookConcurrent", testUpdateWebhookConcurrent},
	{"RecordRacingReclaim", testRecordRacingReclaim},
	{"ClaimExpiredWithExcludeAndCap", testClaimExpiredWithExcludeAndCap},
	{"AttemptBudget", testAttemptBudget},
	{"ReplayMarks", testReplayMarks},
	{"NonUTCTimes", testNonUTCTimes},
	{"QueueStats", testQueueStats},
	{"WebhookStats", testWebhookStats},
	{"WebhookStatsClassify", testWebhookStatsClassify},
}

// newID returns a new time-ordered ID like the Service's.
func newID(t *testing.T) string {
	t.Helper()
	id, err := uuid.NewV7()
	require.NoError(t, err)
	return id.String()
}
