package main

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A forged cursor is the client's mistake, never a 500. PostgreSQL's IDs
// are UUIDs, so pgstore refuses a cursor that is not one: the API and
// the portal answer 400. memstore pages by any ID, so the same cursors
// there give a page (empty past the end).
func TestForgedCursorsAreNot500(t *testing.T) {
	t.Run("memstore", func(t *testing.T) { checkForgedCursors(t, startServer(t, options{}), false) })
	t.Run("postgres", func(t *testing.T) { checkForgedCursors(t, startServer(t, postgresOptions(t)), true) })
}

// checkForgedCursors tries forged cursors; refused says the storage
// refuses them (400), else they page (200).
func checkForgedCursors(t *testing.T, addr string, refused bool) {
	api := "http://" + addr + "/api"
	call := func(method, path, body string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, api+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer demo-acme")
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		return res.StatusCode, b
	}
	status, b := call("POST", "/webhooks", `{"name":"orders","url":"http://`+addr+`/receiver/orders","triggers":[{"trigger_type":"event","events":["order.*"]}]}`)
	require.Equal(t, http.StatusCreated, status, string(b))
	var w struct{ ID string }
	require.NoError(t, json.Unmarshal(b, &w))

	cursor := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, path := range []string{
		"/webhooks?cursor=" + cursor("w1:garbage"),
		"/webhooks/" + w.ID + "/deliveries?cursor=" + cursor("d1:garbage"),
		"/webhooks/" + w.ID + "/deliveries?cursor=" + cursor("d1:zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"),
	} {
		status, b := call("GET", path, "")
		if !refused {
			assert.Equal(t, http.StatusOK, status, "%s: %s", path, b)
			continue
		}
		assert.Equal(t, http.StatusBadRequest, status, "%s: %s", path, b)
		assert.Contains(t, string(b), `"parameter":"cursor"`, path)
	}

	br := newBrowserClient(t, addr)
	res, _ := br.do("POST", "/portal/login", url.Values{"token": {"demo-acme"}}, "same-origin")
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	for _, path := range []string{
		"/portal/endpoints/" + w.ID + "/deliveries?before=garbage",
		"/portal/endpoints/" + w.ID + "/deliveries?before=zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz",
		"/portal/?after=garbage",
	} {
		before := path
		res, page := br.do("GET", path, nil, "")
		if !refused {
			assert.Equal(t, http.StatusOK, res.StatusCode, before)
			continue
		}
		assert.Equal(t, http.StatusBadRequest, res.StatusCode, before)
		assert.Contains(t, page, "That is not a page of this list.", before)
	}
}
