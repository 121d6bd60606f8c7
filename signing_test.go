package webhook_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
)

// The Standard Webhooks specification's published example.
const (
	specSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specMsgID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTimestamp = 1614265330
	specBody      = `{"test": 2432232314}`
	specSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignSpecVector(t *testing.T) {
	sig, err := webhook.Sign(specSecret, specMsgID, time.Unix(specTimestamp, 0), []byte(specBody))
	require.NoError(t, err)
	assert.Equal(t, specSignature, sig)
	// The prefix is optional on input.
	sig, err = webhook.Sign(strings.TrimPrefix(specSecret, "whsec_"), specMsgID, time.Unix(specTimestamp, 0), []byte(specBody))
	require.NoError(t, err)
	assert.Equal(t, specSignature, sig)
}

func specHeader(sig string) http.Header {
	h := http.Header{}
	h.Set("webhook-id", specMsgID)
	h.Set("webhook-timestamp", strconv.Itoa(specTimestamp))
	h.Set("webhook-signature", sig)
	return h
}

func specVerifier(secrets ...string) *webhook.Verifier {
	return &webhook.Verifier{Secrets: secrets, Now: func() time.Time { return time.Unix(specTimestamp, 0) }}
}

func TestVerifySpecVector(t *testing.T) {
	require.NoError(t, specVerifier(specSecret).Verify(specHeader(specSignature), []byte(specBody)))
	other, err := webhook.NewSecret()
	require.NoError(t, err)
	require.NoError(t, specVerifier(other, specSecret).Verify(specHeader(specSignature), []byte(specBody)), "any listed secret may match")
	// Several signatures, unknown versions and junk among them.
	multi := "v1a,abc v2,Zm9v junk v1,!!!notbase64 v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= " + specSignature
	require.NoError(t, specVerifier(specSecret).Verify(specHeader(multi), []byte(specBody)))
}

func TestVerifyErrors(t *testing.T) {
	now := time.Unix(specTimestamp, 0)
	body := []byte(specBody)
	cases := []struct {
		name   string
		header func() http.Header
		body   []byte
		now    time.Time
		want   error
	}{
		{"missing id", func() http.Header { h := specHeader(specSignature); h.Del("webhook-id"); return h }, body, now, webhook.ErrMissingHeaders},
		{"missing timestamp", func() http.Header { h := specHeader(specSignature); h.Del("webhook-timestamp"); return h }, body, now, webhook.ErrMissingHeaders},
		{"missing signature", func() http.Header { h := specHeader(specSignature); h.Del("webhook-signature"); return h }, body, now, webhook.ErrMissingHeaders},
		{"timestamp not a number", func() http.Header {
			h := specHeader(specSignature)
			h.Set("webhook-timestamp", "2021-02-25T15:02:10Z")
			return h
		}, body, now, webhook.ErrInvalidTimestamp},
		{"too old", func() http.Header { return specHeader(specSignature) }, body, now.Add(5*time.Minute + time.Second), webhook.ErrTimestampOutOfTolerance},
		{"too new", func() http.Header { return specHeader(specSignature) }, body, now.Add(-5*time.Minute - time.Second), webhook.ErrTimestampOutOfTolerance},
		{"smallest timestamp", func() http.Header {
			h := specHeader(specSignature)
			h.Set("webhook-timestamp", "-9223372036854775808")
			return h
		}, body, now, webhook.ErrTimestampOutOfTolerance},
		{"huge timestamp", func() http.Header {
			h := specHeader(specSignature)
			h.Set("webhook-timestamp", "9223372036854775807")
			return h
		}, body, now, webhook.ErrTimestampOutOfTolerance},
		{"tampered body", func() http.Header { return specHeader(specSignature) }, []byte(`{"test": 2432232315}`), now, webhook.ErrNoMatchingSignature},
		{"tampered id", func() http.Header { h := specHeader(specSignature); h.Set("webhook-id", "msg_other"); return h }, body, now, webhook.ErrNoMatchingSignature},
		{"wrong signature", func() http.Header { return specHeader("v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=") }, body, now, webhook.ErrNoMatchingSignature},
		{"empty v1", func() http.Header { return specHeader("v1,") }, body, now, webhook.ErrNoMatchingSignature},
		{"other version only", func() http.Header { return specHeader(strings.Replace(specSignature, "v1,", "v2,", 1)) }, body, now, webhook.ErrNoMatchingSignature},
		{"truncated signature", func() http.Header { return specHeader(specSignature[:20]) }, body, now, webhook.ErrNoMatchingSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := &webhook.Verifier{Secrets: []string{specSecret}, Now: func() time.Time { return c.now }}
			require.ErrorIs(t, v.Verify(c.header(), c.body), c.want)
		})
	}
	// At the edge of the tolerance both ways, it is still accepted.
	for _, d := range []time.Duration{5 * time.Minute, -5 * time.Minute} {
		v := &webhook.Verifier{Secrets: []string{specSecret}, Now: func() time.Time { return now.Add(d) }}
		require.NoError(t, v.Verify(specHeader(specSignature), body), d)
	}
	// A custom tolerance.
	v := &webhook.Verifier{Secrets: []string{specSecret}, Tolerance: time.Hour, Now: func() time.Time { return now.Add(59 * time.Minute) }}
	require.NoError(t, v.Verify(specHeader(specSignature), body))
	// A bad secret is a configuration error, not a bad request.
	require.ErrorIs(t, specVerifier("not base64!").Verify(specHeader(specSignature), body), webhook.ErrInvalid)
	require.ErrorIs(t, specVerifier().Verify(specHeader(specSignature), body), webhook.ErrInvalid)
}

func TestVerifyPackageFunc(t *testing.T) {
	secret, err := webhook.NewSecret()
	require.NoError(t, err)
	body := []byte(`{"id":"x"}`)
	now := time.Now()
	sig, err := webhook.Sign(secret, "msg_1", now, body)
	require.NoError(t, err)
	h := http.Header{}
	h.Set("webhook-id", "msg_1")
	h.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	h.Set("webhook-signature", sig)
	require.NoError(t, webhook.Verify(secret, h, body))
	other, err := webhook.NewSecret()
	require.NoError(t, err)
	require.ErrorIs(t, webhook.Verify(other, h, body), webhook.ErrNoMatchingSignature)
}

func TestSecrets(t *testing.T) {
	s, err := webhook.NewSecret()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(s, "whsec_"))
	key, err := webhook.ParseSecret(s)
	require.NoError(t, err)
	assert.Len(t, key, 32)
	s2, err := webhook.NewSecret()
	require.NoError(t, err)
	assert.NotEqual(t, s, s2)

	enc := func(n int) string { return "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, n)) }
	for _, n := range []int{24, 64} {
		_, err := webhook.ParseSecret(enc(n))
		require.NoError(t, err, n)
	}
	for _, n := range []int{0, 23, 65} {
		_, err := webhook.ParseSecret(enc(n))
		require.ErrorIs(t, err, webhook.ErrInvalid, n)
	}
	_, err = webhook.ParseSecret("whsec_%%%%")
	require.ErrorIs(t, err, webhook.ErrInvalid)
	// Unpadded base64 is accepted too.
	_, err = webhook.ParseSecret(strings.TrimRight(enc(32), "="))
	require.NoError(t, err)
	// The error never echoes the secret.
	bad := "whsec_" + strings.Repeat("A", 10)
	_, err = webhook.ParseSecret(bad)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), strings.Repeat("A", 10))
}

func TestSignHex(t *testing.T) {
	// HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"), a well-known value.
	assert.Equal(t, "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8",
		webhook.SignHex("key", []byte("The quick brown fox jumps over the lazy dog")))
}

func TestMiddleware(t *testing.T) {
	var got []byte
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusNoContent)
	})
	v := specVerifier(specSecret)
	v.MaxBodyBytes = 64
	h := v.Middleware(next)

	do := func(header http.Header, body string) int {
		req := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(body))
		for k, vs := range header {
			req.Header[k] = vs
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	assert.Equal(t, http.StatusNoContent, do(specHeader(specSignature), specBody))
	assert.Equal(t, specBody, string(got), "the handler sees the verified body")

	got = nil
	assert.Equal(t, http.StatusUnauthorized, do(specHeader(specSignature), `{"test": 1}`))
	assert.Nil(t, got, "a rejected request never reaches the handler")
	assert.Equal(t, http.StatusBadRequest, do(http.Header{}, specBody))
	bad := specHeader(specSignature)
	bad.Set("webhook-timestamp", "yesterday")
	assert.Equal(t, http.StatusBadRequest, do(bad, specBody))
	assert.Equal(t, http.StatusRequestEntityTooLarge, do(specHeader(specSignature), strings.Repeat("x", 65)))

	stale := specVerifier(specSecret)
	stale.Now = func() time.Time { return time.Unix(specTimestamp, 0).Add(time.Hour) }
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(specBody))
	req.Header = specHeader(specSignature)
	stale.Middleware(next).ServeHTTP(rec, req)
	assert.Equal(t, http.StatusUnauthorized, rec.Code, "a replayed request is refused")

	broken := specVerifier("nope")
	rec = httptest.NewRecorder()
	req = httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(specBody))
	req.Header = specHeader(specSignature)
	broken.Middleware(next).ServeHTTP(rec, req)
	assert.Equal(t, http.StatusInternalServerError, rec.Code)
}

// FuzzVerify checks that Verify never panics on any header values and
// accepts only what Sign produced for the same id, timestamp and body.
func FuzzVerify(f *testing.F) {
	f.Add(specMsgID, strconv.Itoa(specTimestamp), specSignature, specBody)
	f.Add("", "", "", "")
	f.Add("id", "-9223372036854775808", "v1,"+strings.Repeat("A", 200), "{}")
	f.Add("id", "1614265330", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE v1,,,, ,", "x")
	f.Fuzz(func(t *testing.T, id, ts, sig, body string) {
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", sig)
		v := &webhook.Verifier{Secrets: []string{specSecret}, Now: func() time.Time { return time.Unix(specTimestamp, 0) }}
		if err := v.Verify(h, []byte(body)); err == nil {
			n, perr := strconv.ParseInt(strings.TrimSpace(ts), 10, 64)
			require.NoError(t, perr)
			want, serr := webhook.Sign(specSecret, h.Get("webhook-id"), time.Unix(n, 0), []byte(body))
			require.NoError(t, serr)
			require.Contains(t, strings.Fields(sig), want, "accepted a signature Sign did not make")
		}
	})
}

// TestSuppliedSecretMustBeCanonical checks that a webhook saves only a
// secret in the form every Svix and Standard Webhooks library loads:
// "whsec_" + padded standard base64.
func TestSuppliedSecretMustBeCanonical(t *testing.T) {
	canonical, err := webhook.NewSecret()
	require.NoError(t, err)
	key, err := webhook.ParseSecret(canonical)
	require.NoError(t, err)
	b64 := strings.TrimPrefix(canonical, "whsec_")
	require.True(t, strings.HasSuffix(b64, "="), "32 bytes need padding")
	for name, s := range map[string]string{
		"unpadded":   "whsec_" + strings.TrimRight(b64, "="),
		"no prefix":  b64,
		"line break": "whsec_" + b64[:20] + "\n" + b64[20:],
		"URL base64": "whsec_" + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)),
		"loose bits": "whsec_" + b64[:len(b64)-2] + "B=", // the last character's unused bits set
	} {
		t.Run(name, func(t *testing.T) {
			w := validWebhook()
			w.Secret = s
			err := w.Validate()
			assert.Equal(t, []string{"secret"}, fields(t, err))
			assert.NotContains(t, err.Error(), b64[:16], "the error never echoes the secret")
			svc, err := webhook.NewService(memstore.New(nil), nil)
			require.NoError(t, err)
			_, err = svc.Create(t.Context(), w)
			require.ErrorIs(t, err, webhook.ErrInvalid)
		})
	}
	w := validWebhook()
	w.Secret = canonical
	require.NoError(t, w.Validate())

	// Loading stays lenient: a secret saved before, or given to Verify.
	got, err := webhook.ParseSecret("whsec_" + strings.TrimRight(b64, "="))
	require.NoError(t, err)
	assert.Equal(t, key, got)
	// A previous secret needs only to load: it was the secret once.
	w.PreviousSecrets = []webhook.RetiredSecret{{Secret: "whsec_" + strings.TrimRight(b64, "="), ExpiresAt: time.Now()}}
	require.NoError(t, w.Validate())
}

// FuzzParseSecret checks that any text either parses to a key of 24 to
// 64 bytes, which the canonical form spells again, or fails with
// ErrInvalid and without echoing the text; and that Validate accepts a
// secret exactly when it is canonical.
func FuzzParseSecret(f *testing.F) {
	f.Add("whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)))
	f.Add("whsec_" + base64.RawStdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 25)))
	f.Add(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 64)))
	f.Add("whsec_%%%%")
	f.Add("whsec_whsec_AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		key, err := webhook.ParseSecret(s)
		w := validWebhook()
		w.Secret = s
		verr := w.Validate()
		if err != nil {
			if !errors.Is(err, webhook.ErrInvalid) || key != nil {
				t.Fatalf("ParseSecret(%q) = %x, %v", s, key, err)
			}
			if len(s) >= 16 && strings.Contains(err.Error(), s) {
				t.Fatalf("the error %q echoes the secret", err)
			}
			if verr == nil && s != "" { // an empty secret is generated on Create
				t.Fatalf("Validate accepts the unparsable secret %q", s)
			}
			return
		}
		if len(key) < 24 || len(key) > 64 {
			t.Fatalf("ParseSecret(%q) gave %d bytes", s, len(key))
		}
		canonical := "whsec_" + base64.StdEncoding.EncodeToString(key)
		again, err := webhook.ParseSecret(canonical)
		if err != nil || !bytes.Equal(again, key) {
			t.Fatalf("the canonical form %q of %q parses to %x, %v", canonical, s, again, err)
		}
		if (verr == nil) != (s == canonical) {
			t.Fatalf("Validate(%q) = %v, canonical %q", s, verr, canonical)
		}
	})
}
