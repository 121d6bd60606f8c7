package webhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Errors returned by Verify. Check them with errors.Is.
var (
	// ErrMissingHeaders reports that webhook-id, webhook-timestamp or
	// webhook-signature is absent or empty.
	ErrMissingHeaders = errors.New("webhook: missing signature headers")
	// ErrInvalidTimestamp reports a webhook-timestamp that is not a Unix
	// time in seconds.
	ErrInvalidTimestamp = errors.New("webhook: invalid webhook-timestamp")
	// ErrTimestampOutOfTolerance reports a timestamp too far in the past
	// or the future: a replay, or a clock far off.
	ErrTimestampOutOfTolerance = errors.New("webhook: webhook-timestamp outside tolerance")
	// ErrNoMatchingSignature reports that no v1 signature in the header
	// matches any of the secrets.
	ErrNoMatchingSignature = errors.New("webhook: no matching signature")
)

// DefaultTolerance is how far a webhook-timestamp may be from the
// receiver's clock, in either direction, for Verify to accept it.
const DefaultTolerance = 5 * time.Minute

// DefaultMaxBodyBytes is the largest request body Verifier.Middleware reads.
const DefaultMaxBodyBytes = 1 << 20

// Verifier checks Standard Webhooks signatures on incoming requests. Its
// zero value is not usable: set Secrets. A Verifier is safe for concurrent
// use once configured.
type Verifier struct {
	// Secrets are the endpoint's secrets; a request signed with any of
	// them is accepted, so a receiver can list the old and the new secret
	// while a rotation is under way.
	Secrets []string
	// Tolerance is how far webhook-timestamp may be from Now, before or
	// after. Defaults to DefaultTolerance (5 minutes).
	Tolerance time.Duration
	// Now returns the current time. Defaults to time.Now.
	Now func() time.Time
	// MaxBodyBytes is the largest body Middleware reads; a larger one is
	// refused with 413. Defaults to DefaultMaxBodyBytes (1 MiB).
	MaxBodyBytes int64
}

// Verify checks that header carries a valid Standard Webhooks signature
// of body under secret, within DefaultTolerance of the current time. It
// returns nil, or an error that errors.Is one of ErrMissingHeaders,
// ErrInvalidTimestamp, ErrTimestampOutOfTolerance, ErrNoMatchingSignature,
// or ErrInvalid for a malformed secret.
func Verify(secret string, header http.Header, body []byte) error {
	v := Verifier{Secrets: []string{secret}}
	return v.Verify(header, body)
}

// Verify checks header and body as the package-level Verify does, against
// every secret of v. Signatures are compared in constant time.
func (v *Verifier) Verify(header http.Header, body []byte) error {
	id := header.Get(HeaderMessageID)
	tsText := header.Get(HeaderTimestamp)
	sigs := header.Get(HeaderSignature)
	if id == "" || tsText == "" || sigs == "" {
		return ErrMissingHeaders
	}
	ts, err := strconv.ParseInt(strings.TrimSpace(tsText), 10, 64)
	if err != nil {
		return ErrInvalidTimestamp
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	tolerance := v.Tolerance
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	nowUnix := now().Unix()
	// Compare without overflow, whatever the timestamp: nowUnix and the
	// tolerance are both far from the int64 limits.
	tolSecs := int64(tolerance / time.Second)
	switch {
	case ts < nowUnix-tolSecs:
		return fmt.Errorf("%w: more than %v old", ErrTimestampOutOfTolerance, tolerance)
	case ts > nowUnix+tolSecs:
		return fmt.Errorf("%w: more than %v in the future", ErrTimestampOutOfTolerance, tolerance)
	}
	if len(v.Secrets) == 0 {
		return invalid("verifier", "secrets", "must list at least one secret")
	}
	keys := make([][]byte, 0, len(v.Secrets))
	for _, s := range v.Secrets {
		key, err := ParseSecret(s)
		if err != nil {
			return err
		}
		keys = append(keys, key)
	}
	var decoded [2 * sha256.Size]byte
	for _, key := range keys {
		want := signV1(key, id, ts, body)
		for entry := range strings.FieldsSeq(sigs) {
			version, sig, ok := strings.Cut(entry, ",")
			if !ok || version != "v1" || base64.StdEncoding.DecodedLen(len(sig)) > len(decoded) {
				continue
			}
			n, err := base64.StdEncoding.Strict().Decode(decoded[:], []byte(sig))
			if err != nil || n != len(want) {
				continue
			}
			if hmac.Equal(decoded[:n], want) {
				return nil
			}
		}
	}
	return ErrNoMatchingSignature
}

// Middleware returns a handler that verifies each request before calling
// next. It reads the body (at most MaxBodyBytes; larger is answered with
// 413), verifies it, and hands next a request whose Body holds the same
// bytes. Requests with missing headers or a malformed timestamp are
// answered with 400, those with a bad signature or a timestamp outside
// the tolerance with 401, and a Verifier with unusable secrets answers 500.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := v.MaxBodyBytes
		if limit <= 0 {
			limit = DefaultMaxBodyBytes
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
		if err != nil {
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		if int64(len(body)) > limit {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		if err := v.Verify(r.Header, body); err != nil {
			switch {
			case errors.Is(err, ErrMissingHeaders), errors.Is(err, ErrInvalidTimestamp):
				http.Error(w, err.Error(), http.StatusBadRequest)
			case errors.Is(err, ErrInvalid):
				http.Error(w, "signature verification is misconfigured", http.StatusInternalServerError)
			default:
				http.Error(w, err.Error(), http.StatusUnauthorized)
			}
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}
