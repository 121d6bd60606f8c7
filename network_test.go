package webhook_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/analytics-webhooks/webhook"
	"github.com/analytics-webhooks/webhook/memstore"
)

func TestCheckURLBlocksSpecialAddresses(t *testing.T) {
	blocked := []string{
		// IPv4 special-purpose ranges
		"0.0.0.0", "0.1.2.3", "10.0.0.1", "10.255.255.255", "100.64.0.1", "100.127.255.254",
		"127.0.0.1", "127.255.0.1", "169.254.169.254", "169.254.0.1", "172.16.0.1", "172.31.255.255",
		"192.0.0.8", "192.0.2.1", "192.88.99.1", "192.168.1.1", "198.18.0.1", "198.19.255.255",
		"198.51.100.7", "203.0.113.9", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
		// IPv6 special-purpose ranges
		"[::]", "[::1]", "[fe80::1]", "[fe80::1%25eth0]", "[fc00::1]", "[fd00:ec2::254]", "[fd12:3456::1]",
		"[fec0::1]", "[ff02::1]", "[ff05::2]", "[2001:db8::1]", "[3fff::1]", "[100::1]", "[2001::1]",
		"[64:ff9b:1::1]", "[::127.0.0.1]",
		// IPv4 inside IPv6
		"[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[::ffff:169.254.169.254]", "[::ffff:10.0.0.1]",
		"[64:ff9b::a9fe:a9fe]", "[64:ff9b::127.0.0.1]", "[2002:7f00:1::]", "[2002:a9fe:a9fe::1]",
		// Other spellings of IPv4 addresses
		"2130706433", "0177.0.0.1", "0x7f.0.0.1", "0x7f000001", "0x7F.1", "127.1", "127.0.1", "017700000001",
		"0", "2852039166", "0xa9fea9fe", "0251.0376.0251.0376", "10.1", "3232235777",
		// Names that always mean this machine
		"localhost", "LOCALHOST", "localhost.", "api.localhost",
	}
	var p webhook.NetworkPolicy
	for _, host := range blocked {
		err := p.CheckURL("http://" + host + ":8080/hook")
		require.ErrorIs(t, err, webhook.ErrBlockedAddress, host)
		var be *webhook.BlockedError
		require.ErrorAs(t, err, &be, host)
		assert.NotEmpty(t, be.Range, host)
		assert.Contains(t, err.Error(), be.Range)
	}

	allowed := []string{
		"example.com", "hooks.example.com", "8.8.8.8", "1.1.1.1", "[2606:4700:4700::1111]",
		"[::ffff:8.8.8.8]", "[64:ff9b::808:808]", "[2002:808:808::1]", "100.63.255.255", "100.128.0.1",
		"172.15.255.255", "172.32.0.1", "192.167.1.1", "134744072", "0x08.0x08.0x08.0x08",
		"localhost.example.com", "127.0.0.1.nip.io.example",
	}
	for _, host := range allowed {
		require.NoError(t, p.CheckURL("https://"+host+"/hook"), host)
	}

	assert.Contains(t, p.CheckURL("http://localhost:8080/").Error(), "localhost names this machine")

	open := webhook.NetworkPolicy{AllowPrivate: true}
	for _, host := range blocked {
		require.NoError(t, open.CheckURL("http://"+host+"/"), host)
	}
	some := webhook.NetworkPolicy{
		AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16"), netip.MustParsePrefix("fd00:1::/32")},
		AllowedHosts:    []string{"Internal.Example"},
	}
	require.NoError(t, some.CheckURL("http://10.20.3.4/"))
	require.NoError(t, some.CheckURL("http://[::ffff:10.20.3.4]/"))
	require.NoError(t, some.CheckURL("http://[fd00:1::5]/"))
	require.NoError(t, some.CheckURL("http://internal.example/"))
	require.ErrorIs(t, some.CheckURL("http://10.21.0.1/"), webhook.ErrBlockedAddress)
	require.ErrorIs(t, some.CheckURL("http://127.0.0.1/"), webhook.ErrBlockedAddress)
}

// reservedIPv6 lists IPv6 addresses outside public unicast, with the range
// a refusal must name.
var reservedIPv6 = []struct{ addr, rng string }{
	// Space IANA has not made global unicast (2000::/3).
	{"4000::1", "reserved (outside global unicast 2000::/3)"},
	{"e000::1", "reserved (outside global unicast 2000::/3)"},
	{"f800::1", "reserved (outside global unicast 2000::/3)"},
	{"fe00::1", "reserved (outside global unicast 2000::/3)"},
	{"400::1", "reserved (outside global unicast 2000::/3)"},
	{"200::1", "reserved (outside global unicast 2000::/3)"},
	{"8000::1", "reserved (outside global unicast 2000::/3)"},
	{"1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "reserved (outside global unicast 2000::/3)"},
	{"4000::", "reserved (outside global unicast 2000::/3)"},
	{"5f00::1", "segment routing (SRv6) SID"},
	{"5f00:ffff:ffff::1", "segment routing (SRv6) SID"},
	{"100:0:0:1::1", "dummy prefix"},
	{"100:0:0:1:ffff:ffff:ffff:ffff", "dummy prefix"},
	// IPv4-translated addresses carrying a refused IPv4 address.
	{"::ffff:0:127.0.0.1", "loopback (embedded in ::ffff:0:7f00:1)"},
	{"::ffff:0:169.254.169.254", "link-local (cloud metadata) (embedded in ::ffff:0:a9fe:a9fe)"},
	{"::ffff:0:10.0.0.1", "private (embedded in ::ffff:0:a00:1)"},
	// Special-purpose ranges inside 2000::/3.
	{"2001::1", "Teredo"},
	{"2001:1::1", "IETF protocol assignment"},
	{"2001:2::1", "benchmarking"},
	{"2001:10::1", "ORCHID (deprecated)"},
	{"2001:20::1", "ORCHIDv2"},
	{"2001:1ff:ffff::1", "IETF protocol assignment"},
	{"2001:db8::1", "documentation"},
	{"3fff:fff:ffff::1", "documentation"},
}

// publicIPv6 lists IPv6 addresses requests may reach, some at the edges
// of refused ranges.
var publicIPv6 = []string{
	"2606:4700::1111", "2606:4700:4700::1111", "2001:4860:4860::8888", "2a00:1450:4001:80b::200e",
	"2000::1", "3fff:1000::1", "3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2001:200::1", "2001:dbf::1",
	"2620:4f:8000::1", "2002:808:808::1", "64:ff9b::8.8.8.8", "::ffff:0:8.8.8.8", "::ffff:8.8.8.8",
}

func TestCheckURLRefusesReservedIPv6(t *testing.T) {
	var p webhook.NetworkPolicy
	for _, tc := range reservedIPv6 {
		addr := netip.MustParseAddr(tc.addr)
		for _, raw := range []string{"http://[" + tc.addr + "]/hook", "https://[" + tc.addr + "]:8443/hook", "http://[" + addr.String() + "]/"} {
			err := p.CheckURL(raw)
			require.ErrorIs(t, err, webhook.ErrBlockedAddress, raw)
			var be *webhook.BlockedError
			require.ErrorAs(t, err, &be, raw)
			assert.Equal(t, tc.rng, be.Range, raw)
			assert.Equal(t, addr, be.Addr, raw)
			assert.Contains(t, err.Error(), tc.rng, raw)
		}
	}
	for _, a := range publicIPv6 {
		require.NoError(t, p.CheckURL("https://["+a+"]/hook"), a)
	}

	// The allow-list lets through what it names, also in IPv6 forms that
	// carry an allowed IPv4 address, and nothing else.
	some := webhook.NetworkPolicy{AllowedNetworks: []netip.Prefix{
		netip.MustParsePrefix("5f00:1::/32"), netip.MustParsePrefix("4000::/16"), netip.MustParsePrefix("127.0.0.0/8"),
	}}
	for _, raw := range []string{"http://[5f00:1::1]/", "http://[4000::1]/", "http://[::ffff:0:127.0.0.1]/", "http://[::ffff:127.0.0.1]/"} {
		require.NoError(t, some.CheckURL(raw), raw)
	}
	for _, raw := range []string{"http://[5f00:2::1]/", "http://[4001::1]/", "http://[e000::1]/", "http://[::ffff:0:169.254.169.254]/"} {
		require.ErrorIs(t, some.CheckURL(raw), webhook.ErrBlockedAddress, raw)
	}
	open := webhook.NetworkPolicy{AllowPrivate: true}
	for _, tc := range reservedIPv6 {
		require.NoError(t, open.CheckURL("http://["+tc.addr+"]/"), tc.addr)
	}
}

// TestClientRefusesReservedIPv6 checks the connect-time check: a name that
// resolves to a reserved IPv6 address is refused before any packet is
// sent, as is the literal.
func TestClientRefusesReservedIPv6(t *testing.T) {
	for _, tc := range reservedIPv6 {
		addr := netip.MustParseAddr(tc.addr)
		c := webhook.NewHTTPClient(&webhook.ClientConfig{DialTimeout: 5 * time.Second, Resolver: fakeDNS(t, addr)})
		for _, u := range []string{"http://reserved.example:9/hook", "http://[" + tc.addr + "]:9/hook"} {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
			require.NoError(t, err)
			resp, err := c.Do(req)
			cancel()
			if err == nil {
				resp.Body.Close()
			}
			require.ErrorIs(t, err, webhook.ErrBlockedAddress, u)
			var be *webhook.BlockedError
			require.ErrorAs(t, err, &be, u)
			assert.Equal(t, tc.rng, be.Range, u)
			assert.Equal(t, addr, be.Addr, u)
			if strings.Contains(u, "reserved.example") {
				assert.Equal(t, "reserved.example", be.Host, "refused when connecting, after resolving")
			}
		}
	}
}

// TestClientAllowsIPv6ByPolicy checks that the allow-list still works at
// connect time for IPv6: loopback is refused by default and reachable
// once allowed.
func TestClientAllowsIPv6ByPolicy(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	var hits atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	target := "http://six.example:" + port + "/hook"
	dns := fakeDNS(t, netip.IPv6Loopback())

	_, err = webhook.NewHTTPClient(&webhook.ClientConfig{Resolver: dns}).Get(target)
	var be *webhook.BlockedError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, "loopback", be.Range)
	assert.Equal(t, "six.example", be.Host)

	allowed := webhook.NetworkPolicy{AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("::1/128")}}
	resp, err := webhook.NewHTTPClient(&webhook.ClientConfig{Network: allowed, Resolver: dns}).Get(target)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, int32(1), hits.Load())
}

func TestCreateRefusesPrivateURL(t *testing.T) {
	svc, _, _ := newService(t)
	for _, u := range []string{"http://127.0.0.1/", "http://169.254.169.254/latest/meta-data", "http://2130706433/", "http://[::ffff:10.0.0.1]/", "http://localhost:8080/"} {
		_, err := svc.Create(t.Context(), &webhook.Webhook{Name: "n", URL: u, Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
		require.ErrorIs(t, err, webhook.ErrInvalid, u)
		assert.Equal(t, []string{"url"}, fields(t, err), u)
	}
	// Several problems are reported together.
	_, err := svc.Create(t.Context(), &webhook.Webhook{URL: "http://10.0.0.1/", Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
	assert.ElementsMatch(t, []string{"name", "url"}, fields(t, err))
	w := create(t, svc, "ok", webhook.Trigger{Type: webhook.TriggerEvent})
	w.URL = "http://192.168.0.10/"
	_, err = svc.Update(t.Context(), w)
	assert.Equal(t, []string{"url"}, fields(t, err))
}

// fakeDNS is a DNS server on loopback that answers every A query (for an
// IPv4 addr) or AAAA query (for an IPv6 addr) with addr.
func fakeDNS(t *testing.T, addr netip.Addr) *net.Resolver {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 12 {
				continue
			}
			q := buf[:n]
			// The question section ends after the name's zero byte and
			// four bytes of type and class.
			end := 12
			for end < n && q[end] != 0 {
				end += int(q[end]) + 1
			}
			end += 5
			if end > n {
				continue
			}
			qtype := binary.BigEndian.Uint16(q[end-4:])
			resp := append([]byte(nil), q[:end]...)
			resp[2] |= 0x84 // response, authoritative
			resp[3] = 0
			binary.BigEndian.PutUint16(resp[6:], 0) // answers
			binary.BigEndian.PutUint16(resp[8:], 0)
			binary.BigEndian.PutUint16(resp[10:], 0)
			switch {
			case qtype == 1 && addr.Is4(): // A
				binary.BigEndian.PutUint16(resp[6:], 1)
				a := addr.As4()
				resp = append(resp, 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4)
				resp = append(resp, a[:]...)
			case qtype == 28 && addr.Is6(): // AAAA
				binary.BigEndian.PutUint16(resp[6:], 1)
				a := addr.As16()
				resp = append(resp, 0xc0, 0x0c, 0, 28, 0, 1, 0, 0, 0, 60, 0, 16)
				resp = append(resp, a[:]...)
			}
			_, _ = pc.WriteTo(resp, from)
		}
	}()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
}

func TestClientBlocksNamesThatResolvePrivately(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	target := "http://rebind.example:" + port + "/hook"

	// The name passes the check on save, but resolves to loopback.
	var p webhook.NetworkPolicy
	require.NoError(t, p.CheckURL(target))
	c := webhook.NewHTTPClient(&webhook.ClientConfig{Resolver: fakeDNS(t, netip.MustParseAddr("127.0.0.1"))})
	_, err := c.Get(target)
	require.ErrorIs(t, err, webhook.ErrBlockedAddress)
	var be *webhook.BlockedError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, "rebind.example", be.Host)
	assert.Equal(t, netip.MustParseAddr("127.0.0.1"), be.Addr)
	assert.Contains(t, err.Error(), "rebind.example resolves to 127.0.0.1")
	assert.Zero(t, hits.Load())

	// Metadata service.
	c = webhook.NewHTTPClient(&webhook.ClientConfig{Resolver: fakeDNS(t, netip.MustParseAddr("169.254.169.254"))})
	_, err = c.Get("http://metadata.example/latest/meta-data/")
	require.ErrorAs(t, err, &be)
	assert.Contains(t, be.Range, "link-local")

	// Literal addresses are refused before any connection.
	c = webhook.NewHTTPClient(nil)
	for _, u := range []string{srv.URL, strings.Replace(srv.URL, "127.0.0.1", "[::ffff:127.0.0.1]", 1)} {
		_, err = c.Get(u)
		require.ErrorIs(t, err, webhook.ErrBlockedAddress, u)
	}
	assert.Zero(t, hits.Load())

	// Allowed hosts and networks get through.
	c = webhook.NewHTTPClient(&webhook.ClientConfig{Network: webhook.NetworkPolicy{AllowedHosts: []string{"rebind.example"}}, Resolver: fakeDNS(t, netip.MustParseAddr("127.0.0.1"))})
	resp, err := c.Get(target)
	require.NoError(t, err)
	resp.Body.Close()
	c = webhook.NewHTTPClient(&webhook.ClientConfig{Network: webhook.NetworkPolicy{AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}})
	resp, err = c.Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, int32(2), hits.Load())
}

func TestClientIgnoresProxyAndRedirects(t *testing.T) {
	var proxied atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { proxied.Add(1) }))
	defer proxy.Close()
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("HTTPS_PROXY", proxy.URL)
	t.Setenv("http_proxy", proxy.URL)

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/iam/", http.StatusFound)
	}))
	defer srv.Close()
	loopback := webhook.NetworkPolicy{AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	c := webhook.NewHTTPClient(&webhook.ClientConfig{Network: loopback})
	resp, err := c.Get(srv.URL)
	require.NoError(t, err, "a redirect is returned, not followed")
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	assert.Equal(t, http.StatusFound, resp.StatusCode)
	assert.Zero(t, proxied.Load(), "HTTP_PROXY from the environment is ignored")
}

func TestBlockedDeliveryAndTestSend(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	store := memstore.New(nil)
	clock := newFakeClock()
	svc, err := webhook.NewService(store, &webhook.Config{Now: clock.Now, Doer: webhook.NewHTTPClient(&webhook.ClientConfig{Resolver: fakeDNS(t, netip.MustParseAddr("127.0.0.1"))})})
	require.NoError(t, err)
	w, err := svc.Create(t.Context(), &webhook.Webhook{Name: "n", URL: "http://sneaky.example:" + port + "/", Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}})
	require.NoError(t, err, "a name is not resolved when saved")

	d, err := svc.Test(t.Context(), w.ID)
	require.NoError(t, err)
	assert.Equal(t, webhook.StatusFailed, d.Status, "a test send is blocked like a real one")
	assert.Contains(t, d.Error, "resolves to 127.0.0.1")

	ids, err := svc.TriggerEvent(t.Context(), "e", nil, "")
	require.NoError(t, err)
	wk, err := webhook.NewWorker(svc, nil)
	require.NoError(t, err)
	_, err = wk.RunOnce(t.Context())
	require.NoError(t, err)
	d, err = svc.Delivery(t.Context(), ids[0])
	require.NoError(t, err)
	assert.Equal(t, webhook.StatusRetrying, d.Status)
	assert.Contains(t, d.Error, "loopback")
	assert.Zero(t, hits.Load(), "no request reached the loopback server")
}

// FuzzCheckURL checks that URL validation never panics and never lets a
// special-purpose literal address through, in whatever spelling.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"http://127.0.0.1/", "http://2130706433/", "http://0x7f.1/", "http://[::ffff:127.0.0.1]/", "https://example.com/x?y#z",
		"http://[fe80::1%25eth0]:80/", "http://user:pw@host/", "http://0177.0.0.01/", "http://1.2.3.4.5/", "http://[64:ff9b::a9fe:a9fe]/",
		"https://[2606:4700::1111]/", "http://[::ffff:0:8.8.8.8]/",
	} {
		f.Add(s)
	}
	for _, tc := range reservedIPv6 {
		f.Add("http://[" + tc.addr + "]:8080/hook")
	}
	var p webhook.NetworkPolicy
	f.Fuzz(func(t *testing.T, raw string) {
		w := &webhook.Webhook{Name: "n", URL: raw, Retry: webhook.DefaultRetryPolicy(), Triggers: []webhook.Trigger{{Type: webhook.TriggerEvent}}}
		valid := w.Validate() == nil
		err := p.CheckURL(raw)
		if !valid || err != nil {
			return
		}
		u, perr := url.Parse(raw)
		if perr != nil {
			t.Fatalf("accepted an unparsable URL %q", raw)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			t.Fatalf("accepted scheme %q", u.Scheme)
		}
		if a, err := netip.ParseAddr(u.Hostname()); err == nil {
			if !publicUnicast(a) {
				t.Fatalf("accepted the special address %s in %q", a, raw)
			}
		}
		if errors.Is(err, webhook.ErrBlockedAddress) {
			t.Fatal("unreachable")
		}
	})
}

// publicUnicast is the specification of what the default policy lets
// through, written independently of the library's tables, as a necessary
// condition: IPv4 outside the well-known private and reserved ranges;
// IPv6 inside 2000::/3 outside 2001::/23 and the documentation ranges,
// or carrying such an IPv4 address (mapped, translated, NAT64, 6to4).
func publicUnicast(a netip.Addr) bool {
	a = a.WithZone("")
	if a.Is4In6() {
		return publicUnicast(a.Unmap())
	}
	if a.Is4() {
		b := a.As4()
		return !(a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsUnspecified() || a.IsMulticast() ||
			b[0] == 0 || b[0] >= 240 || (b[0] == 100 && b[1]&0xc0 == 64))
	}
	b := a.As16()
	v4 := func(i int) bool { return publicUnicast(netip.AddrFrom4([4]byte(b[i : i+4]))) }
	for _, p := range []string{"::ffff:0:0:0/96", "64:ff9b::/96"} {
		if netip.MustParsePrefix(p).Contains(a) {
			return v4(12)
		}
	}
	if netip.MustParsePrefix("2002::/16").Contains(a) {
		return v4(2)
	}
	if b[0]&0xe0 != 0x20 { // 2000::/3
		return false
	}
	for _, p := range []string{"2001::/23", "2001:db8::/32", "3fff::/20"} {
		if netip.MustParsePrefix(p).Contains(a) {
			return false
		}
	}
	return true
}

// Go's HTTP client maps a host through IDNA before it dials, so
// fullwidth letters, ideographic dots and circled digits spell loopback
// and metadata addresses: saving such a URL is refused as its mapped
// form would be.
func TestCheckURLRefusesUnicodeSpellings(t *testing.T) {
	var p webhook.NetworkPolicy
	for _, raw := range []string{
		"http://127。0。0。1/",
		"http://①②⑦.0.0.1/",
		"http://ｌｏｃａｌｈｏｓｔ/",
		"http://169．254．169．254/latest/meta-data/",
		"http://[::1]/", // unchanged by the mapping, refused as before
	} {
		err := p.CheckURL(raw)
		var be *webhook.BlockedError
		if !errors.As(err, &be) {
			t.Errorf("CheckURL(%q) = %v; want a *BlockedError", raw, err)
		}
	}
	if err := p.CheckURL("https://bücher.example/hooks"); err != nil {
		t.Errorf("an internationalised public name is refused: %v", err)
	}
}
