package webhooktest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/analytics-webhooks/webhook"
)

// NewSecret returns a new webhook secret (webhook.NewSecret), to create a
// webhook and a Receiver with. It fails the test if none can be made.
func NewSecret(t testing.TB) string {
	t.Helper()
	s, err := webhook.NewSecret()
	if err != nil {
		t.Fatalf("webhooktest: %v", err)
	}
	return s
}

// SignedHeaders returns the headers the library sends with body as
// message msgID signed at ts with secret (Standard Webhooks:
// webhook-id, webhook-timestamp, webhook-signature), and Content-Type.
// It returns an error wrapping webhook.ErrInvalid for a malformed secret.
func SignedHeaders(secret, msgID string, ts time.Time, body []byte) (http.Header, error) {
	sig, err := webhook.Sign(secret, msgID, ts, body)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(webhook.HeaderMessageID, msgID)
	h.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(webhook.HeaderSignature, sig)
	return h, nil
}

// NewSignedRequest returns a POST of body to url, signed with secret at
// at (the current time when zero) as the library signs it, for testing a
// receiver's handler with httptest.NewRecorder. The message ID is the
// body's "id" when body is a message, and a random one otherwise. It
// fails the test for a malformed secret or url.
func NewSignedRequest(t testing.TB, secret, url string, body []byte, at time.Time) *http.Request {
	t.Helper()
	if at.IsZero() {
		at = time.Now()
	}
	id := ""
	if m, err := DecodeMessage(body); err == nil {
		id = m.ID
	}
	if id == "" {
		var b [12]byte
		_, _ = rand.Read(b[:])
		id = "msg_" + hex.EncodeToString(b[:])
	}
	h, err := SignedHeaders(secret, id, at, body)
	if err != nil {
		t.Fatalf("webhooktest: %v", err)
		return nil
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("webhooktest: %v", err)
		return nil
	}
	req.Header = h
	return req
}
