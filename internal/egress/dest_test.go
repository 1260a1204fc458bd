package egress

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func fakeLookup(ctx context.Context, host string) ([]netip.Addr, error) {
	switch host {
	case "api.example.com":
		return []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("::ffff:192.0.2.11")}, nil
	case "v6only.example.com":
		return []netip.Addr{netip.MustParseAddr("2001:db8::2")}, nil
	case "lo.example.com":
		return []netip.Addr{netip.MustParseAddr("127.0.0.53")}, nil
	}
	return nil, errors.New("no such host")
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Dest
		wantErr string
	}{
		{in: "192.0.2.1", want: Dest{Host: "192.0.2.1", Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")}}},
		{in: "192.0.2.1:443", want: Dest{Host: "192.0.2.1", Port: 443, Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")}}},
		{in: "198.51.100.7/24:80", want: Dest{Host: "198.51.100.7/24", Port: 80, Prefixes: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}}},
		{in: "api.example.com:443", want: Dest{Host: "api.example.com", Port: 443, Named: true,
			Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32"), netip.MustParsePrefix("2001:db8::1/128"), netip.MustParsePrefix("192.0.2.11/32")}}},
		{in: "v6only.example.com", want: Dest{Host: "v6only.example.com", Named: true, Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8::2/128")}}},
		{in: "lo.example.com", wantErr: "loopback"},
		{in: "nowhere.example.com", wantErr: "resolving nowhere.example.com: no such host"},
		{in: "127.0.0.1:80", want: Dest{Host: "127.0.0.1", Port: 80, Loopback: true}},
		{in: "localhost:5432", want: Dest{Host: "localhost", Port: 5432, Loopback: true}},
		{in: "localhost", wantErr: "port by port"},
		{in: "*.pythonhosted.org:443", want: Dest{Host: "*.pythonhosted.org", Port: 443, Named: true, Wildcard: true}},
		{in: "*.org", wantErr: "a wildcard is"},
		{in: "*.bad_!.com", wantErr: "a wildcard is"},
		{in: "127.0.0.2:80", wantErr: "reached as localhost:PORT"},
		{in: "0.0.0.0", wantErr: "not a destination"},
		{in: "224.0.0.1", wantErr: "not a destination"},
		{in: "10.0.0.0/8", wantErr: "overlaps the sandbox's own network"},
		{in: "10.0.2.3:53", wantErr: "overlaps"},
		{in: "192.0.2.1:0", wantErr: `port "0"`},
		{in: "192.0.2.1:65536", wantErr: `port "65536"`},
		{in: "192.0.2.1:http", wantErr: `port "http"`},
		{in: ":80", wantErr: "want HOST[:PORT]"},
		{in: "192.0.2.1:", wantErr: "empty port"},
		{in: "[2001:db8::1]:443", want: Dest{Host: "2001:db8::1", Port: 443, Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8::1/128")}}},
		{in: "2001:db8::1", want: Dest{Host: "2001:db8::1", Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8::1/128")}}},
		{in: "2001:db8::/32", want: Dest{Host: "2001:db8::/32", Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8::/32")}}},
		{in: "[2001:db8:1::5/48]:80", want: Dest{Host: "2001:db8:1::5/48", Port: 80, Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8:1::/48")}}},
		{in: "[::1]:5432", want: Dest{Host: "::1", Port: 5432, Loopback: true}},
		{in: "[2001:db8::1]", want: Dest{Host: "2001:db8::1", Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8::1/128")}}},
		{in: "[2001:db8::1]:", wantErr: "empty port"},
		{in: "[2001:db8::1]443", wantErr: "after ] comes :PORT"},
		{in: "[2001:db8::1:443", wantErr: "needs its ]"},
		{in: "[192.0.2.1]:443", wantErr: "not an IPv6 address"},
		{in: "fe80::1", wantErr: "not a destination"},
		{in: "ff02::1", wantErr: "not a destination"},
		{in: "::", wantErr: "not a destination"},
		{in: "fd00::/48", wantErr: "overlaps the sandbox's own network fd00::/64"},
		{in: "[fd00::3]:53", wantErr: "overlaps"},
		{in: "::ffff:10.0.2.3", wantErr: "overlaps the sandbox's own network 10.0.2.0/24"},
		{in: "::ffff:192.0.2.0/120", want: Dest{Host: "::ffff:192.0.2.0/120", Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}},
		{in: "::ffff:0.0.0.0/80", wantErr: "96 bits or more"},
		{in: "2001:db8::g", wantErr: "not an IP address"},
		{in: "300.1.1.1", wantErr: "not an IP address"},
		{in: "192.0.2.1/33", wantErr: "IPv4 or IPv6 prefix"},
		{in: "bad host", wantErr: "neither an IP address nor a host name"},
		{in: "-x.example.com", wantErr: "neither"},
	} {
		got, err := Parse([]string{tc.in}, fakeLookup)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), `"`+tc.in+`"`) {
				t.Errorf("%q: error %v, want one naming the value and saying %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got[0], tc.want) {
			t.Errorf("%q: got %+v, want %+v", tc.in, got[0], tc.want)
		}
	}
}

func TestPortsAndHosts(t *testing.T) {
	ds, err := Parse([]string{"api.example.com:443", "192.0.2.1:8080"}, fakeLookup)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := Ports(ds); !ok || !reflect.DeepEqual(p, []uint16{443, 8080}) {
		t.Errorf("Ports = %v %v", p, ok)
	}
	// A name is let out by what the DNS responder answers, not by what it
	// resolved to at start.
	if got := Allows(ds); len(got) != 1 || got[0] != (Allow{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Port: 8080}) {
		t.Errorf("Allows = %v", got)
	}
	if n := Names(ds); !reflect.DeepEqual(n, []NameRule{{Name: "api.example.com", Port: 443}}) {
		t.Errorf("Names = %v", n)
	}
	h := string(Hosts("box", ds))
	for _, want := range []string{"127.0.0.1\tlocalhost\n", "127.0.1.1\tbox\n"} {
		if !strings.Contains(h, want) {
			t.Errorf("hosts file lacks %q:\n%s", want, h)
		}
	}
	if strings.Contains(h, "192.0.2.") {
		t.Errorf("a destination got a hosts line:\n%s", h)
	}
	ds, _ = Parse([]string{"192.0.2.1", "192.0.2.2:22"}, fakeLookup)
	if _, ok := Ports(ds); ok {
		t.Error("Ports: a destination without a port allows every port")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"192.0.2.1:443", "api.example.com", "10.0.0.0/8:1", "[::1]:2", "a:b:c", ":", "[2001:db8::1]:443", "2001:db8::/32", "[fd00::1]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ds, err := Parse([]string{s}, fakeLookup)
		if err != nil {
			return
		}
		for _, p := range ds[0].Prefixes {
			if p.Addr().Is4In6() || p.Addr().IsLoopback() || p.Overlaps(Network) || p.Overlaps(Network6) || p.Addr().IsLinkLocalUnicast() {
				t.Fatalf("%q accepted as %v", s, p)
			}
		}
	})
}
