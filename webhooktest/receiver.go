package webhooktest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/analytics-webhooks/webhook"
)

// Receiver is a webhook endpoint for tests: an httptest.Server that
// verifies every request's Standard Webhooks signature (with
// webhook.Verifier) and records it. A request whose signature fails
// verification is recorded with its VerifyErr, answered with 401, and
// fails the test; a valid one is answered with 200, or what Respond says.
//
// Its URL is on the loopback address, which the library refuses by
// default: give the Service a Config.Network with AllowPrivate set. The
// receiver verifies timestamps against the real time unless SetNow
// gives it the clock the Service signs with.
//
// A Receiver is safe for concurrent use.
type Receiver struct {
	*httptest.Server
	t testing.TB

	mu       sync.Mutex
	verifier webhook.Verifier
	respond  Responder
	requests []*Request
	arrived  chan struct{} // closed and replaced on every request
}

// NewReceiver starts a Receiver that accepts requests signed with secret
// (use SetSecrets to change it, for instance to the secret the library
// gave a new webhook; NewSecret makes one to create the webhook with). It
// closes the server when the test ends.
func NewReceiver(t testing.TB, secret string) *Receiver {
	t.Helper()
	r := &Receiver{t: t, arrived: make(chan struct{})}
	if secret != "" {
		r.verifier.Secrets = []string{secret}
	}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

// SetSecrets replaces the secrets signatures are checked with; a request
// signed with any of them is accepted.
func (r *Receiver) SetSecrets(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.verifier.Secrets = append([]string(nil), secrets...)
}

// SetNow makes the receiver check timestamps against now, such as a
// Clock's Now, instead of the real time.
func (r *Receiver) SetNow(now func() time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.verifier.Now = now
}

// Respond makes the receiver answer valid requests with fn from now on;
// nil (or 0 from fn) answers 200.
func (r *Receiver) Respond(fn Responder) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.respond = fn
}

func (r *Receiver) serve(w http.ResponseWriter, hr *http.Request) {
	body, err := io.ReadAll(io.LimitReader(hr.Body, webhook.DefaultMaxBodyBytes))
	if err != nil {
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	req := newRequest(hr, body)
	r.mu.Lock()
	v := r.verifier
	r.mu.Unlock()
	if len(v.Secrets) == 0 {
		req.VerifyErr = fmt.Errorf("webhooktest: the receiver has no secret: pass one to NewReceiver or SetSecrets")
	} else {
		req.VerifyErr = v.Verify(hr.Header, body)
	}
	r.mu.Lock()
	r.requests = append(r.requests, req)
	respond := r.respond
	close(r.arrived)
	r.arrived = make(chan struct{})
	r.mu.Unlock()
	if req.VerifyErr != nil {
		r.t.Errorf("webhooktest: receiver: request %s %s failed signature verification: %v", hr.Method, hr.URL, req.VerifyErr)
		http.Error(w, req.VerifyErr.Error(), http.StatusUnauthorized)
		return
	}
	code := http.StatusOK
	if respond != nil {
		if c := respond(req); c != 0 {
			code = c
		}
	}
	w.WriteHeader(code)
}

// Requests returns the requests received so far, oldest first.
func (r *Receiver) Requests() []*Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*Request(nil), r.requests...)
}

// WaitFor waits until the receiver has received at least n requests and
// returns them all, or returns ctx's error (with the requests received
// by then) if ctx ends first. Pass a ctx with a timeout.
func (r *Receiver) WaitFor(ctx context.Context, n int) ([]*Request, error) {
	for {
		r.mu.Lock()
		got, arrived := append([]*Request(nil), r.requests...), r.arrived
		r.mu.Unlock()
		if len(got) >= n {
			return got, nil
		}
		select {
		case <-arrived:
		case <-ctx.Done():
			return got, fmt.Errorf("webhooktest: %d of %d requests received: %w", len(got), n, ctx.Err())
		}
	}
}
