package netaddr

import "net/netip"

// blockedRange is a special-purpose range and its name.
type blockedRange struct {
	prefix netip.Prefix
	name   string
}

// ipv4Ranges are the IANA IPv4 special-purpose ranges, multicast and
// reserved space. The first match names an address. It is never
// modified.
var ipv4Ranges = []blockedRange{
	{netip.MustParsePrefix("0.0.0.0/8"), "this-network"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (cloud metadata)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"}, // 255.255.255.255 broadcast included
}

// ipv6Ranges are the IANA IPv6 special-purpose ranges that are not
// globally reachable, and the address space IANA has not made global
// unicast, named where it has a name. The first match names an address;
// what none names is reachable only inside globalUnicast. The
// translation prefixes that carry an IPv4 address are judged by that
// address before this table is consulted. It is never modified.
var ipv6Ranges = []blockedRange{
	// Outside 2000::/3.
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible (deprecated)"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64"},
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("100:0:0:1::/64"), "dummy prefix"},
	{netip.MustParsePrefix("5f00::/16"), "segment routing (SRv6) SID"},
	{netip.MustParsePrefix("fc00::/7"), "unique-local (fd00:ec2::254 cloud metadata included)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local (deprecated)"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
	// Inside 2000::/3. The whole of 2001::/23 is refused: the few
	// globally reachable entries in it (anycast for PCP, TURN and DNS-SD,
	// AMT relays, AS112, ORCHIDv2 and drone identifiers) are protocol
	// infrastructure or identifiers, not HTTP endpoints.
	{netip.MustParsePrefix("2001::/32"), "Teredo"},
	{netip.MustParsePrefix("2001:2::/48"), "benchmarking"},
	{netip.MustParsePrefix("2001:10::/28"), "ORCHID (deprecated)"},
	{netip.MustParsePrefix("2001:20::/28"), "ORCHIDv2"},
	{netip.MustParsePrefix("2001::/23"), "IETF protocol assignment"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("3fff::/20"), "documentation"},
}

// globalUnicast is the only IPv6 space IANA allocates for public
// unicast.
var globalUnicast = netip.MustParsePrefix("2000::/3")

// reservedIPv6 names IPv6 space outside globalUnicast that has no
// special-purpose name of its own.
const reservedIPv6 = "reserved (outside global unicast 2000::/3)"

// Translation prefixes that carry an IPv4 address inside IPv6. The
// IPv4-mapped form (::ffff:0:0/96) is recognised by netip.Addr.Is4In6.
var (
	translatedPrefix = netip.MustParsePrefix("::ffff:0:0:0/96")
	nat64Prefix      = netip.MustParsePrefix("64:ff9b::/96")
	sixToFourPrefix  = netip.MustParsePrefix("2002::/16")
)
