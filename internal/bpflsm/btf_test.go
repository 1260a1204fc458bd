package bpflsm

import (
	"encoding/binary"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// TestScanBTF: the scan finds what cilium/ebpf's full parse of the
// running kernel's BTF finds: each hook's type ID, each member's offset.
func TestScanBTF(t *testing.T) {
	data, err := os.ReadFile("/sys/kernel/btf/vmlinux")
	if err != nil {
		t.Skipf("no kernel BTF: %v", err)
	}
	var funcs []string
	for _, h := range entryHooks {
		funcs = append(funcs, "bpf_lsm_"+h.hook)
	}
	funcs = append(funcs, "bpf_lsm_ptrace_access_check")
	info, err := scanBTF(data, funcs, fields)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range funcs {
		var fn *btf.Func
		if err := spec.TypeByName(f, &fn); err != nil {
			t.Fatal(err)
		}
		id, err := spec.TypeID(fn)
		if err != nil {
			t.Fatal(err)
		}
		if info.funcs[f] != uint32(id) {
			t.Errorf("%s: scan says type %d, cilium/ebpf %d", f, info.funcs[f], id)
		}
	}
	for _, m := range fields {
		sname, fname, _ := strings.Cut(m, ".")
		var st *btf.Struct
		if err := spec.TypeByName(sname, &st); err != nil {
			t.Fatal(err)
		}
		off, ok := memberOffset(st.Members, fname)
		if !ok {
			t.Errorf("cilium/ebpf has no %s", m)
		} else if got := info.members[m]; got != off {
			t.Errorf("%s: scan says offset %d, cilium/ebpf %d", m, got, off)
		}
	}
	if _, err := scanBTF(data, []string{"bpf_lsm_no_such_hook"}, nil); err == nil || !strings.Contains(err.Error(), "bpf_lsm_no_such_hook") {
		t.Errorf("a missing hook: %v", err)
	}
	if _, err := scanBTF(data, nil, []string{"dentry.no_such_member"}); err == nil || !strings.Contains(err.Error(), "dentry.no_such_member") {
		t.Errorf("a missing member: %v", err)
	}
}

// TestScanBTFBad: input that isn't BTF, or is cut short, is an error.
func TestScanBTFBad(t *testing.T) {
	data, _ := os.ReadFile("/sys/kernel/btf/vmlinux")
	tests := map[string][]byte{
		"empty":     nil,
		"not btf":   []byte("\x7fELF............................"),
		"header":    []byte{0x9f, 0xeb, 1, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"cut short": data[:min(len(data), 4096)],
	}
	for name, in := range tests {
		if _, err := scanBTF(in, []string{"bpf_lsm_path_mkdir"}, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// smallBTF is a BTF blob: an int, a struct dentry whose d_name (at byte
// 32) is in an anonymous union (at byte 24) after a bit field, a function
// bpf_lsm_path_mkdir.
func smallBTF() []byte {
	strs := "\x00int\x00dentry\x00d_name\x00bits\x00bpf_lsm_path_mkdir\x00"
	off := func(s string) uint32 { return uint32(strings.Index(strs, "\x00"+s+"\x00") + 1) }
	var types []byte
	u32 := func(vs ...uint32) {
		for _, v := range vs {
			types = binary.LittleEndian.AppendUint32(types, v)
		}
	}
	info := func(kind, vlen uint32, kflag bool) uint32 {
		v := kind<<24 | vlen
		if kflag {
			v |= 1 << 31
		}
		return v
	}
	u32(off("int"), info(kindInt, 0, false), 4, 32)            // [1] int
	u32(0, info(kindUnion, 1, false), 8, off("d_name"), 1, 64) // [2] union { int d_name at bit 64 }
	u32(off("dentry"), info(kindStruct, 2, true), 64,          // [3] struct dentry
		off("bits"), 1, 3<<24|5, // a bit field
		0, 2, 24*8) // the anonymous union at byte 24
	u32(0, info(kindFuncProto, 0, false), 1)                    // [4]
	u32(off("bpf_lsm_path_mkdir"), info(kindFunc, 0, false), 4) // [5]
	hdr := binary.LittleEndian.AppendUint16(nil, btfMagic)
	hdr = append(hdr, 1, 0)
	for _, v := range []uint32{24, 0, uint32(len(types)), uint32(len(types)), uint32(len(strs))} {
		hdr = binary.LittleEndian.AppendUint32(hdr, v)
	}
	return append(append(hdr, types...), strs...)
}

// TestScanSmallBTF: a member inside an anonymous union is found at the
// union's offset plus its own; a bit field is passed over.
func TestScanSmallBTF(t *testing.T) {
	info, err := scanBTF(smallBTF(), []string{"bpf_lsm_path_mkdir"}, []string{"dentry.d_name"})
	if err != nil {
		t.Fatal(err)
	}
	if info.funcs["bpf_lsm_path_mkdir"] != 5 || info.members["dentry.d_name"] != 32 {
		t.Errorf("got %+v, want the function at 5 and d_name at 32", info)
	}
	if _, err := scanBTF(smallBTF(), nil, []string{"dentry.bits"}); err == nil || !strings.Contains(err.Error(), "bit field") {
		t.Errorf("a bit field: %v", err)
	}
}

func FuzzScanBTF(f *testing.F) {
	f.Add(smallBTF())
	f.Fuzz(func(t *testing.T, data []byte) {
		scanBTF(data, []string{"bpf_lsm_path_mkdir", "x"}, []string{"dentry.d_name", "dentry.bits", "a.b"})
	})
}

// memberOffset finds a member by name, in anonymous members too.
func memberOffset(ms []btf.Member, name string) (uint32, bool) {
	for _, m := range ms {
		if m.Name == name {
			return uint32(m.Offset.Bytes()), true
		}
		if m.Name != "" {
			continue
		}
		var inner []btf.Member
		switch t := btf.UnderlyingType(m.Type).(type) {
		case *btf.Struct:
			inner = t.Members
		case *btf.Union:
			inner = t.Members
		}
		if off, ok := memberOffset(inner, name); ok {
			return uint32(m.Offset.Bytes()) + off, true
		}
	}
	return 0, false
}

func BenchmarkReadKernelBTF(b *testing.B) {
	for b.Loop() {
		if _, err := readKernelBTF([]string{"bpf_lsm_path_mkdir"}, fields); err != nil {
			b.Skip(err)
		}
	}
}
