// Package bpflsm holds the sandbox's BPF LSM programs: the two refusals
// no other layer can make. A name that doesn't exist can't be held
// read-only by a mount (there is nothing to mount on), and Landlock has
// no rule for one name inside a writable directory, so the protected
// names a writable path lacks (.bashrc, .git, ...) would be creatable;
// and a process may open /proc/PID/mem of a sibling with the same
// credentials, which seccomp can't see (it is an open). Two kinds of
// program, attached for one run to the kernel's LSM hooks, refuse them to
// the tasks of the sandbox's cgroup alone:
//
//   - path_mknod, path_mkdir, path_symlink, path_link, path_rename,
//     path_unlink, path_rmdir: a directory entry in the rule set, (the
//     directory's device and inode, the name), can't be made, removed or
//     renamed to or from: EACCES. open(O_CREAT) goes through path_mknod.
//   - ptrace_access_check: no access in PTRACE_MODE_ATTACH to another
//     process (ptrace, /proc/PID/mem, process_vm_readv, pidfd_getfd;
//     the process's own threads are not asked): EPERM.
//
// It needs root (CAP_BPF and CAP_MAC_ADMIN), cgroup v2 for the sandbox
// (the programs ask bpf_current_task_under_cgroup), and "bpf" among the
// kernel's active LSMs. Each program costs every other process of the host
// one helper call per hook it passes.
package bpflsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/cilium/ebpf"
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
	info, err := readKernelBTF([]string{"bpf_lsm_ptrace_access_check"}, nil)
	if err != nil {
		return err
	}
	dir := "/sys/fs/cgroup"
	var fs unix.Statfs_t
	if unix.Statfs(dir, &fs) != nil || fs.Type != unix.CGROUP2_SUPER_MAGIC {
		dir = "/sys/fs/cgroup/unified" // a hybrid host's
	}
	g := &Guard{}
	defer g.Close()
	cg, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("no cgroup v2: %w", err)
	}
	defer cg.Close()
	m, err := g.newMap(ebpf.MapSpec{Name: "brig_lsm_cgroup", Type: ebpf.CGroupArray, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		return err
	}
	if err := m.Put(uint32(0), uint32(cg.Fd())); err != nil {
		return fmt.Errorf("no cgroup v2: %w", err)
	}
	return g.loadAttach("ptrace_access_check", info.funcs["bpf_lsm_ptrace_access_check"], attachProgram(m.FD()), false)
}

// Guard is the programs of one run; Close detaches them.
type Guard struct {
	maps  []*ebpf.Map
	progs []int // program fds
	links []int // link fds
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

// Attach loads and attaches the programs r needs: nothing when it has
// neither entries nor NoAttach.
func Attach(r Rules) (g *Guard, err error) {
	if len(r.Entries) == 0 && !r.NoAttach {
		return &Guard{}, nil
	}
	if err := Supported(); err != nil {
		return nil, err
	}
	keys, err := entryKeys(r.Entries)
	if err != nil {
		return nil, err
	}
	info, err := cachedBTF(r.CacheDir)
	if err != nil {
		return nil, err
	}
	g = &Guard{}
	defer func() {
		if err != nil {
			g.Close()
			g = nil
		}
	}()
	// A program that does nothing first: where the kernel refuses LSM
	// programs (EPERM from a host's own policy), that is all it costs.
	first := "ptrace_access_check"
	if len(keys) > 0 {
		first = entryHooks[0].hook
	}
	if err := g.loadAttach(first, info.funcs["bpf_lsm_"+first], asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}, false); err != nil {
		return nil, err
	}
	cg, err := os.Open(r.Cgroup)
	if err != nil {
		return nil, fmt.Errorf("bpf lsm: cgroup: %w", err)
	}
	defer cg.Close()
	cgroup, err := g.newMap(ebpf.MapSpec{Name: "brig_lsm_cgroup", Type: ebpf.CGroupArray, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		return nil, err
	}
	if err := cgroup.Put(uint32(0), uint32(cg.Fd())); err != nil {
		return nil, fmt.Errorf("bpf lsm: cgroup %s: %w", r.Cgroup, err)
	}
	if len(keys) > 0 {
		entries, err := g.newMap(ebpf.MapSpec{Name: "brig_lsm_names", Type: ebpf.Hash, KeySize: keySize, ValueSize: 1, MaxEntries: uint32(len(keys))})
		if err != nil {
			return nil, err
		}
		for k, v := range keys {
			if err := entries.Put(k[:], v); err != nil {
				return nil, fmt.Errorf("bpf lsm: %w", err)
			}
		}
		off := offsets{
			pathDentry: info.members["path.dentry"], dInode: info.members["dentry.d_inode"], dParent: info.members["dentry.d_parent"],
			dName: info.members["dentry.d_name"] + info.members["qstr.name"], iIno: info.members["inode.i_ino"],
			iSb: info.members["inode.i_sb"], sDev: info.members["super_block.s_dev"],
		}
		for _, h := range entryHooks {
			if err := g.load(h.hook, info.funcs["bpf_lsm_"+h.hook], entryProgram(cgroup.FD(), entries.FD(), off, h.pairs, h.hook == "path_mkdir")); err != nil {
				return nil, err
			}
		}
	}
	if r.NoAttach {
		if err := g.load("ptrace_access_check", info.funcs["bpf_lsm_ptrace_access_check"], attachProgram(cgroup.FD())); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// A key: the directory's inode (u64) and device (u32, the kernel's
// s_dev: mountinfo's major:minor), four bytes of zero, the name and the
// sub-name, each NUL-padded. The value: denyAll or mkdirOnly.
const (
	nameAt  = 16
	subAt   = nameAt + maxName + 1
	keySize = subAt + maxName + 1

	denyAll   = 1
	mkdirOnly = 2
)

type key [keySize]byte

// entryKeys makes the map's keys and values, finding each directory's
// inode and its filesystem's device.
func entryKeys(es []Entry) (map[key]uint8, error) {
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
		binary.NativeEndian.PutUint64(k[0:], st.Ino)
		binary.NativeEndian.PutUint32(k[8:], dev)
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

// Stack of the entry program: the key at fp-keyAt, a scratch word below.
const (
	keyAt     = (keySize + 7) / 8 * 8
	scratchAt = keyAt + 8
)

// entryProgram refuses (EACCES) the hook to a task of the cgroup when a
// (directory, entry) pair of its arguments is in the names map: as (the
// directory, the entry's name), or as (the directory's parent, the
// directory's name, the entry's name). mkdir is the hook mkdirOnly
// entries allow. Each read goes through bpf_probe_read_kernel, whose
// failure leaves zeros: a key no entry has.
//
// Registers: r6 the hook's arguments, r7 the directory's dentry, r8 an
// inode, r9 the entry's name.
func entryProgram(cgroup, names int, off offsets, pairs [][2]int, mkdir bool) asm.Instructions {
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMapPtr(asm.R1, cgroup),
		asm.Mov.Imm(asm.R2, 0),
		asm.FnCurrentTaskUnderCgroup.Call(),
		asm.JNE.Imm(asm.R0, 1, "allow"),
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
	zero := func() (out asm.Instructions) {
		for i := int16(0); i < keyAt; i += 8 {
			out = append(out, asm.StoreImm(asm.R10, -keyAt+i, 0, asm.DWord))
		}
		return out
	}
	// inode puts the inode and device of the dentry in r3 into the key.
	inode := func() asm.Instructions {
		out := pointer(off.dInode)
		out = append(out, asm.Mov.Reg(asm.R8, asm.R3))
		out = append(out, read(keyAt, 8, off.iIno)...)
		out = append(out, asm.Mov.Reg(asm.R3, asm.R8))
		out = append(out, pointer(off.iSb)...)
		return append(out, read(keyAt-8, 4, off.sDev)...)
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
		insns[len(insns)-keyAt/8] = insns[len(insns)-keyAt/8].WithSymbol(l2)
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
// to a task of the cgroup.
func attachProgram(cgroup int) asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R6, asm.R1, 8, asm.DWord), // mode
		asm.And.Imm(asm.R6, ptraceModeAttach),
		asm.JEq.Imm(asm.R6, 0, "allow"),
		asm.LoadMapPtr(asm.R1, cgroup),
		asm.Mov.Imm(asm.R2, 0),
		asm.FnCurrentTaskUnderCgroup.Call(),
		asm.JNE.Imm(asm.R0, 1, "allow"),
		asm.Mov.Imm(asm.R0, -int32(unix.EPERM)),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("allow"),
		asm.Return(),
	}
}

// newMap makes a map the guard frees on close.
func (g *Guard) newMap(spec ebpf.MapSpec) (*ebpf.Map, error) {
	m, err := ebpf.NewMap(&spec)
	if err != nil {
		return nil, fmt.Errorf("bpf lsm: map: %w", err)
	}
	g.maps = append(g.maps, m)
	return m, nil
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

// load loads a program for the hook whose BTF ID is btfID and attaches it.
func (g *Guard) load(hook string, btfID uint32, insns asm.Instructions) error {
	return g.loadAttach(hook, btfID, insns, true)
}

// loadAttach loads a program, and attaches it if attach.
func (g *Guard) loadAttach(hook string, btfID uint32, insns asm.Instructions, attach bool) error {
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
	g.progs = append(g.progs, fd)
	if !attach {
		return nil
	}
	ta := rawTracepointAttr{progFd: uint32(fd)}
	link, err := bpf(unix.BPF_RAW_TRACEPOINT_OPEN, unsafe.Pointer(&ta), unsafe.Sizeof(ta))
	if err != nil {
		return fmt.Errorf("bpf lsm: attach the %s program: %w", hook, err)
	}
	g.links = append(g.links, link)
	return nil
}

func bpf(cmd uintptr, attr unsafe.Pointer, size uintptr) (int, error) {
	fd, _, errno := unix.Syscall(unix.SYS_BPF, cmd, uintptr(attr), size)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil // the kernel makes BPF fds close-on-exec
}

// Close detaches the programs and frees the maps. Each detach waits for
// an RCU grace period: the links go at once, side by side.
func (g *Guard) Close() error {
	if g == nil {
		return nil
	}
	var wg sync.WaitGroup
	for _, l := range g.links {
		wg.Add(1)
		go func() { defer wg.Done(); unix.Close(l) }()
	}
	wg.Wait()
	for _, p := range g.progs {
		unix.Close(p)
	}
	for _, m := range g.maps {
		m.Close()
	}
	g.links, g.progs, g.maps = nil, nil, nil
	return nil
}

// Active says whether the guard holds any program.
func (g *Guard) Active() bool { return g != nil && len(g.links) > 0 }
