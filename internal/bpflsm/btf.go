package bpflsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
)

// What a program needs from the kernel's BTF (/sys/kernel/btf/vmlinux):
// the type IDs of the LSM hooks it attaches to (bpf_lsm_<hook>), and the
// offsets of the few struct fields it reads. cilium/ebpf finds the same
// by parsing the whole of it into Go types: 306 ms and 38 MiB per process
// here (the 6.1 kernel of the VM lane: 712 ms), for each sandbox run. The
// scan below reads the type section once without building anything, and
// looks only at the names it is asked for.

// btfInfo is what the scan found.
type btfInfo struct {
	funcs   map[string]uint32 // function name → type ID
	members map[string]uint32 // "struct.member" → byte offset
}

// BTF kinds (include/uapi/linux/btf.h).
const (
	kindInt       = 1
	kindPtr       = 2
	kindArray     = 3
	kindStruct    = 4
	kindUnion     = 5
	kindEnum      = 6
	kindFwd       = 7
	kindTypedef   = 8
	kindVolatile  = 9
	kindConst     = 10
	kindRestrict  = 11
	kindFunc      = 12
	kindFuncProto = 13
	kindVar       = 14
	kindDatasec   = 15
	kindFloat     = 16
	kindDeclTag   = 17
	kindTypeTag   = 18
	kindEnum64    = 19
)

const btfMagic = 0xeb9f

// readKernelBTF scans the running kernel's BTF for funcs and for the
// members named "struct.member" in members.
func readKernelBTF(funcs, members []string) (*btfInfo, error) {
	data, err := os.ReadFile("/sys/kernel/btf/vmlinux")
	if err != nil {
		return nil, fmt.Errorf("the kernel's BTF: %w", err)
	}
	return scanBTF(data, funcs, members)
}

// scanBTF finds funcs and members in a BTF blob. Every name asked for must
// be found: a kernel without one of them can't run the programs.
func scanBTF(data []byte, funcs, members []string) (*btfInfo, error) {
	if len(data) < 24 || binary.LittleEndian.Uint16(data) != btfMagic {
		return nil, errors.New("the kernel's BTF: not little-endian BTF")
	}
	hdrLen := binary.LittleEndian.Uint32(data[4:])
	typeOff, typeLen := binary.LittleEndian.Uint32(data[8:]), binary.LittleEndian.Uint32(data[12:])
	strOff, strLen := binary.LittleEndian.Uint32(data[16:]), binary.LittleEndian.Uint32(data[20:])
	section := func(off, n uint32) ([]byte, error) {
		start, end := uint64(hdrLen)+uint64(off), uint64(hdrLen)+uint64(off)+uint64(n)
		if end > uint64(len(data)) {
			return nil, errors.New("the kernel's BTF: a section runs past its end")
		}
		return data[start:end], nil
	}
	types, err := section(typeOff, typeLen)
	if err != nil {
		return nil, err
	}
	strs, err := section(strOff, strLen)
	if err != nil {
		return nil, err
	}
	name := func(off uint32) []byte {
		if uint64(off) >= uint64(len(strs)) {
			return nil
		}
		s := strs[off:]
		if i := bytes.IndexByte(s, 0); i >= 0 {
			return s[:i]
		}
		return s
	}
	// The structs whose members are asked for, by name.
	wantStruct := map[string]map[string]bool{}
	for _, m := range members {
		s, f, ok := bytes.Cut([]byte(m), []byte("."))
		if !ok {
			return nil, fmt.Errorf("the kernel's BTF: %q is not struct.member", m)
		}
		if wantStruct[string(s)] == nil {
			wantStruct[string(s)] = map[string]bool{}
		}
		wantStruct[string(s)][string(f)] = true
	}
	wantFunc := map[string]bool{}
	for _, f := range funcs {
		wantFunc[f] = true
	}
	info := &btfInfo{funcs: map[string]uint32{}, members: map[string]uint32{}}
	// One pass: where each type is (by ID), and the IDs of the functions
	// and structs asked for.
	pos := []int{0} // type 0 is void
	structs := map[string]uint32{}
	for p := 0; p < len(types); {
		id := uint32(len(pos))
		if len(types)-p < 12 {
			return nil, errors.New("the kernel's BTF: a type is cut short")
		}
		pos = append(pos, p)
		nameOff := binary.LittleEndian.Uint32(types[p:])
		t := binary.LittleEndian.Uint32(types[p+4:])
		kind, vlen := (t>>24)&0x1f, int(t&0xffff)
		p += 12
		var extra int
		switch kind {
		case kindInt, kindVar, kindDeclTag:
			extra = 4
		case kindPtr, kindFwd, kindTypedef, kindVolatile, kindConst, kindRestrict, kindFunc, kindFloat, kindTypeTag:
		case kindArray:
			extra = 12
		case kindStruct, kindUnion, kindDatasec, kindEnum64:
			extra = 12 * vlen
		case kindEnum, kindFuncProto:
			extra = 8 * vlen
		default:
			return nil, fmt.Errorf("the kernel's BTF: type %d has kind %d, which brig doesn't know", id, kind)
		}
		if len(types)-p < extra {
			return nil, errors.New("the kernel's BTF: a type is cut short")
		}
		switch {
		case kind == kindFunc && wantFunc[string(name(nameOff))]:
			info.funcs[string(name(nameOff))] = id
		case kind == kindStruct && wantStruct[string(name(nameOff))] != nil && vlen > 0:
			structs[string(name(nameOff))] = id
		}
		p += extra
	}
	// header reads type id's kind, vlen, kind_flag and size-or-type.
	header := func(id uint32) (kind uint32, vlen int, kindFlag bool, ref uint32, at int) {
		if id == 0 || int(id) >= len(pos) {
			return 0, 0, false, 0, 0
		}
		at = pos[id]
		t := binary.LittleEndian.Uint32(types[at+4:])
		return (t >> 24) & 0x1f, int(t & 0xffff), t>>31 == 1, binary.LittleEndian.Uint32(types[at+8:]), at + 12
	}
	// find looks for member f in struct or union id, and in its anonymous
	// members (a field in an unnamed union), at most depth deep.
	var find func(id uint32, f string, depth int) (uint32, bool, error)
	find = func(id uint32, f string, depth int) (uint32, bool, error) {
		_, vlen, kindFlag, _, at := header(id)
		for i := 0; i < vlen; i++ {
			m := types[at+12*i:]
			bits := binary.LittleEndian.Uint32(m[8:])
			if kindFlag {
				bits &= 0xffffff
			}
			mname := name(binary.LittleEndian.Uint32(m))
			if len(mname) > 0 && string(mname) != f {
				continue
			}
			if bits%8 != 0 {
				if len(mname) == 0 {
					continue
				}
				return 0, false, fmt.Errorf("the kernel's BTF: member %s is a bit field", f)
			}
			if len(mname) > 0 {
				return bits / 8, true, nil
			}
			// An anonymous member: through modifiers to its struct or union.
			t := binary.LittleEndian.Uint32(m[4:])
			for hops := 0; hops < 8 && depth > 0; hops++ {
				kind, _, _, ref, _ := header(t)
				if kind == kindStruct || kind == kindUnion {
					if off, ok, err := find(t, f, depth-1); ok || err != nil {
						return bits/8 + off, ok, err
					}
					break
				}
				if kind != kindTypedef && kind != kindConst && kind != kindVolatile && kind != kindTypeTag && kind != kindRestrict {
					break
				}
				t = ref
			}
		}
		return 0, false, nil
	}
	for _, m := range members {
		sname, f, _ := strings.Cut(m, ".")
		id, ok := structs[sname]
		if !ok {
			continue
		}
		off, ok, err := find(id, f, 4)
		if err != nil {
			return nil, err
		}
		if ok {
			info.members[m] = off
		}
	}
	for _, f := range funcs {
		if _, ok := info.funcs[f]; !ok {
			return nil, fmt.Errorf("the kernel's BTF has no function %s (a kernel without that LSM hook)", f)
		}
	}
	for _, m := range members {
		if _, ok := info.members[m]; !ok {
			return nil, fmt.Errorf("the kernel's BTF has no member %s", m)
		}
	}
	return info, nil
}
