package webhooktest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/analytics-webhooks/webhook"
)

// ErrScriptedNetwork is the error a Doer returns for a request its
// Responder answered with 0: a stand-in for a connection that failed.
var ErrScriptedNetwork = errors.New("webhooktest: scripted network error")

// Doer is a webhook.Doer that sends nothing: it records every request
// and answers 200, or what its Responder says. Pass it as
// webhook.Config.Doer. It checks no signature (see Receiver for that).
// The zero value is ready to use. A Doer is safe for concurrent use.
type Doer struct {
	mu       sync.Mutex
	respond  Responder
	requests []*Request
}

var _ webhook.Doer = (*Doer)(nil)

// Respond makes the Doer answer with fn from now on; nil answers 200.
func (d *Doer) Respond(fn Responder) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.respond = fn
}

// Do implements webhook.Doer: it reads and records the request and
// answers with an empty body. It returns ErrScriptedNetwork when the
// Responder answers 0, and the context's error if the request's context
// is done.
func (d *Doer) Do(r *http.Request) (*http.Response, error) {
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	var body []byte
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("webhooktest: reading the request body: %w", err)
		}
		body = b
	}
	req := newRequest(r, body)
	d.mu.Lock()
	d.requests = append(d.requests, req)
	respond := d.respond
	d.mu.Unlock()
	code := http.StatusOK
	if respond != nil {
		code = respond(req)
	}
	if code == 0 {
		return nil, ErrScriptedNetwork
	}
	return &http.Response{
		Status:     fmt.Sprintf("%d %s", code, http.StatusText(code)),
		StatusCode: code,
		Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{},
		Body:          io.NopCloser(bytes.NewReader(nil)),
		ContentLength: 0,
		Request:       r,
	}, nil
}

// Requests returns the requests recorded so far, oldest first.
func (d *Doer) Requests() []*Request {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*Request(nil), d.requests...)
}

// Reset forgets the requests recorded so far.
func (d *Doer) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.requests = nil
}

// syncCounter counts calls, safely for concurrent use.
type syncCounter struct {
	mu sync.Mutex
	n  int
}

// next returns 0 on the first call, 1 on the second, and so on.
func (c *syncCounter) next() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return c.n - 1
}
