package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/analytics-webhooks/webhook/internal/netaddr"
	"golang.org/x/net/idna"
)

// ErrBlockedAddress reports that a webhook URL names, or resolves to, an
// address the NetworkPolicy refuses: loopback, private, link-local (cloud
// metadata included) and other special-purpose ranges. Errors that wrap
// it are *BlockedError values that say which address and why.
var ErrBlockedAddress = errors.New("webhook: address not allowed")

// BlockedError is returned when a request would reach a refused address.
// errors.Is(err, ErrBlockedAddress) reports true for it.
type BlockedError struct {
	// Host is the host name or literal the URL named.
	Host string
	// Addr is the refused address (for a name, the one it resolved to);
	// invalid for a name refused without resolving, such as localhost.
	Addr netip.Addr
	// Range names the special-purpose range Addr is in.
	Range string
}

// Error says what was refused and why.
func (e *BlockedError) Error() string {
	if !e.Addr.IsValid() {
		return fmt.Sprintf("webhook: %s names this machine (%s), which webhooks may not reach", e.Host, e.Range)
	}
	if e.Host != "" && e.Host != e.Addr.String() {
		return fmt.Sprintf("webhook: %s resolves to %s, in the %s range, which webhooks may not reach", e.Host, e.Addr, e.Range)
	}
	return fmt.Sprintf("webhook: %s is in the %s range, which webhooks may not reach", e.Addr, e.Range)
}

// Is reports whether target is ErrBlockedAddress.
func (e *BlockedError) Is(target error) bool { return target == ErrBlockedAddress }

// NetworkPolicy says which addresses webhook requests may reach. The zero
// value is the safe default: public unicast addresses only, that is IPv4
// outside the IANA special-purpose ranges, and IPv6 inside global
// unicast 2000::/3 outside the special-purpose ranges there (2001::/23,
// 2001:db8::/32, 3fff::/20). An IPv6 address that carries an IPv4 one
// (IPv4-mapped ::ffff:a.b.c.d, IPv4-translated ::ffff:0:a.b.c.d, NAT64
// 64:ff9b::/96, 6to4 2002::/16) is judged as the IPv4 address. It applies
// when a webhook's URL is saved (literal IP addresses, in any spelling)
// and when a connection is made (the resolved address, checked at
// connect time so that a DNS answer that changes between check and
// connect cannot slip through).
type NetworkPolicy struct {
	// AllowPrivate lets requests reach every address: loopback, private,
	// link-local and the rest. Meant for tests and local demos only.
	AllowPrivate bool
	// AllowedNetworks are ranges requests may reach although they are
	// special-purpose, for operators with internal endpoints
	// (e.g. netip.MustParsePrefix("10.20.0.0/16")). An IPv4 range also
	// allows the IPv6 forms that carry its addresses.
	AllowedNetworks []netip.Prefix
	// AllowedHosts are host names (exact, case-insensitive) whose
	// addresses are not checked, for internal endpoints known by name.
	AllowedHosts []string
}

// check returns the name of the blocked range a is in, or "" if the
// policy lets requests reach it.
func (p *NetworkPolicy) check(a netip.Addr) string {
	if p.AllowPrivate {
		return ""
	}
	return netaddr.Blocked(a, p.AllowedNetworks)
}

func (p *NetworkPolicy) hostAllowed(host string) bool {
	for _, h := range p.AllowedHosts {
		if strings.EqualFold(strings.TrimSuffix(h, "."), strings.TrimSuffix(host, ".")) {
			return true
		}
	}
	return false
}

// CheckURL reports whether the policy lets a webhook use raw as its URL:
// nil, or a *BlockedError if the host is an IP address in a refused
// range, in any spelling (127.0.0.1, ::ffff:127.0.0.1, 2130706433,
// 0177.0.0.1, 0x7f.1), or a name that always means this machine
// ("localhost"). Names are resolved only when a request is made. It
// returns an error wrapping ErrInvalid if raw is not a valid URL.
func (p *NetworkPolicy) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return invalid("webhook", "url", "not a valid URL")
	}
	return p.checkHost(u.Hostname())
}

func (p *NetworkPolicy) checkHost(host string) error {
	if p.AllowPrivate || host == "" || p.hostAllowed(host) {
		return nil
	}
	// net/http maps a non-ASCII host through IDNA before it dials, so
	// "127。0。0。1" and "ｌｏｃａｌｈｏｓｔ" reach loopback: judge the form it
	// dials. A host IDNA refuses is dialed as it is, and fails to
	// resolve.
	if ascii, err := idna.Lookup.ToASCII(host); err == nil && ascii != host {
		if err := p.checkHost(ascii); err != nil {
			var be *BlockedError
			if errors.As(err, &be) {
				be.Host = host
			}
			return err
		}
		return nil
	}
	if a, ok := netaddr.ParseLiteral(host); ok {
		if r := p.check(a); r != "" {
			return &BlockedError{Host: host, Addr: a, Range: r}
		}
		return nil
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return &BlockedError{Host: host, Range: "loopback"}
	}
	return nil
}

// ClientConfig configures NewHTTPClient. The zero value is valid.
type ClientConfig struct {
	// Network says which addresses requests may reach. The zero value
	// refuses every private and special-purpose address.
	Network NetworkPolicy
	// DialTimeout bounds connecting. Defaults to 10 seconds.
	DialTimeout time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake. Defaults to 10 seconds.
	TLSHandshakeTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for the response's headers
	// once the request is written. Defaults to 30 seconds; the whole
	// request is bounded by its context as well.
	ResponseHeaderTimeout time.Duration
	// MaxIdleConnsPerHost is how many idle connections are kept per
	// host for reuse. Defaults to 32 (Go's default is 2).
	MaxIdleConnsPerHost int
	// Resolver looks up host names. Defaults to net.DefaultResolver.
	// Whatever it answers, the address is checked when connecting.
	Resolver *net.Resolver
}

// NewHTTPClient returns the *http.Client the library sends with when no
// Doer is configured. It is safe against server-side request forgery:
// every connection's address is checked against cfg.Network at connect
// time (after DNS, so rebinding cannot slip through); it never follows
// redirects and takes no proxy from the environment (a proxy would hide
// the real target). It bounds connecting, TLS handshakes and the wait
// for response headers, allows HTTP/2, and keeps more idle connections
// per host than Go's default so that steady traffic reuses them. A nil
// cfg means the defaults.
func NewHTTPClient(cfg *ClientConfig) *http.Client {
	var c ClientConfig
	if cfg != nil {
		c = *cfg
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 10 * time.Second
	}
	if c.TLSHandshakeTimeout <= 0 {
		c.TLSHandshakeTimeout = 10 * time.Second
	}
	if c.ResponseHeaderTimeout <= 0 {
		c.ResponseHeaderTimeout = 30 * time.Second
	}
	if c.MaxIdleConnsPerHost <= 0 {
		c.MaxIdleConnsPerHost = 32
	}
	policy := c.Network
	policy.AllowedNetworks = append([]netip.Prefix(nil), c.Network.AllowedNetworks...)
	policy.AllowedHosts = append([]string(nil), c.Network.AllowedHosts...)
	guarded := &net.Dialer{Timeout: c.DialTimeout, KeepAlive: 30 * time.Second, Control: policy.control, Resolver: c.Resolver}
	open := &net.Dialer{Timeout: c.DialTimeout, KeepAlive: 30 * time.Second, Resolver: c.Resolver}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if policy.hostAllowed(host) {
			return open.DialContext(ctx, network, addr)
		}
		if err := policy.checkHost(host); err != nil {
			return nil, err
		}
		conn, err := guarded.DialContext(ctx, network, addr)
		var be *BlockedError
		if errors.As(err, &be) {
			be.Host = host
			return nil, be
		}
		return conn, err
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                  nil,
			DialContext:            dial,
			ForceAttemptHTTP2:      true,
			MaxIdleConns:           512,
			MaxIdleConnsPerHost:    c.MaxIdleConnsPerHost,
			IdleConnTimeout:        90 * time.Second,
			TLSHandshakeTimeout:    c.TLSHandshakeTimeout,
			ResponseHeaderTimeout:  c.ResponseHeaderTimeout,
			ExpectContinueTimeout:  time.Second,
			MaxResponseHeaderBytes: 64 << 10,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// control is a net.Dialer Control hook: it refuses to connect to an
// address the policy blocks. It sees the address actually dialed, after
// resolution.
func (p *NetworkPolicy) control(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("webhook: cannot check address %q: %w", address, err)
	}
	if r := p.check(a); r != "" {
		return &BlockedError{Addr: a.WithZone(""), Range: r}
	}
	return nil
}
