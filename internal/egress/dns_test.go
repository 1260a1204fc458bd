package egress

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

func TestMatch(t *testing.T) {
	rules := []NameRule{{Name: "pypi.org", Port: 443}, {Name: "pythonhosted.org", Wildcard: true, Port: 443}, {Name: "example.com"}}
	for _, tc := range []struct {
		name string
		want int // how many rules match
	}{
		{"pypi.org", 1}, {"PyPI.org.", 1}, {"files.pythonhosted.org", 1}, {"a.b.pythonhosted.org", 1},
		{"pythonhosted.org", 0}, {"evilpythonhosted.org", 0}, {"www.pypi.org", 0}, {"example.com", 1}, {"x.example.com", 0},
	} {
		if got := Match(rules, tc.name); len(got) != tc.want {
			t.Errorf("Match(%q): %v, want %d rules", tc.name, got, tc.want)
		}
	}
}

func TestExpiries(t *testing.T) {
	var x expiries
	t0 := time.Unix(1000, 0)
	e := Elem{Addr: netip.MustParseAddr("192.0.2.1"), Port: 443}
	if !x.add(e, t0, 5*time.Second) {
		t.Fatal("a first answer is new")
	}
	if x.add(e, t0.Add(10*time.Second), 5*time.Minute) {
		t.Fatal("an answer again is not new")
	}
	// The short TTL is raised to MinTTL; the second answer keeps it longer.
	if due := x.expired(t0.Add(MinTTL)); len(due) != 0 {
		t.Errorf("expired at MinTTL though answered again for 5m: %v", due)
	}
	if due := x.expired(t0.Add(10*time.Second + 5*time.Minute)); !slices.Equal(due, []Elem{e}) {
		t.Errorf("due %v, want %v", due, e)
	}
	if !x.add(e, t0.Add(time.Hour), time.Minute) {
		t.Error("after expiry, an answer is new again")
	}
}

// answer builds an upstream response.
func answer(t *testing.T, q string, rrs ...dnsmessage.Resource) []byte {
	t.Helper()
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 7, Response: true})
	b.StartQuestions()
	b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(q), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET})
	b.StartAnswers()
	for _, rr := range rrs {
		var err error
		switch body := rr.Body.(type) {
		case *dnsmessage.AResource:
			err = b.AResource(rr.Header, *body)
		case *dnsmessage.AAAAResource:
			err = b.AAAAResource(rr.Header, *body)
		case *dnsmessage.CNAMEResource:
			err = b.CNAMEResource(rr.Header, *body)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	out, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func rrA(name string, ttl uint32, a string) dnsmessage.Resource {
	return dnsmessage.Resource{Header: dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: ttl},
		Body: &dnsmessage.AResource{A: netip.MustParseAddr(a).As4()}}
}

func rrAAAA(name string, ttl uint32, a string) dnsmessage.Resource {
	return dnsmessage.Resource{Header: dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeAAAA, Class: dnsmessage.ClassINET, TTL: ttl},
		Body: &dnsmessage.AAAAResource{AAAA: netip.MustParseAddr(a).As16()}}
}

func rrCNAME(name, target string) dnsmessage.Resource {
	return dnsmessage.Resource{Header: dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeCNAME, Class: dnsmessage.ClassINET, TTL: 60},
		Body: &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName(target)}}
}

func TestAnsweredAddrs(t *testing.T) {
	for _, tc := range []struct {
		name string
		resp []byte
		want []string
	}{
		{"direct", answer(t, "a.example.", rrA("a.example.", 300, "192.0.2.1"), rrA("a.example.", 300, "192.0.2.2")), []string{"192.0.2.1", "192.0.2.2"}},
		{"through CNAMEs", answer(t, "a.example.", rrCNAME("a.example.", "b.cdn."), rrCNAME("b.cdn.", "c.edge."), rrA("c.edge.", 20, "198.51.100.9")), []string{"198.51.100.9"}},
		{"an A record of another name", answer(t, "a.example.", rrA("a.example.", 300, "192.0.2.1"), rrA("other.example.", 300, "192.0.2.66")), []string{"192.0.2.1"}},
		{"addresses never let out", answer(t, "a.example.", rrA("a.example.", 300, "127.0.0.1"), rrA("a.example.", 300, "10.0.2.2"),
			rrA("a.example.", 300, "0.0.0.0"), rrA("a.example.", 300, "224.0.0.1")), nil},
		{"IPv6", answer(t, "a.example.", rrCNAME("a.example.", "b.cdn."), rrAAAA("b.cdn.", 60, "2001:db8::7"), rrAAAA("other.example.", 60, "2001:db8::66")), []string{"2001:db8::7"}},
		{"IPv6 addresses never let out", answer(t, "a.example.", rrAAAA("a.example.", 60, "::1"), rrAAAA("a.example.", 60, "fd00::2"),
			rrAAAA("a.example.", 60, "fe80::1"), rrAAAA("a.example.", 60, "ff02::1"), rrAAAA("a.example.", 60, "::ffff:127.0.0.1")), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := answeredAddrs(tc.resp, dnsmessage.MustNewName("A.example."))
			if err != nil {
				t.Fatal(err)
			}
			var addrs []string
			for _, a := range got {
				addrs = append(addrs, a.addr.String())
			}
			if !slices.Equal(addrs, tc.want) {
				t.Errorf("got %v, want %v", addrs, tc.want)
			}
		})
	}
}

func TestResponderRefuses(t *testing.T) {
	r := &responder{rules: []NameRule{{Name: "ok.example", Port: 443}}, refused: map[string]int{}}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 42, RecursionDesired: true})
	b.StartQuestions()
	b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName("evil.example."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET})
	q, _ := b.Finish()
	resp := r.answer(q, false)
	var p dnsmessage.Parser
	h, err := p.Start(resp)
	if err != nil {
		t.Fatal(err)
	}
	if h.ID != 42 || !h.Response || h.RCode != dnsmessage.RCodeNameError {
		t.Errorf("header %+v, want NXDOMAIN to ID 42", h)
	}
	if r.refused["evil.example"] != 1 {
		t.Errorf("refused %v", r.refused)
	}
	if s := RefusedSummary(r.refusedNames()); s == "" {
		t.Error("no summary")
	}
}
