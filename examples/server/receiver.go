package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/analytics-webhooks/webhook"
)

// keepReceived is how many requests the receiver remembers.
const keepReceived = 50

// maxReceivedBody bounds the bodies the receiver reads.
const maxReceivedBody = 1 << 20

// received is one request the receiver got.
type received struct {
	At        time.Time       `json:"at"`
	Path      string          `json:"path"`
	WebhookID string          `json:"webhook_id"`
	MessageID string          `json:"message_id"`
	Verified  bool            `json:"verified"`
	Error     string          `json:"error,omitempty"`
	Body      json.RawMessage `json:"body,omitempty"`
}

// receiver stands in for a customer's endpoint: POST /receiver/<name>
// checks the signature with the secrets of the webhook named in
// X-Webhook-Id and answers 204, or 401 for a bad signature; GET /receiver
// lists the last requests, newest first.
type receiver struct {
	svc *webhook.Service
	log *slog.Logger

	mu   sync.Mutex
	last []received // oldest first, at most keepReceived
}

func newReceiver(svc *webhook.Service, log *slog.Logger) *receiver {
	return &receiver{svc: svc, log: log}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == "/receiver" {
		rc.list(w)
		return
	}
	if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/receiver/") {
		w.Header().Set("Allow", "POST")
		http.Error(w, "POST /receiver/<name>", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxReceivedBody))
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	got := received{At: time.Now().UTC(), Path: r.URL.Path, WebhookID: r.Header.Get(webhook.HeaderXWebhookID), MessageID: r.Header.Get(webhook.HeaderMessageID)}
	if json.Valid(body) {
		got.Body = body
	}
	if err := rc.verify(r, body); err != nil {
		got.Error = err.Error()
	} else {
		got.Verified = true
	}
	rc.mu.Lock()
	rc.last = append(rc.last, got)
	if len(rc.last) > keepReceived {
		rc.last = rc.last[len(rc.last)-keepReceived:]
	}
	rc.mu.Unlock()
	if !got.Verified {
		rc.log.Warn("receiver: refused", "path", got.Path, "webhook_id", got.WebhookID, "err", got.Error)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	rc.log.Info("receiver: verified", "path", got.Path, "webhook_id", got.WebhookID, "message_id", got.MessageID)
	w.WriteHeader(http.StatusNoContent)
}

// verify checks the request's signature with the current and retired
// secrets of its webhook, read from the Service as a receiver would
// read its own copy.
func (rc *receiver) verify(r *http.Request, body []byte) error {
	w, err := rc.svc.Get(r.Context(), r.Header.Get(webhook.HeaderXWebhookID))
	if err != nil {
		return err
	}
	v := webhook.Verifier{Secrets: []string{w.Secret}}
	for _, old := range w.PreviousSecrets {
		v.Secrets = append(v.Secrets, old.Secret)
	}
	return v.Verify(r.Header, body)
}

// list answers GET /receiver.
func (rc *receiver) list(w http.ResponseWriter) {
	rc.mu.Lock()
	out := make([]received, 0, len(rc.last))
	for i := len(rc.last) - 1; i >= 0; i-- {
		out = append(out, rc.last[i])
	}
	rc.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(map[string]any{"data": out})
}
