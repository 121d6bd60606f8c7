package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// readmeAddr is the address the README's session talks to.
const readmeAddr = "127.0.0.1:8080"

// startServer runs the server on a random port until the test ends, and
// returns its address ("127.0.0.1:port"). The test fails unless the
// server then stops cleanly.
func startServer(t *testing.T, o options) string {
	t.Helper()
	o.addr = "127.0.0.1:0"
	if o.tokens == nil {
		o.tokens = demoTokens
	}
	o.poll, o.shutdown = 10*time.Millisecond, 5*time.Second
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, o, &out, slog.New(slog.DiscardHandler), func(base string) { addr <- strings.TrimPrefix(base, "http://") })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err, "a graceful stop")
			assert.Contains(t, out.String(), "stopped")
		case <-time.After(10 * time.Second):
			t.Error("the server did not stop within 10s")
		}
	})
	select {
	case a := <-addr:
		for token, tenant := range o.tokens {
			assert.Contains(t, out.String(), token+"  tenant "+tenant, "the banner shows the tokens")
		}
		return a
	case err := <-done:
		t.Fatalf("the server did not start: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not start within 10s")
	}
	return ""
}

// readmeSession returns the shell lines of the README's "Example server"
// section (continuations joined; comments, blank lines and the go run
// line left out).
func readmeSession(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	text := string(b)
	start := strings.Index(text, "\n## Example server\n")
	require.NotEqual(t, -1, start, "README.md has a section ## Example server")
	section := text[start+1:]
	if end := strings.Index(section[3:], "\n## "); end != -1 {
		section = section[:end+3]
	}
	var lines []string
	for _, block := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(section, -1) {
		joined := strings.ReplaceAll(block[1], "\\\n", " ")
		for line := range strings.SplitSeq(joined, "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "go run ") {
				continue
			}
			lines = append(lines, line)
		}
	}
	require.NotEmpty(t, lines, "the section's sh blocks hold the session")
	return lines
}

// step is one curl command of the session, as the test understands it.
type step struct {
	method, url, body string
	header            http.Header
	capture, field    string // VAR=$(curl … | jq -r .field)
	statusOnly        bool   // -o /dev/null -w '%{http_code}\n'
}

// answer is what a step got.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the answer's body.
func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var v map[string]any
	require.NoError(t, json.Unmarshal(a.body, &v), "%s", a.body)
	return v
}

// The README's curl session, run as HTTP requests against the server in
// this process, each answer checked: the README cannot drift from what
// the server does.
func TestReadmeSession(t *testing.T) {
	addr := startServer(t, options{})
	runSession(t, addr)
}

// The same session against PostgreSQL (-db), when the tests have one.
func TestReadmeSessionOnPostgres(t *testing.T) {
	runSession(t, startServer(t, postgresOptions(t)))
}

// postgresOptions returns the options of a server on PostgreSQL in a
// schema of its own, dropped when the test ends; the test skips without
// WEBHOOK_TEST_DATABASE_URL.
func postgresOptions(t *testing.T) options {
	t.Helper()
	dbURL := os.Getenv("WEBHOOK_TEST_DATABASE_URL")
	if dbURL == "" {
		t.Skip("WEBHOOK_TEST_DATABASE_URL is not set")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		pool, err := pgxpool.New(context.Background(), dbURL)
		require.NoError(t, err)
		defer pool.Close()
		_, err = pool.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`)
		assert.NoError(t, err)
	})
	return options{db: dbURL, schema: schema}
}

func runSession(t *testing.T, addr string) {
	vars := map[string]string{}
	var kinds []string
	var created, tested map[string]any
	for _, line := range readmeSession(t) {
		line = strings.ReplaceAll(line, readmeAddr, addr)
		if name, value, ok := assignment(line); ok && !strings.HasPrefix(value, "$(") {
			words := shellWords(t, value, vars)
			require.Len(t, words, 1, "%s", line)
			vars[name] = words[0]
			continue
		}
		st := parseCurl(t, line, vars)
		a := do(t, st)
		if st.capture != "" {
			v := a.json(t)
			s, ok := v[st.field].(string)
			require.True(t, ok, "%s: .%s of %s", line, st.field, a.body)
			vars[st.capture] = s
		}
		u, err := url.Parse(st.url)
		require.NoError(t, err)
		kind := st.method + " " + strings.ReplaceAll(u.Path, vars["ID"], "{id}")
		if strings.Contains(st.header.Get("Authorization"), "demo-globex") {
			kind += " (other tenant)"
		}
		kinds = append(kinds, kind)

		switch kind {
		case "POST /api/webhooks":
			require.Equal(t, http.StatusCreated, a.status, "%s", a.body)
			created = a.json(t)
			assert.Regexp(t, `^whsec_`, created["secret"], "the create answer shows the secret")
			assert.Equal(t, "/api/webhooks/"+vars["ID"], a.header.Get("Location"))
		case "GET /api/webhooks":
			require.Equal(t, http.StatusOK, a.status, "%s", a.body)
			v := a.json(t)
			data, _ := v["data"].([]any)
			require.Len(t, data, 1, "%s", a.body)
			assert.Equal(t, vars["ID"], data[0].(map[string]any)["id"])
			assert.Equal(t, false, v["has_more"])
			assert.NotContains(t, string(a.body), "whsec_", "a list never shows secrets")
		case "POST /api/webhooks/{id}/test":
			require.Equal(t, http.StatusOK, a.status, "%s", a.body)
			tested = a.json(t)
			assert.Equal(t, "delivered", tested["status"], "the receiver verified the signature and answered 204: %s", a.body)
			atts, _ := tested["attempts"].([]any)
			require.Len(t, atts, 1, "%s", a.body)
			assert.EqualValues(t, http.StatusNoContent, atts[0].(map[string]any)["status_code"])
		case "GET /api/webhooks/{id}/deliveries":
			require.Equal(t, http.StatusOK, a.status, "%s", a.body)
			data, _ := a.json(t)["data"].([]any)
			require.Len(t, data, 1, "%s", a.body)
			d := data[0].(map[string]any)
			require.NotNil(t, tested, "the test send comes first")
			assert.Equal(t, tested["id"], d["id"])
			assert.Len(t, d["attempts"], 1, "the history carries the attempts")
		case "GET /api/webhooks/{id}/stats":
			require.Equal(t, http.StatusOK, a.status, "%s", a.body)
			v := a.json(t)
			assert.Equal(t, vars["ID"], v["webhook_id"])
			assert.EqualValues(t, 1, v["deliveries"].(map[string]any)["delivered"], "the test send: %s", a.body)
			assert.EqualValues(t, 1, v["attempts"].(map[string]any)["success"])
			assert.EqualValues(t, 1, v["success_rate"])
			assert.EqualValues(t, 1, v["latency_samples"])
			require.NotNil(t, tested, "the test send comes first")
			assert.Equal(t, tested["id"], v["last_success"].(map[string]any)["delivery_id"])
		case "POST /api/webhooks/{id}/secret/rotate":
			require.Equal(t, http.StatusOK, a.status, "%s", a.body)
			v := a.json(t)
			require.NotNil(t, created)
			assert.Regexp(t, `^whsec_`, v["secret"])
			assert.NotEqual(t, created["secret"], v["secret"], "a new secret")
			prev, _ := v["previous_secrets"].([]any)
			require.Len(t, prev, 1, "%s", a.body)
			assert.Equal(t, created["secret"], prev[0].(map[string]any)["secret"], "the old one still signs")
		case "GET /api/webhooks/{id} (other tenant)":
			assert.Equal(t, http.StatusNotFound, a.status, "another tenant's webhook does not exist for it: %s", a.body)
		case "GET /receiver":
			require.Equal(t, http.StatusOK, a.status, "%s", a.body)
			data, _ := a.json(t)["data"].([]any)
			require.NotEmpty(t, data, "%s", a.body)
			got := data[0].(map[string]any)
			assert.Equal(t, true, got["verified"], "%s", a.body)
			assert.Equal(t, vars["ID"], got["webhook_id"])
		default:
			t.Errorf("the README runs %q, which this test does not check: add it here", kind)
		}
	}
	assert.Equal(t, []string{
		"POST /api/webhooks", "GET /api/webhooks", "POST /api/webhooks/{id}/test", "GET /api/webhooks/{id}/deliveries",
		"GET /api/webhooks/{id}/stats", "POST /api/webhooks/{id}/secret/rotate", "GET /api/webhooks/{id} (other tenant)", "GET /receiver",
	}, kinds, "the README's session: create, list, test, deliveries, stats, rotate, another tenant, the receiver")

	// The exact lines, with curl and jq, where the machine has them.
	t.Run("curl", func(t *testing.T) {
		for _, tool := range []string{"bash", "curl", "jq"} {
			if _, err := exec.LookPath(tool); err != nil {
				t.Skipf("%s is not installed", tool)
			}
		}
		script := "set -euo pipefail\n" + strings.ReplaceAll(strings.Join(readmeSession(t), "\n"), readmeAddr, addr)
		out, err := exec.CommandContext(t.Context(), "bash", "-c", script).CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Contains(t, string(out), "\n404\n", "the other tenant's answer")
		assert.Contains(t, string(out), `"verified": true`, "the receiver's list")
	})
}

// assignment splits NAME=value.
func assignment(line string) (name, value string, ok bool) {
	m := regexp.MustCompile(`^([A-Z_]+)=(.*)$`).FindStringSubmatch(line)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// parseCurl reads `curl …` or `VAR=$(curl … | jq -r .field)`, with the
// options the session uses.
func parseCurl(t *testing.T, line string, vars map[string]string) step {
	t.Helper()
	st := step{method: http.MethodGet, header: http.Header{}}
	if name, value, ok := assignment(line); ok {
		m := regexp.MustCompile(`^\$\((curl .*) \| jq -r \.([a-z_]+)\)$`).FindStringSubmatch(value)
		require.NotNil(t, m, "the test understands VAR=$(curl … | jq -r .field), not %q", line)
		st.capture, st.field, line = name, m[2], m[1]
	}
	words := shellWords(t, line, vars)
	require.Equal(t, "curl", words[0], "%q", line)
	for i := 1; i < len(words); i++ {
		arg := func() string {
			i++
			require.Less(t, i, len(words), "%q: %s needs a value", line, words[i-1])
			return words[i]
		}
		switch w := words[i]; w {
		case "-s":
		case "-X":
			st.method = arg()
		case "-H":
			k, v, ok := strings.Cut(arg(), ":")
			require.True(t, ok, "%q: a header", line)
			st.header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		case "-d":
			st.body = arg()
			if st.method == http.MethodGet {
				st.method = http.MethodPost
			}
		case "-o":
			require.Equal(t, "/dev/null", arg())
		case "-w":
			require.Equal(t, `%{http_code}\n`, arg())
			st.statusOnly = true
		default:
			require.False(t, strings.HasPrefix(w, "-"), "%q: the test does not know curl's %s", line, w)
			require.Empty(t, st.url, "%q: one URL", line)
			st.url = w
		}
	}
	require.NotEmpty(t, st.url, "%q", line)
	return st
}

// shellWords splits s as the shell does for the session's lines: words
// separated by spaces, '…' literal, "…" and bare words with $NAME
// expanded.
func shellWords(t *testing.T, s string, vars map[string]string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord := false
	expand := func(s string) string {
		return regexp.MustCompile(`\$\{?([A-Z_]+)\}?`).ReplaceAllStringFunc(s, func(m string) string {
			name := strings.Trim(m, "${}")
			v, ok := vars[name]
			require.True(t, ok, "$%s is set before it is used", name)
			return v
		})
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			require.NotEqual(t, -1, end, "%q: unclosed '", s)
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case '"':
			end := strings.IndexByte(s[i+1:], '"')
			require.NotEqual(t, -1, end, "%q: unclosed \"", s)
			cur.WriteString(expand(s[i+1 : i+1+end]))
			i += end + 1
			inWord = true
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t'\"", rune(s[j])) {
				j++
			}
			cur.WriteString(expand(s[i:j]))
			i = j - 1
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// do sends a step's request.
func do(t *testing.T, st step) answer {
	t.Helper()
	var body io.Reader
	if st.body != "" {
		body = strings.NewReader(st.body)
	}
	req, err := http.NewRequestWithContext(t.Context(), st.method, st.url, body)
	require.NoError(t, err)
	for k, vs := range st.header {
		req.Header[k] = vs
	}
	if st.body != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded") // curl's default for -d
	}
	// No idle connections left behind for goleak to find.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	require.NoError(t, err)
	if st.statusOnly {
		b = fmt.Appendf(nil, "%d\n", resp.StatusCode)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

func TestBearerTokens(t *testing.T) {
	addr := startServer(t, options{tokens: map[string]string{"s3cret": "acme"}})
	for name, tc := range map[string]struct {
		auth   string
		status int
	}{
		"no header":     {"", http.StatusUnauthorized},
		"not bearer":    {"Basic czNjcmV0Og==", http.StatusUnauthorized},
		"unknown token": {"Bearer s3cre", http.StatusUnauthorized},
		"demo token":    {"Bearer demo-acme", http.StatusUnauthorized}, // -tokens replaces them
		"known token":   {"Bearer s3cret", http.StatusOK},
	} {
		h := http.Header{}
		if tc.auth != "" {
			h.Set("Authorization", tc.auth)
		}
		a := do(t, step{method: http.MethodGet, url: "http://" + addr + "/api/webhooks", header: h})
		assert.Equal(t, tc.status, a.status, "%s: %s", name, a.body)
		if tc.status == http.StatusUnauthorized {
			assert.Equal(t, "application/problem+json", a.header.Get("Content-Type"), name)
		}
	}
}

func TestParseTokens(t *testing.T) {
	got, err := parseTokens("a=acme, b=globex")
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"a": "acme", "b": "globex"}, got)
	for _, bad := range []string{"", "a", "=acme", "a=", "a=acme,,b=globex"} {
		_, err := parseTokens(bad)
		assert.Error(t, err, "%q", bad)
	}
}

// A request whose signature does not verify is refused, and listed so.
func TestReceiverRefusesBadSignatures(t *testing.T) {
	addr := startServer(t, options{})
	a := do(t, step{method: http.MethodPost, url: "http://" + addr + "/receiver/x", body: `{}`, header: http.Header{"Content-Type": {"application/json"}}})
	assert.Equal(t, http.StatusUnauthorized, a.status)
	list := do(t, step{method: http.MethodGet, url: "http://" + addr + "/receiver", header: http.Header{}})
	data, _ := list.json(t)["data"].([]any)
	require.Len(t, data, 1)
	assert.Equal(t, false, data[0].(map[string]any)["verified"])
}
