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

// Network is slirp4netns's address range inside the sandbox; destinations
// can't lie in it.
var Network = netip.MustParsePrefix("10.0.2.0/24")

// Lookup resolves a host name to addresses.
type Lookup func(ctx context.Context, host string) ([]netip.Addr, error)

// ResolveHost uses the host's resolver, as the command itself would have.
func ResolveHost(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
}

// Parse parses and resolves --allow-net values: HOST, HOST:PORT, an IPv4
// address or CIDR prefix with or without :PORT. Each error names the value.
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
	host, port := v, ""
	if i := strings.LastIndexByte(v, ':'); i >= 0 {
		host, port = v[:i], v[i+1:]
		if strings.Contains(host, ":") || strings.HasPrefix(host, "[") {
			return Dest{}, errors.New("IPv6 destinations are not supported (the sandbox's egress network is IPv4)")
		}
	}
	d := Dest{Host: host}
	if port == "" && host != v {
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
	if host == "localhost" || host == "127.0.0.1" {
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
		d.Prefixes = []netip.Prefix{netip.PrefixFrom(a, 32)}
	case strings.ContainsAny(host, "/") || isNumeric(host):
		return Dest{}, err
	default:
		if !validName(host) {
			return Dest{}, fmt.Errorf("%q is neither an IPv4 address nor a host name", host)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		addrs, err := lookup(ctx, host)
		if err != nil {
			return Dest{}, fmt.Errorf("resolving %s: %w", host, err)
		}
		for _, a := range addrs {
			if a = a.Unmap(); a.Is4() {
				d.Prefixes = append(d.Prefixes, netip.PrefixFrom(a, 32))
			}
		}
		if len(d.Prefixes) == 0 {
			return Dest{}, fmt.Errorf("%s has no IPv4 address", host)
		}
		d.Named = true
	}
	for _, p := range d.Prefixes {
		a := p.Addr()
		switch {
		case a.IsLoopback():
			return Dest{}, fmt.Errorf("%s is a loopback address: the host's loopback is reached as localhost:PORT (or 127.0.0.1:PORT)", a)
		case a.IsUnspecified() || a.IsMulticast():
			return Dest{}, fmt.Errorf("%s is not a destination", p)
		case p.Overlaps(Network):
			return Dest{}, fmt.Errorf("%s overlaps the sandbox's own network %s", p, Network)
		}
	}
	return d, nil
}

// parseAddr reads an IPv4 address or prefix.
func parseAddr(s string) (netip.Prefix, netip.Addr, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() {
			return netip.Prefix{}, netip.Addr{}, fmt.Errorf("%q: want an IPv4 prefix such as 192.0.2.0/24", s)
		}
		return p, netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Prefix{}, netip.Addr{}, fmt.Errorf("%q: not an IPv4 address", s)
	}
	return netip.Prefix{}, a, nil
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
			addrs, err := r.LookupNetIP(ctx, "ip4", host)
			if err == nil {
				return addrs, nil
			}
			last = err
		}
		return nil, last
	}
}
