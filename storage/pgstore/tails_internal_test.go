package pgstore

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The payloads of one enqueue store the tail their bodies share once;
// every body reads back byte for byte, from GetPayload and from claims,
// and Prune deletes the shared tail with the last payload that ends
// with it.
func TestEnqueueStoresASharedTailOnce(t *testing.T) {
	ctx := t.Context()
	s, pool := unmigratedStore(t)
	require.NoError(t, s.Migrate(ctx))
	now := time.Now().UTC().Truncate(time.Microsecond)
	data := `,"event_type":"order.paid","timestamp":"2026-12-01T00:00:00Z","data":{"note":"` + strings.Repeat("ü\u0000\"", 200) + `"}}`
	var p webhook.EnqueueParams
	p.Now = now
	bodies := map[string][]byte{}
	for i := range 4 {
		hook, pid := uuid.Must(uuid.NewV7()).String(), uuid.Must(uuid.NewV7()).String()
		body := []byte(fmt.Sprintf(`{"id":%q,"webhook_id":%q`, pid, hook) + data)
		if i == 3 {
			body = []byte(fmt.Sprintf(`{"id":%q,"webhook_id":%q,"other":1}`, pid, hook)) // shares nothing worth it
		}
		bodies[pid] = body
		p.Payloads = append(p.Payloads, &webhook.Payload{ID: pid, WebhookID: hook, EventType: "order.paid", Timestamp: now, Body: body})
		p.Deliveries = append(p.Deliveries, &webhook.Delivery{ID: uuid.Must(uuid.NewV7()).String(), WebhookID: hook, PayloadID: pid,
			EventType: "order.paid", Status: webhook.StatusPending, NextAttemptAt: now, CreatedAt: now})
	}
	_, err := s.Enqueue(ctx, p)
	require.NoError(t, err)
	for _, pl := range p.Payloads {
		assert.Equal(t, bodies[pl.ID], []byte(pl.Body), "the caller's payload is left as it was")
	}

	var tails, refs, stored int
	require.NoError(t, pool.QueryRow(ctx, s.stmt(`SELECT count(*), coalesce(sum(refs), 0) FROM {{schema}}.payload_tails`)).Scan(&tails, &refs))
	require.NoError(t, pool.QueryRow(ctx, s.stmt(`SELECT coalesce(sum(length(body)), 0) FROM {{schema}}.payloads`)).Scan(&stored))
	assert.Equal(t, 1, tails)
	assert.Equal(t, 3, refs, "three bodies end with the shared tail")
	assert.Less(t, stored, len(data), "the payloads' own columns hold less than one copy of the data")

	for id, body := range bodies {
		got, err := s.GetPayload(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, body, []byte(got.Body), "payload %s", id)
	}
	cs, err := s.ClaimDeliveries(ctx, webhook.ClaimParams{WorkerID: "w", Limit: 10, LeaseDuration: time.Minute, Now: now.Add(time.Second)})
	require.NoError(t, err)
	require.Len(t, cs, 4)
	for _, c := range cs {
		assert.Equal(t, bodies[c.Payload.ID], []byte(c.Payload.Body), "claimed payload %s", c.Payload.ID)
	}

	// Finish two (one sharing the tail, and the one stored whole), prune:
	// the tail stays for the other two.
	finish := func(c *webhook.Claim) {
		require.NoError(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{DeliveryID: c.Delivery.ID, Token: c.Lease.Token, Status: webhook.StatusDelivered,
			Attempt: webhook.Attempt{StartedAt: now, StatusCode: 200}, Now: now}))
	}
	var rest []*webhook.Claim
	sharing := 0
	for _, c := range cs {
		if strings.Contains(string(bodies[c.Payload.ID]), `"other"`) || sharing == 0 {
			if !strings.Contains(string(bodies[c.Payload.ID]), `"other"`) {
				sharing++
			}
			finish(c)
			continue
		}
		rest = append(rest, c)
	}
	require.Len(t, rest, 2)
	n, err := s.Prune(ctx, webhook.PruneParams{Before: now.Add(time.Minute)})
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	require.NoError(t, pool.QueryRow(ctx, s.stmt(`SELECT count(*), coalesce(sum(refs), 0) FROM {{schema}}.payload_tails`)).Scan(&tails, &refs))
	assert.Equal(t, 1, tails)
	assert.Equal(t, 2, refs)
	for _, c := range rest {
		got, err := s.GetPayload(ctx, c.Payload.ID)
		require.NoError(t, err)
		assert.Equal(t, bodies[c.Payload.ID], []byte(got.Body))
		finish(c)
	}
	_, err = s.Prune(ctx, webhook.PruneParams{Before: now.Add(time.Minute)})
	require.NoError(t, err)
	require.NoError(t, pool.QueryRow(ctx, s.stmt(`SELECT count(*) FROM {{schema}}.payload_tails`)).Scan(&tails))
	assert.Zero(t, tails, "deleted with the last payload that ends with it")
}
