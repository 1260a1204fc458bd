package integration

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// zone is a test's own authoritative DNS server on the host's loopback:
// names to A addresses or to a CNAME ("=target"); anything else is
// NXDOMAIN. It returns the server's address (IP:PORT) and stops with the
// test. No test asks the machine's resolver.
func zone(t *testing.T, records map[string][]string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close(); l.Close() })
	answer := func(q []byte) []byte {
		var p dnsmessage.Parser
		h, err := p.Start(q)
		if err != nil {
			return nil
		}
		qs, err := p.Question()
		if err != nil {
			return nil
		}
		rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
		name := strings.TrimSuffix(strings.ToLower(qs.Name.String()), ".")
		var rrs []dnsmessage.Resource
		for cur, hops := name, 0; hops < 8; hops++ {
			vals, ok := records[cur]
			if !ok {
				break
			}
			if len(vals) == 1 && strings.HasPrefix(vals[0], "=") {
				target := vals[0][1:]
				rrs = append(rrs, dnsmessage.Resource{Header: dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(cur + "."), Type: dnsmessage.TypeCNAME, Class: dnsmessage.ClassINET, TTL: 60},
					Body: &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName(target + ".")}})
				cur = target
				continue
			}
			for _, v := range vals {
				a := netip.MustParseAddr(v)
				switch {
				case qs.Type == dnsmessage.TypeA && a.Is4():
					rrs = append(rrs, dnsmessage.Resource{Header: dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(cur + "."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60},
						Body: &dnsmessage.AResource{A: a.As4()}})
				case qs.Type == dnsmessage.TypeAAAA && a.Is6():
					rrs = append(rrs, dnsmessage.Resource{Header: dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(cur + "."), Type: dnsmessage.TypeAAAA, Class: dnsmessage.ClassINET, TTL: 60},
						Body: &dnsmessage.AAAAResource{AAAA: a.As16()}})
				}
			}
			break
		}
		if _, ok := records[name]; !ok {
			rh.RCode = dnsmessage.RCodeNameError
		}
		b := dnsmessage.NewBuilder(nil, rh)
		b.StartQuestions()
		b.Question(qs)
		b.StartAnswers()
		for _, rr := range rrs {
			switch body := rr.Body.(type) {
			case *dnsmessage.AResource:
				b.AResource(rr.Header, *body)
			case *dnsmessage.AAAAResource:
				b.AAAAResource(rr.Header, *body)
			case *dnsmessage.CNAMEResource:
				b.CNAMEResource(rr.Header, *body)
			}
		}
		out, _ := b.Finish()
		return out
	}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := answer(buf[:n]); resp != nil {
				pc.WriteTo(resp, from)
			}
		}
	}()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var n [2]byte
				if _, err := io.ReadFull(c, n[:]); err != nil {
					return
				}
				q := make([]byte, binary.BigEndian.Uint16(n[:]))
				if _, err := io.ReadFull(c, q); err != nil {
					return
				}
				resp := answer(q)
				c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(resp))), resp...))
			}()
		}
	}()
	return addr
}

// TestSandboxAllowNetNames: names and wildcards follow DNS: the sandbox's
// resolver answers only the allowed names (CNAMEs followed) and what they
// resolve to is let out, by the rule's port; other names get NXDOMAIN and
// are listed when the command ends; an address no allowed name resolved
// to stays closed. The test's own DNS server, on the host's loopback, is
// the upstream; the control asks it directly.
func TestSandboxAllowNetNames(t *testing.T) {
	egressServers(t)
	dns := zone(t, map[string][]string{
		"api.test":        {srvA},
		"cdn.test":        {"=edge.other.test"},
		"edge.other.test": {srvB},
		"x.files.test":    {srvB},
		"files.test":      {srvA},
		"blocked.test":    {srvB},
	})
	// The control: the server answers every one of them.
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, dns)
	}}
	if addrs, err := r.LookupHost(context.Background(), "blocked.test"); err != nil || len(addrs) != 1 || addrs[0] != srvB {
		t.Fatalf("control: the test's DNS server: %v %v", addrs, err)
	}
	asRootAndUser(t, func(t *testing.T, uid int) {
		res := sandboxAs(t, uid, "/", "--dns-upstream", dns,
			"--allow-net", "api.test:8080", "--allow-net", "*.files.test:8080", "--allow-net", "cdn.test:9090", "--", "sh", "-c",
			fetch("api.test:8080")+fetch("x.files.test:8080")+fetch("cdn.test:9090")+
				fetch("blocked.test:8080")+fetch("files.test:8080")+fetch(srvA+":9090"))
		if res.code != 0 {
			t.Fatalf("exit %d: %s %s", res.code, res.stdout, res.stderr)
		}
		contains(t, res.stdout, "api.test:8080: "+srvA+":8080\n", "an allowed name")
		contains(t, res.stdout, "x.files.test:8080: "+srvB+":8080\n", "a name under an allowed wildcard")
		contains(t, res.stdout, "cdn.test:9090: "+srvB+":9090\n", "an allowed name through a CNAME")
		contains(t, res.stdout, "blocked.test:8080: nc: bad address 'blocked.test'", "a name not allowed")
		contains(t, res.stdout, "files.test:8080: nc: bad address 'files.test'", "a wildcard's own domain")
		contains(t, res.stdout, srvA+":9090: nc: can't connect", "an address on a port no allowed name has")
		contains(t, res.stderr, "DNS: refused blocked.test, files.test", "the refused names, when the command ends")
	})
}
