package portal_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// focusedJS describes the focused element: its id, value or text, and
// whether a focus outline is drawn around it.
const focusedJS = `(() => {
	const el = document.activeElement;
	if (!el || el === document.body) { return {key: "", outlined: false}; }
	const st = getComputedStyle(el);
	const outlined = st.outlineStyle !== "none" && parseFloat(st.outlineWidth) > 0;
	const key = el.type === "checkbox" ? el.value : (el.id ? "#" + el.id : el.textContent.trim());
	return {key: key, outlined: outlined};
})()`

type focused struct {
	Key      string `json:"key"`
	Outlined bool   `json:"outlined"`
}

// tabToKey presses Tab until the focused element is key ("#id", a
// checkbox's value, or a link's or button's text), at most 60 times,
// and checks that every element Tab reaches on the way shows where the
// focus is.
func tabToKey(t *testing.T, ctx context.Context, key string) {
	t.Helper()
	for range 60 {
		require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent(kb.Tab)))
		f, err := chromedp.Run(ctx, chromedp.Evaluate[focused](focusedJS))
		require.NoError(t, err)
		if f.Key == "" {
			continue // past the page's last element: the browser's own
		}
		assert.True(t, f.Outlined, "the focused %q shows a focus outline", f.Key)
		if f.Key == key {
			return
		}
	}
	t.Fatalf("Tab never reached %q", key)
}

// TestBrowserWithTheKeyboardAlone does what TestBrowserManagesAnEndpoint
// does with no click at all: Tab, typing, Space and Enter. It creates
// an endpoint, reveals and rotates its secret, and deletes it.
func TestBrowserWithTheKeyboardAlone(t *testing.T) {
	e := newEnv(t, nil)
	ctx := browser(t, 1024, "a", 30*time.Second)
	type_ := func(s string) { require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent(s))) }
	enter := func(wait string) {
		require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS(wait))))
	}

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(e.srv.URL+"/portal/"), chromedp.WaitVisible(chromedp.CSS("main"))))
	// The first Tab reaches the skip link, which then shows.
	tabToKey(t, ctx, "Skip to content")
	left, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.activeElement.getBoundingClientRect().left`))
	require.NoError(t, err)
	assert.GreaterOrEqual(t, left, 0.0, "the focused skip link is on screen")

	tabToKey(t, ctx, "New endpoint")
	enter("#url")
	tabToKey(t, ctx, "#url")
	type_(e.rc.srv.URL + "/hook")
	tabToKey(t, ctx, "#name")
	type_("Keys")
	tabToKey(t, ctx, "order.paid")
	type_(" ")
	tabToKey(t, ctx, "#max_attempts")
	type_("1")
	tabToKey(t, ctx, "Create endpoint")
	enter(".notice")
	assert.Equal(t, "The endpoint was created.", textOf(t, ctx, ".notice"))
	assert.Equal(t, "Keys", textOf(t, ctx, "h1"))
	assert.Contains(t, textOf(t, ctx, ".facts"), "events order.paid")
	assert.Contains(t, textOf(t, ctx, ".facts"), "none: 1 attempt")

	tabToKey(t, ctx, "Reveal")
	enter("#secret")
	assert.True(t, strings.HasPrefix(textOf(t, ctx, "#secret"), "whsec_"))
	tabToKey(t, ctx, "Rotate secret")
	enter(".notice")
	assert.Equal(t, "The secret was rotated.", textOf(t, ctx, ".notice"))

	tabToKey(t, ctx, "Delete")
	enter("button.danger")
	tabToKey(t, ctx, "Delete endpoint")
	enter(".notice")
	assert.Equal(t, "The endpoint was deleted.", textOf(t, ctx, ".notice"))
	assert.Contains(t, textOf(t, ctx, "main"), "You have no endpoints yet.")
}
