package netaddr_test

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/analytics-webhooks/webhook/internal/netaddr"
)

func TestBlocked(t *testing.T) {
	for _, tc := range []struct {
		addr    netip.Addr
		allowed []netip.Prefix
		want    string
	}{
		{netip.Addr{}, nil, "invalid"},
		{netip.Addr{}, []netip.Prefix{netip.MustParsePrefix("::/0")}, "invalid"},
		{netip.MustParseAddr("fe80::1%eth0"), nil, "link-local"},
		{netip.MustParseAddr("fe80::1%eth0"), []netip.Prefix{netip.MustParsePrefix("fe80::/10")}, ""},
		{netip.MustParseAddr("4000::1"), nil, "reserved (outside global unicast 2000::/3)"},
		{netip.MustParseAddr("4000::1"), []netip.Prefix{netip.MustParsePrefix("4000::/3")}, ""},
		{netip.MustParseAddr("2002:a00:1::1"), nil, "private (embedded in 2002:a00:1::1)"},
		{netip.MustParseAddr("2002:a00:1::1"), []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, ""},
		{netip.MustParseAddr("64:ff9b::7f00:1"), nil, "loopback (embedded in 64:ff9b::7f00:1)"},
		{netip.MustParseAddr("::ffff:0:a9fe:a9fe"), []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, "link-local (cloud metadata) (embedded in ::ffff:0:a9fe:a9fe)"},
		{netip.MustParseAddr("64:ff9b:1::808:808"), nil, "local-use NAT64"},
		{netip.MustParseAddr("2001:4860:4860::8888"), nil, ""},
		{netip.MustParseAddr("8.8.8.8"), nil, ""},
	} {
		assert.Equal(t, tc.want, netaddr.Blocked(tc.addr, tc.allowed), "%v allowing %v", tc.addr, tc.allowed)
	}
}

func TestParseLiteral(t *testing.T) {
	for host, want := range map[string]string{
		"127.0.0.1.": "127.0.0.1", "0x7f.1": "127.0.0.1", "[fe80::1%eth0]": "fe80::1", "::ffff:0:127.0.0.1": "::ffff:0:7f00:1",
		"4294967295": "255.255.255.255", "1.0xffffff": "1.255.255.255", "1.2.0xffff": "1.2.255.255",
	} {
		a, ok := netaddr.ParseLiteral(host)
		assert.True(t, ok, host)
		assert.Equal(t, netip.MustParseAddr(want), a, host)
	}
	for _, host := range []string{"", ".", "1.2.3.4.5", "4294967296", "1.16777216", "1.2.65536", "256.1", "08", "0x", "1..2", "example.com"} {
		_, ok := netaddr.ParseLiteral(host)
		assert.False(t, ok, host)
	}
}
