package portal_test

import (
	"context"
	"errors"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/portal"
)

func TestCreateShowsTheEndpoint(t *testing.T) {
	e := newEnv(t, nil)
	list := e.get("a", "/")
	require.Equal(t, http.StatusOK, list.status)
	assert.Contains(t, text(list.body), "You have no endpoints yet.")

	form := e.get("a", "/new")
	require.Equal(t, http.StatusOK, form.status)
	for _, want := range []string{`<label for="url">`, `<label for="name">`, `value="order.paid"`, `value="$error"`, `<label for="filters">`, `<label for="headers">`, `<label for="max_attempts">`, `<label for="rate_limit">`} {
		assert.Contains(t, form.body, want)
	}
	assert.NotContains(t, form.body, `value="$test"`, "test sends are not subscribed to")
	assert.NotContains(t, form.body, `value="$threshold_alert"`, "thresholds are set up through the API")
	assert.Less(t, strings.Index(form.body, `value="order.paid"`), strings.Index(form.body, `value="$error"`), "the host's events come first")

	f := e.endpointForm()
	f.Set("filters", "amount gt 10\nplan equals \"pro\"")
	f.Set("headers", "X-Team: billing")
	f.Set("patterns", "checkout.*")
	f.Set("rate_limit", "5")
	loc := e.location(e.post("a", "/new", f))
	assert.True(t, strings.HasSuffix(loc, "?done=created"), loc)
	id := idOf(loc)

	w, err := e.svc.Tenant("a").Get(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, "Orders", w.Name)
	assert.Equal(t, e.rc.srv.URL+"/hook", w.URL)
	assert.Equal(t, map[string]string{"X-Team": "billing"}, w.Headers)
	assert.Equal(t, 1, w.Retry.MaxAttempts)
	assert.InDelta(t, 5, w.RateLimit, 0)
	require.Len(t, w.Triggers, 2)
	assert.Equal(t, webhook.TriggerEvent, w.Triggers[0].Type)
	assert.Equal(t, []string{"order.paid", "checkout.*"}, w.Triggers[0].Events)
	assert.Equal(t, webhook.TriggerError, w.Triggers[1].Type)
	require.Len(t, w.Triggers[0].Filters, 2)
	assert.Equal(t, webhook.Filter{Property: "amount", Operator: webhook.FilterGT, Value: float64(10)}, w.Triggers[0].Filters[0])
	assert.Equal(t, webhook.Filter{Property: "plan", Operator: webhook.FilterEquals, Value: "pro"}, w.Triggers[0].Filters[1])

	page := e.get("a", "/endpoints/"+id+"?done=created")
	require.Equal(t, http.StatusOK, page.status)
	txt := text(page.body)
	assert.Contains(t, txt, "The endpoint was created.")
	assert.Contains(t, txt, "Enabled")
	assert.Contains(t, txt, "events order.paid, checkout.* (2 filters)")
	assert.Contains(t, txt, "No deliveries in the last 24 hours.")

	list = e.get("a", "/")
	assert.Contains(t, text(list.body), "Orders")
	assert.Contains(t, list.body, `href="/portal/endpoints/`+id+`"`)

	// A done key the portal does not know says nothing.
	page = e.get("a", "/endpoints/"+id+"?done=%3Cscript%3E")
	assert.NotContains(t, page.body, `role="status"`)
}

func TestFormShowsValidationErrorsBesideTheirFields(t *testing.T) {
	e := newEnv(t, nil)
	f := url.Values{"url": {"ftp://example.com"}, "name": {""}, "max_attempts": {"99"}, "backoff_multiplier": {"x"}, "filters": {"amount gt \"a lot\""}, "headers": {"Content-Type: text/plain"}}
	r := e.post("a", "/new", f)
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	for _, field := range []string{"url", "name", "max_attempts", "backoff_multiplier"} {
		assert.Contains(t, r.body, `id="`+field+`-error"`, field)
		assert.Regexp(t, `id="`+field+`"[^>]*aria-invalid="true"`, r.body, field)
	}
	assert.Regexp(t, `id="backoff_multiplier-error">must be a number`, r.body)
	// The form is shown again with what was typed, escaped.
	assert.Contains(t, r.body, `value="ftp://example.com"`)
	// Nothing was created.
	ws, err := e.svc.List(context.Background(), webhook.ListWebhooksParams{})
	require.NoError(t, err)
	assert.Empty(t, ws)

	// The Service's own reasons land beside their fields too.
	f = e.endpointForm()
	f.Set("filters", `amount gt "a lot"`)
	f.Set("headers", "Content-Type: text/plain")
	f.Set("max_attempts", "99")
	r = e.post("a", "/new", f)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, r.body)
	assert.Regexp(t, `id="filters-error">filter 1 value: gt needs a number`, r.body)
	assert.Regexp(t, `id="headers-error">Content-Type: `, r.body)
	assert.Regexp(t, `id="max_attempts-error">must be between 1 and 50`, r.body)

	// No event chosen: the events fieldset says so.
	f = e.endpointForm()
	f.Del("event")
	r = e.post("a", "/new", f)
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	assert.Contains(t, r.body, `id="events-error">at least one trigger is required`)
}

func TestEditChangesTheEndpointAndKeepsWhatItDoesNotShow(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	// An endpoint set up through the API with a threshold trigger the
	// form does not edit.
	w, err := e.svc.Tenant("a").Create(ctx, &webhook.Webhook{Name: "Ops", URL: e.rc.srv.URL, Triggers: []webhook.Trigger{
		{Type: webhook.TriggerEvent, Events: []string{"order.paid"}},
		{Type: webhook.TriggerThreshold, Conditions: []webhook.Condition{{Metric: "errors", Operator: webhook.ConditionGT, Value: 5}}},
	}})
	require.NoError(t, err)

	page := e.get("a", "/endpoints/"+w.ID+"/edit")
	require.Equal(t, http.StatusOK, page.status)
	assert.Regexp(t, `value="order.paid" checked`, page.body)
	assert.Regexp(t, `value="\$threshold_alert" checked disabled`, page.body)
	assert.Contains(t, page.body, `name="version" value="1"`)

	f := url.Values{"url": {e.rc.srv.URL + "/v2"}, "name": {"Ops v2"}, "event": {"order.refunded"}, "version": {"1"}}
	loc := e.location(e.post("a", "/endpoints/"+w.ID+"/edit", f))
	assert.Equal(t, "/endpoints/"+w.ID+"?done=saved", loc)
	got, err := e.svc.Get(ctx, w.ID)
	require.NoError(t, err)
	assert.Equal(t, "Ops v2", got.Name)
	require.Len(t, got.Triggers, 2)
	assert.Equal(t, []string{"order.refunded"}, got.Triggers[0].Events)
	assert.Equal(t, webhook.TriggerThreshold, got.Triggers[1].Type, "the threshold trigger is kept")

	// A form based on version 1 no longer saves: 409, nothing changes.
	f.Set("name", "stale")
	r := e.post("a", "/endpoints/"+w.ID+"/edit", f)
	assert.Equal(t, http.StatusConflict, r.status)
	assert.Contains(t, text(r.body), "changed while you were editing")
	got, err = e.svc.Get(ctx, w.ID)
	require.NoError(t, err)
	assert.Equal(t, "Ops v2", got.Name)

	// Invalid edits show the form again.
	f = url.Values{"url": {"nope"}, "name": {"x"}, "event": {"order.paid"}, "version": {"2"}}
	r = e.post("a", "/endpoints/"+w.ID+"/edit", f)
	assert.Equal(t, http.StatusUnprocessableEntity, r.status)
	assert.Contains(t, r.body, `id="url-error"`)
}

func TestEnableDisable(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create("a")
	loc := e.location(e.post("a", "/endpoints/"+id+"/disable", url.Values{"reason": {"maintenance"}}))
	assert.Equal(t, "/endpoints/"+id+"?done=disabled", loc)
	page := text(e.get("a", loc).body)
	assert.Contains(t, page, "Disabled maintenance")
	assert.Contains(t, page, "Enable")
	assert.Contains(t, text(e.get("a", "/").body), "Disabled maintenance")

	loc = e.location(e.post("a", "/endpoints/"+id+"/enable", nil))
	assert.Equal(t, "/endpoints/"+id+"?done=enabled", loc)
	w, err := e.svc.Get(context.Background(), id)
	require.NoError(t, err)
	assert.False(t, w.Disabled)

	r := e.post("a", "/endpoints/"+id+"/disable", url.Values{"reason": {"bad\x00reason"}})
	assert.Equal(t, http.StatusBadRequest, r.status)
}

func TestFailingStatus(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create("a")
	e.failDelivery("a")
	txt := text(e.get("a", "/").body)
	assert.Contains(t, txt, "Failing the last delivery failed")
	page := text(e.get("a", "/endpoints/"+id).body)
	assert.Contains(t, page, "Success rate 0.0%")
	assert.Contains(t, page, "Failed 1")
}

func TestDeleteAsksFirst(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create("a")
	confirm := e.get("a", "/endpoints/"+id+"/delete")
	require.Equal(t, http.StatusOK, confirm.status)
	assert.Contains(t, text(confirm.body), "Delete Orders? No more events will be sent")
	_, err := e.svc.Get(context.Background(), id)
	require.NoError(t, err, "the confirmation page deletes nothing")

	loc := e.location(e.post("a", "/endpoints/"+id+"/delete", nil))
	assert.Equal(t, "/?done=deleted", loc)
	_, err = e.svc.Get(context.Background(), id)
	assert.ErrorIs(t, err, webhook.ErrNotFound)
	assert.Contains(t, text(e.get("a", loc).body), "The endpoint was deleted.")
	assert.Equal(t, http.StatusNotFound, e.get("a", "/endpoints/"+id).status)
}

func TestSecretRevealAndRotate(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create("a")
	w, err := e.svc.Get(context.Background(), id)
	require.NoError(t, err)
	secret := w.Secret

	page := e.get("a", "/endpoints/"+id)
	assert.NotContains(t, html.UnescapeString(page.body), secret[6:])
	assert.Contains(t, page.body, `action="/portal/endpoints/`+id+`/secret"`)

	shown := e.post("a", "/endpoints/"+id+"/secret", nil)
	require.Equal(t, http.StatusOK, shown.status)
	assert.Contains(t, html.UnescapeString(shown.body), `<code id="secret" class="secret">`+secret+`</code>`)
	assert.Equal(t, "no-store", shown.header.Get("Cache-Control"))

	loc := e.location(e.post("a", "/endpoints/"+id+"/rotate", url.Values{"grace_hours": {"24"}}))
	assert.Equal(t, "/endpoints/"+id+"?done=rotated", loc)
	got, err := e.svc.Get(context.Background(), id)
	require.NoError(t, err)
	assert.NotEqual(t, secret, got.Secret)
	require.Len(t, got.PreviousSecrets, 1)
	page = e.get("a", loc)
	txt := text(page.body)
	assert.Contains(t, txt, "The secret was rotated.")
	assert.Contains(t, txt, "The previous secret keeps signing until "+got.PreviousSecrets[0].ExpiresAt.UTC().Format("2006-01-02 15:04:05 UTC"))
	assert.WithinDuration(t, time.Now().Add(24*time.Hour), got.PreviousSecrets[0].ExpiresAt, time.Minute)
	assert.NotContains(t, html.UnescapeString(page.body), got.Secret[6:])

	// Without grace the old secret stops at once.
	e.location(e.post("a", "/endpoints/"+id+"/rotate", url.Values{"grace_hours": {"-1"}}))
	got, err = e.svc.Get(context.Background(), id)
	require.NoError(t, err)
	assert.Empty(t, got.ActiveSecrets(time.Now())[1:])

	assert.Equal(t, http.StatusBadRequest, e.post("a", "/endpoints/"+id+"/rotate", url.Values{"grace_hours": {"5"}}).status)
}

func TestSendATestShowsTheResult(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create("a")
	loc := e.location(e.post("a", "/endpoints/"+id+"/test", nil))
	assert.Contains(t, loc, "/endpoints/"+id+"/deliveries/")
	assert.True(t, strings.HasSuffix(loc, "?done=tested"))
	page := e.get("a", loc)
	require.Equal(t, http.StatusOK, page.status)
	txt := text(page.body)
	assert.Contains(t, txt, "A test event was sent; its result is below.")
	assert.Contains(t, page.body, `id="delivery-status">delivered<`)
	assert.Contains(t, txt, "Status code 200")
	assert.Contains(t, txt, "receiver says OK")
	assert.Contains(t, page.body, `&#34;event_type&#34;:&#34;$test&#34;`, "the body sent, escaped")
	assert.NotContains(t, page.body, `>Redeliver<`, "a test send is not redelivered")
	assert.Equal(t, int32(1), e.rc.calls.Load())

	// A failing endpoint: the page says so.
	e.rc.status.Store(http.StatusServiceUnavailable)
	page = e.get("a", e.location(e.post("a", "/endpoints/"+id+"/test", nil)))
	assert.Contains(t, page.body, `id="delivery-status">failed<`)
	assert.Contains(t, text(page.body), "Status code 503")
}

func TestDeliveriesFilterAndPage(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create("a")
	ctx := context.Background()
	failed := e.failDelivery("a")
	var tests []string
	for range 26 {
		d, err := e.svc.Tenant("a").Test(ctx, id)
		require.NoError(t, err)
		tests = append(tests, d.ID)
	}
	page := e.get("a", "/endpoints/"+id+"/deliveries")
	require.Equal(t, http.StatusOK, page.status)
	assert.Equal(t, 25, strings.Count(page.body, "<tr>")-1)
	assert.Contains(t, page.body, `/deliveries/`+tests[25]+`"`, "newest first")
	assert.NotContains(t, page.body, `/deliveries/`+failed+`"`)
	next := regexpFind(t, `href="/portal(/endpoints/[^"]+/deliveries\?before=[^"]+)" rel="next"`, page.body)
	page = e.get("a", strings.ReplaceAll(next, "&amp;", "&"))
	assert.Contains(t, page.body, `/deliveries/`+tests[0]+`"`)
	assert.Contains(t, page.body, `/deliveries/`+failed+`"`)
	assert.NotContains(t, page.body, `rel="next"`)
	assert.Contains(t, page.body, `>Newest</a>`)

	page = e.get("a", "/endpoints/"+id+"/deliveries?status=failed")
	assert.Equal(t, 1, strings.Count(page.body, "<tr>")-1)
	assert.Contains(t, page.body, `/deliveries/`+failed+`"`)
	assert.Contains(t, page.body, `<option value="failed" selected>`)
	page = e.get("a", "/endpoints/"+id+"/deliveries?event_type=order.paid")
	assert.Equal(t, 1, strings.Count(page.body, "<tr>")-1)
	page = e.get("a", "/endpoints/"+id+"/deliveries?event_type=order.refunded")
	assert.Contains(t, text(page.body), "No deliveries match these filters.")

	assert.Equal(t, http.StatusBadRequest, e.get("a", "/endpoints/"+id+"/deliveries?status=lost").status)

	one := e.get("a", "/endpoints/"+id+"/deliveries/"+failed)
	require.Equal(t, http.StatusOK, one.status)
	txt := text(one.body)
	assert.Contains(t, txt, "Status code 500")
	assert.Contains(t, txt, "receiver says Internal Server Error")
	assert.Contains(t, one.body, `&#34;amount&#34;:42`)
}

func regexpFind(t *testing.T, pattern, s string) string {
	t.Helper()
	m := regexpMust(pattern).FindStringSubmatch(s)
	require.NotNil(t, m, "no %s in the page", pattern)
	return m[1]
}

func TestRedeliverAndReplay(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create("a")
	ctx := context.Background()
	first := e.failDelivery("a")

	page := e.get("a", "/endpoints/"+id+"/deliveries/"+first)
	assert.Contains(t, page.body, `action="/portal/endpoints/`+id+`/deliveries/`+first+`/redeliver"`)
	loc := e.location(e.post("a", "/endpoints/"+id+"/deliveries/"+first+"/redeliver", nil))
	again := idOf(loc)
	assert.NotEqual(t, first, again)
	d, err := e.svc.Delivery(ctx, again)
	require.NoError(t, err)
	assert.Equal(t, first, d.RedeliveryOf)
	assert.Contains(t, text(e.get("a", loc).body), "The delivery was queued again")

	// The redelivery fails too when the worker runs next, beside two
	// new failures: three to replay, the first one being redelivered.
	e.failDelivery("a")
	e.failDelivery("a")
	form := e.get("a", "/endpoints/"+id+"/replay")
	require.Equal(t, http.StatusOK, form.status)
	assert.Contains(t, form.body, `<label for="since">`)

	since := time.Now().Add(-time.Hour).UTC().Format("2006-01-02T15:04")
	count := e.post("a", "/endpoints/"+id+"/replay", url.Values{"since": {since}})
	require.Equal(t, http.StatusOK, count.status)
	assert.Contains(t, text(count.body), "3 failed deliveries since "+since+" UTC will be sent again.")
	ds, err := e.svc.ListDeliveries(ctx, webhook.ListDeliveriesParams{WebhookID: id, Status: webhook.StatusPending})
	require.NoError(t, err)
	assert.Empty(t, ds, "the count queues nothing")

	done := e.post("a", "/endpoints/"+id+"/replay", url.Values{"since": {since}, "confirm": {"yes"}})
	require.Equal(t, http.StatusOK, done.status)
	assert.Contains(t, text(done.body), "3 failed deliveries were queued again.")
	ds, err = e.svc.ListDeliveries(ctx, webhook.ListDeliveriesParams{WebhookID: id, Status: webhook.StatusPending})
	require.NoError(t, err)
	assert.Len(t, ds, 3)

	bad := e.post("a", "/endpoints/"+id+"/replay", url.Values{"since": {"yesterday"}})
	assert.Contains(t, bad.body, `id="since-error"`)
}

func TestHealthCountsTheLastDay(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create("a")
	for range 3 {
		_, err := e.svc.Tenant("a").Test(context.Background(), id)
		require.NoError(t, err)
	}
	e.failDelivery("a")
	txt := text(e.get("a", "/endpoints/"+id).body)
	assert.Contains(t, txt, "Success rate 75.0%")
	assert.Contains(t, txt, "Delivered 3")
	assert.Contains(t, txt, "Failed 1")
	assert.Contains(t, txt, "Latency, median")
}

func TestNewRefusesBadConfig(t *testing.T) {
	e := newEnv(t, nil)
	for _, c := range []*portal.Config{
		{Prefix: "no-slash"},
		{Prefix: "/a b"},
		{Prefix: `/a"b`},
		{EventTypes: []webhook.EventType{{Name: "$mine"}}},
		{EventTypes: []webhook.EventType{{Name: "x"}, {Name: "x"}}},
		{EventTypes: []webhook.EventType{{Name: ""}}},
		{FrameAncestors: []string{"https://a.example; script-src *"}},
		{FrameAncestors: []string{""}},
	} {
		_, err := portal.New(e.svc, c)
		assert.ErrorIs(t, err, webhook.ErrInvalid, "%+v", c)
	}
	_, err := portal.New(nil, nil)
	assert.True(t, errors.Is(err, webhook.ErrInvalid))
	h, err := portal.New(e.svc, nil)
	require.NoError(t, err)
	assert.NotNil(t, h)
}

func TestSingleTenantHost(t *testing.T) {
	e := newEnv(t, nil)
	h, err := portal.New(e.svc, nil) // no Tenant: every webhook of the Service
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()
	f := &env{t: t, svc: e.svc, worker: e.worker, rc: e.rc, srv: srv, logs: e.logs, client: e.client}
	id := f.create("")
	w, err := e.svc.Get(context.Background(), id)
	require.NoError(t, err)
	assert.Empty(t, w.TenantID)
	assert.Contains(t, text(f.get("", "/").body), "Orders")
	assert.NotContains(t, f.get("", "/").body, `class="tenant"`)
	assert.Equal(t, http.StatusNotFound, f.get("", "/endpoints/nope").status)
	assert.Equal(t, http.StatusNotFound, f.get("", "/endpoints/nope/deliveries").status)
	assert.Equal(t, http.StatusNotFound, f.get("", "/endpoints/"+id+"/deliveries/nope").status)
}

// TestEditKeepsTriggersTheFormCannotShow edits the name of an endpoint
// whose triggers were set up through the API with more than the form
// shows (two event triggers with different filters): the form shows
// them disabled, and saving changes the name only.
func TestEditKeepsTriggersTheFormCannotShow(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	w, err := e.svc.Tenant("a").Create(ctx, &webhook.Webhook{Name: "Two", URL: e.rc.srv.URL + "/hook", Triggers: []webhook.Trigger{
		{Type: webhook.TriggerEvent, Events: []string{"order.paid"}, Filters: []webhook.Filter{{Property: "amount", Operator: webhook.FilterGT, Value: float64(100)}}},
		{Type: webhook.TriggerEvent, Events: []string{"order.refunded"}, Filters: []webhook.Filter{{Property: "plan", Operator: webhook.FilterEquals, Value: "pro"}}},
	}})
	require.NoError(t, err)

	page := e.get("a", "/endpoints/"+w.ID+"/edit")
	require.Equal(t, http.StatusOK, page.status)
	assert.Contains(t, page.body, `id="kept-hint"`)
	assert.Regexp(t, `<fieldset aria-describedby="kept-hint" disabled>`, page.body)
	assert.Regexp(t, `<textarea id="filters" name="filters" rows="3" spellcheck="false" disabled`, page.body)

	// What a browser sends: disabled fields are left out.
	r := e.post("a", "/endpoints/"+w.ID+"/edit", url.Values{"url": {w.URL}, "name": {"Renamed"}, "max_attempts": {"5"},
		"version": {strconv.FormatInt(w.Version, 10)}})
	require.Equal(t, http.StatusSeeOther, r.status, r.body)
	got, err := e.svc.Get(ctx, w.ID)
	require.NoError(t, err)
	assert.Equal(t, "Renamed", got.Name)
	assert.Equal(t, w.Triggers, got.Triggers, "the triggers are kept as they were")
}
