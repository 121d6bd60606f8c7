package pgstore

import (
	"strconv"
	"strings"
)

// statements holds the store's SQL with the schema filled in.
type statements struct {
	createWebhook, getWebhook, updateWebhook, deleteWebhook, listWebhooks     string
	listTenantWebhooks                                                        string
	webhookExists, releaseDelivery                                            string
	insertKey, getKey, insertPayloads, insertDeliveries, refuseFinished       string
	claim, claimByWebhook, recordAttempts, deliveryExists, existingDeliveries string
	// The capped claims, one for each of claimWindows (see claimCapped).
	claimsCapped, claimsCappedSkipping                                                                          [len(claimWindows)]string
	getDelivery, listAttempts, getPayload                                                                       string
	pruneDeliveries, lockPrunedPayloads, prunePayloads, releaseTails, pruneTails, pruneKeys, insertTail, notify string
}

func newStatements(schema string) statements {
	q := func(sql string) string { return strings.ReplaceAll(sql, "{{schema}}", schema) }
	return statements{
		// Every change to a webhook NOTIFYs the webhooks channel (the
		// last parameter) with its ID in the same statement, so the
		// notification goes out exactly when the change commits.
		createWebhook: q(`WITH ins AS (
				INSERT INTO {{schema}}.webhooks (id, tenant_id, enabled, config, created_at, updated_at, version)
				VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id
			)
			SELECT pg_notify($8, id::text) FROM ins`),
		getWebhook: q(`SELECT tenant_id, config FROM {{schema}}.webhooks WHERE id = $1`),
		// $6 is the version the writer read; the row gets $6 + 1.
		updateWebhook: q(`WITH upd AS (
				UPDATE {{schema}}.webhooks SET tenant_id = $2, enabled = $3, config = $4, updated_at = $5, version = $6 + 1
				WHERE id = $1 AND version = $6 RETURNING id
			)
			SELECT pg_notify($7, id::text) FROM upd`),
		webhookExists: q(`SELECT EXISTS (SELECT 1 FROM {{schema}}.webhooks WHERE id = $1)`),
		// The webhook's trigger states go with it, in the same statement.
		deleteWebhook: q(`WITH del AS (DELETE FROM {{schema}}.webhooks WHERE id = $1 RETURNING id),
				states AS (DELETE FROM {{schema}}.trigger_states WHERE webhook_id IN (SELECT id FROM del))
			SELECT pg_notify($2, id::text) FROM del`),
		// ORDER BY w.id, the uuid column: a bare "id" would name the
		// text output column and sort every row after the cursor. One
		// statement for all tenants and one for a tenant, so that even
		// a generic plan reads the index that fits (webhooks_tenant_idx
		// for a tenant) rather than filter every tenant's rows.
		listWebhooks: q(`SELECT w.id::text, w.tenant_id, w.config FROM {{schema}}.webhooks w
			WHERE w.id > $1::uuid
			ORDER BY w.id LIMIT $2`),
		listTenantWebhooks: q(`SELECT w.id::text, w.tenant_id, w.config FROM {{schema}}.webhooks w
			WHERE w.tenant_id = $3 AND w.id > $1::uuid
			ORDER BY w.id LIMIT $2`),

		insertKey: q(`INSERT INTO {{schema}}.idempotency_keys (key, delivery_ids, created_at)
			VALUES ($1, $2::text[]::uuid[], $3) ON CONFLICT (key) DO NOTHING`),
		getKey: q(`SELECT delivery_ids::text[] FROM {{schema}}.idempotency_keys WHERE key = $1`),
		// $8: the tail each body goes on with ('' for none).
		insertPayloads: q(`INSERT INTO {{schema}}.payloads (id, webhook_id, event_type, environment, "timestamp", body, trace_parent, tail_id)
			SELECT id::uuid, webhook_id::uuid, event_type, environment, ts, body, trace_parent, nullif(tail_id, '')::uuid
			FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::bytea[], $7::text[], $8::text[])
				AS p(id, webhook_id, event_type, environment, ts, body, trace_parent, tail_id)`),
		notify:     `SELECT pg_notify($1, '')`,
		insertTail: q(`INSERT INTO {{schema}}.payload_tails (id, body, refs) VALUES ($1, $2, $3)`),
		// $9..$11: the lease, for deliveries enqueued already leased
		// (stored with the status they will have if the lease is handed
		// back, as a claim leaves it; see claimSQL).
		// $12, $13: attempt budgets, and originals ('' for none).
		insertDeliveries: q(`INSERT INTO {{schema}}.queue (id, webhook_id, payload_id, event_type, status, attempt,
				next_attempt_at, due_at, lease_token, lease_worker, lease_expires_at, created_at, max_attempts, redelivery_of)
			SELECT id::uuid, webhook_id::uuid, payload_id::uuid, event_type,
				CASE WHEN status <> 'delivering' THEN status WHEN attempt > 1 THEN 'retrying' ELSE 'pending' END, attempt,
				next_at, next_at, $9::text, $10::text, ` + enqueuedLeaseEnd + `, created, max_attempts, nullif(redelivery_of, '')::uuid
			FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int4[], $7::timestamptz[], $8::timestamptz[],
					$12::int4[], $13::text[])
				AS d(id, webhook_id, payload_id, event_type, status, attempt, next_at, created, max_attempts, redelivery_of)`),

		// After insertDeliveries: the queue's primary key refuses the ID
		// of a queued delivery, and this the ID of a finished one ($1),
		// by inserting the history's row again, which fails with the
		// history's own unique violation (webhook.ErrDuplicate) and so
		// rolls the enqueue back. It runs after the insert, so that its
		// snapshot sees a delivery whose move from the queue the insert
		// waited for.
		refuseFinished: q(`INSERT INTO {{schema}}.deliveries (id, webhook_id, payload_id, event_type, status, attempt, created_at)
			SELECT h.id, h.webhook_id, h.payload_id, h.event_type, h.status, h.attempt, h.created_at
			FROM {{schema}}.deliveries h WHERE h.id = ANY ($1::text[]::uuid[])`),

		claim:                q(claimSQL(claimDue)),
		claimsCapped:         windowed(q(claimSQL(claimCappedDue))),
		claimsCappedSkipping: windowed(q(claimSQL(claimSkippingDue))),
		claimByWebhook:       q(claimSQL(claimByWebhookDue)),

		deliveryExists: q(`SELECT EXISTS (SELECT 1 FROM {{schema}}.queue WHERE id = $1)
			OR EXISTS (SELECT 1 FROM {{schema}}.deliveries WHERE id = $1)`),
		existingDeliveries: q(`SELECT id::text FROM {{schema}}.queue WHERE id = ANY ($1::text[]::uuid[])
			UNION ALL SELECT id::text FROM {{schema}}.deliveries WHERE id = ANY ($1::text[]::uuid[])`),
		// Record results, each only while its token holds the lease, and
		// append their attempts, in one statement: a final result moves
		// its delivery from the queue to the history, any other updates
		// it in the queue. Returns the deliveries recorded. The input
		// names each delivery once (RecordAttempts sees to it).
		recordAttempts: q(`WITH input AS (
				SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int4[], $5::text[], $6::int8[], $7::text[],
					$8::timestamptz[], $9::timestamptz[], $10::timestamptz[])
					AS i(id, token, status, code, body, dur, err, next_at, completed, started)
			), done AS (
				DELETE FROM {{schema}}.queue q
				USING input i
				WHERE q.id = i.id::uuid AND q.lease_token = i.token AND i.completed IS NOT NULL
				RETURNING q.id, q.webhook_id, q.payload_id, q.event_type, q.attempt, q.created_at, q.max_attempts,
					q.redelivery_of, q.redelivered_by, i.status, i.code, i.body, i.dur, i.err, i.completed, i.started
			), moved AS (
				INSERT INTO {{schema}}.deliveries (id, webhook_id, payload_id, event_type, status, attempt,
					status_code, response_body, duration_ns, error, created_at, completed_at, max_attempts, redelivery_of, redelivered_by)
				SELECT id, webhook_id, payload_id, event_type, status, attempt,
					code, body, dur, err, created_at, completed, max_attempts, redelivery_of, redelivered_by
				FROM done
			), again AS (
				UPDATE {{schema}}.queue q
				SET status = i.status, status_code = i.code, response_body = i.body, duration_ns = i.dur, error = i.err,
					next_attempt_at = i.next_at, due_at = i.next_at,
					lease_token = NULL, lease_worker = NULL, lease_expires_at = NULL
				FROM input i
				WHERE q.id = i.id::uuid AND q.lease_token = i.token AND i.completed IS NULL
				RETURNING q.id, q.attempt, i.started, i.dur, i.code, i.body, i.err
			), recorded AS (
				SELECT id, attempt, started, dur, code, body, err FROM done
				UNION ALL
				SELECT id, attempt, started, dur, code, body, err FROM again
			), ins AS (
				INSERT INTO {{schema}}.attempts (delivery_id, number, started_at, duration_ns, status_code, response_body, error)
				SELECT id, attempt, started, dur, code, body, err FROM recorded
			)
			SELECT id::text FROM recorded`),
		// Hand a lease back without an outcome: the attempt does not count.
		releaseDelivery: q(`UPDATE {{schema}}.queue
			SET attempt = greatest(attempt - 1, 0),
				status = CASE WHEN attempt - 1 > 0 THEN 'retrying' ELSE 'pending' END,
				next_attempt_at = $3, due_at = $3,
				lease_token = NULL, lease_worker = NULL, lease_expires_at = NULL
			WHERE id = $1 AND lease_token = $2
			RETURNING webhook_id::text`),

		// A delivery is in the queue or in the history, never in both:
		// it moves in one statement, and this one reads both tables in
		// one snapshot.
		getDelivery: q(`SELECT ` + deliveryColumns + ` FROM {{schema}}.queue d WHERE d.id = $1
			UNION ALL
			SELECT ` + deliveryColumns + ` FROM {{schema}}.deliveries d WHERE d.id = $1`),
		listAttempts: q(`SELECT number, started_at, duration_ns, status_code, response_body, error
			FROM {{schema}}.attempts WHERE delivery_id = $1 ORDER BY number`),
		getPayload: q(`SELECT p.id::text, p.webhook_id::text, p.event_type, p.environment, p."timestamp", ` + payloadBody + `, p.trace_parent
			FROM {{schema}}.payloads p LEFT JOIN {{schema}}.payload_tails t ON t.id = p.tail_id WHERE p.id = $1`),

		// Only the history is pruned: a queued delivery is unfinished.
		// Its attempts go with it.
		pruneDeliveries: q(`WITH victims AS (
				SELECT id FROM {{schema}}.deliveries
				WHERE completed_at < $1
				ORDER BY completed_at
				LIMIT $2
				FOR UPDATE SKIP LOCKED
			), del AS (
				DELETE FROM {{schema}}.deliveries d USING victims v WHERE d.id = v.id
				RETURNING d.id, d.payload_id
			), att AS (
				DELETE FROM {{schema}}.attempts a USING del WHERE a.delivery_id = del.id
			)
			SELECT payload_id::text FROM del`),
		// A payload may still be referred to by a redelivery, finished or
		// queued. The queue has no index on payload_id (every claim would
		// write to it): it is read once per batch (an InitPlan), each row
		// looked up in the batch's hashed array.
		lockPrunedPayloads: q(`SELECT 1 FROM {{schema}}.payloads WHERE id = ANY ($1::text[]::uuid[]) FOR UPDATE`),
		// Returns the tails of the payloads deleted, one row per payload.
		prunePayloads: q(`DELETE FROM {{schema}}.payloads p
			WHERE p.id = ANY ($1::text[]::uuid[])
			AND NOT EXISTS (SELECT 1 FROM {{schema}}.deliveries d WHERE d.payload_id = p.id)
			AND NOT (p.id = ANY (ARRAY(SELECT q.payload_id FROM {{schema}}.queue q WHERE q.payload_id = ANY ($1::text[]::uuid[]))))
			RETURNING p.tail_id::text`),
		// Count the deleted payloads off their tails ($1, one element per
		// payload), then delete the tails no payload ends with any more.
		releaseTails: q(`UPDATE {{schema}}.payload_tails t SET refs = greatest(t.refs - c.n, 0)
			FROM (SELECT id::uuid AS id, count(*) AS n FROM unnest($1::text[]) AS u(id) GROUP BY id) c
			WHERE t.id = c.id`),
		pruneTails: q(`DELETE FROM {{schema}}.payload_tails WHERE id = ANY ($1::text[]::uuid[]) AND refs = 0`),
		pruneKeys: q(`DELETE FROM {{schema}}.idempotency_keys
			WHERE key IN (SELECT key FROM {{schema}}.idempotency_keys WHERE created_at < $1 LIMIT $2)`),
	}
}

// claimWindows are the sizes of the window a capped claim ranks, one
// statement each: a claim that wants a window of rows reads the
// smallest that holds them (at most the last). A few sizes keep the
// statements few; each is a literal in its statement (see
// claimCappedDue).
var claimWindows = [...]int{64, 128, 256, 512, 1024, 2048, 4096, 10000}

// windowFor returns the index in claimWindows of a window of rows.
func windowFor(rows int) int {
	for i, w := range claimWindows {
		if w >= rows {
			return i
		}
	}
	return len(claimWindows) - 1
}

// windowed returns sql for each of claimWindows.
func windowed(sql string) (out [len(claimWindows)]string) {
	for i, w := range claimWindows {
		out[i] = strings.ReplaceAll(sql, "{{window}}", strconv.Itoa(w))
	}
	return out
}

// claimCapped returns the capped claim statement that reads a window of
// rows.
func (st *statements) claimCapped(rows int) string { return st.claimsCapped[windowFor(rows)] }

// claimCappedSkipping returns the statement that claims past locked
// candidates in a window of rows.
func (st *statements) claimCappedSkipping(rows int) string {
	return st.claimsCappedSkipping[windowFor(rows)]
}
