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
	add(&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, cmpEq([]byte{unix.IPPROTO_TCP}),
		&expr.Reject{Type: unix.NFT_REJECT_TCP_RST})
	add(&expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_ADMIN_PROHIBITED})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: installing the egress rules: %w", err)
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
