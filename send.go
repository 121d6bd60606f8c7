package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Doer sends one HTTP request and returns its response, as
// *http.Client does. Implementations must be safe for concurrent use.
//
// Do follows the contract of http.Client.Do: a non-2xx status is not an
// error; an error means no response was received. The caller closes the
// response body. The library expects a Doer not to follow redirects (a
// 3xx response is a failed attempt) and to honour the request's context.
type Doer interface {
	Do(req *http.Request) (*http.Response, error)
}

// Version is the library's version, sent in the User-Agent header.
const Version = "0.1.0"

// userAgent identifies the library to receivers, as the README
// documents it: "analytics-webhooks/<version>".
const userAgent = "analytics-webhooks/" + Version

// drainLimit is how much of a response body beyond the stored part is
// read and discarded so the connection can be reused; a longer body is
// cut off with its connection.
const drainLimit = 64 << 10

// errNoResponse is a send's error when the Doer returned neither a
// response nor an error.
var errNoResponse = errors.New("the Doer returned no response and no error")

// sendHeaderKeys are the canonical keys of the headers sendRequest
// sets, in the order of its values (X-Webhook-Signature last: only
// SchemeHex sends it).
var sendHeaderKeys = func() []string {
	keys := []string{"Content-Type", "User-Agent", HeaderMessageID, HeaderTimestamp, HeaderSignature, HeaderXWebhookID, HeaderXDeliveryID, HeaderXWebhookSignature}
	for i, k := range keys {
		keys[i] = http.CanonicalHeaderKey(k)
	}
	return keys
}()

// sendResult is the outcome of one HTTP attempt.
type sendResult struct {
	attempt    Attempt
	outcome    Outcome
	retryAfter time.Duration
	kind       AttemptOutcome // set for a transport error (see telemetry.go)
	errType    string         // the error.type of a transport error
}

// send makes one attempt to deliver the payload to w, the attempt-th of
// its delivery, bounded by timeout, in a client span of its own.
func (s *Service) send(ctx context.Context, w *Webhook, pl *Payload, deliveryID string, attempt int, timeout time.Duration) sendResult {
	ctx = s.tel.startRequest(ctx, w, attempt)
	res := s.sendRequest(ctx, w, pl, deliveryID, timeout)
	s.tel.endRequest(ctx, w, &res)
	return res
}

// sendRequest makes the HTTP attempt of send.
func (s *Service) sendRequest(ctx context.Context, w *Webhook, pl *Payload, deliveryID string, timeout time.Duration) sendResult {
	now := s.clock()
	res := sendResult{attempt: Attempt{StartedAt: now}}
	fail := func(outcome Outcome, msg string) sendResult {
		res.outcome = outcome
		res.attempt.Error = msg
		return res
	}

	secrets := []string{w.Secret}
	if len(w.PreviousSecrets) > 0 {
		secrets = w.ActiveSecrets(now)
	}
	sig, err := signatureHeader(secrets, pl.ID, now.Unix(), pl.Body)
	if err != nil {
		return fail(OutcomeAbort, "not sent: the webhook's secret is malformed")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(pl.Body))
	if err != nil {
		return fail(OutcomeAbort, "not sent: invalid URL")
	}
	n := len(sendHeaderKeys) - 1 // all but X-Webhook-Signature
	if w.SignatureScheme == SchemeHex {
		n++
	}
	if w.PropagateTrace {
		n++ // traceparent
	}
	h := make(http.Header, len(w.Headers)+n) // just enough: more than 8 makes a bigger map
	for k, v := range w.Headers {
		h.Set(k, v)
	}
	// The library's headers, which override the webhook's own: set as
	// Header.Set would, their values sharing one allocation.
	vals := []string{"application/json", userAgent, pl.ID, strconv.FormatInt(now.Unix(), 10), sig, w.ID, deliveryID, ""}
	n = len(vals) - 1
	if w.SignatureScheme == SchemeHex {
		vals[n] = SignHex(w.Secret, pl.Body)
		n++
	}
	for i := range n {
		h[sendHeaderKeys[i]] = vals[i : i+1 : i+1]
	}
	req.Header = h
	if w.PropagateTrace {
		setTraceParent(ctx, req.Header)
	}

	start := time.Now()
	resp, err := s.doer.Do(req)
	if err == nil && resp == nil {
		err = errNoResponse
	}
	if err != nil {
		res.attempt.Duration = time.Since(start)
		res.kind, res.errType = transportKind(ctx, err)
		return fail(OutcomeRetry, describeSendError(ctx, err, timeout))
	}
	if resp.Body == nil {
		resp.Body = http.NoBody // a Doer other than http.Client may leave it out
	}
	var body []byte
	var readErr error
	if resp.Body != http.NoBody { // net/http's for an empty body: nothing to read
		body, readErr = io.ReadAll(io.LimitReader(resp.Body, int64(s.maxResponse)))
		if readErr == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
		}
	}
	resp.Body.Close()
	res.attempt.Duration = time.Since(start)
	res.attempt.StatusCode = resp.StatusCode
	res.attempt.ResponseBody = cleanText(body, s.maxResponse)
	res.outcome = Classify(resp.StatusCode, resp.Header, nil)
	if v := resp.Header.Get("Retry-After"); v != "" && res.outcome == OutcomeRetry {
		res.retryAfter, _ = ParseRetryAfter(v, now, w.Retry.MaxDelay)
	}
	switch res.outcome {
	case OutcomeSuccess:
	case OutcomeGone:
		res.attempt.Error = "HTTP 410 Gone: the endpoint is gone; webhook disabled"
	case OutcomeAbort:
		res.attempt.Error = fmt.Sprintf("HTTP %d with %s: abort-message; not retried", resp.StatusCode, HeaderDeliveryControl)
	default:
		res.attempt.Error = "HTTP " + resp.Status
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			res.attempt.Error += " (redirects are not followed)"
		}
	}
	if readErr != nil && res.outcome != OutcomeSuccess {
		res.attempt.Error += "; reading the response body: " + readErr.Error()
	}
	return res
}

// describeSendError turns a transport error into a message for the
// attempt history.
func describeSendError(ctx context.Context, err error, timeout time.Duration) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Sprintf("request timed out after %v", timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		err = ue.Err // *url.Error repeats the method and URL; keep the cause
	}
	return "request failed: " + err.Error()
}

// cleanText makes a response body storable as text: valid UTF-8 without
// NUL bytes, each invalid byte sequence and NUL replaced with U+FFFD, and
// at most limit bytes (cut at a character boundary), since a replacement
// takes three bytes where the original took one.
func cleanText(b []byte, limit int) string {
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	if len(s) <= limit {
		return s
	}
	cut := max(limit, 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// webhookForSend returns the webhook to send a claimed delivery to, as
// of version, the webhook's version read with the claim: the matching
// index's copy or the worker's cache's when it is that very version
// (whatever its age), else the webhook read from Storage, which is at
// least as new. So an attempt never uses settings older than its claim,
// made in whichever process. A version of 0 (the webhook is gone, or the
// Storage does not say) always reads Storage. It never reloads the index.
func (s *Service) webhookForSend(ctx context.Context, id string, version int64, cache *sendCache) (*Webhook, error) {
	if version > 0 {
		if idx := s.idx.Load(); idx != nil {
			if cw, ok := idx.byID[id]; ok && cw.w.Version == version {
				return cw.w, nil
			}
		}
		if cache != nil {
			return cache.load(ctx, s.store, id, version)
		}
	}
	return s.store.GetWebhook(ctx, id)
}

// maxSendCache bounds how many webhooks a sendCache holds; past it the
// cache starts over.
const maxSendCache = 10000

// sendCache holds the webhooks a worker read from Storage to send, each
// as of the version read. A process that only runs workers never loads
// the matching index (only triggers do), and without this cache each of
// its attempts would read its webhook; the version each claim carries
// tells whether the copy is still current. The zero value is empty and
// ready.
type sendCache struct {
	mu      sync.Mutex
	hooks   map[string]*Webhook
	reading map[string]*webhookRead // reads under way, shared by the attempts that need them
}

// webhookRead is one read of a webhook from Storage; done is closed
// once w and err are set.
type webhookRead struct {
	done chan struct{}
	w    *Webhook
	err  error
}

// load returns webhook id as of version at least: the cached copy when
// it is that version, else one read from Storage, shared by the attempts
// asking for it meanwhile.
func (c *sendCache) load(ctx context.Context, store Storage, id string, version int64) (*Webhook, error) {
	c.mu.Lock()
	if w := c.hooks[id]; w != nil && w.Version == version {
		c.mu.Unlock()
		return w, nil
	}
	r := c.reading[id]
	if r == nil {
		r = &webhookRead{done: make(chan struct{})}
		if c.reading == nil {
			c.reading = make(map[string]*webhookRead)
		}
		c.reading[id] = r
		c.mu.Unlock()
		r.w, r.err = store.GetWebhook(ctx, id)
		c.mu.Lock()
		delete(c.reading, id)
		if r.err == nil && r.w != nil && r.w.Version > 0 {
			if c.hooks == nil || len(c.hooks) >= maxSendCache {
				c.hooks = make(map[string]*Webhook)
			}
			c.hooks[id] = r.w
		}
		c.mu.Unlock()
		close(r.done)
		return r.w, r.err
	}
	c.mu.Unlock()
	select {
	case <-r.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if r.err == nil && r.w != nil && r.w.Version >= version {
		return r.w, nil
	}
	// The read began before this claim, or failed under another
	// attempt's context: read again.
	return store.GetWebhook(ctx, id)
}
