package recorder

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// Refusals records, for `brig run --report`, the paths the tasks of one
// cgroup named in system calls that failed with ENOENT, EACCES or EROFS:
// what the sandbox doesn't show, what Landlock refused, what a read-only
// mount refused. An eBPF program on the sys_exit raw tracepoint: a
// path-taking call of the cgroup's tasks (once one of them has exec'd, as
// for Recorder) that failed with one of those errors has its path read
// from the caller's memory and counts (errno, call, path) in a hash map,
// which Snapshot reads. Nothing is queued, so nothing is lost; every
// other call on the host pays a load and three compares. Root only, as
// the Recorder.
type Refusals struct {
	tracer
	counts *ebpf.Map
	// dropped counts the refusals not kept: the map was full
	dropped *ebpf.Map
}

// RefusalSnapshot is what Snapshot read.
type RefusalSnapshot struct {
	Paths []PathRefusal // most frequent first
	// Dropped counts the failed calls of paths not kept: more than
	// RefusalEntries distinct (errno, call, path) keys were seen.
	Dropped int
}

// PathRefusal is one path a call of the cgroup's tasks failed on.
type PathRefusal struct {
	Path  string
	Errno unix.Errno // ENOENT, EACCES or EROFS
	Call  string     // its name (open, openat, mkdir, ...)
	Write bool       // the call would have written: created, changed, removed
	// DirRelative: a relative path resolved against a directory fd, not
	// the working directory: where it is can't be told.
	DirRelative bool
	// Truncated: the path was longer than MaxPath-1 bytes and is cut
	// there: it names no real file (or it changed while being read).
	Truncated bool
	Count     int
}

// maxPath is the longest path kept (longer ones are cut there).
const maxPath = 256

// refusalEntries bounds the distinct (errno, call, path) kept.
const refusalEntries = 4096

// MaxPath and RefusalEntries are the bounds, for a report to say.
const (
	MaxPath        = maxPath
	RefusalEntries = refusalEntries
)

// A key: errno (u32), the call's number and flags (u32: infoWrite,
// infoDirRelative), the path.
const slotSize = 8 + maxPath

// pathCalls are the x86-64 calls whose path is kept: the register
// holding it, the register of the directory fd a relative path is
// resolved against (none: the working directory), and whether the call
// writes (open and openat decide from their flags).
var pathCalls = map[int32]pathCall{
	2: {"open", regDI, 0, false}, 257: {"openat", regSI, regDI, false}, 437: {"openat2", regSI, regDI, false},
	4: {"stat", regDI, 0, false}, 6: {"lstat", regDI, 0, false}, 262: {"newfstatat", regSI, regDI, false}, 332: {"statx", regSI, regDI, false},
	21: {"access", regDI, 0, false}, 269: {"faccessat", regSI, regDI, false}, 439: {"faccessat2", regSI, regDI, false},
	59: {"execve", regDI, 0, false}, 322: {"execveat", regSI, regDI, false},
	80: {"chdir", regDI, 0, false}, 89: {"readlink", regDI, 0, false}, 267: {"readlinkat", regSI, regDI, false},
	85: {"creat", regDI, 0, true}, 76: {"truncate", regDI, 0, true},
	83: {"mkdir", regDI, 0, true}, 258: {"mkdirat", regSI, regDI, true}, 84: {"rmdir", regDI, 0, true},
	87: {"unlink", regDI, 0, true}, 263: {"unlinkat", regSI, regDI, true},
	133: {"mknod", regDI, 0, true}, 259: {"mknodat", regSI, regDI, true},
	90: {"chmod", regDI, 0, true}, 268: {"fchmodat", regSI, regDI, true}, 452: {"fchmodat2", regSI, regDI, true},
	92: {"chown", regDI, 0, true}, 94: {"lchown", regDI, 0, true}, 260: {"fchownat", regSI, regDI, true},
	// the new name of a rename or link, the link of a symlink
	82: {"rename", regSI, 0, true}, 264: {"renameat", regR10, regDX, true}, 316: {"renameat2", regR10, regDX, true},
	86: {"link", regSI, 0, true}, 265: {"linkat", regR10, regDX, true},
	88: {"symlink", regSI, 0, true}, 266: {"symlinkat", regDX, regSI, true},
}

type pathCall struct {
	name  string
	reg   int32 // pt_regs offset of the path argument
	dir   int32 // pt_regs offset of its directory fd (0: none)
	write bool
}

// The key's info word: the call's number, then flags.
const (
	infoWrite       = 1 << 16 // the call would have written
	infoDirRelative = 1 << 17 // a relative path, against a directory fd other than the working directory's
	infoTruncated   = 1 << 18 // the path filled the slot: it may be cut
)

// pt_regs offsets (x86-64) of the argument registers.
const (
	regDI  = 112
	regSI  = 104
	regDX  = 96
	regR10 = 56
	// the call's number, kept at entry (ax holds the return value)
	regOrigAX = 120
)

// AttachRefusals starts recording the refusals of the tasks of the
// cgroup v2 directory dir; nothing is recorded until one of them execs.
func AttachRefusals(dir string) (r *Refusals, err error) {
	if err := Supported(); err != nil {
		return nil, err
	}
	r = &Refusals{}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	armed, err := r.newMap(ebpf.MapSpec{Name: "brig_rarmed", Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		return nil, err
	}
	scratch, err := r.newMap(ebpf.MapSpec{Name: "brig_rscratch", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: slotSize, MaxEntries: 1})
	if err != nil {
		return nil, err
	}
	if r.counts, err = r.newMap(ebpf.MapSpec{Name: "brig_rcounts", Type: ebpf.Hash, KeySize: slotSize, ValueSize: 4,
		MaxEntries: refusalEntries, Flags: unix.BPF_F_NO_PREALLOC}); err != nil {
		return nil, err
	}
	if r.dropped, err = r.newMap(ebpf.MapSpec{Name: "brig_rdropped", Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1}); err != nil {
		return nil, err
	}
	cgroup, err := r.cgroupMap(dir)
	if err != nil {
		return nil, err
	}
	return r, r.attach(
		rawProgram{"sched_process_exec", armProgram(cgroup.FD(), armed.FD())},
		rawProgram{"sys_exit", refusalProgram(cgroup.FD(), armed.FD(), scratch.FD(), r.counts.FD(), r.dropped.FD())},
	)
}

// refusalProgram counts a failed path-taking call of the cgroup's tasks,
// once armed. It runs at the call's exit, where the task's registers
// still hold the call's number (orig_ax) and arguments, so the rest of
// the host, and every call that didn't fail with one of the three
// errors, pays one load and three compares. The context: the registers
// (u64 at 0), the return value (at 8). (The path is read when the call
// has returned: a thread of the task that rewrites it meanwhile makes
// the report name another path. The report is for reading, not
// enforcing.)
func refusalProgram(cgroup, armed, scratch, counts, dropped int) asm.Instructions {
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R1, asm.R6, 8, asm.DWord),
		asm.JEq.Imm(asm.R1, -int32(unix.ENOENT), "failed"),
		asm.JEq.Imm(asm.R1, -int32(unix.EACCES), "failed"),
		asm.JEq.Imm(asm.R1, -int32(unix.EROFS), "failed"),
		asm.Ja.Label("out"),
		asm.Neg.Imm(asm.R1, 0).WithSymbol("failed"),
		asm.StoreMem(asm.R10, -40, asm.R1, asm.DWord),
	}
	insns = append(insns, armedInCgroup(cgroup, armed)...)
	// r9 = the registers; r8 = the call's number (orig_ax); r7 = the
	// path's register; r6 = the write flag.
	insns = append(insns, asm.LoadMem(asm.R9, asm.R6, 0, asm.DWord))
	insns = append(insns, readRegister(regOrigAX)...)
	insns = append(insns,
		asm.JNE.Imm(asm.R0, 0, "out"),
		asm.LoadMem(asm.R8, asm.R10, -8, asm.DWord),
		asm.Mov.Imm(asm.R6, 0),
	)
	nrs := make([]int32, 0, len(pathCalls))
	for nr := range pathCalls {
		nrs = append(nrs, nr)
	}
	sort.Slice(nrs, func(i, j int) bool { return nrs[i] < nrs[j] })
	for _, nr := range nrs {
		insns = append(insns, asm.JEq.Imm(asm.R8, nr, fmt.Sprintf("nr%d", nr)))
	}
	insns = append(insns, asm.Ja.Label("out"))
	for _, nr := range nrs {
		c := pathCalls[nr]
		first := asm.Mov.Imm(asm.R7, c.reg).WithSymbol(fmt.Sprintf("nr%d", nr))
		insns = append(insns, first)
		first = asm.StoreImm(asm.R10, -48, int64(c.dir), asm.DWord)
		switch {
		case nr == 2 || nr == 257:
			// open(path, flags), openat(dirfd, path, flags): the flags
			// say whether it writes.
			flags := int32(regSI)
			if nr == 257 {
				flags = regDX
			}
			insns = append(insns, first)
			insns = append(insns, readRegister(flags)...)
			insns = append(insns,
				asm.LoadMem(asm.R1, asm.R10, -8, asm.DWord),
				asm.And.Imm(asm.R1, unix.O_WRONLY|unix.O_RDWR|unix.O_CREAT|unix.O_TRUNC),
				asm.JEq.Imm(asm.R1, 0, "read"),
				asm.Mov.Imm(asm.R6, 1),
				asm.Ja.Label("read"),
			)
		case c.write:
			insns = append(insns, first, asm.Mov.Imm(asm.R6, 1), asm.Ja.Label("read"))
		default:
			insns = append(insns, first, asm.Ja.Label("read"))
		}
	}
	insns = append(insns,
		// the path's address, from its register, to r10-8
		asm.Mov.Reg(asm.R1, asm.R10).WithSymbol("read"),
		asm.Add.Imm(asm.R1, -8),
		asm.Mov.Imm(asm.R2, 8),
		asm.Mov.Reg(asm.R3, asm.R9),
		asm.Add.Reg(asm.R3, asm.R7),
		asm.FnProbeReadKernel.Call(),
		asm.JNE.Imm(asm.R0, 0, "out"),
	)
	// the key, in the scratch slot: errno, nr | write<<16, the path
	// zeroed first (no bytes of an earlier path after its NUL)
	insns = append(insns, slotZero(scratch)...)
	insns = append(insns,
		asm.Mov.Reg(asm.R7, asm.R0),
		asm.LoadMem(asm.R1, asm.R10, -40, asm.DWord),
		asm.StoreMem(asm.R7, 0, asm.R1, asm.Word),
		asm.LSh.Imm(asm.R6, 16), // infoWrite
		asm.Or.Reg(asm.R6, asm.R8),
		asm.StoreMem(asm.R7, 4, asm.R6, asm.Word),
	)
	for off := int16(8); off < slotSize; off += 8 {
		insns = append(insns, asm.StoreImm(asm.R7, off, 0, asm.DWord))
	}
	insns = append(insns,
		asm.Mov.Reg(asm.R1, asm.R7),
		asm.Add.Imm(asm.R1, 8),
		asm.Mov.Imm(asm.R2, maxPath),
		asm.LoadMem(asm.R3, asm.R10, -8, asm.DWord),
		asm.FnProbeReadUserStr.Call(),
		asm.JSLE.Imm(asm.R0, 1, "out"), // a fault, or an empty path
		// a path that filled the slot was cut, unless its last byte kept
		// was its last: the byte after it is read, and flagged if not NUL
		asm.JNE.Imm(asm.R0, maxPath, "whole"),
		asm.Mov.Reg(asm.R1, asm.R10),
		asm.Add.Imm(asm.R1, -24),
		asm.Mov.Imm(asm.R2, 1),
		asm.LoadMem(asm.R3, asm.R10, -8, asm.DWord),
		asm.Add.Imm(asm.R3, maxPath-1),
		asm.FnProbeReadUser.Call(),
		asm.JNE.Imm(asm.R0, 0, "cut"),
		asm.LoadMem(asm.R1, asm.R10, -24, asm.Byte),
		asm.JEq.Imm(asm.R1, 0, "whole"),
		asm.LoadMem(asm.R1, asm.R7, 4, asm.Word).WithSymbol("cut"),
		asm.Or.Imm(asm.R1, infoTruncated),
		asm.StoreMem(asm.R7, 4, asm.R1, asm.Word),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("whole"),
		// a relative path against a directory fd other than AT_FDCWD
		// is flagged: the report can't place it
		asm.LoadMem(asm.R1, asm.R7, 8, asm.Byte),
		asm.JEq.Imm(asm.R1, '/', "count"),
		asm.LoadMem(asm.R1, asm.R10, -48, asm.DWord),
		asm.JEq.Imm(asm.R1, 0, "count"),
		asm.Mov.Reg(asm.R3, asm.R9),
		asm.Add.Reg(asm.R3, asm.R1),
		asm.Mov.Reg(asm.R1, asm.R10),
		asm.Add.Imm(asm.R1, -8),
		asm.Mov.Imm(asm.R2, 8),
		asm.FnProbeReadKernel.Call(),
		asm.JNE.Imm(asm.R0, 0, "dirrel"),
		asm.LoadMem(asm.R1, asm.R10, -8, asm.DWord),
		asm.LSh.Imm(asm.R1, 32),
		asm.ArSh.Imm(asm.R1, 32),
		asm.JEq.Imm(asm.R1, unix.AT_FDCWD, "count"),
		asm.LoadMem(asm.R1, asm.R7, 4, asm.Word).WithSymbol("dirrel"),
		asm.Or.Imm(asm.R1, infoDirRelative),
		asm.StoreMem(asm.R7, 4, asm.R1, asm.Word),
		// counts[key] += 1, or = 1
		asm.LoadMapPtr(asm.R1, counts).WithSymbol("count"),
		asm.Mov.Reg(asm.R2, asm.R7),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "new"),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreXAdd(asm.R0, asm.R1, asm.Word),
		asm.Ja.Label("out"),
		asm.StoreImm(asm.R10, -16, 1, asm.Word).WithSymbol("new"),
		asm.LoadMapPtr(asm.R1, counts),
		asm.Mov.Reg(asm.R2, asm.R7),
		asm.Mov.Reg(asm.R3, asm.R10),
		asm.Add.Imm(asm.R3, -16),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnMapUpdateElem.Call(),
		// the map is full: the refusal is counted as dropped
		asm.JEq.Imm(asm.R0, 0, "out"),
	)
	insns = append(insns, slotZero(dropped)...)
	insns = append(insns,
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreXAdd(asm.R0, asm.R1, asm.Word),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
		asm.Return(),
	)
	return insns
}

// slotZero puts in r0 the address of slot 0 of the array m, or jumps to
// "out"; the key is kept at r10-16.
func slotZero(m int) asm.Instructions {
	return asm.Instructions{
		asm.StoreImm(asm.R10, -16, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, m),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, -16),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
	}
}

// Snapshot reads the refusals recorded so far, and how many were not
// kept.
func (r *Refusals) Snapshot() (RefusalSnapshot, error) {
	var out []PathRefusal
	key := make([]byte, slotSize)
	var n uint32
	it := r.counts.Iterate()
	for it.Next(&key, &n) {
		info := nativeUint32(key[4:8])
		p := key[8:]
		if i := bytes.IndexByte(p, 0); i >= 0 {
			p = p[:i]
		}
		c := pathCalls[int32(info&0xffff)]
		out = append(out, PathRefusal{Path: string(p), Errno: unix.Errno(nativeUint32(key[0:4])), Call: c.name,
			Write: info&infoWrite != 0, DirRelative: info&infoDirRelative != 0, Truncated: info&infoTruncated != 0, Count: int(n)})
	}
	if err := it.Err(); err != nil {
		return RefusalSnapshot{}, fmt.Errorf("recorder: read refusals: %w", err)
	}
	var dropped uint32
	derr := r.dropped.Lookup(uint32(0), &dropped)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Path < out[j].Path
	})
	snap := RefusalSnapshot{Paths: out, Dropped: int(dropped)}
	if derr != nil {
		// the paths read stand; how many were dropped is unknown
		return snap, fmt.Errorf("recorder: read refusals dropped: %w", derr)
	}
	return snap, nil
}

// Close detaches the program and frees the maps.
func (r *Refusals) Close() error {
	r.close()
	return nil
}
