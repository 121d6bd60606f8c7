package pgstore

// The claim statements. Each selects due deliveries from the queue (the
// columns id, was_due, was_leased, was_attempt, was_worker, was_expiry)
// and claimSQL wraps the selection into the statement that records the
// abandoned attempts of expired leases, leases the rows and returns them
// with their payloads. Parameters: $1 the caller's now, $2 excluded
// webhooks, $3 limit, $4 lease duration in microseconds, $5 worker, $6
// the lease clock's now (NULL: the database's); the capped ones add $7,
// the most per webhook, and $8 and $9, webhooks and their own caps in
// place of $7 (webhookCaps). claimCappedDue and claimSkippingDue read a
// window of {{window}} rows, written into the statement (see
// claimWindows); claimByWebhookDue adds $10, a bound on the webhooks it
// reads, and $11, where its walk over webhooks starts.
//
// A claim changes no indexed column: it sets the lease (token, worker,
// expiry) and the attempt number, and leaves status and due_at as they
// were (due_at unless the claimer's clock runs ahead of the lease
// clock), so that PostgreSQL updates the row in place (a HOT update, the
// queue's fillfactor leaving room for it) and writes no index entry. A
// leased row is "delivering" (see statusColumn); it stays in the due
// index, where claims pass over it until its lease expires.

// dueCondition selects claimable deliveries of the queue aliased d: due
// by the caller's clock, and not leased or with a lease expired by the
// lease clock. The first term bounds the index range.
const dueCondition = `d.due_at <= $1::timestamptz AND (d.lease_token IS NULL OR d.lease_expires_at <= ` + leaseNow + `)`

// webhookCaps are the webhooks with caps of their own, m(webhook_id,
// cap): $9 for the same element of $8, in place of $7. A webhook named
// twice in $8 (its ID spelt in upper and in lower case) has the lesser
// cap, once.
const webhookCaps = `(SELECT u.webhook_id, min(u.cap) AS cap FROM ` + capsGiven + ` GROUP BY u.webhook_id) AS m`

// capsGiven are the elements of $8 and $9, u(webhook_id, cap).
const capsGiven = `unnest($8::text[]::uuid[], $9::int[]) AS u(webhook_id, cap)`

// hookCap is the cap of the webhook h.webhook_id: its own (see
// webhookCaps), or $7.
const hookCap = `coalesce((SELECT min(u.cap) FROM ` + capsGiven + ` WHERE u.webhook_id = h.webhook_id), $7)`

// dueColumns are the columns every selection returns.
const dueColumns = `d.id, d.due_at AS was_due, d.lease_token IS NOT NULL AS was_leased, d.attempt AS was_attempt,
	d.lease_worker AS was_worker, d.lease_expires_at AS was_expiry`

// claimDue locks the earliest claimable deliveries that are free (SKIP
// LOCKED: concurrent claimers never wait for or share rows).
const claimDue = `SELECT ` + dueColumns + `
	FROM {{schema}}.queue d
	WHERE ` + dueCondition + ` AND NOT (d.webhook_id = ANY ($2::text[]::uuid[]))
	ORDER BY d.due_at, d.id
	LIMIT $3
	FOR UPDATE SKIP LOCKED`

// claimCappedDue ranks the first {{window}} claimable deliveries without locking
// them, drops those of excluded webhooks, keeps at most $7 of each
// webhook (or its own cap), then locks only the rows returned ($3 at most): the lock is
// taken as each candidate passes, and a candidate another claimer holds
// or has just taken is skipped (its lease is checked again on the row
// locked) for the next one. The excluded webhooks' deliveries count
// towards the {{window}} read, so that a long backlog of theirs at the head of
// the queue bounds the read rather than makes it walk the backlog: then
// claimByWebhookDue finds the others' deliveries.
//
// The window is a literal, not a parameter: PostgreSQL's generic plan
// for a parameter guesses a tenth of the queue's rows, so as the queue
// grows the generic plan looks dearer than one made for the size given
// and every claim is planned afresh (a quarter of a claim's cost at a
// backlog of 150,000).
const claimCappedDue = `SELECT ` + dueColumns + `
	FROM {{schema}}.queue d
	WHERE d.id = ANY (ARRAY(
		SELECT r.id FROM (
			SELECT c.id, c.webhook_id, row_number() OVER (PARTITION BY c.webhook_id ORDER BY c.due_at, c.id) AS rn
			FROM (
				SELECT d.id, d.webhook_id, d.due_at
				FROM {{schema}}.queue d
				WHERE ` + dueCondition + `
				ORDER BY d.due_at, d.id
				LIMIT {{window}}
			) c
			WHERE NOT (c.webhook_id = ANY ($2::text[]::uuid[]))
		) r LEFT JOIN ` + webhookCaps + ` ON m.webhook_id = r.webhook_id
		WHERE r.rn <= coalesce(m.cap, $7)
	)) AND ` + dueCondition + `
	ORDER BY d.due_at, d.id
	LIMIT $3
	FOR UPDATE SKIP LOCKED`

// claimSkippingDue is used when the candidates claimCappedDue ranked
// were all locked by other claimers (or taken meanwhile), and it
// returned nothing: it locks the free claimable deliveries among the
// first {{window}} (those of excluded webhooks counting towards the {{window}}, as in
// claimCappedDue), skipping the locked ones, and keeps at most $7 of each
// webhook (or its own cap) and $3 in all; the rest of the window is unlocked when the
// statement ends.
const claimSkippingDue = `WITH window_rows AS (
		SELECT d.id, d.webhook_id, d.due_at, d.lease_token, d.attempt, d.lease_worker, d.lease_expires_at
		FROM {{schema}}.queue d
		WHERE d.id = ANY (ARRAY(
			SELECT c.id FROM (
				SELECT d.id, d.webhook_id FROM {{schema}}.queue d
				WHERE ` + dueCondition + `
				ORDER BY d.due_at, d.id
				LIMIT {{window}}
			) c
			WHERE NOT (c.webhook_id = ANY ($2::text[]::uuid[]))
		)) AND ` + dueCondition + `
		FOR UPDATE SKIP LOCKED
	), ranked AS (
		SELECT *, row_number() OVER (PARTITION BY webhook_id ORDER BY due_at, id) AS rn FROM window_rows
	)
	SELECT id, due_at AS was_due, lease_token IS NOT NULL AS was_leased, attempt AS was_attempt,
		lease_worker AS was_worker, lease_expires_at AS was_expiry
	FROM ranked LEFT JOIN ` + webhookCaps + ` ON m.webhook_id = ranked.webhook_id
	WHERE rn <= coalesce(m.cap, $7)
	ORDER BY due_at, id
	LIMIT $3`

// claimByWebhookDue reads the queue a webhook at a time: it walks the
// distinct webhooks of the queue (a loose scan of queue_webhook_idx, one
// index probe per webhook) from $11 upwards, wrapping around, until it
// has $10 webhooks that are not excluded, skipping the excluded ones
// without reading their deliveries;
// takes the earliest claimable ones of each (at most $7 or its own cap, through
// queue_webhook_due_idx); and locks the earliest $3 of those. Its cost
// follows the number of webhooks walked, never the length of a backlog.
// Starting each walk at a random webhook ID spreads claims over the
// webhooks when there are more than $10.
const claimByWebhookDue = `SELECT ` + dueColumns + `
	FROM {{schema}}.queue d
	WHERE d.id = ANY (ARRAY(
		WITH RECURSIVE up AS (
			(SELECT q.webhook_id FROM {{schema}}.queue q WHERE q.webhook_id >= $11::uuid ORDER BY q.webhook_id LIMIT 1)
			UNION ALL
			SELECT (SELECT q.webhook_id FROM {{schema}}.queue q WHERE q.webhook_id > up.webhook_id ORDER BY q.webhook_id LIMIT 1)
			FROM up WHERE up.webhook_id IS NOT NULL
		), down AS (
			(SELECT q.webhook_id FROM {{schema}}.queue q WHERE q.webhook_id < $11::uuid ORDER BY q.webhook_id LIMIT 1)
			UNION ALL
			SELECT (SELECT q.webhook_id FROM {{schema}}.queue q WHERE q.webhook_id > down.webhook_id AND q.webhook_id < $11::uuid
				ORDER BY q.webhook_id LIMIT 1)
			FROM down WHERE down.webhook_id IS NOT NULL
		), hooks AS (
			SELECT h.webhook_id FROM (SELECT webhook_id FROM up UNION ALL SELECT webhook_id FROM down) h
			WHERE h.webhook_id IS NOT NULL AND NOT (h.webhook_id = ANY ($2::text[]::uuid[]))
			LIMIT $10
		)
		SELECT c.id FROM hooks h CROSS JOIN LATERAL (
			SELECT d.id, d.due_at FROM {{schema}}.queue d
			WHERE d.webhook_id = h.webhook_id AND ` + dueCondition + `
			ORDER BY d.due_at, d.id
			LIMIT greatest(` + hookCap + `, 0)
		) c
		ORDER BY c.due_at, c.id
		LIMIT $3
	)) AND ` + dueCondition + `
	ORDER BY d.due_at, d.id
	LIMIT $3
	FOR UPDATE SKIP LOCKED`

// claimSQL wraps the selection of due deliveries into the statement that
// records abandoned attempts, leases the rows and returns them with
// their payloads.
func claimSQL(due string) string {
	return `WITH due AS (` + due + `
		), lost AS (
			INSERT INTO {{schema}}.attempts (delivery_id, number, started_at, duration_ns, status_code, response_body, error)
			SELECT due.id, was_attempt, coalesce(was_expiry, $1), 0, 0, '',
				'lease of worker "' || coalesce(was_worker, '') || '" expired before the attempt was recorded'
			FROM due JOIN {{schema}}.queue x ON x.id = due.id
			WHERE was_leased AND NOT (x.max_attempts > 0 AND was_attempt > x.max_attempts)
			ON CONFLICT DO NOTHING
		), claimed AS (
			-- A lease taken past the attempt budget sent nothing: it is
			-- not counted (see lost).
			UPDATE {{schema}}.queue d
			SET attempt = CASE WHEN due.was_leased AND d.max_attempts > 0 AND d.attempt > d.max_attempts
					THEN d.attempt ELSE d.attempt + 1 END,
				lease_token = gen_random_uuid()::text, lease_worker = $5,
				lease_expires_at = ` + leaseNow + ` + $4::bigint * interval '1 microsecond',
				-- Unchanged (so still HOT) unless the claimer's clock ran
				-- ahead of the lease clock: then the lease clock's now, so
				-- that once the lease expires a claimer whose clock is
				-- right finds the delivery due.
				due_at = least(d.due_at, ` + leaseNow + `)
			FROM due WHERE d.id = due.id
			RETURNING d.*, due.was_due
		)
		SELECT ` + deliveryColumns + `,
			d.lease_token, d.lease_worker, d.lease_expires_at,
			p.webhook_id::text, p.event_type, p.environment, p."timestamp", ` + payloadBody + `,
			coalesce(w.version, 0), p.trace_parent
		FROM claimed d JOIN {{schema}}.payloads p ON p.id = d.payload_id
			LEFT JOIN {{schema}}.payload_tails t ON t.id = p.tail_id
			LEFT JOIN {{schema}}.webhooks w ON w.id = d.webhook_id
		ORDER BY d.was_due, d.id`
}

// payloadBody is the body of the payload aliased p, whose tail, if it
// has one (migration 009), is aliased t.
const payloadBody = `CASE WHEN p.tail_id IS NULL THEN p.body ELSE p.body || t.body END`

// enqueuedLeaseEnd is when the lease of a delivery enqueued already
// leased ends: $11 microseconds (its duration on the caller's clock)
// after $14, the caller's now in tests that simulate time and the
// database's now() otherwise, so the lease lasts as long as the caller
// meant whatever its clock says.
const enqueuedLeaseEnd = `coalesce($14::timestamptz, now()) + $11::bigint * interval '1 microsecond'`

// leaseNow is the lease clock in the claim statements: the database's,
// unless a test passes its simulated time as $6.
const leaseNow = `coalesce($6::timestamptz, now())`
