package egress

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Allow is one rule of the fence: an IPv4 prefix and a port (0: any).
// The holder gets these, not names: they were resolved by brig.
type Allow struct {
	Prefix netip.Prefix `json:"prefix"`
	Port   uint16       `json:"port,omitempty"`
}

// LoopbackPorts are the host loopback ports the destinations name.
func LoopbackPorts(ds []Dest) []uint16 {
	var out []uint16
	for _, d := range ds {
		if d.Loopback {
			out = append(out, d.Port)
		}
	}
	return out
}

// Allows flattens destinations into rules.
func Allows(ds []Dest) []Allow {
	var out []Allow
	for _, d := range ds {
		if d.Named {
			continue // names go by what the DNS responder answers (dns.go)
		}
		for _, p := range d.Prefixes { // none for a loopback one: it isn't routed
			out = append(out, Allow{Prefix: p, Port: d.Port})
		}
	}
	return out
}

// TableName is the nftables table the fence lives in (family inet).
const TableName = "brig_egress"

// install writes the fence into the current network namespace:
//
//	table inet brig_egress {
//	  chain output { type filter hook output priority filter; policy drop;
//	    oif lo accept
//	    ct state established,related accept           # flows already let out
//	    ip daddr . tcp|udp dport @dns accept         # names' answers, by port
//	    ip daddr @dnshosts accept                     # names' answers, any port
//	    ip daddr PREFIX [tcp|udp dport PORT] accept   # each Allow
//	    meta l4proto tcp reject with tcp reset        # connect fails at once
//	    reject with icmpx admin-prohibited
//	  }
//	}
//
// Only the output hook is filtered: nothing reaches the namespace from
// outside but replies (slirp4netns forwards no ports).
func install(allows []Allow) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: TableName})
	drop := nftables.ChainPolicyDrop
	ch := c.AddChain(&nftables.Chain{Name: "output", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityFilter, Policy: &drop})
	add := func(e ...expr.Any) { c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: e}) }
	accept := &expr.Verdict{Kind: expr.VerdictAccept}

	add(&expr.Meta{Key: expr.MetaKeyOIF, Register: 1}, cmpEq(binary.NativeEndian.AppendUint32(nil, 1)), accept) // lo is ifindex 1
	// A flow let out stays let out when its name's answer expires.
	add(&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binary.NativeEndian.AppendUint32(nil, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)}, accept)
	dns := &nftables.Set{Table: t, Name: setByPort, KeyType: nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService), Concatenation: true}
	hostsSet := &nftables.Set{Table: t, Name: setAnyPort, KeyType: nftables.TypeIPAddr}
	for _, s := range []*nftables.Set{dns, hostsSet} {
		if err := c.AddSet(s, nil); err != nil {
			return fmt.Errorf("nftables: %w", err)
		}
	}
	v4 := []expr.Any{&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, cmpEq([]byte{unix.NFPROTO_IPV4}),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4}}
	for _, proto := range []byte{unix.IPPROTO_TCP, unix.IPPROTO_UDP} {
		add(&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, cmpEq([]byte{proto}), v4[0], v4[1], v4[2],
			&expr.Payload{DestRegister: 9, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Lookup{SourceRegister: 1, SetName: dns.Name, SetID: dns.ID}, accept)
	}
	add(v4[0], v4[1], v4[2], &expr.Lookup{SourceRegister: 1, SetName: hostsSet.Name, SetID: hostsSet.ID}, accept)
	for _, a := range allows {
		dst := ipv4Daddr(a.Prefix)
		if a.Port == 0 {
			add(append(dst, accept)...)
			continue
		}
		for _, proto := range []byte{unix.IPPROTO_TCP, unix.IPPROTO_UDP} {
			e := append(dst[:len(dst):len(dst)],
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, cmpEq([]byte{proto}),
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				cmpEq(binary.BigEndian.AppendUint16(nil, a.Port)), accept)
			add(e...)
		}
	}
	// What is refused is remembered (brig run --report lists it): the
	// destination and port of each TCP or UDP packet about to be
	// rejected, in a set the packet path fills.
	refused := &nftables.Set{Table: t, Name: setRefused, KeyType: nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService),
		Concatenation: true, Dynamic: true, Size: 4096}
	if err := c.AddSet(refused, nil); err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	for _, proto := range []byte{unix.IPPROTO_TCP, unix.IPPROTO_UDP} {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, cmpEq([]byte{proto}), v4[0], v4[1], v4[2],
			&expr.Payload{DestRegister: 9, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Dynset{SrcRegKey: 1, SetName: refused.Name, SetID: refused.ID, Operation: uint32(unix.NFT_DYNSET_OP_ADD)},
		}})
	}
	add(&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, cmpEq([]byte{unix.IPPROTO_TCP}),
		&expr.Reject{Type: unix.NFT_REJECT_TCP_RST})
	add(&expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_ADMIN_PROHIBITED})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: installing the egress rules: %w", err)
	}
	return nil
}

// The sets the DNS responder fills.
const (
	setByPort  = "dns"      // address . port
	setAnyPort = "dnshosts" // address (a name allowed on every port)
	setRefused = "refused"  // address . port of what was rejected
)

// refusedElems lists the refused set (in the holder's namespace).
func refusedElems() ([]Elem, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	s, err := c.GetSetByName(&nftables.Table{Family: nftables.TableFamilyINet, Name: TableName}, setRefused)
	if err != nil {
		return nil, fmt.Errorf("nftables: set %s: %w", setRefused, err)
	}
	els, err := c.GetSetElements(s)
	if err != nil {
		return nil, fmt.Errorf("nftables: set %s: %w", setRefused, err)
	}
	var out []Elem
	for _, e := range els {
		if len(e.Key) < 6 {
			continue
		}
		out = append(out, Elem{Addr: netip.AddrFrom4([4]byte(e.Key[:4])), Port: uint16(e.Key[4])<<8 | uint16(e.Key[5])})
	}
	return out, nil
}

// changeElems adds (or deletes) elements of the DNS-fed sets in the
// current network namespace (the holder's).
func changeElems(elems []Elem, add bool) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName}
	byPort, err := c.GetSetByName(t, setByPort)
	if err != nil {
		return fmt.Errorf("nftables: set %s: %w", setByPort, err)
	}
	anyPort, err := c.GetSetByName(t, setAnyPort)
	if err != nil {
		return fmt.Errorf("nftables: set %s: %w", setAnyPort, err)
	}
	var bp, ap []nftables.SetElement
	for _, e := range elems {
		a := e.Addr.As4()
		if e.Port == 0 {
			ap = append(ap, nftables.SetElement{Key: a[:]})
			continue
		}
		// Each part of a concatenated key fills 32 bits.
		key := append(a[:], byte(e.Port>>8), byte(e.Port), 0, 0)
		bp = append(bp, nftables.SetElement{Key: key})
	}
	change := c.SetAddElements
	if !add {
		change = c.SetDeleteElements
	}
	for _, x := range []struct {
		s  *nftables.Set
		es []nftables.SetElement
	}{{byPort, bp}, {anyPort, ap}} {
		if len(x.es) > 0 {
			if err := change(x.s, x.es); err != nil {
				return fmt.Errorf("nftables: %w", err)
			}
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: updating the answered addresses: %w", err)
	}
	return nil
}

// ipv4Daddr matches IPv4 packets whose destination lies in p.
func ipv4Daddr(p netip.Prefix) []expr.Any {
	addr := p.Masked().Addr().As4()
	m := make([]byte, 4)
	for i := 0; i < p.Bits(); i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, cmpEq([]byte{unix.NFPROTO_IPV4}),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: m, Xor: make([]byte, 4)},
		cmpEq(addr[:]),
	}
}

func cmpEq(b []byte) *expr.Cmp { return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b} }
