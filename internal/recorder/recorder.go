// Package recorder records the system calls of the processes in one
// cgroup, with the argument values that decide their risk, from the moment
// one of them execs (the container's program) until Close. It is an eBPF
// program on the sys_enter raw tracepoint, written in Go with
// cilium/ebpf's asm package (no compiler, kernel headers or daemon where
// brig runs): it tests the task's cgroup first, so the rest of the host
// pays one helper call per system call, and for the cgroup's tasks it sets
// one byte of a table indexed by the call's number (a store through a
// pointer to the map's value, no helper call), plus, for the few calls
// whose arguments matter, one entry of a hash set of (number, value).
// Nothing is queued, so nothing is lost under load: the maps are read by
// Snapshot.
//
// Raw tracepoints hand the program the kernel's own arguments (the
// registers and the call's number), where a perf tracepoint would first
// copy them into a buffer for every call on the host; and detaching one
// doesn't wait for a grace period as a perf event's release does (75 ms
// here). Neither needs tracefs.
//
// The recording starts armed off; a second program, on the
// sched_process_exec raw tracepoint, arms it when a task of the cgroup execs. brig
// attaches the recorder while the container's init waits for start, so
// that exec is the container's program: brig's own set-up calls before it
// are never recorded.
package recorder

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sort"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// x86-64 system call numbers whose arguments the recorder keeps, and how.
const (
	nrIoctl       = 16
	nrMmap        = 9
	nrMprotect    = 10
	nrSocket      = 41
	nrConnect     = 42
	nrClone       = 56
	nrPersonality = 135
	nrPrctl       = 157
	nrUnshare     = 272
)

// CloneNSFlags are the namespace flags of clone(2)'s flags argument
// (CLONE_NEWTIME is 0x80, inside clone's exit-signal byte, so clone can't
// ask for it).
const CloneNSFlags = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
	unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET

// x32's ioctl has a number of its own (its argument layouts differ).
const nrX32Ioctl = 514

// The calls table: 0..1023 x86-64 numbers, 1024..2047 x32 numbers (the
// x32 bit taken off), 2048..3071 i386 numbers (calls through int 0x80 or
// sysenter, told apart by the user code segment the task entered from);
// two keys mark what the recording could not keep.
const (
	callSlots      = 4096
	x32Base        = 1024
	ia32Base       = 2048
	keyOutOfRange  = 4095 // a number above 1023
	keyArgOverflow = 4094 // the argument set was full
	argEntries     = 16384
	dest6Entries   = 4096
	x32Bit         = 0x40000000
	userCS32       = 0x23 // __USER32_CS: a 32-bit task's code segment
	regsCS         = 136  // pt_regs.cs
)

// Arch is the ABI a call was made through.
type Arch string

const (
	ArchX86_64 Arch = "x86_64"
	ArchX32    Arch = "x32"
	ArchX86    Arch = "x86"
)

// Call is a system call as the kernel numbers it for an ABI.
type Call struct {
	Arch Arch
	Nr   int
}

// Recording is what a recorder saw.
type Recording struct {
	Calls map[Call]bool
	// Args maps an x86-64 call number to the values seen for it:
	// socket: family<<32 | type&0xf; ioctl: the request (32 bits); prctl:
	// the option; personality: the persona; clone: flags&CloneNSFlags;
	// unshare: the flags; mmap, mprotect: prot&PROT_EXEC.
	Args map[int]map[uint64]bool
	// Dests6 are the IPv6 destinations connect(2) was called with
	// (x86-64 and x32 calls), address and port.
	Dests6 map[netip.AddrPort]bool
	// Incomplete says what was lost, if anything (an out-of-range call
	// number, a full argument set).
	Incomplete []string
}

// Connects are the destinations connect(2) was called with (x86-64 and
// x32 calls): Args[42] decoded (IPv4), and Dests6 (an IPv4-mapped one as
// the IPv4 address it is).
func (r *Recording) Connects() []netip.AddrPort {
	var out []netip.AddrPort
	for v := range r.Args[nrConnect] {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], v)
		port := uint16(b[2])<<8 | uint16(b[3])
		out = append(out, netip.AddrPortFrom(netip.AddrFrom4([4]byte{b[4], b[5], b[6], b[7]}), port))
	}
	for d := range r.Dests6 {
		out = append(out, netip.AddrPortFrom(d.Addr().Unmap(), d.Port()))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// Recorder is attached to one cgroup until Close.
type Recorder struct {
	tracer
	calls, args, armed *ebpf.Map
	dests6             *ebpf.Map
}

// Supported says why this process can't record, or nil.
func Supported() error {
	if runtime.GOARCH != "amd64" {
		return fmt.Errorf("recording is built for x86-64 (its register offsets and call numbers), not %s", runtime.GOARCH)
	}
	if unix.Geteuid() != 0 {
		return errors.New("recording needs root (eBPF tracepoints need CAP_BPF and CAP_PERFMON)")
	}
	return nil
}

// Attach starts recording the tasks of the cgroup v2 directory dir (on a
// hybrid host, the unified hierarchy's); it records nothing until one of
// them execs.
func Attach(dir string) (r *Recorder, err error) {
	if err := Supported(); err != nil {
		return nil, err
	}
	r = &Recorder{}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	if r.calls, err = r.newMap(ebpf.MapSpec{Name: "brig_calls", Type: ebpf.Array, KeySize: 4, ValueSize: callSlots, MaxEntries: 1}); err != nil {
		return nil, err
	}
	if r.args, err = r.newMap(ebpf.MapSpec{Name: "brig_args", Type: ebpf.Hash, KeySize: 16, ValueSize: 4,
		MaxEntries: argEntries, Flags: unix.BPF_F_NO_PREALLOC}); err != nil {
		return nil, err
	}
	// IPv6 destinations: 16 bytes of address, the port as in the
	// sockaddr (network order), two of padding.
	if r.dests6, err = r.newMap(ebpf.MapSpec{Name: "brig_dests6", Type: ebpf.Hash, KeySize: 20, ValueSize: 4,
		MaxEntries: dest6Entries, Flags: unix.BPF_F_NO_PREALLOC}); err != nil {
		return nil, err
	}
	if r.armed, err = r.newMap(ebpf.MapSpec{Name: "brig_armed", Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1}); err != nil {
		return nil, err
	}
	cgroup, err := r.cgroupMap(dir)
	if err != nil {
		return nil, err
	}
	// The exec program first, then the recording one: nothing runs
	// before it can be armed.
	return r, r.attach(
		rawProgram{"sched_process_exec", armProgram(cgroup.FD(), r.armed.FD())},
		rawProgram{"sys_enter", enterProgram(cgroup.FD(), r.armed.FD(), r.calls.FD(), r.args.FD(), r.dests6.FD())},
	)
}

// armProgram sets armed[0] when a task of the cgroup execs.
func armProgram(cgroup, armed int) asm.Instructions {
	return append(inCgroup(cgroup),
		asm.LoadMapValue(asm.R1, armed, 0),
		asm.StoreImm(asm.R1, 0, 1, asm.Word),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
		asm.Return(),
	)
}

// pt_regs offsets (x86-64) of the first three arguments.
var argRegs = [3]int32{112, 104, 96} // di, si, dx

// enterProgram records a call of the cgroup's tasks once armed. The raw
// tracepoint's context: the task's registers (u64 at 0) and the call's
// number (at 8). The code segment in the registers tells a 32-bit call
// from a 64-bit one; arguments are read from the registers with
// bpf_probe_read_kernel, only for the few calls that keep one, and only
// for the 64-bit ABIs (x86-64, x32), whose registers they are.
func enterProgram(cgroup, armed, calls, args, dests6 int) asm.Instructions {
	// readReg reads the register at off into dst.
	readReg := func(dst asm.Register, off int32, sym string) asm.Instructions {
		insns := readRegister(off)
		if sym != "" {
			insns[0] = insns[0].WithSymbol(sym)
		}
		return append(insns, asm.LoadMem(dst, asm.R10, -8, asm.DWord))
	}
	insns := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}
	insns = append(insns, armedInCgroup(cgroup, armed)...)
	insns = append(insns,
		// r9 = the registers; r7 = the call's number; r8 = its slot.
		asm.LoadMem(asm.R9, asm.R6, 0, asm.DWord),
		asm.LoadMem(asm.R7, asm.R6, 8, asm.DWord),
		asm.JSLT.Imm(asm.R7, 0, "out"),
		asm.Mov.Reg(asm.R8, asm.R7),
		asm.And.Imm(asm.R8, 0x3ff),
	)
	// A 32-bit task's call: its own table, no arguments.
	insns = append(insns, readReg(asm.R1, regsCS, "")...)
	insns = append(insns,
		asm.And.Imm(asm.R1, 0xffff),
		asm.JNE.Imm(asm.R1, userCS32, "abi64"),
		asm.JGT.Imm(asm.R7, 0x3ff, "oor"),
		asm.Or.Imm(asm.R8, ia32Base),
		asm.Mov.Imm(asm.R7, -1), // no argument is kept
		asm.Ja.Label("slot"),
		asm.Mov.Reg(asm.R1, asm.R7).WithSymbol("abi64"),
		asm.And.Imm(asm.R1, x32Bit),
		asm.JEq.Imm(asm.R1, 0, "range"),
		asm.Or.Imm(asm.R8, x32Base),
		asm.Mov.Reg(asm.R1, asm.R7).WithSymbol("range"),
		asm.And.Imm(asm.R1, ^int32(x32Bit|0x3ff)),
		asm.JEq.Imm(asm.R1, 0, "slot"),
		asm.Mov.Imm(asm.R8, keyOutOfRange).WithSymbol("oor"),
		asm.And.Imm(asm.R8, callSlots-1).WithSymbol("slot"), // for the verifier: within the table
		asm.LoadMapValue(asm.R1, calls, 0),
		asm.Add.Reg(asm.R1, asm.R8),
		asm.StoreImm(asm.R1, 0, 1, asm.Byte),
		// Arguments: x32 numbers are x86-64's with bit 30 set (ioctl has
		// its own); values are kept under the x86-64 number.
		asm.JSLT.Imm(asm.R7, 0, "out"),
		asm.And.Imm(asm.R7, ^int32(x32Bit)),
		asm.JNE.Imm(asm.R7, nrX32Ioctl, "dispatch"),
		asm.Mov.Imm(asm.R7, nrIoctl),
		asm.JEq.Imm(asm.R7, nrSocket, "socket").WithSymbol("dispatch"),
		asm.JEq.Imm(asm.R7, nrIoctl, "ioctl"),
		asm.JEq.Imm(asm.R7, nrPrctl, "arg0"),
		asm.JEq.Imm(asm.R7, nrPersonality, "arg0"),
		asm.JEq.Imm(asm.R7, nrUnshare, "arg0"),
		asm.JEq.Imm(asm.R7, nrClone, "clone"),
		asm.JEq.Imm(asm.R7, nrMmap, "prot"),
		asm.JEq.Imm(asm.R7, nrMprotect, "prot"),
		asm.JEq.Imm(asm.R7, nrConnect, "connect"),
		asm.Ja.Label("out"),
	)
	// connect: the destination is read from the caller's memory once,
	// 24 bytes (sockaddr_in6's family, port, flow label, address). An
	// IPv6 one goes into dests6 as address and port; of an IPv4 one the
	// first 8 bytes (family, port, address) are kept with the arguments;
	// other families are not kept. Where 24 bytes can't be read (a
	// sockaddr_in at the end of a mapping), 8 are, for IPv4.
	insns = append(insns, readReg(asm.R3, argRegs[1], "connect")...)
	insns = append(insns,
		asm.Mov.Reg(asm.R1, asm.R10),
		asm.Add.Imm(asm.R1, -96),
		asm.Mov.Imm(asm.R2, 24),
		asm.FnProbeReadUser.Call(),
		asm.JNE.Imm(asm.R0, 0, "connect4"),
		asm.LoadMem(asm.R3, asm.R10, -96, asm.DWord),
		asm.Mov.Reg(asm.R1, asm.R3),
		asm.And.Imm(asm.R1, 0xffff),
		asm.JEq.Imm(asm.R1, unix.AF_INET, "store"),
		asm.JNE.Imm(asm.R1, unix.AF_INET6, "out"),
		// key: the address (at -88), the port (at -94), padding.
		asm.LoadMem(asm.R1, asm.R10, -88, asm.DWord),
		asm.StoreMem(asm.R10, -120, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, asm.R10, -80, asm.DWord),
		asm.StoreMem(asm.R10, -112, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, asm.R10, -94, asm.Half),
		asm.StoreMem(asm.R10, -104, asm.R1, asm.Half),
		asm.StoreImm(asm.R10, -102, 0, asm.Half),
	)
	insns = append(insns, putOrFlag(dests6, -120, -124, calls)...)
	insns = append(insns, asm.Ja.Label("out"))
	insns = append(insns, readReg(asm.R3, argRegs[1], "connect4")...)
	insns = append(insns,
		asm.Mov.Reg(asm.R1, asm.R10),
		asm.Add.Imm(asm.R1, -40),
		asm.Mov.Imm(asm.R2, 8),
		asm.FnProbeReadUser.Call(),
		asm.JNE.Imm(asm.R0, 0, "out"),
		asm.LoadMem(asm.R3, asm.R10, -40, asm.DWord),
		asm.Mov.Reg(asm.R1, asm.R3),
		asm.And.Imm(asm.R1, 0xffff),
		asm.JNE.Imm(asm.R1, unix.AF_INET, "out"),
		asm.Ja.Label("store"),
	)
	insns = append(insns, readReg(asm.R3, argRegs[1], "socket")...)
	insns = append(insns, asm.And.Imm(asm.R3, 0xf), asm.StoreMem(asm.R10, -48, asm.R3, asm.DWord))
	insns = append(insns, readReg(asm.R3, argRegs[0], "")...)
	insns = append(insns, asm.LSh.Imm(asm.R3, 32), asm.LoadMem(asm.R1, asm.R10, -48, asm.DWord),
		asm.Or.Reg(asm.R3, asm.R1), asm.Ja.Label("store"))
	insns = append(insns, readReg(asm.R3, argRegs[1], "ioctl")...)
	insns = append(insns, asm.LSh.Imm(asm.R3, 32), asm.RSh.Imm(asm.R3, 32), asm.Ja.Label("store"))
	insns = append(insns, readReg(asm.R3, argRegs[0], "arg0")...)
	insns = append(insns, asm.Ja.Label("store"))
	insns = append(insns, readReg(asm.R3, argRegs[0], "clone")...)
	insns = append(insns, asm.And.Imm(asm.R3, CloneNSFlags), asm.Ja.Label("store"))
	insns = append(insns, readReg(asm.R3, argRegs[2], "prot")...)
	insns = append(insns, asm.And.Imm(asm.R3, unix.PROT_EXEC))
	insns = append(insns,
		// key {u32 nr, u32 0, u64 value} at r10-24; value 1 at r10-28.
		asm.StoreMem(asm.R10, -24, asm.R7, asm.Word).WithSymbol("store"),
		asm.StoreImm(asm.R10, -20, 0, asm.Word),
		asm.StoreMem(asm.R10, -16, asm.R3, asm.DWord),
	)
	insns = append(insns, putOrFlag(args, -24, -28, calls)...)
	insns = append(insns,
		asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
		asm.Return(),
	)
	return insns
}

// putOrFlag adds the key on the stack at keyOff to the hash set m (value
// 1, written at valOff); where the set is full, it sets the calls table's
// overflow slot instead, which Snapshot reports.
func putOrFlag(m int, keyOff, valOff int16, calls int) asm.Instructions {
	return asm.Instructions{
		asm.StoreImm(asm.R10, valOff, 1, asm.Word),
		asm.LoadMapPtr(asm.R1, m),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, int32(keyOff)),
		asm.Mov.Reg(asm.R3, asm.R10),
		asm.Add.Imm(asm.R3, int32(valOff)),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnMapUpdateElem.Call(),
		asm.JSGE.Imm(asm.R0, 0, "out"),
		asm.LoadMapValue(asm.R1, calls, keyArgOverflow),
		asm.StoreImm(asm.R1, 0, 1, asm.Byte),
	}
}

// Snapshot reads what has been recorded so far; the recorder goes on.
func (r *Recorder) Snapshot() (*Recording, error) {
	rec := &Recording{Calls: map[Call]bool{}, Args: map[int]map[uint64]bool{}}
	table := make([]byte, callSlots)
	if err := r.calls.Lookup(uint32(0), &table); err != nil {
		return nil, fmt.Errorf("recorder: read calls: %w", err)
	}
	for k, v := range table {
		if v == 0 {
			continue
		}
		key := uint32(k)
		switch {
		case key == keyOutOfRange:
			rec.Incomplete = append(rec.Incomplete, "a call numbered above 1023 (not kept)")
		case key == keyArgOverflow:
			rec.Incomplete = append(rec.Incomplete, fmt.Sprintf("more than %d argument values (the rest not kept)", argEntries))
		case key >= ia32Base:
			rec.Calls[Call{ArchX86, int(key - ia32Base)}] = true
		case key >= x32Base:
			rec.Calls[Call{ArchX32, int(key - x32Base)}] = true
		default:
			rec.Calls[Call{ArchX86_64, int(key)}] = true
		}
	}
	var akey [16]byte
	var val uint32
	ait := r.args.Iterate()
	for ait.Next(&akey, &val) {
		nr := int(nativeUint32(akey[0:4]))
		v := nativeUint64(akey[8:16])
		if rec.Args[nr] == nil {
			rec.Args[nr] = map[uint64]bool{}
		}
		rec.Args[nr][v] = true
	}
	if err := ait.Err(); err != nil {
		return nil, fmt.Errorf("recorder: read arguments: %w", err)
	}
	var dkey [20]byte
	dit := r.dests6.Iterate()
	for dit.Next(&dkey, &val) {
		if rec.Dests6 == nil {
			rec.Dests6 = map[netip.AddrPort]bool{}
		}
		rec.Dests6[netip.AddrPortFrom(netip.AddrFrom16([16]byte(dkey[:16])), uint16(dkey[16])<<8|uint16(dkey[17]))] = true
	}
	if err := dit.Err(); err != nil {
		return nil, fmt.Errorf("recorder: read IPv6 destinations: %w", err)
	}
	sort.Strings(rec.Incomplete)
	return rec, nil
}

// Armed reports whether a task of the cgroup has exec'd since Attach.
func (r *Recorder) Armed() bool {
	var v uint32
	return r.armed.Lookup(uint32(0), &v) == nil && v != 0
}

// Close detaches the programs (every system call on the host is back on
// its fast path) and frees the maps.
func (r *Recorder) Close() error {
	r.close()
	return nil
}

func nativeUint32(b []byte) uint32 { return binary.NativeEndian.Uint32(b) }
func nativeUint64(b []byte) uint64 { return binary.NativeEndian.Uint64(b) }
