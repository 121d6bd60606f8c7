// Package netaddr decides which IP addresses webhook requests may reach
// and parses IP literals in every spelling a resolver accepts. The
// webhook package's NetworkPolicy is built on it.
package netaddr

import (
	"net/netip"
	"strconv"
	"strings"
)

// Blocked returns the name of the special-purpose range a is in, or ""
// if requests may reach it: a public unicast address, or an address in
// one of the allowed prefixes. The zone of a is ignored.
//
// An IPv4 address is refused if it is in one of the IANA IPv4
// special-purpose ranges. An IPv6 address that carries an IPv4 address
// by a well-known translation (IPv4-mapped ::ffff:0:0/96, IPv4-translated
// ::ffff:0:0:0/96, NAT64 64:ff9b::/96, 6to4 2002::/16) is judged as the
// IPv4 address it carries. Any other IPv6 address is reachable only
// inside global unicast 2000::/3, outside the IANA IPv6 special-purpose
// ranges there.
func Blocked(a netip.Addr, allowed []netip.Prefix) string {
	if !a.IsValid() {
		return "invalid"
	}
	a = a.WithZone("")
	for _, n := range allowed {
		if n.Contains(a) || (a.Is4In6() && n.Contains(a.Unmap())) {
			return ""
		}
	}
	if v4, ok := embeddedIPv4(a); ok {
		if r := Blocked(v4, allowed); r != "" {
			return r + " (embedded in " + a.String() + ")"
		}
		return ""
	}
	table := ipv4Ranges
	if a.Is6() {
		table = ipv6Ranges
	}
	for _, r := range table {
		if r.prefix.Contains(a) {
			return r.name
		}
	}
	if a.Is6() && !globalUnicast.Contains(a) {
		return reservedIPv6
	}
	return ""
}

// embeddedIPv4 returns the IPv4 address an IPv6 address carries by a
// well-known translation: IPv4-mapped (::ffff:0:0/96), IPv4-translated
// (::ffff:0:0:0/96), NAT64 (64:ff9b::/96) or 6to4 (2002::/16).
func embeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	if a.Is4In6() {
		return a.Unmap(), true
	}
	if !a.Is6() {
		return netip.Addr{}, false
	}
	b := a.As16()
	switch {
	case translatedPrefix.Contains(a), nat64Prefix.Contains(a):
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
	case sixToFourPrefix.Contains(a):
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), true
	}
	return netip.Addr{}, false
}

// ParseLiteral parses host as an IP address in any spelling that some
// resolver accepts: standard IPv4 and IPv6, bracketed or not (zone
// ignored), and the inet_aton forms with one to four parts, each
// decimal, octal (leading 0) or hex (leading 0x), the last part filling
// the bytes the others leave: 2130706433, 0177.0.0.1, 0x7f.0.0.1, 127.1.
// One trailing dot is ignored, as in a fully-qualified name, so that
// "127.0.0.1." is recognised too. It reports false for anything else.
func ParseLiteral(host string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return a.WithZone(""), true
	}
	parts := strings.Split(strings.TrimSuffix(host, "."), ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var vals [4]uint64
	for i, part := range parts {
		v, ok := parseInetPart(part)
		if !ok {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	// The last part fills the bytes the earlier ones leave.
	var n uint64
	last := len(parts) - 1
	for i, v := range vals[:last] {
		if v > 0xff {
			return netip.Addr{}, false
		}
		n |= v << (8 * (3 - i))
	}
	if vals[last] >= 1<<(8*(4-last)) {
		return netip.Addr{}, false
	}
	n |= vals[last]
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}

// parseInetPart parses one inet_aton component.
func parseInetPart(s string) (uint64, bool) {
	base := 10
	switch {
	case s == "":
		return 0, false
	case len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X"):
		s, base = s[2:], 16
	case len(s) > 1 && s[0] == '0':
		s, base = s[1:], 8
	}
	v, err := strconv.ParseUint(s, base, 32)
	return v, err == nil
}
