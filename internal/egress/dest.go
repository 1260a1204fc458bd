// Package egress confines `brig run --allow-net`: the sandbox gets a
// network namespace of its own whose only way out is user-mode networking
// (slirp4netns, which connects from the host's stack), and an nftables
// output chain in that namespace passes exactly the allowed destinations.
// The namespace is made and filtered by a small holder process before the
// container joins it, so the rules are in place before the command runs.
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Dest is one --allow-net HOST[:PORT]: the host's addresses (a name is
// resolved when the sandbox starts) and a port, 0 for any.
type Dest struct {
	Host     string         // as given
	Prefixes []netip.Prefix // what it resolved to
	Port     uint16
	// Named: Host is a name, let out by what the DNS responder answers
	// for it; Wildcard: *.DOMAIN, any name below DOMAIN.
	Named, Wildcard bool
	// Loopback: localhost:PORT, the host's loopback at that port, which
	// brig forwards into the sandbox's own 127.0.0.1:PORT.
	Loopback bool
}

// Network and Network6 are slirp4netns's address ranges inside the
// sandbox (IPv4, and IPv6 with --enable-ipv6); destinations can't lie in
// them.
var (
	Network  = netip.MustParsePrefix("10.0.2.0/24")
	Network6 = netip.MustParsePrefix("fd00::/64")
)

// Lookup resolves a host name to addresses.
type Lookup func(ctx context.Context, host string) ([]netip.Addr, error)

// ResolveHost uses the host's resolver, as the command itself would have.
func ResolveHost(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// Parse parses and resolves --allow-net values: HOST, HOST:PORT, an IPv4
// address or prefix with or without :PORT, an IPv6 address or prefix
// bare (every port) or in brackets with :PORT ([2001:db8::1]:443). Each
// error names the value.
func Parse(values []string, lookup Lookup) ([]Dest, error) {
	var out []Dest
	for _, v := range values {
		d, err := parseOne(v, lookup)
		if err != nil {
			return nil, fmt.Errorf("--allow-net %q: %w", v, err)
		}
		out = append(out, d)
	}
	return out, nil
}

func parseOne(v string, lookup Lookup) (Dest, error) {
	host, port, colon := v, "", false
	switch {
	case strings.HasPrefix(v, "["):
		// [IPv6 address or prefix] or [...]:PORT
		end := strings.IndexByte(v, ']')
		if end < 0 {
			return Dest{}, errors.New("an IPv6 destination in brackets needs its ]")
		}
		host, port = v[1:end], v[end+1:]
		if port != "" {
			if port, colon = strings.CutPrefix(port, ":"); !colon {
				return Dest{}, fmt.Errorf("after ] comes :PORT, not %q", v[end+1:])
			}
		}
		if !strings.Contains(host, ":") {
			return Dest{}, fmt.Errorf("%q in brackets is not an IPv6 address", host)
		}
	case strings.Count(v, ":") > 1:
		// A bare IPv6 address or prefix: every port (a port needs [ ]).
	default:
		if i := strings.LastIndexByte(v, ':'); i >= 0 {
			host, port, colon = v[:i], v[i+1:], true
		}
	}
	d := Dest{Host: host}
	if port == "" && colon {
		return Dest{}, errors.New("empty port (leave out the colon to allow every port)")
	}
	if port != "" {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return Dest{}, fmt.Errorf("port %q: want a number from 1 to 65535", port)
		}
		d.Port = uint16(n)
	}
	if host == "" {
		return Dest{}, errors.New("want HOST[:PORT]")
	}
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		if !validName(rest) || !strings.Contains(rest, ".") {
			return Dest{}, fmt.Errorf("%q: a wildcard is *. and a domain of two labels or more (*.example.com)", host)
		}
		d.Named, d.Wildcard = true, true
		return d, nil
	}
	if host == "localhost" || host == "127.0.0.1" || host == "::1" {
		if d.Port == 0 {
			return Dest{}, errors.New("the host's loopback is reached port by port: name one (localhost:PORT)")
		}
		d.Loopback = true
		return d, nil
	}
	switch p, a, err := parseAddr(host); {
	case err == nil && p.IsValid():
		d.Prefixes = []netip.Prefix{p.Masked()}
	case err == nil:
		d.Prefixes = []netip.Prefix{netip.PrefixFrom(a, a.BitLen())}
	case strings.ContainsAny(host, "/:") || isNumeric(host):
		return Dest{}, err
	default:
		if !validName(host) {
			return Dest{}, fmt.Errorf("%q is neither an IP address nor a host name", host)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		addrs, err := lookup(ctx, host)
		if err != nil {
			return Dest{}, fmt.Errorf("resolving %s: %w", host, err)
		}
		for _, a := range addrs {
			a = a.Unmap()
			d.Prefixes = append(d.Prefixes, netip.PrefixFrom(a, a.BitLen()))
		}
		if len(d.Prefixes) == 0 {
			return Dest{}, fmt.Errorf("%s has no address", host)
		}
		d.Named = true
	}
	for _, p := range d.Prefixes {
		if err := checkDest(p); err != nil {
			return Dest{}, err
		}
	}
	return d, nil
}

// checkDest refuses what no destination may be: the loopback (the host's
// is reached port by port, as localhost:PORT), unspecified, multicast and
// link-local addresses, and the sandbox's own networks.
func checkDest(p netip.Prefix) error {
	a := p.Addr()
	switch {
	case !p.IsValid():
		return fmt.Errorf("%s is not a destination", p)
	case a.IsLoopback():
		return fmt.Errorf("%s is a loopback address: the host's loopback is reached as localhost:PORT (or 127.0.0.1:PORT)", a)
	case a.IsUnspecified() || a.IsMulticast() || a.IsLinkLocalUnicast():
		return fmt.Errorf("%s is not a destination", p)
	case p.Overlaps(Network):
		return fmt.Errorf("%s overlaps the sandbox's own network %s", p, Network)
	case p.Overlaps(Network6):
		return fmt.Errorf("%s overlaps the sandbox's own network %s", p, Network6)
	}
	return nil
}

// parseAddr reads an IPv4 or IPv6 address or prefix.
func parseAddr(s string) (netip.Prefix, netip.Addr, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Addr().Zone() != "" {
			return netip.Prefix{}, netip.Addr{}, fmt.Errorf("%q: want an IPv4 or IPv6 prefix such as 192.0.2.0/24 or 2001:db8::/32", s)
		}
		if p.Addr().Is4In6() {
			// ::ffff:a.b.c.d/N is the IPv4 prefix a.b.c.d/(N-96).
			if p.Bits() < 96 {
				return netip.Prefix{}, netip.Addr{}, fmt.Errorf("%q: an IPv4-mapped prefix needs 96 bits or more", s)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p, netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, netip.Addr{}, fmt.Errorf("%q: not an IP address", s)
	}
	return netip.Prefix{}, a.Unmap(), nil
}

func isNumeric(s string) bool {
	return strings.Trim(s, "0123456789.") == ""
}

// validName accepts DNS names (letters, digits, '-', '_', dots).
func validName(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// Ports returns the allowed TCP ports, and false when some destination
// allows every port (then Landlock can't restrict connect by port).
func Ports(ds []Dest) ([]uint16, bool) {
	var ps []uint16
	for _, d := range ds {
		if d.Port == 0 {
			return nil, false
		}
		ps = append(ps, d.Port)
	}
	return ps, true
}

// Hosts is the sandbox's /etc/hosts: localhost and the sandbox's name.
// Names are resolved by the DNS responder (Resolv), each time they are
// asked for.
func Hosts(hostname string, ds []Dest) []byte {
	var b strings.Builder
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	if hostname != "" {
		fmt.Fprintf(&b, "127.0.1.1\t%s\n", hostname)
	}
	return []byte(b.String())
}

// Resolv is the sandbox's /etc/resolv.conf: the DNS responder only.
func Resolv() []byte {
	return []byte("# brig: the sandbox's resolver answers only the names --allow-net allows\nnameserver " + DNSAddr + "\noptions edns0\n")
}

// Names are the name rules among the destinations.
func Names(ds []Dest) []NameRule {
	var out []NameRule
	for _, d := range ds {
		if d.Named {
			out = append(out, NameRule{Name: strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(d.Host, "*."), ".")), Wildcard: d.Wildcard, Port: d.Port})
		}
	}
	return out
}

// UpstreamLookup resolves names through the given resolvers (HOST:PORT),
// as the DNS responder will: start-up checks that a name resolves at all.
func UpstreamLookup(upstream []string) Lookup {
	return func(ctx context.Context, host string) ([]netip.Addr, error) {
		var last error
		for _, u := range upstream {
			r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, u)
			}}
			addrs, err := r.LookupNetIP(ctx, "ip", host)
			if err == nil {
				return addrs, nil
			}
			last = err
		}
		return nil, last
	}
}
