package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header names set on every delivery attempt.
const (
	// HeaderMessageID, "webhook-id", carries the payload ID, the same on
	// every retry: the receiver's idempotency key (Standard Webhooks).
	HeaderMessageID = "webhook-id"
	// HeaderTimestamp carries the Unix time, in seconds, at which the
	// attempt was signed (Standard Webhooks).
	HeaderTimestamp = "webhook-timestamp"
	// HeaderSignature carries one "v1,<base64>" entry per active secret,
	// separated by spaces (Standard Webhooks).
	HeaderSignature = "webhook-signature"
	// HeaderXWebhookID carries the ID of the webhook (the endpoint's
	// configuration), not of the message; see HeaderMessageID.
	HeaderXWebhookID = "X-Webhook-Id"
	// HeaderXDeliveryID carries the delivery's ID.
	HeaderXDeliveryID = "X-Delivery-Id"
	// HeaderXWebhookSignature carries the original X-Webhook-Signature scheme's signature, hex HMAC-SHA256 of
	// the body, for webhooks that opt in to SchemeHex.
	HeaderXWebhookSignature = "X-Webhook-Signature"
)

// SignatureScheme selects how deliveries to a webhook are signed.
type SignatureScheme string

// The signature schemes.
const (
	// SchemeStandard is Standard Webhooks v1: HMAC-SHA256 over
	// "id.timestamp.body" keyed with the base64-decoded secret, in the
	// webhook-signature header. It is the default; Standard Webhooks and
	// Svix verifier libraries accept it.
	SchemeStandard SignatureScheme = "standard"
	// SchemeHex is the original X-Webhook-Signature scheme, for receivers that already verify
	// it: X-Webhook-Signature is the hex HMAC-SHA256 of the body keyed
	// with the secret string's bytes, with no timestamp. Deliveries carry
	// the Standard Webhooks headers too. The header holds one signature,
	// made with the current secret: after RotateSecret, receivers of this
	// scheme must switch to the new secret at once (the Standard Webhooks
	// header carries both during the grace period).
	SchemeHex SignatureScheme = "hex"
)

// secretPrefix starts every secret's text form.
const secretPrefix = "whsec_"

// Secret sizes, in decoded bytes.
const (
	minSecretBytes = 24
	maxSecretBytes = 64
	newSecretBytes = 32
)

// NewSecret returns a new random secret: "whsec_" followed by the standard
// base64 encoding of 32 bytes from crypto/rand.
func NewSecret() (string, error) {
	b := make([]byte, newSecretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("webhook: generate secret: %w", err)
	}
	return secretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// ParseSecret returns the key bytes of a secret: its text after an
// optional "whsec_" prefix, base64-decoded (standard encoding, padded or
// not). It returns an error wrapping ErrInvalid if the text is not base64
// or does not decode to 24 to 64 bytes. The error never contains the secret.
//
// ParseSecret is lenient because it loads secrets, for signing and for
// Verify. A webhook's Secret must be in the canonical form when it is
// saved (see Webhook.Validate): "whsec_" followed by padded standard
// base64, as NewSecret makes, the only form every Svix and Standard
// Webhooks library loads.
func ParseSecret(secret string) ([]byte, error) {
	key, reason := parseSecret(secret)
	if reason != "" {
		return nil, invalid("secret", "secret", reason)
	}
	return key, nil
}

// parseSecret returns the key bytes of secret, or why it is malformed.
func parseSecret(secret string) ([]byte, string) {
	s := strings.TrimPrefix(secret, secretPrefix)
	if len(s) > 2*maxSecretBytes {
		return nil, fmt.Sprintf("must decode to %d to %d bytes", minSecretBytes, maxSecretBytes)
	}
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		key, err = base64.RawStdEncoding.DecodeString(s)
	}
	if err != nil {
		return nil, `must be "whsec_" followed by base64`
	}
	if len(key) < minSecretBytes || len(key) > maxSecretBytes {
		return nil, fmt.Sprintf("must decode to %d to %d bytes, not %d", minSecretBytes, maxSecretBytes, len(key))
	}
	return key, ""
}

// checkCanonicalSecret returns why secret is not a canonical secret, or "".
func checkCanonicalSecret(secret string) string {
	key, reason := parseSecret(secret)
	if reason != "" {
		return reason
	}
	if secret != secretPrefix+base64.StdEncoding.EncodeToString(key) {
		return `must be "whsec_" followed by padded standard base64, the form Svix and Standard Webhooks libraries load (as NewSecret makes)`
	}
	return ""
}

// Sign returns the Standard Webhooks v1 signature, "v1,<base64>", of body
// sent with message ID msgID at timestamp, keyed with secret. It returns
// an error wrapping ErrInvalid if the secret is malformed.
func Sign(secret, msgID string, timestamp time.Time, body []byte) (string, error) {
	key, err := ParseSecret(secret)
	if err != nil {
		return "", err
	}
	return "v1," + base64.StdEncoding.EncodeToString(signV1(key, msgID, timestamp.Unix(), body)), nil
}

// signV1 returns HMAC-SHA256(key, msgID + "." + ts + "." + body).
func signV1(key []byte, msgID string, ts int64, body []byte) []byte {
	mac := hmac.New(sha256.New, key)
	// "msgID.ts." in one write: each slice given to mac escapes.
	prefix := make([]byte, 0, len(msgID)+22)
	prefix = append(strconv.AppendInt(append(append(prefix, msgID...), '.'), ts, 10), '.')
	mac.Write(prefix)
	mac.Write(body)
	return mac.Sum(prefix[:0]) // 32 bytes: room enough once prefix is read
}

// SignHex returns the original X-Webhook-Signature of body: the hex HMAC-SHA256 keyed
// with the bytes of the secret string as written.
func SignHex(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// signatureHeader returns the webhook-signature value for body, one entry
// per secret, separated by spaces.
func signatureHeader(secrets []string, msgID string, ts int64, body []byte) (string, error) {
	const entry = len("v1,") + 44 // 44: the base64 length of a SHA-256 sum
	var b strings.Builder
	b.Grow(max(len(secrets)*(entry+1)-1, 0))
	var sig [44]byte
	for i, s := range secrets {
		key, err := ParseSecret(s)
		if err != nil {
			return "", err
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("v1,")
		base64.StdEncoding.Encode(sig[:], signV1(key, msgID, ts, body))
		b.Write(sig[:])
	}
	return b.String(), nil
}
