package netaddr_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/internal/netaddr"
)

// special4 reports whether an IPv4 address is private or special-purpose,
// by the standard library and the well-known ranges it has no method
// for, independently of the package's tables.
func special4(b [4]byte) bool {
	a := netip.AddrFrom4(b)
	return a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsUnspecified() || a.IsMulticast() ||
		b[0] == 0 || b[0] >= 240 || (b[0] == 100 && b[1]&0xc0 == 64)
}

// inetAton is a reference implementation of glibc's inet_aton as its
// getaddrinfo uses it (the exact form: nothing may follow the address).
// The address has one to four parts separated by dots; each starts with
// a digit and is read as strtoul reads it in base 0: 0x or 0X then hex,
// a leading 0 then octal, else decimal, stopping at the first character
// that is not a digit of its base. Every part but the last is one byte;
// the last fills the bytes left. A part above 2^32-1 is refused.
func inetAton(s string) ([4]byte, bool) {
	var out [4]byte
	var parts []uint64
	i := 0
	for {
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return out, false
		}
		v, n, ok := strtoul0(s[i:])
		if !ok {
			return out, false
		}
		i += n
		if i < len(s) && s[i] == '.' {
			if len(parts) >= 3 || v > 0xff {
				return out, false
			}
			parts = append(parts, v)
			i++
			continue
		}
		if i != len(s) || v > 0xffffffff>>(8*len(parts)) {
			return out, false
		}
		n32 := uint32(v)
		for j, p := range parts {
			n32 |= uint32(p) << (24 - 8*j)
		}
		return [4]byte{byte(n32 >> 24), byte(n32 >> 16), byte(n32 >> 8), byte(n32)}, true
	}
}

// strtoul0 reads an unsigned integer from the start of s as C's strtoul
// does in base 0, returning it, how many bytes it used, and false if it
// is above 2^32-1.
func strtoul0(s string) (uint64, int, bool) {
	digit := func(c byte) (uint64, bool) {
		switch {
		case c >= '0' && c <= '9':
			return uint64(c - '0'), true
		case c >= 'a' && c <= 'f':
			return uint64(c-'a') + 10, true
		case c >= 'A' && c <= 'F':
			return uint64(c-'A') + 10, true
		}
		return 0, false
	}
	base, i := uint64(10), 0
	if s[0] == '0' {
		base = 8
		if len(s) > 2 && (s[1] == 'x' || s[1] == 'X') {
			if _, ok := digit(s[2]); ok {
				base, i = 16, 2
			}
		}
	}
	var v uint64
	for ; i < len(s); i++ {
		d, ok := digit(s[i])
		if !ok || d >= base {
			break
		}
		if v = v*base + d; v > 0xffffffff {
			// Keep reading: strtoul consumes every digit before refusing.
			v = 1 << 33
		}
	}
	return v, i, v <= 0xffffffff
}

// FuzzParseLiteral checks the literal parser against the inet_aton
// oracle for IPv4 spellings, that it never panics, and that every address
// the oracle reads as private or special-purpose is refused by CheckURL.
func FuzzParseLiteral(f *testing.F) {
	for _, s := range []string{
		"127.0.0.1", "2130706433", "0177.0.0.1", "0x7f.0.0.1", "0x7F.1", "127.1", "127.0.1", "017700000001", "0",
		"0xa9fea9fe", "0251.0376.0251.0376", "10.1", "1.2.3.4.", "1.2.3.4..", "1.2.3.4.5", "08.1.1.1", "0x", "0x.1", "00x1", ".1",
		"1..2", "256.1", "1.16777216", "1.16777215", "4294967295", "4294967296", "0x100000000", "037777777777",
		"040000000000", "0000000000000000000000000000000012", "0x00000000000000000000007f.1", "1.2.3.04", "1 .2",
		"[127.0.0.1]", "1.2.3.4%eth0", "8.8.8.8", "0x08.0x08.0x08.0x08", "134744072", "9", "0.9", "00.09", "0X1g",
	} {
		f.Add(s)
	}
	for _, a := range []string{
		"4000::1", "e000::1", "f800::1", "fe00::1", "400::1", "5f00::1", "100:0:0:1::1",
		"::ffff:0:127.0.0.1", "::ffff:0:169.254.169.254", "2001:20::1", "3fff::1", "2606:4700::1111",
	} {
		f.Add(a)
		f.Add("[" + a + "]")
	}
	var p webhook.NetworkPolicy
	f.Fuzz(func(t *testing.T, host string) {
		got, ok := netaddr.ParseLiteral(host)
		if strings.ContainsAny(host, ":[]%") {
			// IPv6 spellings (and bracketed ones): netip decides.
			want, err := netip.ParseAddr(strings.Trim(host, "[]"))
			if (err == nil) != ok || (ok && got != want.WithZone("")) {
				t.Fatalf("ParseLiteral(%q) = %v, %v; netip says %v, %v", host, got, ok, want, err)
			}
			return
		}
		// One trailing dot is ignored on purpose (a fully-qualified
		// spelling must not turn a refused literal into a name).
		want, wantOK := inetAton(strings.TrimSuffix(host, "."))
		if ok != wantOK || (ok && got != netip.AddrFrom4(want)) {
			t.Fatalf("ParseLiteral(%q) = %v, %v; inet_aton says %v, %v", host, got, ok, netip.AddrFrom4(want), wantOK)
		}
		if wantOK && special4(want) {
			for _, raw := range []string{"http://" + host + "/", "https://" + host + ":8443/x"} {
				if err := p.CheckURL(raw); !errors.Is(err, webhook.ErrBlockedAddress) {
					t.Fatalf("CheckURL(%q) = %v for the special address %v", raw, err, netip.AddrFrom4(want))
				}
			}
		}
	})
}
