package storagetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/analytics-webhooks/webhook"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stored is what a history fixture knows of one of its deliveries, to
// compute the pages a Storage must return without asking it.
type stored struct {
	id          string
	status      webhook.DeliveryStatus
	eventType   string
	created     time.Time
	redelivered bool
}

// historyFixture stores 15 deliveries of one webhook, created a minute
// apart from t0 (IDs in creation order), cycling through three event
// types and the five statuses, plus a redelivery of one failed delivery
// and deliveries of another webhook in between. It returns the webhook's
// ID and its deliveries.
func historyFixture(t *testing.T, s webhook.Storage) (string, []stored) {
	t.Helper()
	ctx := t.Context()
	hook, other := newID(t), newID(t)
	statuses := []webhook.DeliveryStatus{webhook.StatusPending, webhook.StatusDelivering, webhook.StatusRetrying, webhook.StatusDelivered, webhook.StatusFailed}
	types := []string{"order.paid", "order.refunded", "$error"}
	var all []stored
	for i := range 15 {
		st := stored{status: statuses[i%5], eventType: types[i%3], created: t0.Add(time.Duration(i) * time.Minute)}
		pl, d := newDelivery(t, hook, t0.Add(time.Duration(i)*time.Second))
		if st.status == webhook.StatusPending {
			d.NextAttemptAt = t0.Add(time.Hour) // never claimed below
		}
		d.EventType, d.CreatedAt, pl.EventType = st.eventType, st.created, st.eventType
		_, err := s.Enqueue(ctx, webhook.EnqueueParams{Payloads: []*webhook.Payload{pl}, Deliveries: []*webhook.Delivery{d}, Now: t0})
		require.NoError(t, err)
		st.id = d.ID
		all = append(all, st)
		opl, od := newDelivery(t, other, t0.Add(time.Hour)) // matches every filter but the webhook
		od.EventType, od.CreatedAt = st.eventType, st.created
		_, err = s.Enqueue(ctx, webhook.EnqueueParams{Payloads: []*webhook.Payload{opl}, Deliveries: []*webhook.Delivery{od}, Now: t0})
		require.NoError(t, err)
	}
	// Claim the deliveries that leave pending, one at a time: each is
	// the only one due at its second.
	for i, st := range all {
		if st.status == webhook.StatusPending {
			continue
		}
		now := t0.Add(time.Duration(i) * time.Second)
		cs := claim(t, s, now, 1)
		require.Len(t, cs, 1)
		require.Equal(t, st.id, cs[0].Delivery.ID)
		if st.status == webhook.StatusDelivering {
			continue
		}
		require.NoError(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{
			DeliveryID: st.id, Token: cs[0].Lease.Token, Status: st.status, NextAttemptAt: t0.Add(2 * time.Hour),
			Attempt: webhook.Attempt{StartedAt: now, StatusCode: 500}, Now: now,
		}))
	}
	// Redeliver the first failed delivery (index 4).
	orig, err := s.GetDelivery(ctx, all[4].id)
	require.NoError(t, err)
	again := &webhook.Delivery{ID: newID(t), WebhookID: hook, PayloadID: orig.PayloadID, EventType: orig.EventType,
		Status: webhook.StatusPending, NextAttemptAt: t0.Add(time.Hour), CreatedAt: t0.Add(20 * time.Minute), RedeliveryOf: orig.ID}
	_, err = s.Enqueue(ctx, webhook.EnqueueParams{Deliveries: []*webhook.Delivery{again}, Now: t0})
	require.NoError(t, err)
	all[4].redelivered = true
	all = append(all, stored{id: again.ID, status: webhook.StatusPending, eventType: orig.EventType, created: again.CreatedAt})
	return hook, all
}

// want returns the IDs of the fixture's deliveries that p selects, newest
// (highest ID) first: the suite's own reading of ListDeliveriesParams.
func want(all []stored, p webhook.ListDeliveriesParams) []string {
	out := []string{}
	for _, d := range all {
		switch {
		case (p.Status != "" || len(p.Statuses) > 0) && d.status != p.Status && !slices.Contains(p.Statuses, d.status):
		case len(p.EventTypes) > 0 && !slices.Contains(p.EventTypes, d.eventType):
		case !p.Since.IsZero() && d.created.Before(p.Since):
		case !p.Until.IsZero() && !d.created.Before(p.Until):
		case p.NotRedelivered && d.redelivered:
		default:
			out = append(out, d.id)
		}
	}
	slices.Sort(out)
	slices.Reverse(out)
	return out
}

// filterCases are parameter sets for the fixture's webhook, each named.
func filterCases(hook string) []struct {
	name string
	p    webhook.ListDeliveriesParams
} {
	at := func(minutes int) time.Time { return t0.Add(time.Duration(minutes) * time.Minute) }
	us := time.Microsecond
	type c = struct {
		name string
		p    webhook.ListDeliveriesParams
	}
	return []c{
		{"no filter", webhook.ListDeliveriesParams{}},
		{"one status", webhook.ListDeliveriesParams{Status: webhook.StatusDelivered}},
		{"one status in Statuses", webhook.ListDeliveriesParams{Statuses: []webhook.DeliveryStatus{webhook.StatusRetrying}}},
		{"two statuses", webhook.ListDeliveriesParams{Statuses: []webhook.DeliveryStatus{webhook.StatusFailed, webhook.StatusDelivered}}},
		{"repeated status", webhook.ListDeliveriesParams{Statuses: []webhook.DeliveryStatus{webhook.StatusRetrying, webhook.StatusRetrying}}},
		{"Status and Statuses together", webhook.ListDeliveriesParams{Status: webhook.StatusPending, Statuses: []webhook.DeliveryStatus{webhook.StatusFailed}}},
		{"every status", webhook.ListDeliveriesParams{Statuses: []webhook.DeliveryStatus{webhook.StatusPending, webhook.StatusDelivering, webhook.StatusRetrying, webhook.StatusDelivered, webhook.StatusFailed}}},
		{"one event type", webhook.ListDeliveriesParams{EventTypes: []string{"order.paid"}}},
		{"two event types", webhook.ListDeliveriesParams{EventTypes: []string{"$error", "order.paid"}}},
		{"event type of nothing", webhook.ListDeliveriesParams{EventTypes: []string{"order"}}},
		{"since is inclusive", webhook.ListDeliveriesParams{Since: at(5)}},
		{"since a microsecond later", webhook.ListDeliveriesParams{Since: at(5).Add(us)}},
		{"until is exclusive", webhook.ListDeliveriesParams{Until: at(5)}},
		{"until a microsecond later", webhook.ListDeliveriesParams{Until: at(5).Add(us)}},
		{"since and until", webhook.ListDeliveriesParams{Since: at(3), Until: at(7)}},
		{"since equals until", webhook.ListDeliveriesParams{Since: at(5), Until: at(5)}},
		{"times in another zone", webhook.ListDeliveriesParams{Since: at(3).In(time.FixedZone("UTC-08:00", -8*3600)), Until: at(7).In(time.FixedZone("UTC+05:30", 5*3600+1800))}},
		{"since after everything", webhook.ListDeliveriesParams{Since: at(60)}},
		{"not redelivered", webhook.ListDeliveriesParams{NotRedelivered: true}},
		{"failed, not redelivered", webhook.ListDeliveriesParams{Status: webhook.StatusFailed, NotRedelivered: true}},
		{"two statuses, not redelivered", webhook.ListDeliveriesParams{Statuses: []webhook.DeliveryStatus{webhook.StatusFailed, webhook.StatusPending}, NotRedelivered: true}},
		{"status and event type", webhook.ListDeliveriesParams{Status: webhook.StatusFailed, EventTypes: []string{"order.refunded", "$error"}}},
		{"everything at once", webhook.ListDeliveriesParams{
			Statuses: []webhook.DeliveryStatus{webhook.StatusFailed, webhook.StatusDelivered, webhook.StatusPending}, EventTypes: []string{"order.paid", "$error"},
			Since: at(1), Until: at(20).Add(us), NotRedelivered: true,
		}},
	}
}

// listers returns the Storage's ways of reading a page: ListDeliveries,
// and ListDeliveriesWithAttempts if it has it.
func listers(s webhook.Storage) map[string]func(context.Context, webhook.ListDeliveriesParams) ([]*webhook.Delivery, error) {
	out := map[string]func(context.Context, webhook.ListDeliveriesParams) ([]*webhook.Delivery, error){"ListDeliveries": s.ListDeliveries}
	if hr, ok := s.(webhook.HistoryReader); ok {
		out["ListDeliveriesWithAttempts"] = hr.ListDeliveriesWithAttempts
	}
	return out
}

func testListDeliveriesFilters(t *testing.T, s webhook.Storage) {
	hook, all := historyFixture(t, s)
	for _, tc := range filterCases(hook) {
		p := tc.p
		p.WebhookID = hook
		exp := want(all, p)
		if tc.name == "no filter" {
			require.Len(t, exp, 16, "the fixture")
		}
		for name, list := range listers(s) {
			got, err := list(t.Context(), p)
			require.NoError(t, err, "%s: %s", name, tc.name)
			assert.Equal(t, exp, deliveryIDs(got), "%s: %s", name, tc.name)
			for _, d := range got {
				assert.Equal(t, hook, d.WebhookID)
			}
		}
	}
}

func testListDeliveriesFilteredPages(t *testing.T, s webhook.Storage) {
	hook, all := historyFixture(t, s)
	for _, tc := range filterCases(hook) {
		p := tc.p
		p.WebhookID = hook
		exp := want(all, p)
		for name, list := range listers(s) {
			for _, size := range []int{1, 2, 3} {
				seen := []string{}
				q := p
				q.Limit = size
				for range len(all) + 2 {
					page, err := list(t.Context(), q)
					require.NoError(t, err)
					require.LessOrEqual(t, len(page), size)
					seen = append(seen, deliveryIDs(page)...)
					if len(page) < size {
						break
					}
					q.Before = page[len(page)-1].ID
				}
				assert.Equal(t, exp, seen, "%s: %s: pages of %d list every selected delivery once, newest first", name, tc.name, size)
			}
		}
	}
}

func testListDeliveriesInvalid(t *testing.T, s webhook.Storage) {
	hook := newID(t)
	enqueue(t, s, hook, 1, t0)
	tooMany := make([]string, webhook.MaxListFilterValues+1)
	for i := range tooMany {
		tooMany[i] = fmt.Sprint("type", i)
	}
	for name, p := range map[string]webhook.ListDeliveriesParams{
		"no webhook":           {},
		"unknown status":       {WebhookID: hook, Status: "done"},
		"unknown in Statuses":  {WebhookID: hook, Statuses: []webhook.DeliveryStatus{webhook.StatusPending, "Pending"}},
		"empty in Statuses":    {WebhookID: hook, Statuses: []webhook.DeliveryStatus{""}},
		"empty event type":     {WebhookID: hook, EventTypes: []string{"order.paid", ""}},
		"too many event types": {WebhookID: hook, EventTypes: tooMany},
		"until before since":   {WebhookID: hook, Since: t0, Until: t0.Add(-time.Microsecond)},
	} {
		for lname, list := range listers(s) {
			_, err := list(t.Context(), p)
			assert.ErrorIs(t, err, webhook.ErrInvalid, "%s: %s", lname, name)
		}
	}
}

// recordN claims the only due delivery at now and records an attempt
// with the given status, code and error.
func recordN(t *testing.T, s webhook.Storage, id string, now time.Time, st webhook.DeliveryStatus, code int, msg string) {
	t.Helper()
	cs := claim(t, s, now, 1)
	require.Len(t, cs, 1)
	require.Equal(t, id, cs[0].Delivery.ID)
	require.NoError(t, s.RecordAttempt(t.Context(), webhook.RecordAttemptParams{
		DeliveryID: id, Token: cs[0].Lease.Token, Status: st, NextAttemptAt: now.Add(time.Minute),
		Attempt: webhook.Attempt{StartedAt: now, Duration: time.Duration(code) * time.Millisecond, StatusCode: code, ResponseBody: fmt.Sprint("body ", code), Error: msg},
		Now:     now,
	}))
}

func testHistoryWithAttempts(t *testing.T, s webhook.Storage) {
	hr, ok := s.(webhook.HistoryReader)
	if !ok {
		t.Skipf("%T does not implement webhook.HistoryReader", s)
	}
	ctx := t.Context()
	hook, other := newID(t), newID(t)
	three := enqueue(t, s, hook, 1, t0)[0]
	// A delivery of another webhook with attempts of its own, in between.
	foreign := enqueue(t, s, other, 1, t0.Add(time.Hour))[0]
	one := enqueue(t, s, hook, 1, t0.Add(time.Hour+time.Minute))[0]
	none := enqueue(t, s, hook, 1, t0.Add(24*time.Hour))[0]
	recordN(t, s, three, t0, webhook.StatusRetrying, 503, "server error")
	recordN(t, s, three, t0.Add(time.Minute), webhook.StatusRetrying, 502, "bad gateway")
	recordN(t, s, three, t0.Add(2*time.Minute), webhook.StatusDelivered, 200, "")
	recordN(t, s, foreign, t0.Add(time.Hour), webhook.StatusFailed, 410, "gone")
	recordN(t, s, one, t0.Add(time.Hour+time.Minute), webhook.StatusFailed, 400, "bad request")

	ds, err := hr.ListDeliveriesWithAttempts(ctx, webhook.ListDeliveriesParams{WebhookID: hook})
	require.NoError(t, err)
	require.Equal(t, []string{none, one, three}, deliveryIDs(ds))
	for _, d := range ds {
		atts, err := s.ListAttempts(ctx, d.ID)
		require.NoError(t, err)
		if len(atts) == 0 {
			assert.Empty(t, d.Attempts, "delivery %s", d.ID)
			continue
		}
		assert.Equal(t, atts, d.Attempts, "delivery %s: the attempts ListAttempts returns", d.ID)
		alone, err := s.GetDelivery(ctx, d.ID)
		require.NoError(t, err)
		alone.Attempts = d.Attempts
		assert.Equal(t, alone, d, "delivery %s: the delivery GetDelivery returns", d.ID)
	}
	got := ds[2].Attempts
	require.Len(t, got, 3)
	for i, a := range got {
		assert.Equal(t, i+1, a.Number, "oldest first")
		assert.Equal(t, three, a.DeliveryID)
		assert.True(t, t0.Add(time.Duration(i)*time.Minute).Equal(a.StartedAt))
	}
	assert.Equal(t, []int{503, 502, 200}, []int{got[0].StatusCode, got[1].StatusCode, got[2].StatusCode})
	assert.Equal(t, 502*time.Millisecond, got[1].Duration)
	assert.Equal(t, "body 502", got[1].ResponseBody)
	assert.Equal(t, "bad gateway", got[1].Error)
	assert.Equal(t, "bad request", ds[1].Attempts[0].Error, "each delivery gets its own attempts")
	assert.Equal(t, webhook.StatusDelivered, ds[2].Status)

	// Pages and filters select as ListDeliveries does.
	page, err := hr.ListDeliveriesWithAttempts(ctx, webhook.ListDeliveriesParams{WebhookID: hook, Before: one, Limit: 1})
	require.NoError(t, err)
	require.Equal(t, []string{three}, deliveryIDs(page))
	require.Len(t, page[0].Attempts, 3)
	page, err = hr.ListDeliveriesWithAttempts(ctx, webhook.ListDeliveriesParams{WebhookID: hook, Statuses: []webhook.DeliveryStatus{webhook.StatusFailed, webhook.StatusPending}})
	require.NoError(t, err)
	require.Equal(t, []string{none, one}, deliveryIDs(page))
	require.Len(t, page[1].Attempts, 1)

	// The result is the caller's.
	ds[2].Attempts[0].Error = "changed"
	again, err := hr.ListDeliveriesWithAttempts(ctx, webhook.ListDeliveriesParams{WebhookID: hook, Status: webhook.StatusDelivered})
	require.NoError(t, err)
	require.Len(t, again, 1)
	assert.Equal(t, "server error", again[0].Attempts[0].Error)

	empty, err := hr.ListDeliveriesWithAttempts(ctx, webhook.ListDeliveriesParams{WebhookID: newID(t)})
	require.NoError(t, err)
	assert.Empty(t, empty)
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = hr.ListDeliveriesWithAttempts(canceled, webhook.ListDeliveriesParams{WebhookID: hook})
	assert.ErrorIs(t, err, context.Canceled)
}

// testHistoryPageOfManyAttempts reads a full page of deliveries with
// several attempts each, the REST API's history page.
func testHistoryPageOfManyAttempts(t *testing.T, s webhook.Storage) {
	hr, ok := s.(webhook.HistoryReader)
	if !ok {
		t.Skipf("%T does not implement webhook.HistoryReader", s)
	}
	ctx := t.Context()
	hook := newID(t)
	ids := enqueue(t, s, hook, 30, t0)
	for round := range 3 {
		now := t0.Add(time.Duration(round) * time.Minute)
		cs := claim(t, s, now, 100)
		require.Len(t, cs, 30, "round %d", round)
		for _, c := range cs {
			st := webhook.StatusRetrying
			if round == 2 {
				st = webhook.StatusFailed
			}
			require.NoError(t, s.RecordAttempt(ctx, webhook.RecordAttemptParams{
				DeliveryID: c.Delivery.ID, Token: c.Lease.Token, Status: st, NextAttemptAt: now.Add(time.Minute),
				Attempt: webhook.Attempt{StartedAt: now, StatusCode: 500 + round, Error: strings.Repeat("x", round)}, Now: now,
			}))
		}
	}
	ds, err := hr.ListDeliveriesWithAttempts(ctx, webhook.ListDeliveriesParams{WebhookID: hook, Limit: 25})
	require.NoError(t, err)
	require.Len(t, ds, 25)
	slices.Sort(ids)
	slices.Reverse(ids)
	require.Equal(t, ids[:25], deliveryIDs(ds))
	for _, d := range ds {
		require.Len(t, d.Attempts, 3)
		for i, a := range d.Attempts {
			assert.Equal(t, d.ID, a.DeliveryID)
			assert.Equal(t, i+1, a.Number)
			assert.Equal(t, 500+i, a.StatusCode)
		}
	}
}
