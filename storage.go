package webhook

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Storage keeps webhooks, payloads, deliveries and their attempts. It is
// the one interface a backend implements (memstore and storage/pgstore
// do); storage/storagetest checks an implementation against every promise
// written here.
//
// All methods must be safe for concurrent use, also by several processes
// sharing one database. Times passed in parameters are the caller's clock,
// and a Storage keeps them to at least microsecond precision. A Storage
// compares due times (NextAttemptAt) with the caller's Now. Leases are the
// exception: a Storage that several machines share should measure them on
// one clock of its own (pgstore uses the database's), setting a claim's
// lease to its own time plus LeaseDuration and taking a lease as expired
// by its own time, so that clock skew between callers can neither make a
// live lease look expired (a second send, an attempt burned) nor keep a
// dead one. Lease.ExpiresAt is then on the Storage's clock: callers must
// not compare it with their own, but measure LeaseDuration from when they
// claimed. A Storage without a clock of its own (memstore) uses the
// callers' Now for leases too.
//
// A write whose commit may or may not have happened (the connection was
// lost after the statement or COMMIT was sent) is reported with an error
// wrapping ErrCommitUnknown, never as a plain failure.
//
// Errors: a missing row is reported with an error wrapping ErrNotFound, a
// clashing ID with ErrDuplicate, a lost lease with ErrLeaseLost and
// malformed parameters with ErrInvalid. Backends translate their own
// errors into these; other errors are failures of the backend itself.
//
// Every method returns promptly once its ctx is done: Worker.Run's
// ShutdownTimeout bounds the drain only if the Storage calls it waits
// for do.
//
// Returned values are the caller's own: a Storage must not keep or modify
// them afterwards, nor keep the values it is given.
//
// New methods are added to Storage through optional interfaces, as
// database/sql/driver does, so implementations do not break.
type Storage interface {
	// CreateWebhook stores a new webhook. It returns ErrDuplicate if a
	// webhook with the same ID exists.
	CreateWebhook(ctx context.Context, w *Webhook) error
	// GetWebhook returns the webhook with the given ID, or ErrNotFound.
	// A stored row that cannot be read back gives a
	// *CorruptWebhookError, with the row's TenantID where the Storage
	// can tell it.
	GetWebhook(ctx context.Context, id string) (*Webhook, error)
	// UpdateWebhook replaces the stored webhook with the same ID if the
	// stored Version equals w.Version, and stores w with Version
	// w.Version+1 (optimistic concurrency: a writer that read an older
	// version gets ErrConflict and nothing changes). It returns
	// ErrNotFound if no webhook has the ID.
	UpdateWebhook(ctx context.Context, w *Webhook) error
	// DeleteWebhook removes the webhook, or returns ErrNotFound. Its
	// deliveries and their history stay.
	DeleteWebhook(ctx context.Context, id string) error
	// ListWebhooks returns webhooks in ascending ID order, one page at
	// a time (see ListWebhooksParams).
	//
	// A stored webhook that cannot be read back (a row written by hand or
	// by another version) does not fail the page: ListWebhooks returns
	// the webhooks it could read together with an error that joins one
	// *CorruptWebhookError per unreadable row (errors.Is
	// ErrCorruptWebhook). Unreadable rows count towards the page's Limit,
	// so a page is still the last only when readable and unreadable rows
	// together are fewer than the limit, and the next page starts after
	// the greatest ID among both (see CorruptWebhooks). Any other error
	// comes with no webhooks.
	ListWebhooks(ctx context.Context, p ListWebhooksParams) ([]*Webhook, error)

	// Enqueue stores payloads and deliveries in one atomic step: all of
	// them, or none when it returns an error. Deliveries may refer to
	// payloads of the same call or to payloads stored before (a
	// redelivery); a reference to neither fails with ErrNotFound. An ID
	// that exists already fails with ErrDuplicate.
	//
	// A delivery with RedeliveryOf set also sets, in the same step, the
	// RedeliveredBy of the delivery it names (stored by an earlier
	// Enqueue, or Enqueue fails with ErrNotFound) to its own ID. With p.Replay, an
	// original whose RedeliveredBy is set already fails the whole call
	// with ErrConflict, so that concurrent replays redeliver each
	// original once.
	//
	// With an IdempotencyKey, the first successful Enqueue with that key
	// stores its rows and remembers the key with their delivery IDs;
	// every later call with the key stores nothing and returns the
	// remembered IDs with Duplicate set, also when calls race. A backend
	// that bounds its queue refuses an enqueue that would exceed it with
	// ErrQueueFull, storing nothing.
	Enqueue(ctx context.Context, p EnqueueParams) (EnqueueResult, error)

	// ClaimDeliveries leases up to p.Limit due deliveries to the caller
	// and returns them with their payloads, earliest due first (a
	// delivery whose lease expired counts as due at its NextAttemptAt or
	// at its lease's expiry, as the backend keeps it), honouring
	// p.ExcludeWebhooks, p.MaxPerWebhook and p.MaxByWebhook. A
	// delivery is due when it is pending or retrying and its
	// NextAttemptAt is not after p.Now, or when it is delivering and its
	// lease has expired (its worker died or stalled) by the lease clock
	// (see Storage). Claiming sets the status to delivering, increments
	// Attempt, and sets a new lease token and expiry. A delivery is never
	// leased to two callers at once: concurrent claims return disjoint
	// sets. Each claim carries the Version of its webhook read in the
	// same atomic step (Claim.WebhookVersion).
	//
	// Reclaiming an expired lease first records, for the abandoned
	// attempt, an Attempt whose Error says the lease expired. A delivery
	// with a positive MaxAttempts whose abandoned lease was taken past
	// that budget (Attempt > MaxAttempts: the worker was to fail it
	// without sending) is reclaimed without that record and without
	// incrementing Attempt, so the history never counts past
	// MaxAttempts + 1.
	ClaimDeliveries(ctx context.Context, p ClaimParams) ([]*Claim, error)

	// RecordAttempt records the outcome of a claimed attempt: it appends
	// p.Attempt to the delivery's history, copies its outcome onto the
	// delivery, moves the delivery to p.Status and ends the lease, all
	// atomically. It succeeds only while p.Token is the delivery's
	// current lease token, even after the lease's expiry if nobody has
	// reclaimed it; otherwise it returns ErrLeaseLost and changes
	// nothing. It returns ErrNotFound for an unknown delivery.
	RecordAttempt(ctx context.Context, p RecordAttemptParams) error

	// GetDelivery returns a delivery without its attempts, or ErrNotFound.
	GetDelivery(ctx context.Context, id string) (*Delivery, error)
	// ListDeliveries returns a webhook's deliveries that pass p's
	// filters, newest (highest ID) first, one page at a time (see
	// ListDeliveriesParams), without their attempts. It returns an empty
	// list, not ErrNotFound, for a webhook without deliveries, and an
	// error wrapping ErrInvalid when p.Validate fails.
	ListDeliveries(ctx context.Context, p ListDeliveriesParams) ([]*Delivery, error)
	// ListAttempts returns a delivery's attempts, oldest first, or
	// ErrNotFound if the delivery does not exist.
	ListAttempts(ctx context.Context, deliveryID string) ([]Attempt, error)
	// GetPayload returns a stored payload, or ErrNotFound.
	GetPayload(ctx context.Context, id string) (*Payload, error)
}

// Enqueuer is the part of Storage that trigger calls write through. A
// backend can offer one bound to a caller's database transaction (see
// pgstore's Store.Tx), so that a trigger call commits or rolls back
// together with the caller's own writes; pass it with WithEnqueuer.
type Enqueuer interface {
	Enqueue(ctx context.Context, p EnqueueParams) (EnqueueResult, error)
}

// Notifier is an optional interface for a Storage that can tell workers
// in other processes that deliveries were enqueued. Workers whose Storage
// implements it wake within moments of an enqueue anywhere, instead of at
// their next poll.
type Notifier interface {
	// Listen calls notify, possibly coalescing several enqueues into one
	// call, after deliveries were enqueued, until ctx is done; then it
	// returns nil. It must survive lost connections by reconnecting;
	// workers keep polling meanwhile. notify must not block.
	Listen(ctx context.Context, notify func()) error
}

// WebhookNotifier is an optional interface for a Storage that can tell
// Services in other processes that webhooks changed. A Service whose
// Storage implements it drops its matching index within moments of a
// change anywhere (see Service.Watch; Worker.Run watches on its own),
// instead of when Config.WebhookCacheTTL runs out.
type WebhookNotifier interface {
	// ListenWebhooks calls changed with a webhook's ID after a change to
	// it (create, update, delete, also by RecordAttempt) has committed,
	// and with "" when changes may have been missed (when it starts
	// listening and after it reconnects), until ctx is done; then it
	// returns nil. It must survive lost connections by reconnecting.
	// changed must not block.
	ListenWebhooks(ctx context.Context, changed func(webhookID string)) error
}

// ErrCorruptWebhook is wrapped by the errors of stored webhooks that
// cannot be read back; see CorruptWebhookError.
var ErrCorruptWebhook = errors.New("webhook: stored webhook cannot be read")

// CorruptWebhookError reports one stored webhook that cannot be read back,
// such as a row changed by hand. errors.Is(err, ErrCorruptWebhook) holds.
type CorruptWebhookError struct {
	// ID is the webhook's ID.
	ID string
	// TenantID is the row's tenant, when the Storage can tell without
	// decoding the row (pgstore keeps it in a column of its own); empty
	// otherwise. A TenantService reports an unreadable row as missing
	// unless it is known to be its tenant's, so that another tenant's
	// row stays hidden.
	TenantID string
	// Err is what went wrong reading it. It is not unwrapped: a row
	// that cannot be read is the Storage's fault, not bad input, so
	// errors.Is(err, ErrInvalid) does not hold for it; read Err for the
	// cause.
	Err error
}

// Error implements error.
func (e *CorruptWebhookError) Error() string {
	return fmt.Sprintf("webhook %s: stored row cannot be read: %v", e.ID, e.Err)
}

// Is reports whether target is ErrCorruptWebhook.
func (e *CorruptWebhookError) Is(target error) bool { return target == ErrCorruptWebhook }

// CorruptWebhooks returns every *CorruptWebhookError in err's tree (as
// ListWebhooks reports them), in order; none for nil.
func CorruptWebhooks(err error) []*CorruptWebhookError {
	var out []*CorruptWebhookError
	var walk func(error)
	walk = func(err error) {
		if ce, ok := err.(*CorruptWebhookError); ok {
			out = append(out, ce)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			if e := u.Unwrap(); e != nil {
				walk(e)
			}
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}

// BatchRecorder is an optional interface for a Storage that records many
// attempts in one round trip. Workers whose Storage implements it group
// the results that finish while a write is under way into the next one.
type BatchRecorder interface {
	// RecordAttempts has the effect of calling RecordAttempt for each
	// element of ps, which name distinct deliveries. It returns one error
	// per element (nil where that element was recorded), or a non-nil
	// second result if the batch as a whole failed, in which case the
	// caller may record the elements one by one. The caller may reuse ps
	// once the call returns: a Storage must not keep it.
	RecordAttempts(ctx context.Context, ps []RecordAttemptParams) ([]error, error)
}

// Pruner is an optional interface for a Storage that can delete old
// history.
type Pruner interface {
	// Prune deletes deliveries that reached delivered or failed before
	// p.Before, with their attempts and with payloads no delivery refers
	// to any more, and idempotency keys remembered before p.Before. It
	// works in batches of at most p.BatchSize rows so that it never
	// holds locks for long, and returns how many deliveries it deleted.
	Prune(ctx context.Context, p PruneParams) (int, error)
}

// PruneParams configures Pruner.Prune.
type PruneParams struct {
	// Before is the cut-off: older history goes.
	Before time.Time
	// BatchSize bounds the rows deleted per statement. Defaults to 1000.
	BatchSize int
}

// Page sizes for list calls.
const (
	// DefaultPageSize is the page size when a list call's Limit is 0.
	DefaultPageSize = 100
	// MaxPageSize is the largest page a list call returns; a larger
	// Limit is reduced to it.
	MaxPageSize = 1000
)

// PageLimit returns the page size a list call with the given Limit
// returns at most: DefaultPageSize for 0 or less, MaxPageSize at most.
func PageLimit(limit int) int {
	switch {
	case limit <= 0:
		return DefaultPageSize
	case limit > MaxPageSize:
		return MaxPageSize
	}
	return limit
}

// ListWebhooksParams selects a page of webhooks.
type ListWebhooksParams struct {
	// TenantID, when not empty, returns only that tenant's webhooks.
	TenantID string
	// After returns webhooks whose ID sorts after it; pass the last ID
	// of the previous page. Empty starts at the beginning.
	After string
	// Limit is the page size; see PageLimit. A page shorter than the
	// limit is the last.
	Limit int
}

// ListDeliveriesParams selects a page of one webhook's deliveries. The
// filters combine: a delivery is listed only if it passes every filter
// that is set, and a filter left empty or zero lets every delivery pass.
// Validate says which parameters a Storage accepts.
type ListDeliveriesParams struct {
	// WebhookID is the webhook whose deliveries to list. Required.
	WebhookID string
	// Status, when not empty, returns only deliveries in that status. It
	// is short for Statuses with one element; with both set, a delivery
	// in Status or in any of Statuses is listed.
	Status DeliveryStatus
	// Statuses, when not empty, returns only deliveries in one of these
	// statuses (see also Status). Repeats are allowed.
	Statuses []DeliveryStatus
	// EventTypes, when not empty, returns only deliveries whose
	// EventType equals one of these (at most MaxListFilterValues, none
	// of them empty).
	EventTypes []string
	// Since, when not zero, returns only deliveries created at or after
	// it (CreatedAt >= Since: inclusive).
	Since time.Time
	// Until, when not zero, returns only deliveries created before it
	// (CreatedAt < Until: exclusive), so that adjoining windows [a, b)
	// and [b, c) list each delivery once. Until must not be before
	// Since.
	Until time.Time
	// Before returns deliveries whose ID sorts before it; pass the last
	// ID of the previous page, with the same filters. Empty starts at
	// the newest.
	Before string
	// Limit is the page size; see PageLimit. A page shorter than the
	// limit is the last.
	Limit int
	// NotRedelivered, when true, returns only deliveries without
	// RedeliveredBy: those no redelivery or replay has queued again.
	NotRedelivered bool
}

// EnqueueParams is one atomic enqueue.
type EnqueueParams struct {
	// Payloads to store. May be empty when every delivery refers to a
	// stored payload.
	Payloads []*Payload
	// Deliveries to store, each with Status pending (or delivering with
	// Lease set), Attempt 0 (1 with Lease), and NextAttemptAt set.
	Deliveries []*Delivery
	// IdempotencyKey, when not empty, makes the enqueue happen at most
	// once per key. The key is remembered even when there are no rows.
	IdempotencyKey string
	// Replay, when true, requires every delivery to have RedeliveryOf,
	// naming distinct deliveries not redelivered yet (RedeliveredBy
	// empty); otherwise Enqueue stores nothing and returns ErrConflict
	// (ErrInvalid for a delivery without RedeliveryOf).
	Replay bool
	// Lease, when set, stores the deliveries already leased to the
	// caller (status delivering, Attempt 1), for a caller that attempts
	// them at once, such as a test send. The lease lasts ExpiresAt − Now:
	// a Storage with a lease clock of its own measures that length from
	// its own time.
	Lease *Lease
	// Now is the time the enqueue happens.
	Now time.Time
}

// EnqueueResult reports what Enqueue did.
type EnqueueResult struct {
	// DeliveryIDs are the IDs of the stored deliveries, or of those
	// stored by the first call with the same IdempotencyKey.
	DeliveryIDs []string
	// Duplicate reports that the key had been used and nothing was stored.
	Duplicate bool
}

// Lease identifies a worker's hold on a delivery.
type Lease struct {
	// Token fences results: only the holder of the current token may
	// record an attempt. A new token is made for every claim.
	Token string
	// WorkerID names the worker, for people reading the history.
	WorkerID string
	// ExpiresAt is when the delivery becomes claimable again, on the
	// lease clock (see Storage): possibly not the caller's.
	ExpiresAt time.Time
}

// ClaimParams configures ClaimDeliveries.
type ClaimParams struct {
	// WorkerID names the claiming worker, for observability.
	WorkerID string
	// Limit is the most deliveries to claim; at least 1.
	Limit int
	// LeaseDuration is how long the claimed deliveries stay leased,
	// measured on the lease clock (see Storage); positive.
	LeaseDuration time.Duration
	// Now is the caller's current time: deliveries whose NextAttemptAt is
	// not after it are due. It also measures leases in a Storage without
	// a clock of its own.
	Now time.Time
	// ExcludeWebhooks lists webhooks whose deliveries must not be
	// claimed, such as those a worker already sends to as much as it may.
	// The caller may reuse the slice once the claim returns: a Storage
	// must not keep it.
	ExcludeWebhooks []string
	// MaxPerWebhook, when positive, caps how many deliveries of any one
	// webhook a single claim returns; the rest of the limit goes to
	// other webhooks' deliveries. A backend may look at a bounded window
	// of the earliest due deliveries, so while one webhook's backlog
	// fills that window a claim can return fewer than Limit; excluding
	// that webhook (as workers do once it is at its cap) reaches the
	// others.
	MaxPerWebhook int
	// MaxByWebhook caps, for each webhook it names, how many of that
	// webhook's deliveries the claim returns, in place of MaxPerWebhook
	// (a cap below 1 claims none of them, as ExcludeWebhooks does).
	// Workers name the webhooks they know to have room for more than
	// one attempt, under their caps and rate limits, so that one claim
	// can take several deliveries of each. The caller may reuse the map
	// once the claim returns: a Storage must not keep it.
	MaxByWebhook map[string]int
}

// Claim is a delivery leased to a worker, with what it needs to send it.
type Claim struct {
	// Delivery is the claimed delivery, in status delivering, with
	// Attempt already counting the attempt about to be made.
	Delivery *Delivery
	// Payload is the delivery's payload; its Body is what to send.
	Payload *Payload
	// Lease is the worker's hold, with the token RecordAttempt needs.
	Lease Lease
	// WebhookVersion is the Version of the delivery's webhook when it was
	// claimed, read in the same atomic step as the claim; 0 when the
	// webhook does not exist (any more). Workers send with a cached copy
	// of the webhook only when its Version equals WebhookVersion, and
	// otherwise read the webhook from Storage, so no attempt uses
	// settings older than its claim. A Storage that leaves it 0 is
	// correct but makes every attempt read its webhook.
	WebhookVersion int64
}

// RecordAttemptParams is the outcome of one claimed attempt.
type RecordAttemptParams struct {
	// DeliveryID and Token identify the delivery and the lease.
	DeliveryID string
	Token      string
	// Attempt is the record to append. The Storage sets its DeliveryID
	// and Number (the delivery's current Attempt).
	Attempt Attempt
	// Status is the delivery's new status: delivered, retrying or failed.
	// It is ignored when Released is set.
	Status DeliveryStatus
	// NextAttemptAt is when a retrying delivery is due again.
	NextAttemptAt time.Time
	// Now is the current time; it becomes CompletedAt for a final status.
	Now time.Time
	// Released, when true, ends the lease without an outcome, for an
	// attempt that never completed (its worker was shutting down, or the
	// lease was too short to start it). No Attempt is appended; the
	// delivery's Attempt counter goes back by one, so the attempt does
	// not count against the retry policy; and the delivery is due again
	// at NextAttemptAt, in status retrying (pending if it has no earlier
	// attempt). The token must hold the lease, as for any result.
	Released bool
}

// Validate checks the parts of an enqueue every Storage relies on:
// payloads and deliveries present with IDs, deliveries pending (or
// delivering, with a Lease that has a token), without RedeliveredBy, and
// with a RedeliveryOf that names no delivery of the same call (and is
// set on every delivery of a Replay). It returns an error
// wrapping ErrInvalid. Backends call it before storing anything; they
// may check more (pgstore needs UUIDs).
func (p EnqueueParams) Validate() error {
	for _, pl := range p.Payloads {
		if pl == nil || pl.ID == "" {
			return fmt.Errorf("%w: payload without ID", ErrInvalid)
		}
	}
	want := StatusPending
	if p.Lease != nil {
		want = StatusDelivering
		if p.Lease.Token == "" {
			return fmt.Errorf("%w: lease without token", ErrInvalid)
		}
		if p.Now.IsZero() || !p.Lease.ExpiresAt.After(p.Now) {
			return fmt.Errorf("%w: a lease must end after Now", ErrInvalid)
		}
	}
	ids := make(map[string]bool, len(p.Deliveries))
	for _, d := range p.Deliveries {
		if d != nil {
			ids[d.ID] = true
		}
	}
	for _, d := range p.Deliveries {
		if d == nil || d.ID == "" || d.PayloadID == "" {
			return fmt.Errorf("%w: delivery without ID or payload ID", ErrInvalid)
		}
		if d.Status != want {
			return fmt.Errorf("%w: delivery %s: status %q, want %q", ErrInvalid, d.ID, d.Status, want)
		}
		switch {
		case d.RedeliveredBy != "":
			return fmt.Errorf("%w: delivery %s: a new delivery has no RedeliveredBy", ErrInvalid, d.ID)
		case ids[d.RedeliveryOf]:
			return fmt.Errorf("%w: delivery %s: RedeliveryOf names a delivery of the same enqueue", ErrInvalid, d.ID)
		case p.Replay && d.RedeliveryOf == "":
			return fmt.Errorf("%w: delivery %s: a replay needs RedeliveryOf", ErrInvalid, d.ID)
		}
	}
	return nil
}

// Validate checks that a result names a status RecordAttempt accepts
// (delivered, retrying or failed) unless it releases the lease. It
// returns an error wrapping ErrInvalid.
func (p RecordAttemptParams) Validate() error {
	if p.Released {
		return nil
	}
	switch p.Status {
	case StatusDelivered, StatusRetrying, StatusFailed:
		return nil
	}
	return fmt.Errorf("%w: cannot record an attempt with status %q", ErrInvalid, p.Status)
}
