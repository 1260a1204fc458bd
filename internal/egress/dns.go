package egress

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// The DNS responder: the sandbox's only resolver (its /etc/resolv.conf
// names DNSAddr, where the holder listens inside; the sockets are brig's).
// A query for an allowed name or wildcard is passed to the upstream
// resolver from the host's network namespace; the A records of the answer
// (CNAMEs followed) go into the fence's allow sets, by the rule's port,
// before the answer goes back, and stay there for the record's TTL (at
// least MinTTL); so do the AAAA records, for IPv6. Any other name gets
// NXDOMAIN and is counted, for the end of the run.
// Any client works: nothing is a proxy it could ignore, and an address is
// let out only after a name it may use resolved to it.

type responder struct {
	rules    []NameRule
	upstream []string
	change   func([]Elem, bool) error
	pc       net.PacketConn
	l        net.Listener

	mu       sync.Mutex // the expiries and the set changes, in order
	exp      expiries
	refused  map[string]int
	answered map[netip.Addr]map[string]bool // the names each address was an answer for
	stop     chan struct{}
	wg       sync.WaitGroup
}

func startResponder(rules []NameRule, upstream []string, change func([]Elem, bool) error, socks []*os.File) (*responder, error) {
	defer func() {
		for _, f := range socks {
			f.Close()
		}
	}()
	if len(socks) != 2 {
		return nil, fmt.Errorf("want a UDP and a TCP socket, got %d", len(socks))
	}
	pc, err := net.FilePacketConn(socks[0])
	if err != nil {
		return nil, err
	}
	l, err := net.FileListener(socks[1])
	if err != nil {
		pc.Close()
		return nil, err
	}
	r := &responder{rules: rules, upstream: upstream, change: change, pc: pc, l: l,
		refused: map[string]int{}, answered: map[netip.Addr]map[string]bool{}, stop: make(chan struct{})}
	r.wg.Add(3)
	go r.serveUDP()
	go r.serveTCP()
	go r.expire()
	return r, nil
}

func (r *responder) close() {
	close(r.stop)
	r.pc.Close()
	r.l.Close()
	r.wg.Wait()
}

// answeredNames are the names (as the command asked for them) each
// address was given as an answer for.
func (r *responder) answeredNames() map[netip.Addr][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[netip.Addr][]string{}
	for a, names := range r.answered {
		for n := range names {
			out[a] = append(out[a], n)
		}
		slices.Sort(out[a])
	}
	return out
}

func (r *responder) refusedNames() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.refused))
	for k, v := range r.refused {
		out[k] = v
	}
	return out
}

func (r *responder) serveUDP() {
	defer r.wg.Done()
	for {
		buf := make([]byte, 4096)
		n, from, err := r.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		go func() {
			if resp := r.answer(buf[:n], false); resp != nil {
				r.pc.WriteTo(resp, from)
			}
		}()
	}
}

func (r *responder) serveTCP() {
	defer r.wg.Done()
	for {
		c, err := r.l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			for {
				q, err := readTCPMsg(c)
				if err != nil {
					return
				}
				resp := r.answer(q, true)
				if resp == nil || writeTCPMsg(c, resp) != nil {
					return
				}
			}
		}()
	}
}

// expire takes out what is due, every second.
func (r *responder) expire() {
	defer r.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case now := <-t.C:
			r.mu.Lock()
			if due := r.exp.expired(now); len(due) > 0 {
				r.change(due, false)
			}
			r.mu.Unlock()
		}
	}
}

// answer makes the reply to one query (nil: none can be made).
func (r *responder) answer(query []byte, tcp bool) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return reply(h, nil, dnsmessage.RCodeFormatError)
	}
	name := strings.TrimSuffix(strings.ToLower(q.Name.String()), ".")
	rules := Match(r.rules, name)
	if len(rules) == 0 {
		r.mu.Lock()
		r.refused[name]++
		r.mu.Unlock()
		return reply(h, &q, dnsmessage.RCodeNameError)
	}
	resp, err := exchange(r.upstream, query, tcp)
	if err != nil {
		return reply(h, &q, dnsmessage.RCodeServerFailure)
	}
	addrs, err := answeredAddrs(resp, q.Name)
	if err != nil {
		return reply(h, &q, dnsmessage.RCodeServerFailure)
	}
	var elems []Elem
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range addrs {
		if r.answered[a.addr] == nil {
			r.answered[a.addr] = map[string]bool{}
		}
		r.answered[a.addr][name] = true
		for _, rule := range rules {
			if e := (Elem{Addr: a.addr, Port: rule.Port}); r.exp.add(e, now, a.ttl) {
				elems = append(elems, e)
			}
		}
	}
	if len(elems) > 0 {
		if err := r.change(elems, true); err != nil {
			return reply(h, &q, dnsmessage.RCodeServerFailure)
		}
	}
	return resp
}

type answered struct {
	addr netip.Addr
	ttl  time.Duration
}

// answeredAddrs are the A and AAAA records of resp that answer qname, directly or
// through its CNAME chain; addresses the sandbox must never reach this
// way (loopback, its own network, unspecified, multicast) are left out.
func answeredAddrs(resp []byte, qname dnsmessage.Name) ([]answered, error) {
	var p dnsmessage.Parser
	if _, err := p.Start(resp); err != nil {
		return nil, err
	}
	if err := p.SkipAllQuestions(); err != nil {
		return nil, err
	}
	rrs, err := p.AllAnswers()
	if err != nil {
		return nil, err
	}
	chain := map[string]bool{strings.ToLower(qname.String()): true}
	for grew := true; grew; {
		grew = false
		for _, rr := range rrs {
			if c, ok := rr.Body.(*dnsmessage.CNAMEResource); ok && chain[strings.ToLower(rr.Header.Name.String())] && !chain[strings.ToLower(c.CNAME.String())] {
				chain[strings.ToLower(c.CNAME.String())] = true
				grew = true
			}
		}
	}
	var out []answered
	for _, rr := range rrs {
		if !chain[strings.ToLower(rr.Header.Name.String())] {
			continue
		}
		var addr netip.Addr
		switch a := rr.Body.(type) {
		case *dnsmessage.AResource:
			addr = netip.AddrFrom4(a.A)
		case *dnsmessage.AAAAResource:
			addr = netip.AddrFrom16(a.AAAA).Unmap()
		default:
			continue
		}
		if checkDest(netip.PrefixFrom(addr, addr.BitLen())) != nil {
			continue
		}
		out = append(out, answered{addr, time.Duration(rr.Header.TTL) * time.Second})
	}
	return out, nil
}

// reply is an answer without records.
func reply(h dnsmessage.Header, q *dnsmessage.Question, rcode dnsmessage.RCode) []byte {
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, OpCode: h.OpCode,
		RecursionDesired: h.RecursionDesired, RecursionAvailable: true, RCode: rcode})
	if q != nil {
		b.StartQuestions()
		b.Question(*q)
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}

// exchange asks the upstream resolvers in turn, over UDP (TCP when the
// answer is truncated or the client asked over TCP).
func exchange(upstream []string, query []byte, tcp bool) ([]byte, error) {
	err := errors.New("no upstream resolver")
	for _, u := range upstream {
		var resp []byte
		resp, err = exchangeOne(u, query, tcp)
		if err == nil {
			return resp, nil
		}
	}
	return nil, err
}

func exchangeOne(server string, query []byte, tcp bool) ([]byte, error) {
	if !tcp {
		c, err := net.DialTimeout("udp", server, 5*time.Second)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(query); err != nil {
			return nil, err
		}
		buf := make([]byte, 65535)
		n, err := c.Read(buf)
		if err != nil {
			return nil, err
		}
		var h dnsmessage.Header
		var p dnsmessage.Parser
		if h, err = p.Start(buf[:n]); err != nil {
			return nil, err
		}
		if !h.Truncated {
			return buf[:n], nil
		}
	}
	c, err := net.DialTimeout("tcp", server, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := writeTCPMsg(c, query); err != nil {
		return nil, err
	}
	return readTCPMsg(c)
}

func readTCPMsg(c io.Reader) ([]byte, error) {
	var n [2]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		return nil, err
	}
	buf := make([]byte, binary.BigEndian.Uint16(n[:]))
	_, err := io.ReadFull(c, buf)
	return buf, err
}

func writeTCPMsg(c io.Writer, m []byte) error {
	_, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(m))), m...))
	return err
}

// HostResolvers are the nameservers of the host's /etc/resolv.conf, as
// HOST:53.
func HostResolvers() ([]string, error) {
	data, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "nameserver" {
			if a, err := netip.ParseAddr(f[1]); err == nil {
				out = append(out, netip.AddrPortFrom(a, 53).String())
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no nameserver in /etc/resolv.conf")
	}
	return out, nil
}

// RefusedSummary is one line naming the names the responder refused.
func RefusedSummary(refused map[string]int) string {
	if len(refused) == 0 {
		return ""
	}
	names := make([]string, 0, len(refused))
	for n := range refused {
		names = append(names, n)
	}
	sort.Strings(names)
	return "DNS: refused " + strings.Join(names, ", ") + " (not in --allow-net; add --allow-net NAME:PORT to let one through)"
}
