package portal_test

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// updateScreenshots writes the screenshots of the browser test into
// testdata/screenshots and the README's into ../docs/portal.png.
var updateScreenshots = flag.Bool("update-screenshots", false, "write the browser test's screenshots into testdata/screenshots and docs/portal.png")

// browserPath returns the headless browser the tests drive: $CHROMIUM
// when set, else Debian's chromium (or another Chromium on PATH). Under
// CI=true a missing browser fails the test; elsewhere the test is
// skipped, saying so.
func browserPath(t *testing.T) string {
	t.Helper()
	candidates := []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"}
	if c := os.Getenv("CHROMIUM"); c != "" {
		candidates = []string{c}
	}
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	const how = "install Debian's chromium (apt-get install -y chromium) or set CHROMIUM to a Chromium binary"
	if os.Getenv("CI") == "true" {
		t.Fatalf("no headless browser found (tried %v); the browser tests must run under CI=true: %s", candidates, how)
	}
	t.Skipf("SKIPPED: no headless browser found (tried %v); %s to run the browser tests", candidates, how)
	return ""
}

// browser starts a headless browser width pixels wide, whose requests
// carry the test host's X-Tenant header, and returns its context,
// bounded by timeout.
func browser(t *testing.T, width int, tenant string, timeout time.Duration) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browserPath(t)),
		chromedp.WindowSize(width, 900),
		chromedp.Flag("hide-scrollbars", true),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	_, err := chromedp.Call(ctx, network.Enable, network.EnableParams{})
	require.NoError(t, err)
	_, err = chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"X-Tenant": tenant}})
	require.NoError(t, err)
	// A headless window is at least 500 px wide; the viewport is not.
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(int64(width), 900)))
	return ctx
}

// readmeScreenshot is the screenshot the README shows.
const readmeScreenshot = "endpoint"

// shot saves a full-page PNG screenshot in the test's artifact
// directory, and in testdata/screenshots with -update-screenshots.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(t.ArtifactDir(), name+".png"), png, 0o644))
	if *updateScreenshots {
		require.NoError(t, os.MkdirAll(filepath.Join("testdata", "screenshots"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join("testdata", "screenshots", name+".png"), png, 0o644))
		if name == readmeScreenshot {
			require.NoError(t, os.WriteFile(filepath.Join("..", "docs", "portal.png"), png, 0o644))
		}
	}
}

// textOf returns the text of the first element matching sel, spaces
// collapsed.
func textOf(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(t, err, sel)
	return strings.Join(strings.Fields(s), " ")
}

// tabTo presses Tab until the focused element's text is label, at most
// 40 times.
func tabTo(t *testing.T, ctx context.Context, label string) {
	t.Helper()
	for range 40 {
		require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent(kb.Tab)))
		focused, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement ? document.activeElement.textContent.trim() : ""`))
		require.NoError(t, err)
		if focused == label {
			return
		}
	}
	t.Fatalf("Tab never reached %q", label)
}

// TestBrowserManagesAnEndpoint drives the portal in headless Chromium,
// by keyboard where a person would type: create an endpoint, send a
// test, read its attempt, reveal and rotate the secret, replay a
// failed delivery, delete the endpoint.
func TestBrowserManagesAnEndpoint(t *testing.T) {
	e := newEnv(t, nil)
	ctx := browser(t, 1024, "a", 30*time.Second)
	base := e.srv.URL + "/portal"

	// The empty list, then the form.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("main"))))
	assert.Contains(t, textOf(t, ctx, "main"), "You have no endpoints yet.")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`a[href="/portal/new"]`)),
		chromedp.WaitVisible(chromedp.CSS("#url")),
		chromedp.SendKeys(chromedp.CSS("#url"), e.rc.srv.URL+"/hook"),
		chromedp.Click(chromedp.CSS(`input[value="order.paid"]`)),
		chromedp.SendKeys(chromedp.CSS("#max_attempts"), "1"),
	))
	shot(t, ctx, "form")
	// Enter in the last text field submits the form.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#name"), "Orders"+kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(".notice")),
	))
	assert.Equal(t, "The endpoint was created.", textOf(t, ctx, ".notice"))
	assert.Equal(t, "Orders", textOf(t, ctx, "h1"))
	assert.Equal(t, "Enabled", textOf(t, ctx, "main .badge"))
	assert.Contains(t, textOf(t, ctx, ".facts"), "events order.paid")
	endpointURL, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	endpointURL, _, _ = strings.Cut(endpointURL, "?")

	// Send a test, with the keyboard alone: Tab to the button, press
	// Enter. The delivery's page shows the attempt at once.
	tabTo(t, ctx, "Send a test event")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS("#delivery-status")),
	))
	assert.Equal(t, "A test event was sent; its result is below.", textOf(t, ctx, ".notice"))
	assert.Equal(t, "delivered", textOf(t, ctx, "#delivery-status"))
	assert.Equal(t, "200", textOf(t, ctx, ".status-code"))
	assert.Contains(t, textOf(t, ctx, "pre.response"), "receiver says OK")
	assert.Contains(t, textOf(t, ctx, "#request-body"), `"event_type":"$test"`)
	shot(t, ctx, "delivery")

	// The secret: hidden, revealed by a POST, then rotated.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(endpointURL), chromedp.WaitVisible(chromedp.CSS("#secret-h"))))
	assert.Contains(t, textOf(t, ctx, "main"), "Delivered 1")
	shot(t, ctx, "endpoint")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`form[action$="/secret"] button`)),
		chromedp.WaitVisible(chromedp.CSS("#secret")),
		chromedp.WaitVisible(chromedp.CSS("button.copy")),
	))
	secret := textOf(t, ctx, "#secret")
	assert.True(t, strings.HasPrefix(secret, "whsec_"), secret)
	loc, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	assert.NotContains(t, loc, strings.TrimPrefix(secret, "whsec_"))
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS("#grace_hours"), "24"),
		chromedp.Click(chromedp.CSS(`form[action$="/rotate"] button`)),
		chromedp.WaitVisible(chromedp.CSS(".retired")),
	))
	assert.Equal(t, "The secret was rotated.", textOf(t, ctx, ".notice"))
	assert.Contains(t, textOf(t, ctx, ".retired"), "The previous secret keeps signing until "+time.Now().Add(24*time.Hour).UTC().Format("2006-01-02"))
	assert.NotContains(t, textOf(t, ctx, "main"), secret)

	// A delivery fails; the replay counts it, then queues it again.
	e.failDelivery("a")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(endpointURL+"/deliveries?status=failed"),
		chromedp.WaitVisible(chromedp.CSS("table")),
	))
	assert.Contains(t, textOf(t, ctx, "tbody"), "order.paid failed 1 500")
	shot(t, ctx, "deliveries")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(endpointURL+"/replay"),
		chromedp.Click(chromedp.CSS(`form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#replay-count")),
	))
	assert.Contains(t, textOf(t, ctx, "#replay-count"), "1 failed delivery since")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#replay-result")),
	))
	assert.Equal(t, "1 failed delivery was queued again.", textOf(t, ctx, "#replay-result"))

	// Delete, after the confirmation page.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(endpointURL),
		chromedp.Click(chromedp.CSS(`a[href$="/delete"]`)),
		chromedp.WaitVisible(chromedp.CSS(`button.danger`)),
	))
	assert.Equal(t, "Delete Orders?", textOf(t, ctx, "h1"))
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`button.danger`)),
		chromedp.WaitVisible(chromedp.CSS(".notice")),
	))
	assert.Equal(t, "The endpoint was deleted.", textOf(t, ctx, ".notice"))
	assert.Contains(t, textOf(t, ctx, "main"), "You have no endpoints yet.")
}

// TestBrowserAt320Pixels opens the main pages 320 px wide and checks
// that none is wider than the window.
func TestBrowserAt320Pixels(t *testing.T) {
	e := newEnv(t, nil)
	id := e.create("a")
	did := e.failDelivery("a")
	ctx := browser(t, 320, "a", 30*time.Second)
	base := e.srv.URL + "/portal"
	for _, p := range []struct{ name, path string }{
		{"list", "/"},
		{"form", "/new"},
		{"endpoint", "/endpoints/" + id},
		{"deliveries", "/endpoints/" + id + "/deliveries"},
		{"delivery", "/endpoints/" + id + "/deliveries/" + did},
		{"replay", "/endpoints/" + id + "/replay"},
		{"edit", "/endpoints/" + id + "/edit"},
		{"delete", "/endpoints/" + id + "/delete"},
		{"error", "/endpoints/no-such-endpoint"},
	} {
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+p.path), chromedp.WaitVisible(chromedp.CSS("main"))), p.path)
		width, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
		require.NoError(t, err)
		window, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.innerWidth`))
		require.NoError(t, err)
		assert.Equal(t, 320, window)
		assert.LessOrEqual(t, width, window, "%s is wider than the window", p.path)
		shot(t, ctx, "narrow-"+p.name)
	}
}
