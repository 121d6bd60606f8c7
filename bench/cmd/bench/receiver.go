package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/analytics-webhooks/webhook"
)

// receiverStats is what the receiver counted since its last reset.
type receiverStats struct {
	Requests int `json:"requests"`
	// Distinct counts distinct (X-Webhook-Id, webhook-id) pairs: the
	// deliveries a receiver would keep after dropping duplicates.
	Distinct int `json:"distinct"`
	// Verified and BadSignatures count the sampled requests whose
	// signature was checked with webhook.Verify.
	Verified      int    `json:"verified"`
	BodyBytes     int    `json:"body_bytes"`
	BadSignatures int    `json:"bad_signatures"`
	FirstBad      string `json:"first_bad,omitempty"`
}

// resetRequest starts a run: the secrets by webhook ID, and every how
// many requests a signature is checked.
type resetRequest struct {
	Secrets     map[string]string `json:"secrets"`
	SampleEvery int               `json:"sample_every"`
}

// receiver is the shared endpoint: it answers 204 to every request and
// counts what it got. It runs in a process of its own (runReceiver).
type receiver struct {
	mu       sync.Mutex
	secrets  map[string]string
	sample   int
	stats    receiverStats
	seen     map[string]struct{}
	arrivals map[string]int64 // X-Delivery-Id → Unix nanoseconds of its first request
	waiters  []*waiter
}

// waiter is a long poll waiting for a count or for one delivery.
type waiter struct {
	n  int
	id string
	ch chan struct{}
}

func newReceiver() *receiver {
	return &receiver{seen: map[string]struct{}{}, arrivals: map[string]int64{}, sample: 1}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/control/reset":
		rc.reset(w, r)
		return
	case "/control/stats":
		rc.wait(w, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	now := time.Now().UnixNano()
	hook := r.Header.Get(webhook.HeaderXWebhookID)
	key := hook + "/" + r.Header.Get(webhook.HeaderMessageID)
	did := r.Header.Get(webhook.HeaderXDeliveryID)
	rc.mu.Lock()
	rc.stats.Requests++
	rc.stats.BodyBytes += len(body)
	if _, ok := rc.seen[key]; !ok {
		rc.seen[key] = struct{}{}
		rc.stats.Distinct++
	}
	if _, ok := rc.arrivals[did]; !ok && did != "" {
		rc.arrivals[did] = now
	}
	check := rc.stats.Requests%rc.sample == 1 || rc.sample == 1
	secret := rc.secrets[hook]
	rc.wakeLocked()
	rc.mu.Unlock()
	if check {
		err := webhook.Verify(secret, r.Header, body)
		if secret == "" {
			err = fmt.Errorf("no secret for webhook %q", hook)
		}
		rc.mu.Lock()
		if err != nil {
			rc.stats.BadSignatures++
			if rc.stats.FirstBad == "" {
				rc.stats.FirstBad = err.Error()
			}
		} else {
			rc.stats.Verified++
		}
		rc.mu.Unlock()
	}
	w.WriteHeader(http.StatusNoContent)
}

// wakeLocked releases the waiters whose condition holds.
func (rc *receiver) wakeLocked() {
	if len(rc.waiters) == 0 {
		return
	}
	kept := rc.waiters[:0]
	for _, wt := range rc.waiters {
		_, arrived := rc.arrivals[wt.id]
		if (wt.id == "" && rc.stats.Requests >= wt.n) || (wt.id != "" && arrived) {
			close(wt.ch)
			continue
		}
		kept = append(kept, wt)
	}
	rc.waiters = kept
}

func (rc *receiver) reset(w http.ResponseWriter, r *http.Request) {
	var req resetRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.secrets = req.Secrets
	rc.sample = max(req.SampleEvery, 1)
	rc.stats = receiverStats{}
	rc.seen = map[string]struct{}{}
	rc.arrivals = map[string]int64{}
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// wait answers the stats, first waiting (up to timeout_ms) for n
// requests or for the delivery id to arrive; with id it also returns
// the arrival time in the header Arrival.
func (rc *receiver) wait(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	n, _ := strconv.Atoi(q.Get("n"))
	id := q.Get("id")
	ms, _ := strconv.Atoi(q.Get("timeout_ms"))
	wt := &waiter{n: n, id: id, ch: make(chan struct{})}
	rc.mu.Lock()
	rc.waiters = append(rc.waiters, wt)
	rc.wakeLocked()
	rc.mu.Unlock()
	timer := time.NewTimer(time.Duration(ms) * time.Millisecond)
	defer timer.Stop()
	select {
	case <-wt.ch:
	case <-timer.C:
	case <-r.Context().Done():
	}
	rc.mu.Lock()
	for i, x := range rc.waiters {
		if x == wt {
			rc.waiters = append(rc.waiters[:i], rc.waiters[i+1:]...)
			break
		}
	}
	st := rc.stats
	at := rc.arrivals[id]
	rc.mu.Unlock()
	if at != 0 {
		w.Header().Set("Arrival", strconv.FormatInt(at, 10))
	}
	json.NewEncoder(w).Encode(st)
}

// runReceiver is the receiver process: it listens on a loopback port,
// prints "ready <address>" and serves until its stdin closes.
func runReceiver() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: newReceiver(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	fmt.Printf("ready %s\n", ln.Addr())
	io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(ctx)
}

// receiverClient talks to the receiver process's control endpoints.
type receiverClient struct {
	base string
	hc   *http.Client
}

func (c *receiverClient) reset(ctx context.Context, secrets map[string]string, sampleEvery int) error {
	b, _ := json.Marshal(resetRequest{Secrets: secrets, SampleEvery: sampleEvery})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/control/reset", bytes.NewReader(b))
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("receiver reset: %s", resp.Status)
	}
	return nil
}

// waitFor waits up to timeout for n requests (id empty) or for delivery
// id, and returns the stats and the arrival time of id.
func (c *receiverClient) waitFor(ctx context.Context, n int, id string, timeout time.Duration) (receiverStats, time.Time, error) {
	url := fmt.Sprintf("%s/control/stats?n=%d&id=%s&timeout_ms=%d", c.base, n, id, timeout.Milliseconds())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		return receiverStats{}, time.Time{}, err
	}
	defer resp.Body.Close()
	var st receiverStats
	if err := json.NewDecoder(bufio.NewReader(resp.Body)).Decode(&st); err != nil {
		return st, time.Time{}, err
	}
	var at time.Time
	if v := resp.Header.Get("Arrival"); v != "" {
		ns, _ := strconv.ParseInt(v, 10, 64)
		at = time.Unix(0, ns)
	}
	if id == "" && st.Requests < n {
		return st, at, fmt.Errorf("receiver got %d requests of %d within %s", st.Requests, n, timeout)
	}
	if id != "" && at.IsZero() {
		return st, at, errors.New("delivery " + id + " did not arrive within " + timeout.String())
	}
	return st, at, nil
}
