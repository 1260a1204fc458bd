package bpflsm

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// Attaching an LSM program patches the hook's trampoline, and detaching
// it waits for the kernel to be done with the old one: under the VM
// lane's emulation, 132 ms and 136 ms for one program, 200 ms and 1 s for
// all eight, on every run. So the programs are attached once and kept:
// pinned in the BPF filesystem (/sys/fs/bpf/brig-lsm-<layout>/: the
// maps, and the links that hold the programs on their hooks), shared by
// every run until the host reboots (or the directory is removed, which
// detaches them). A run only adds its cgroup's entries to the maps and
// takes them out at the end. Where there is no BPF filesystem mounted, a
// run attaches programs of its own, as before, and pays that.
//
// What every other process of the host pays, from the first guarded run
// on: each hook they pass (a create, a link, a rename, an unlink, a
// ptrace-attach check) looks its cgroup's ID up in a hash map.

// objects are the maps and programs runs share: the programs look the
// task's cgroup (bpf_get_current_cgroup_id) up in guarded (cgroup ID →
// flags), and then the entries, keyed with the cgroup's ID, in names.
// (One flat map: a map of maps per run would be simpler to take out, but
// each change of a map of maps waits for an RCU grace period.)
type objects struct {
	guarded, names *ebpf.Map
	progs, links   []int
	pinned         bool
}

const (
	// maxRuns bounds the runs guarded at once (and those whose brig was
	// killed before it took its entries out, until pruned).
	maxRuns = 4096
	// maxNames bounds the entries of all runs.
	maxNames = 65536
	// pinFormat changes whenever the programs or maps change.
	pinFormat = "2"
	bpffs     = "/sys/fs/bpf"
)

// newObjects makes the maps and loads and attaches every program.
func newObjects(info *btfInfo) (o *objects, err error) {
	o = &objects{}
	defer func() {
		if err != nil {
			o.close()
		}
	}()
	if o.guarded, err = ebpf.NewMap(&ebpf.MapSpec{Name: "brig_lsm_cgroups", Type: ebpf.Hash, KeySize: 8, ValueSize: 1, MaxEntries: maxRuns}); err != nil {
		return nil, fmt.Errorf("bpf lsm: map: %w", err)
	}
	if o.names, err = ebpf.NewMap(&ebpf.MapSpec{Name: "brig_lsm_names", Type: ebpf.Hash, KeySize: keySize, ValueSize: 1,
		MaxEntries: maxNames, Flags: unix.BPF_F_NO_PREALLOC}); err != nil {
		return nil, fmt.Errorf("bpf lsm: map: %w", err)
	}
	off := offsets{
		pathDentry: info.members["path.dentry"], dInode: info.members["dentry.d_inode"], dParent: info.members["dentry.d_parent"],
		dName: info.members["dentry.d_name"] + info.members["qstr.name"], iIno: info.members["inode.i_ino"],
		iSb: info.members["inode.i_sb"], sDev: info.members["super_block.s_dev"],
	}
	for _, h := range entryHooks {
		if err := o.load(h.hook, info.funcs["bpf_lsm_"+h.hook], entryProgram(o.guarded.FD(), o.names.FD(), off, h.pairs, h.hook == "path_mkdir"), true); err != nil {
			return nil, err
		}
	}
	if err := o.load("ptrace_access_check", info.funcs["bpf_lsm_ptrace_access_check"], attachProgram(o.guarded.FD()), true); err != nil {
		return nil, err
	}
	return o, nil
}

// linkNames are the pinned links' names, in newObjects' order.
func linkNames() []string {
	var ns []string
	for _, h := range entryHooks {
		ns = append(ns, "link_"+h.hook)
	}
	return append(ns, "link_ptrace_access_check")
}

// layoutDir is where this brig's objects are pinned for this kernel: the
// programs depend on the BTF's IDs and offsets, and on pinFormat.
func layoutDir(info *btfInfo) string {
	h := sha256.New()
	h.Write([]byte(pinFormat))
	for _, m := range []map[string]uint32{info.funcs, info.members} {
		var names []string
		for n := range m {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(h, "\x00%s=%d", n, m[n])
		}
	}
	return filepath.Join(bpffs, "brig-lsm-"+hex.EncodeToString(h.Sum(nil))[:16])
}

// Pinnable says whether the programs can be kept attached (pinned) for
// runs that outlive brig.
func Pinnable() bool {
	var fs unix.Statfs_t
	return unix.Statfs(bpffs, &fs) == nil && fs.Type == unix.BPF_FS_MAGIC
}

// sharedObjects gives the pinned objects, pinning them first if no run
// has; without a BPF filesystem, objects of the run's own. One lock for
// the host (the BPF filesystem's root) orders the runs of every state
// root.
func sharedObjects(info *btfInfo, cgroup string) (*objects, error) {
	if !Pinnable() {
		return ownObjects(info)
	}
	lock, err := unix.Open(bpffs, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("bpf lsm: %w", err)
	}
	defer unix.Close(lock)
	if err := unix.Flock(lock, unix.LOCK_EX); err != nil {
		return nil, fmt.Errorf("bpf lsm: lock %s: %w", bpffs, err)
	}
	dir := layoutDir(info)
	o, err := openPinned(dir)
	if err == nil {
		o.prune(cgroup)
		return o, nil
	}
	if !errors.Is(err, errIncomplete) && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	os.RemoveAll(dir) // incomplete: a run that died while pinning
	if o, err = ownObjects(info); err != nil {
		return nil, err
	}
	if err := o.pin(dir); err != nil {
		os.RemoveAll(dir)
		return o, nil // the run's own, then
	}
	o.pinned = true
	// Other layouts' objects (another brig, or one before) that no live
	// run uses: unpinned, their programs come off their hooks.
	if old, _ := filepath.Glob(filepath.Join(bpffs, "brig-lsm-*")); len(old) > 0 {
		for _, d := range old {
			if d == dir {
				continue
			}
			if other, err := openPinned(d); err == nil {
				other.prune(cgroup)
				var id uint64
				unused := other.guarded.NextKey(nil, &id) != nil
				other.close()
				if !unused {
					continue
				}
			}
			os.RemoveAll(d)
		}
	}
	return o, nil
}

// ownObjects loads a program that does nothing first: where the kernel
// refuses LSM programs (EPERM from a host's own policy), that is all it
// costs.
func ownObjects(info *btfInfo) (*objects, error) {
	probe := &objects{}
	err := probe.load(entryHooks[0].hook, info.funcs["bpf_lsm_"+entryHooks[0].hook], asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}, false)
	probe.close()
	if err != nil {
		return nil, err
	}
	return newObjects(info)
}

// pin pins the maps, then the links: a directory with every link is
// complete.
func (o *objects) pin(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	if err := o.guarded.Pin(filepath.Join(dir, "cgroups")); err != nil {
		return err
	}
	if err := o.names.Pin(filepath.Join(dir, "names")); err != nil {
		return err
	}
	for i, n := range linkNames() {
		if err := objPin(o.links[i], filepath.Join(dir, n)); err != nil {
			return err
		}
	}
	return nil
}

var errIncomplete = errors.New("bpf lsm: pinned objects incomplete")

// openPinned opens the maps of a complete directory, and holds its links
// for the run (so that an unpinning doesn't take them off their hooks
// under it).
func openPinned(dir string) (o *objects, err error) {
	if _, err := os.Lstat(dir); err != nil {
		return nil, err
	}
	o = &objects{pinned: true}
	defer func() {
		if err != nil {
			o.close()
		}
	}()
	for _, n := range linkNames() {
		fd, err := objGet(filepath.Join(dir, n))
		if errors.Is(err, unix.ENOENT) {
			return nil, errIncomplete
		}
		if err != nil {
			return nil, err
		}
		o.links = append(o.links, fd)
	}
	if o.guarded, err = ebpf.LoadPinnedMap(filepath.Join(dir, "cgroups"), nil); err != nil {
		return nil, err
	}
	if o.names, err = ebpf.LoadPinnedMap(filepath.Join(dir, "names"), nil); err != nil {
		return nil, err
	}
	return o, nil
}

// put adds key → value to m; a full map is pruned of dead runs and tried
// again.
func (o *objects) put(m *ebpf.Map, key, value any) error {
	err := m.Put(key, value)
	if errors.Is(err, unix.E2BIG) {
		o.prune("")
		err = m.Put(key, value)
	}
	if err != nil {
		return fmt.Errorf("bpf lsm: %w", err)
	}
	return nil
}

// prune takes out the entries of cgroups that are gone (their brig was
// killed before it took them out). A cgroup's ID is a file handle of the
// cgroup v2 filesystem that holds cgroup (any cgroup v2 directory).
func (o *objects) prune(cgroup string) {
	if cgroup == "" {
		cgroup = "/sys/fs/cgroup"
		var fs unix.Statfs_t
		if unix.Statfs(cgroup, &fs) != nil || fs.Type != unix.CGROUP2_SUPER_MAGIC {
			cgroup = "/sys/fs/cgroup/unified"
		}
	}
	mnt, err := unix.Open(cgroup, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(mnt)
	gone := func(id uint64) bool {
		var h [8]byte
		binary.NativeEndian.PutUint64(h[:], id)
		fd, err := unix.OpenByHandleAt(mnt, unix.NewFileHandle(0xfe, h[:]), unix.O_RDONLY|unix.O_CLOEXEC) // FILEID_KERNFS
		if err == nil {
			unix.Close(fd)
		}
		return errors.Is(err, unix.ESTALE) || errors.Is(err, unix.ENOENT)
	}
	dead := map[uint64]bool{}
	var id uint64
	for err := o.guarded.NextKey(nil, &id); err == nil; err = o.guarded.NextKey(id, &id) {
		if gone(id) {
			dead[id] = true
		}
	}
	if len(dead) == 0 {
		return
	}
	var k, next key
	var keys []key
	for err := o.names.NextKey(nil, &next); err == nil; err = o.names.NextKey(k[:], &next) {
		k = next
		if dead[binary.NativeEndian.Uint64(k[:])] {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		o.names.Delete(k[:])
	}
	for id := range dead {
		o.guarded.Delete(id)
	}
}

// close closes the fds: the run's own programs come off their hooks (side
// by side: each waits for the kernel), pinned ones stay.
func (o *objects) close() {
	var wg sync.WaitGroup
	for _, l := range o.links {
		wg.Add(1)
		go func() { defer wg.Done(); unix.Close(l) }()
	}
	wg.Wait()
	for _, p := range o.progs {
		unix.Close(p)
	}
	for _, m := range []*ebpf.Map{o.guarded, o.names} {
		if m != nil {
			m.Close()
		}
	}
	o.links, o.progs, o.guarded, o.names = nil, nil, nil, nil
}

// objGet opens the object pinned at path (BPF_OBJ_GET).
func objGet(path string) (int, error) {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return -1, err
	}
	attr := struct {
		pathname uint64
		fd       uint32
		flags    uint32
	}{pathname: uint64(uintptr(unsafe.Pointer(p)))}
	fd, err := bpf(unix.BPF_OBJ_GET, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	runtime.KeepAlive(p)
	return fd, err
}

// objPin pins fd at path (BPF_OBJ_PIN).
func objPin(fd int, path string) error {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return err
	}
	attr := struct {
		pathname uint64
		fd       uint32
		flags    uint32
	}{pathname: uint64(uintptr(unsafe.Pointer(p))), fd: uint32(fd)}
	_, err = bpf(unix.BPF_OBJ_PIN, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	runtime.KeepAlive(p)
	if err != nil {
		return fmt.Errorf("bpf lsm: pin %s: %w", strings.TrimPrefix(path, bpffs+"/"), err)
	}
	return nil
}
