// Package bpflsm holds the sandbox's BPF LSM programs: the two refusals
// no other layer can make. A name that doesn't exist can't be held
// read-only by a mount (there is nothing to mount on), and Landlock has
// no rule for one name inside a writable directory, so the protected
// names a writable path lacks (.bashrc, .git, ...) would be creatable;
// and a process may open /proc/PID/mem of a sibling with the same
// credentials, which seccomp can't see (it is an open). Two kinds of
// program on the kernel's LSM hooks, attached once and shared by every
// run (shared.go), refuse them to the tasks of the cgroups guarded:
//
//   - path_mknod, path_mkdir, path_symlink, path_link, path_rename,
//     path_unlink, path_rmdir: a directory entry in the run's entries,
//     (the directory's device and inode, the name), can't be made,
//     removed or renamed to or from: EACCES. open(O_CREAT) goes through
//     path_mknod.
//   - ptrace_access_check: no access in PTRACE_MODE_ATTACH to another
//     process (ptrace, /proc/PID/mem, process_vm_readv, pidfd_getfd;
//     the process's own threads are not asked): EPERM.
//
// It needs root (CAP_BPF and CAP_MAC_ADMIN), cgroup v2 for the sandbox
// (the programs match the task's own cgroup v2 ID, not its ancestors':
// the sandbox can make no cgroup below its own, whose directory belongs
// to root outside), and "bpf" among the kernel's active LSMs. Names are
// compared byte for byte: on a filesystem that folds case, another
// spelling of a protected name is not refused.
package bpflsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"unsafe"

	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// Entry is one directory entry the sandbox may not make, remove or
// rename to or from: Name in the directory Dir (a host path, which must
// exist), or, with Sub, the entry Sub of a directory Name in Dir that
// doesn't exist yet (made during the run, it has no inode to name now).
// MkdirOnly lets the entry be made as a directory and nothing else: the
// parent of a Sub, which may be made but not replaced by a link or moved
// in with its content.
type Entry struct {
	Dir, Name, Sub string
	MkdirOnly      bool
}

// Rules are what the programs refuse the tasks of one cgroup.
type Rules struct {
	Cgroup   string  // the cgroup v2 directory (on a hybrid host, in the unified hierarchy)
	Entries  []Entry // directory entries that can't be made, removed or renamed
	NoAttach bool    // no ptrace-attach access to another process
	// CacheDir keeps what the kernel's BTF says, per boot (cache.go);
	// "" reads it every time.
	CacheDir string
}

// MaxName is the longest name or sub-name an Entry may have.
const MaxName = maxName

const maxName = 31

// Supported says why the guard can't run here, or nil.
func Supported() error {
	if unix.Geteuid() != 0 {
		return errors.New("BPF LSM programs need root (CAP_BPF and CAP_MAC_ADMIN)")
	}
	lsms, err := os.ReadFile("/sys/kernel/security/lsm")
	if err != nil {
		return fmt.Errorf("can't tell whether the BPF LSM is active: %w", err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(lsms)), ",") {
		if l == "bpf" {
			return nil
		}
	}
	return fmt.Errorf("the BPF LSM is not active (the kernel's LSMs: %s; boot with lsm=...,bpf)", strings.TrimSpace(string(lsms)))
}

// Probe says why the guard can't run here, or nil: Supported, then a
// program loaded (not attached).
func Probe() error {
	if err := Supported(); err != nil {
		return err
	}
	var v2 bool
	for _, d := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		var fs unix.Statfs_t
		v2 = v2 || (unix.Statfs(d, &fs) == nil && fs.Type == unix.CGROUP2_SUPER_MAGIC)
	}
	if !v2 {
		return errors.New("no cgroup v2 hierarchy: the programs tell a sandbox's processes by their cgroup v2")
	}
	info, err := readKernelBTF([]string{"bpf_lsm_ptrace_access_check"}, nil)
	if err != nil {
		return err
	}
	o := &objects{}
	defer o.close()
	return o.load("ptrace_access_check", info.funcs["bpf_lsm_ptrace_access_check"], asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}, false)
}

// Guard is one run's place in the programs: its cgroup's entries; Close
// takes them out (and detaches the programs, where they are the run's
// own).
type Guard struct {
	obj  *objects
	cgid uint64
	keys []key
}

// The hooks of the entry program, and where in each one's arguments the
// directory (a struct path *) and the entry (a struct dentry *) are; a
// rename has two pairs.
var entryHooks = []struct {
	hook  string
	pairs [][2]int
}{
	{"path_mknod", [][2]int{{0, 1}}},
	{"path_mkdir", [][2]int{{0, 1}}},
	{"path_symlink", [][2]int{{0, 1}}},
	{"path_link", [][2]int{{1, 2}}},
	{"path_rename", [][2]int{{0, 1}, {2, 3}}},
	{"path_unlink", [][2]int{{0, 1}}},
	{"path_rmdir", [][2]int{{0, 1}}},
}

// The struct members the entry program reads.
var fields = []string{"path.dentry", "dentry.d_inode", "dentry.d_parent", "dentry.d_name", "qstr.name", "inode.i_ino", "inode.i_sb", "super_block.s_dev"}

// Attach has the programs refuse r to the tasks of r.Cgroup: the
// programs brig keeps attached (shared.go), or, where they can't be kept,
// programs of the run's own.
func Attach(r Rules) (g *Guard, err error) {
	if len(r.Entries) == 0 && !r.NoAttach {
		return &Guard{}, nil
	}
	if err := Supported(); err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Stat(r.Cgroup, &st); err != nil {
		return nil, fmt.Errorf("bpf lsm: cgroup: %w", err)
	}
	// A cgroup's ID is its directory's inode number.
	keys, err := entryKeys(r.Entries, st.Ino)
	if err != nil {
		return nil, err
	}
	info, err := cachedBTF(r.CacheDir)
	if err != nil {
		return nil, err
	}
	obj, err := sharedObjects(info, r.Cgroup)
	if err != nil {
		return nil, err
	}
	g = &Guard{obj: obj, cgid: st.Ino}
	defer func() {
		if err != nil {
			g.Close()
			g = nil
		}
	}()
	// The cgroup first (with no flags: prune finds its entries by it if
	// brig is killed), the entries, then the flags that turn them on.
	if err := obj.put(obj.guarded, g.cgid, uint8(0)); err != nil {
		return nil, err
	}
	for k, v := range keys {
		g.keys = append(g.keys, k)
		if err := obj.put(obj.names, k[:], v); err != nil {
			return nil, err
		}
	}
	var flags uint8
	if len(keys) > 0 {
		flags |= flagEntries
	}
	if r.NoAttach {
		flags |= flagNoAttach
	}
	if err := obj.put(obj.guarded, g.cgid, flags); err != nil {
		return nil, err
	}
	return g, nil
}

// A key: the run's cgroup ID (u64), the directory's inode (u64) and
// device (u32, the kernel's s_dev: mountinfo's major:minor), four bytes
// of zero, the name and the sub-name, each NUL-padded. The value: denyAll
// or mkdirOnly.
const (
	inoAt   = 8
	devAt   = 16
	nameAt  = 24
	subAt   = nameAt + maxName + 1
	keySize = subAt + maxName + 1

	denyAll   = 1
	mkdirOnly = 2
)

type key [keySize]byte

// entryKeys makes the map's keys and values, finding each directory's
// inode and its filesystem's device.
func entryKeys(es []Entry, cgid uint64) (map[key]uint8, error) {
	keys := map[key]uint8{}
	devs := map[uint64]uint32{} // mount ID → s_dev
	for _, e := range es {
		for _, n := range []string{e.Name, e.Sub} {
			if n == e.Sub && n == "" {
				continue
			}
			if n == "" || len(n) > maxName || strings.ContainsAny(n, "/\x00") || n == "." || n == ".." {
				return nil, fmt.Errorf("bpf lsm: %q in %s: not a name of at most %d bytes", n, e.Dir, maxName)
			}
		}
		var st unix.Statx_t
		if err := unix.Statx(unix.AT_FDCWD, e.Dir, 0, unix.STATX_INO|unix.STATX_MNT_ID, &st); err != nil {
			return nil, fmt.Errorf("bpf lsm: %s: %w", e.Dir, err)
		}
		if st.Mask&unix.STATX_MNT_ID == 0 {
			return nil, fmt.Errorf("bpf lsm: %s: the kernel gave no mount ID", e.Dir)
		}
		dev, ok := devs[st.Mnt_id]
		if !ok {
			var err error
			if dev, err = mountDev(st.Mnt_id); err != nil {
				return nil, fmt.Errorf("bpf lsm: %s: %w", e.Dir, err)
			}
			devs[st.Mnt_id] = dev
		}
		var k key
		binary.NativeEndian.PutUint64(k[0:], cgid)
		binary.NativeEndian.PutUint64(k[inoAt:], st.Ino)
		binary.NativeEndian.PutUint32(k[devAt:], dev)
		copy(k[nameAt:], e.Name)
		copy(k[subAt:], e.Sub)
		v := uint8(denyAll)
		if e.MkdirOnly {
			v = mkdirOnly
		}
		if old, ok := keys[k]; !ok || old == mkdirOnly {
			keys[k] = v // deny-all wins
		}
	}
	return keys, nil
}

// mountDev is the kernel's device number (s_dev) of the filesystem of the
// mount with this ID, from mountinfo: stat's st_dev can differ from it
// (btrfs subvolumes, overlayfs).
func mountDev(id uint64) (uint32, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return 0, err
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) < 3 || f[0] != fmt.Sprint(id) {
			continue
		}
		var major, minor uint32
		if _, err := fmt.Sscanf(f[2], "%d:%d", &major, &minor); err != nil {
			return 0, fmt.Errorf("mountinfo: %q: %w", f[2], err)
		}
		// The kernel's dev_t: MKDEV(major, minor) = major<<20 | minor.
		return major<<20 | minor, nil
	}
	return 0, fmt.Errorf("mount %d is not in mountinfo", id)
}

// offsets are the struct members' byte offsets in the running kernel.
type offsets struct {
	pathDentry, dInode, dParent, dName, iIno, iSb, sDev uint32
}

// Stack of the entry program: the key at fp-keyAt, a scratch word below,
// the task's cgroup ID below that.
const (
	keyAt     = (keySize + 7) / 8 * 8
	scratchAt = keyAt + 8
	cgroupAt  = scratchAt + 8
)

// The flags of a guarded cgroup.
const (
	flagEntries  = 1 // it has entries
	flagNoAttach = 2 // no ptrace-attach access
)

// entryProgram refuses (EACCES) the hook to a task of a cgroup guarded
// with entries when a (directory, entry) pair of its arguments is in the
// names map with the cgroup's ID: as (the directory, the entry's name),
// or as (the directory's parent, the
// directory's name, the entry's name). mkdir is the hook mkdirOnly
// entries allow. Each read goes through bpf_probe_read_kernel, whose
// failure leaves zeros: a key no entry has.
//
// Registers: r6 the hook's arguments, r7 the directory's dentry, r8 an
// inode, r9 the entry's name.
func entryProgram(guarded, names int, off offsets, pairs [][2]int, mkdir bool) asm.Instructions {
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.FnGetCurrentCgroupId.Call(),
		asm.StoreMem(asm.R10, -cgroupAt, asm.R0, asm.DWord),
		asm.LoadMapPtr(asm.R1, guarded),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, -cgroupAt),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "allow"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.Byte),
		asm.And.Imm(asm.R1, flagEntries),
		asm.JEq.Imm(asm.R1, 0, "allow"),
	}
	// read copies n bytes from the kernel address in r3 plus add to fp-at.
	read := func(at int16, n int32, add uint32) asm.Instructions {
		return asm.Instructions{
			asm.Add.Imm(asm.R3, int32(add)),
			asm.Mov.Reg(asm.R1, asm.R10),
			asm.Add.Imm(asm.R1, int32(-at)),
			asm.Mov.Imm(asm.R2, n),
			asm.FnProbeReadKernel.Call(),
		}
	}
	// pointer reads 8 bytes at r3 plus add into r3.
	pointer := func(add uint32) asm.Instructions {
		return append(read(scratchAt, 8, add), asm.LoadMem(asm.R3, asm.R10, -scratchAt, asm.DWord))
	}
	// zero zeroes the key and puts the cgroup's ID first.
	zero := func() (out asm.Instructions) {
		for i := int16(8); i < keyAt; i += 8 {
			out = append(out, asm.StoreImm(asm.R10, -keyAt+i, 0, asm.DWord))
		}
		return append(out,
			asm.LoadMem(asm.R1, asm.R10, -cgroupAt, asm.DWord),
			asm.StoreMem(asm.R10, -keyAt, asm.R1, asm.DWord))
	}
	// inode puts the inode and device of the dentry in r3 into the key.
	inode := func() asm.Instructions {
		out := pointer(off.dInode)
		out = append(out, asm.Mov.Reg(asm.R8, asm.R3))
		out = append(out, read(keyAt-inoAt, 8, off.iIno)...)
		out = append(out, asm.Mov.Reg(asm.R3, asm.R8))
		out = append(out, pointer(off.iSb)...)
		return append(out, read(keyAt-devAt, 4, off.sDev)...)
	}
	// str copies the string at r3 into the key at at.
	str := func(at int) asm.Instructions {
		return asm.Instructions{
			asm.Mov.Reg(asm.R1, asm.R10),
			asm.Add.Imm(asm.R1, int32(-keyAt+at)),
			asm.Mov.Imm(asm.R2, maxName+1),
			asm.FnProbeReadKernelStr.Call(),
		}
	}
	// look refuses if the key is in the map (unless mkdir, of an entry
	// that allows it), else goes on to next.
	look := func(next string) asm.Instructions {
		out := asm.Instructions{
			asm.LoadMapPtr(asm.R1, names),
			asm.Mov.Reg(asm.R2, asm.R10),
			asm.Add.Imm(asm.R2, -keyAt),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, next),
		}
		if mkdir {
			out = append(out,
				asm.LoadMem(asm.R1, asm.R0, 0, asm.Byte),
				asm.JEq.Imm(asm.R1, mkdirOnly, next))
		}
		return append(out, asm.Ja.Label("deny"))
	}
	for i, p := range pairs {
		l2, next := fmt.Sprintf("level2_%d", i), fmt.Sprintf("next_%d", i)
		insns = append(insns, zero()...)
		// (the directory, the entry)
		insns = append(insns, asm.Mov.Reg(asm.R3, asm.R6))
		insns = append(insns, pointer(uint32(8*p[0]))...) // the struct path *
		insns = append(insns, pointer(off.pathDentry)...)
		insns = append(insns, asm.Mov.Reg(asm.R7, asm.R3))
		insns = append(insns, inode()...)
		insns = append(insns, asm.Mov.Reg(asm.R3, asm.R6))
		insns = append(insns, pointer(uint32(8*p[1]))...) // the struct dentry *
		insns = append(insns, pointer(off.dName)...)
		insns = append(insns, asm.Mov.Reg(asm.R9, asm.R3))
		insns = append(insns, str(nameAt)...)
		insns = append(insns, look(l2)...)
		// (the directory's parent, the directory's name, the entry)
		insns = append(insns, zero()...)
		n := len(zero())
		insns[len(insns)-n] = insns[len(insns)-n].WithSymbol(l2)
		insns = append(insns, asm.Mov.Reg(asm.R3, asm.R7))
		insns = append(insns, pointer(off.dParent)...)
		insns = append(insns, inode()...)
		insns = append(insns, asm.Mov.Reg(asm.R3, asm.R7))
		insns = append(insns, pointer(off.dName)...)
		insns = append(insns, str(nameAt)...)
		insns = append(insns, asm.Mov.Reg(asm.R3, asm.R9))
		insns = append(insns, str(subAt)...)
		insns = append(insns, look(next)...)
		insns = append(insns, asm.Mov.Imm(asm.R0, 0).WithSymbol(next))
	}
	return append(insns,
		asm.Ja.Label("allow"),
		asm.Mov.Imm(asm.R0, -int32(unix.EACCES)).WithSymbol("deny"),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("allow"),
		asm.Return(),
	)
}

// ptraceModeAttach is PTRACE_MODE_ATTACH (include/linux/ptrace.h).
const ptraceModeAttach = 0x02

// attachProgram refuses (EPERM) ptrace_access_check in PTRACE_MODE_ATTACH
// to a task of a cgroup guarded with flagNoAttach.
func attachProgram(guarded int) asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R6, asm.R1, 8, asm.DWord), // mode
		asm.And.Imm(asm.R6, ptraceModeAttach),
		asm.JEq.Imm(asm.R6, 0, "allow"),
		asm.FnGetCurrentCgroupId.Call(),
		asm.StoreMem(asm.R10, -8, asm.R0, asm.DWord),
		asm.LoadMapPtr(asm.R1, guarded),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, -8),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "allow"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.Byte),
		asm.And.Imm(asm.R1, flagNoAttach),
		asm.JEq.Imm(asm.R1, 0, "allow"),
		asm.Mov.Imm(asm.R0, -int32(unix.EPERM)),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("allow"),
		asm.Return(),
	}
}

// progLoadAttr is union bpf_attr for BPF_PROG_LOAD, up to attach_btf_id
// (include/uapi/linux/bpf.h). The program is loaded by hand, not by
// cilium/ebpf, whose LSM programs name their hook and have it looked up
// in the kernel's BTF parsed whole (see btf.go).
type progLoadAttr struct {
	progType           uint32
	insnCnt            uint32
	insns              uint64
	license            uint64
	logLevel           uint32
	logSize            uint32
	logBuf             uint64
	kernVersion        uint32
	progFlags          uint32
	progName           [16]byte
	progIfindex        uint32
	expectedAttachType uint32
	progBTFFd          uint32
	funcInfoRecSize    uint32
	funcInfo           uint64
	funcInfoCnt        uint32
	lineInfoRecSize    uint32
	lineInfo           uint64
	lineInfoCnt        uint32
	attachBTFID        uint32
	attachProgFd       uint32
	_                  uint32
}

// rawTracepointAttr is union bpf_attr for BPF_RAW_TRACEPOINT_OPEN: with no
// name, it attaches an LSM program to the hook it was loaded for.
type rawTracepointAttr struct {
	name   uint64
	progFd uint32
	_      uint32
}

// load loads a program for the hook whose BTF ID is btfID, and attaches
// it if attach.
func (o *objects) load(hook string, btfID uint32, insns asm.Instructions, attach bool) error {
	var buf bytes.Buffer
	// In the host's order: the hosts brig is built for are little-endian.
	if err := insns.Marshal(&buf, binary.LittleEndian); err != nil {
		return fmt.Errorf("bpf lsm: %s: %w", hook, err)
	}
	code := buf.Bytes()
	license := []byte("GPL\x00")
	log := make([]byte, 64<<10)
	attr := progLoadAttr{
		progType: unix.BPF_PROG_TYPE_LSM, insnCnt: uint32(len(code) / asm.InstructionSize),
		insns: uint64(uintptr(unsafe.Pointer(&code[0]))), license: uint64(uintptr(unsafe.Pointer(&license[0]))),
		expectedAttachType: unix.BPF_LSM_MAC, attachBTFID: btfID,
	}
	copy(attr.progName[:len(attr.progName)-1], "brig_"+hook) // NUL-terminated, or EINVAL
	fd, err := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	defer runtime.KeepAlive(code)
	defer runtime.KeepAlive(license)
	defer runtime.KeepAlive(log)
	if err == unix.EPERM {
		return fmt.Errorf("bpf lsm: load the %s program: %w", hook, err)
	}
	if err != nil {
		// Again with the verifier's log, to say why.
		attr.logLevel, attr.logSize, attr.logBuf = 1, uint32(len(log)), uint64(uintptr(unsafe.Pointer(&log[0])))
		if _, err2 := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); err2 != nil {
			if i := bytes.IndexByte(log, 0); i > 0 {
				last := strings.TrimSpace(string(log[:i]))
				if j := strings.LastIndexByte(last, '\n'); j >= 0 {
					last = last[j+1:]
				}
				return fmt.Errorf("bpf lsm: load the %s program: %w (verifier: %s)", hook, err, last)
			}
		}
		return fmt.Errorf("bpf lsm: load the %s program: %w", hook, err)
	}
	o.progs = append(o.progs, fd)
	if !attach {
		return nil
	}
	ta := rawTracepointAttr{progFd: uint32(fd)}
	link, err := bpf(unix.BPF_RAW_TRACEPOINT_OPEN, unsafe.Pointer(&ta), unsafe.Sizeof(ta))
	if err != nil {
		return fmt.Errorf("bpf lsm: attach the %s program: %w", hook, err)
	}
	o.links = append(o.links, link)
	return nil
}

func bpf(cmd uintptr, attr unsafe.Pointer, size uintptr) (int, error) {
	fd, _, errno := unix.Syscall(unix.SYS_BPF, cmd, uintptr(attr), size)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil // the kernel makes BPF fds close-on-exec
}

// Close takes the run's entries out of the programs' maps (detaching
// the programs where they are the run's own).
func (g *Guard) Close() error {
	if g == nil || g.obj == nil {
		return nil
	}
	g.obj.guarded.Delete(g.cgid)
	for _, k := range g.keys {
		g.obj.names.Delete(k[:])
	}
	g.obj.close()
	g.obj = nil
	return nil
}

// Keep leaves the run's entries in the pinned programs' maps and closes
// the guard's fds: for a run that outlives brig (brig run -d). The next
// guarded run takes them out once the cgroup is gone. It says false, and
// does nothing, where the programs are the run's own (they would come off
// their hooks when brig exits): Close them.
func (g *Guard) Keep() bool {
	if g == nil || g.obj == nil || !g.obj.pinned {
		return false
	}
	g.obj.close()
	g.obj = nil
	return true
}

// Active says whether the guard holds the run's entries.
func (g *Guard) Active() bool { return g != nil && g.obj != nil }
