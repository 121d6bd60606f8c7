package webhook

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzCleanText checks that a cleaned response body is valid UTF-8
// without NUL, at most limit bytes, and the longest such prefix of the
// whole cleaned text.
func FuzzCleanText(f *testing.F) {
	f.Add([]byte("plain"), 3)
	f.Add([]byte("\xff\xfe\x00ok"), 4)
	f.Add([]byte("é\x00é"), 1)
	f.Fuzz(func(t *testing.T, b []byte, limit int) {
		limit %= 2 * (len(b) + 1)
		got := cleanText(b, limit)
		full := cleanText(b, 4*len(b)+4)
		switch {
		case !utf8.ValidString(got) || strings.Contains(got, "\x00"):
			t.Fatalf("cleanText(%q, %d) = %q: not clean", b, limit, got)
		case len(got) > max(limit, 0):
			t.Fatalf("cleanText(%q, %d) = %q: over the limit", b, limit, got)
		case !strings.HasPrefix(full, got):
			t.Fatalf("cleanText(%q, %d) = %q: not a prefix of %q", b, limit, got, full)
		case len(got) < len(full) && len(got)+utf8.RuneLen([]rune(full[len(got):])[0]) <= limit:
			t.Fatalf("cleanText(%q, %d) = %q: cut too early", b, limit, got)
		}
	})
}
