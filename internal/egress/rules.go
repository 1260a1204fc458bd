package egress

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Allow is one rule of the fence: an IPv4 or IPv6 prefix and a port (0: any).
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
//	    icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } accept
//	    ip daddr . tcp|udp dport @dns accept         # names' answers, by port
//	    ip daddr @dnshosts accept                     # names' answers, any port
//	    ip6 daddr . tcp|udp dport @dns6 accept       # the same for IPv6
//	    ip6 daddr @dnshosts6 accept
//	    ip[6] daddr PREFIX [tcp|udp dport PORT] accept   # each Allow
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
	// IPv6 finds slirp4netns's link address with neighbour discovery
	// (ICMPv6, through this hook; IPv4's ARP doesn't pass it): router
	// and neighbour solicitations and neighbour advertisements go out.
	for _, typ := range []byte{133, 135, 136} {
		add(&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, cmpEq([]byte{unix.NFPROTO_IPV6}),
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, cmpEq([]byte{unix.IPPROTO_ICMPV6}),
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1}, cmpEq([]byte{typ}), accept)
	}
	for _, f := range families {
		dns := &nftables.Set{Table: t, Name: f.byPort, KeyType: nftables.MustConcatSetType(f.addrType, nftables.TypeInetService), Concatenation: true}
		hostsSet := &nftables.Set{Table: t, Name: f.anyPort, KeyType: f.addrType}
		for _, s := range []*nftables.Set{dns, hostsSet} {
			if err := c.AddSet(s, nil); err != nil {
				return fmt.Errorf("nftables: %w", err)
			}
		}
		for _, proto := range []byte{unix.IPPROTO_TCP, unix.IPPROTO_UDP} {
			add(append(append([]expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, cmpEq([]byte{proto})}, f.daddr()...),
				f.dport(), &expr.Lookup{SourceRegister: 1, SetName: dns.Name, SetID: dns.ID}, accept)...)
		}
		add(append(f.daddr(), &expr.Lookup{SourceRegister: 1, SetName: hostsSet.Name, SetID: hostsSet.ID}, accept)...)
	}
	for _, a := range allows {
		dst := daddrIn(a.Prefix)
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
	for _, f := range families {
		refused := &nftables.Set{Table: t, Name: f.refused, KeyType: nftables.MustConcatSetType(f.addrType, nftables.TypeInetService),
			Concatenation: true, Dynamic: true, Size: 4096}
		if err := c.AddSet(refused, nil); err != nil {
			return fmt.Errorf("nftables: %w", err)
		}
		for _, proto := range []byte{unix.IPPROTO_TCP, unix.IPPROTO_UDP} {
			add(append(append([]expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, cmpEq([]byte{proto})}, f.daddr()...),
				f.dport(), &expr.Dynset{SrcRegKey: 1, SetName: refused.Name, SetID: refused.ID, Operation: uint32(unix.NFT_DYNSET_OP_ADD)})...)
		}
	}
	add(&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, cmpEq([]byte{unix.IPPROTO_TCP}),
		&expr.Reject{Type: unix.NFT_REJECT_TCP_RST})
	add(&expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_ADMIN_PROHIBITED})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: installing the egress rules: %w", err)
	}
	return nil
}

// family is what the fence does per IP version: the sets the DNS
// responder fills and the packet path fills, and where a packet's
// destination is. A concatenated key's address fills the 32-bit
// registers from the first on (one for IPv4, four for IPv6); the port
// comes in the next.
type family struct {
	nfproto                  byte
	addrType                 nftables.SetDatatype
	offset, len              uint32
	portReg                  uint32
	byPort, anyPort, refused string
}

var families = []family{
	{unix.NFPROTO_IPV4, nftables.TypeIPAddr, 16, 4, 9, setByPort, setAnyPort, setRefused},
	{unix.NFPROTO_IPV6, nftables.TypeIP6Addr, 24, 16, 12, setByPort6, setAnyPort6, setRefused6},
}

func familyOf(a netip.Addr) family {
	if a.Is4() {
		return families[0]
	}
	return families[1]
}

// daddr loads the destination address of a packet of this family into
// register 1 (and fails the rule for the other family).
func (f family) daddr() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, cmpEq([]byte{f.nfproto}),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: f.offset, Len: f.len},
	}
}

// dport loads the TCP or UDP destination port after the address.
func (f family) dport() expr.Any {
	return &expr.Payload{DestRegister: f.portReg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}
}

// The sets the DNS responder fills, and the packet path's refused ones.
const (
	setByPort   = "dns"       // address . port
	setAnyPort  = "dnshosts"  // address (a name allowed on every port)
	setRefused  = "refused"   // address . port of what was rejected
	setByPort6  = "dns6"      // the same for IPv6
	setAnyPort6 = "dnshosts6" //
	setRefused6 = "refused6"  //
)

// refusedElems lists the refused sets (in the holder's namespace).
func refusedElems() ([]Elem, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	var out []Elem
	for _, f := range families {
		s, err := c.GetSetByName(&nftables.Table{Family: nftables.TableFamilyINet, Name: TableName}, f.refused)
		if err != nil {
			return nil, fmt.Errorf("nftables: set %s: %w", f.refused, err)
		}
		els, err := c.GetSetElements(s)
		if err != nil {
			return nil, fmt.Errorf("nftables: set %s: %w", f.refused, err)
		}
		n := int(f.len)
		for _, e := range els {
			if len(e.Key) < n+2 {
				continue
			}
			a, _ := netip.AddrFromSlice(e.Key[:n])
			out = append(out, Elem{Addr: a, Port: uint16(e.Key[n])<<8 | uint16(e.Key[n+1])})
		}
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
	sets := map[string][]nftables.SetElement{}
	for _, e := range elems {
		f := familyOf(e.Addr)
		a := e.Addr.AsSlice()
		if e.Port == 0 {
			sets[f.anyPort] = append(sets[f.anyPort], nftables.SetElement{Key: a})
			continue
		}
		// Each part of a concatenated key fills whole 32-bit registers.
		key := append(a, byte(e.Port>>8), byte(e.Port), 0, 0)
		sets[f.byPort] = append(sets[f.byPort], nftables.SetElement{Key: key})
	}
	change := c.SetAddElements
	if !add {
		change = c.SetDeleteElements
	}
	for name, es := range sets {
		s, err := c.GetSetByName(t, name)
		if err != nil {
			return fmt.Errorf("nftables: set %s: %w", name, err)
		}
		if err := change(s, es); err != nil {
			return fmt.Errorf("nftables: %w", err)
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: updating the answered addresses: %w", err)
	}
	return nil
}

// daddrIn matches packets whose destination lies in p (IPv4 or IPv6).
func daddrIn(p netip.Prefix) []expr.Any {
	f := familyOf(p.Addr())
	addr := p.Masked().Addr().AsSlice()
	m := make([]byte, len(addr))
	for i := 0; i < p.Bits(); i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return append(f.daddr(),
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: f.len, Mask: m, Xor: make([]byte, len(addr))},
		cmpEq(addr))
}

func cmpEq(b []byte) *expr.Cmp { return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b} }
