package egress

import (
	"net/netip"
	"strings"
	"sync"
	"time"
)

// NameRule is an allowed name (--allow-net NAME[:PORT] or *.DOMAIN[:PORT]):
// the DNS responder answers it, and what it answers becomes reachable.
type NameRule struct {
	Name     string // lower case, no trailing dot; for a wildcard, the domain
	Wildcard bool   // *.Name: any name below Name (not Name itself)
	Port     uint16 // 0: every port
}

// Match says which rules allow a queried name.
func Match(rules []NameRule, name string) []NameRule {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	var out []NameRule
	for _, r := range rules {
		if (!r.Wildcard && name == r.Name) || (r.Wildcard && strings.HasSuffix(name, "."+r.Name)) {
			out = append(out, r)
		}
	}
	return out
}

// Elem is one entry of the fence's DNS-fed allow sets: an address and a
// port (0: every port).
type Elem struct {
	Addr netip.Addr `json:"addr"`
	Port uint16     `json:"port,omitempty"`
}

// MinTTL is the least time an answered address stays reachable: clients
// keep an answer a little longer than its TTL says (and a TTL of 0 would
// close the door before the client walks through it).
const MinTTL = 30 * time.Second

// expiries tracks when each element the responder added goes: the kernel
// set has no timeouts, so an address answered again is simply kept longer,
// and brig takes out what is due.
type expiries struct {
	mu  sync.Mutex
	due map[Elem]time.Time
}

// add records that e is answered at now for ttl, and says whether it is
// new (to be added to the set).
func (x *expiries) add(e Elem, now time.Time, ttl time.Duration) bool {
	if ttl < MinTTL {
		ttl = MinTTL
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.due == nil {
		x.due = map[Elem]time.Time{}
	}
	old, ok := x.due[e]
	if !ok || old.Before(now.Add(ttl)) {
		x.due[e] = now.Add(ttl)
	}
	return !ok
}

// expired takes out and returns the elements due at now.
func (x *expiries) expired(now time.Time) []Elem {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []Elem
	for e, t := range x.due {
		if !t.After(now) {
			out = append(out, e)
			delete(x.due, e)
		}
	}
	return out
}
