package portal_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
)

var endpointLink = regexp.MustCompile(`<td data-label="Name"><a href="/portal/endpoints/([^"]+)">`)
var moreLink = regexp.MustCompile(`<a href="([^"]+)" rel="next">More endpoints</a>`)

// TestListPagesThroughEveryEndpoint lists 250 endpoints: a page shows
// 100 and links to the next, and following the links shows each of the
// tenant's endpoints once, and none of another tenant's.
func TestListPagesThroughEveryEndpoint(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	want := map[string]bool{}
	for i := range 250 {
		w, err := e.svc.Tenant("a").Create(ctx, &webhook.Webhook{Name: fmt.Sprintf("hook %d", i), URL: e.rc.srv.URL + "/hook",
			Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent, Events: []string{"order.paid"}}}})
		require.NoError(t, err)
		want[w.ID] = true
	}
	other := e.create("b")

	seen := map[string]bool{}
	path, pages := "/", 0
	for path != "" {
		pages++
		require.LessOrEqual(t, pages, 3, "at most 3 pages")
		r := e.get("a", path)
		require.Equal(t, http.StatusOK, r.status, path)
		rows := endpointLink.FindAllStringSubmatch(r.body, -1)
		assert.LessOrEqual(t, len(rows), 100, "a page shows 100 at most")
		for _, m := range rows {
			assert.False(t, seen[m[1]], "%s shown twice", m[1])
			seen[m[1]] = true
		}
		if pages > 1 {
			assert.Contains(t, r.body, `<a href="/portal/">First</a>`)
		}
		path = ""
		if m := moreLink.FindStringSubmatch(r.body); m != nil {
			path = strings.TrimPrefix(html.UnescapeString(m[1]), "/portal")
		}
	}
	assert.Equal(t, 3, pages)
	assert.Equal(t, want, seen, "every endpoint of a, once, and none of b's")
	assert.False(t, seen[other])

	for _, after := range []string{strings.Repeat("x", 300), "a%00b"} {
		r := e.get("a", "/?after="+after)
		assert.Equal(t, http.StatusBadRequest, r.status, after)
		assert.Contains(t, r.body, "That is not a page of this list.")
	}
}
