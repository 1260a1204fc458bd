package recorder

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"brig/internal/seccomp"
)

// The file list of `brig run --report` without root, where the eBPF
// Refusals can't be loaded: the listener is also sent the path-taking
// calls of pathCalls (x86-64), reads each path from the caller's memory
// and, before letting the call go on, looks the path up itself in the
// caller's view (its root and working directory, from /proc): a path
// that doesn't resolve there is an ENOENT the call is about to meet, a
// write where the path (or, to create it, its directory) is on a
// read-only mount an EROFS. It is a prediction, made just before the
// call on the caller's own view, so it agrees with the kernel but where
// another process changes the path in between. Landlock's EACCES is not
// predicted (the sandbox's protected paths are read-only mounts, seen as
// EROFS). Every such call waits for the listener: this costs what
// `--recorder seccomp` costs on a path-heavy command, and only without
// root.

// argIndex maps a pathCall's pt_regs offset to its argument's index.
func argIndex(reg int32) int {
	switch reg {
	case regDI:
		return 0
	case regSI:
		return 1
	case regDX:
		return 2
	case regR10:
		return 3
	}
	return -1
}

// pathCallNames are the calls a path-watching listener is sent.
func pathCallNames() []string {
	names := make([]string, 0, len(pathCalls))
	for _, c := range pathCalls {
		names = append(names, c.name)
	}
	sort.Strings(names)
	return names
}

// creates are the calls that make the name they are given: on an
// existing one they fail with EEXIST, not a refusal of the sandbox's.
var creates = map[string]bool{"mkdir": true, "mkdirat": true, "mknod": true, "mknodat": true,
	"symlink": true, "symlinkat": true, "link": true, "linkat": true}

// inDir are the calls that change a directory's entries: the kernel asks
// the directory's mount for write access before it looks the name up
// (so a missing name on a read-only mount is EROFS too), creates aside.
var inDir = map[string]bool{"unlink": true, "unlinkat": true, "rmdir": true,
	"rename": true, "renameat": true, "renameat2": true}

// flagsArg is the argument holding a call's flags, as (index, kind):
// open flags, or AT_ flags (AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH).
var flagsArg = map[string]struct {
	i    int
	open bool
}{
	"open": {1, true}, "openat": {2, true},
	"newfstatat": {3, false}, "statx": {2, false}, "faccessat2": {3, false},
	"fchownat": {4, false}, "fchmodat2": {3, false}, "execveat": {4, false},
}

// nofollow are the calls that act on a symlink itself, not its target.
var nofollow = map[string]bool{"lstat": true, "lchown": true, "readlink": true, "readlinkat": true,
	"unlink": true, "unlinkat": true, "rmdir": true, "rename": true, "renameat": true, "renameat2": true}

// rootDir is the handle on the container's root that lookups start from:
// opened from the first caller's /proc/PID/root and kept (every process
// of the container has that root; none may chroot, as brig run drops
// CAP_SYS_CHROOT; opening it for every call cost a third of the look).
type rootDir struct {
	mu sync.Mutex
	fd int // -1: not opened yet
}

func newRootDir() *rootDir { return &rootDir{fd: -1} }

// get is the root of the container whose process pid is (opened once).
func (r *rootDir) get(pid int) (int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fd < 0 {
		fd, err := unix.Open(fmt.Sprintf("/proc/%d/root", pid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, false
		}
		r.fd = fd
	}
	return r.fd, true
}

func (r *rootDir) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fd >= 0 {
		unix.Close(r.fd)
		r.fd = -1
	}
}

// notifValid says whether a notification is still pending (its caller
// still waits in the call), so what was read from the caller is its.
var notifValid = func(fd int, id uint64) bool {
	return ioctl(fd, unix.SECCOMP_IOCTL_NOTIF_ID_VALID, unsafe.Pointer(&id)) == nil
}

type pathKey struct {
	path  string
	errno unix.Errno
	call  string
	write bool
}

// watchPath looks at one path-taking call the profile allows; the caller
// answers it (continue) afterwards.
func (l *Listener) watchPath(fd int, n *seccompNotif) {
	if n.Arch != seccomp.AuditArchX86_64 || n.Nr&x32Bit != 0 {
		return // the table is x86-64's
	}
	c := callOf(n)
	pc, ok := pathCalls[int32(c.Nr)]
	if !ok {
		return
	}
	l.mu.Lock()
	if !l.pathsArmed {
		// brig's init makes calls under the filter before the program's
		// execve: the recording starts there, as the eBPF one does.
		if pc.name != "execve" && pc.name != "execveat" {
			l.mu.Unlock()
			return
		}
		l.pathsArmed = true
	}
	l.mu.Unlock()
	k, ok := predict(fd, n, pc, l.root)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, seen := l.refused[k]; !seen && len(l.refused) >= refusalEntries {
		l.refusedDropped++
		return
	}
	l.refused[k]++
}

// pathArgs is a path-taking call's path (absolute, in the caller's view,
// as given: not cleaned) and flags, read from the caller.
type pathArgs struct {
	raw    string
	flags  uint64
	isOpen bool
}

// readPathArgs reads the call's path and flags from the caller; false
// when the call is left out (its path unreadable, empty or relative to a
// directory gone, an O_PATH open, openat2 with its own resolve rules).
func readPathArgs(fd int, n *seccompNotif, pc pathCall) (pathArgs, bool) {
	pid := int(n.Pid)
	pathArg, dirArg := argIndex(pc.reg), argIndex(pc.dir)
	if pathArg < 0 {
		return pathArgs{}, false
	}
	var a pathArgs
	if f, ok := flagsArg[pc.name]; ok {
		a.flags = n.Args[f.i]
	}
	a.isOpen = flagsArg[pc.name].open || pc.name == "openat2"
	if pc.name == "openat2" {
		// struct open_how: flags, mode, resolve (u64 each); a caller's
		// own resolve rules (RESOLVE_IN_ROOT, _BENEATH, ...) are not
		// followed here: such a call is left out
		var b [24]byte
		if readMem(pid, n.Args[2], b[:]) != len(b) {
			return pathArgs{}, false
		}
		a.flags = *(*uint64)(unsafe.Pointer(&b[0]))
		if *(*uint64)(unsafe.Pointer(&b[16])) != 0 {
			return pathArgs{}, false
		}
	}
	if a.isOpen && a.flags&unix.O_PATH != 0 {
		return pathArgs{}, false // an O_PATH open neither reads nor writes
	}
	// PATH_MAX: a longer path fails (ENAMETOOLONG) without the sandbox.
	// Most paths are short: 256 bytes first, the rest only if needed.
	var buf [unix.PathMax]byte
	got := readMem(pid, n.Args[pathArg], buf[:256])
	end := bytes.IndexByte(buf[:got], 0)
	if end < 0 && got == 256 {
		got = 256 + readMem(pid, n.Args[pathArg]+256, buf[256:])
		end = bytes.IndexByte(buf[:got], 0)
	}
	// the read is trusted only if the call is still the one notified
	if got <= 0 || !notifValid(fd, n.ID) {
		return pathArgs{}, false
	}
	if end <= 0 {
		return pathArgs{}, false // unterminated, or empty (AT_EMPTY_PATH: the fd itself)
	}
	a.raw = string(buf[:end])
	// The lookups take the path as the kernel does (a symlink then ..
	// is followed, a trailing slash asks for a directory); reports and
	// records name it cleaned.
	if !filepath.IsAbs(a.raw) {
		base := fmt.Sprintf("/proc/%d/cwd", pid)
		if dirArg >= 0 {
			if dfd := int32(n.Args[dirArg]); dfd != unix.AT_FDCWD {
				base = fmt.Sprintf("/proc/%d/fd/%d", pid, dfd)
			}
		}
		dir, err := os.Readlink(base)
		if err != nil || !filepath.IsAbs(dir) || strings.HasSuffix(dir, " (deleted)") {
			return pathArgs{}, false // a bad or removed directory: not the sandbox's doing
		}
		a.raw = dir + "/" + a.raw
	}
	return a, true
}

// predict reads the call's path and says whether the sandbox will refuse
// it, and how: the kernel's order of checks, as far as a missing name and
// a read-only mount go. Anything it can't tell is left out.
func predict(fd int, n *seccompNotif, pc pathCall, roots *rootDir) (pathKey, bool) {
	a, ok := readPathArgs(fd, n, pc)
	if !ok {
		return pathKey{}, false
	}
	raw, flags, isOpen := a.raw, a.flags, a.isOpen
	// writes: the file's content or attributes (open for writing or
	// truncating, creat, truncate, chmod, chown); makes: a new name
	writes := pc.write && !creates[pc.name] && !inDir[pc.name] ||
		isOpen && (flags&unix.O_ACCMODE != unix.O_RDONLY || flags&unix.O_TRUNC != 0)
	makes := creates[pc.name] || pc.name == "creat" || isOpen && flags&unix.O_CREAT != 0
	excl := creates[pc.name] || isOpen && flags&(unix.O_CREAT|unix.O_EXCL) == unix.O_CREAT|unix.O_EXCL
	nofollowLast := nofollow[pc.name] || excl || isOpen && flags&unix.O_NOFOLLOW != 0 ||
		!isOpen && flags&unix.AT_SYMLINK_NOFOLLOW != 0
	k := pathKey{path: filepath.Clean(raw), call: pc.name, write: writes || makes || inDir[pc.name]}
	for _, skip := range []string{"/proc", "/sys", "/dev"} {
		if k.path == skip || strings.HasPrefix(k.path, skip+"/") {
			return pathKey{}, false
		}
	}
	root, ok := roots.get(int(n.Pid))
	if !ok {
		return pathKey{}, false
	}
	parent := func() (exists, ro bool, err error) {
		dir := strings.TrimRight(raw, "/")
		if dir == "" {
			return true, false, nil // the root itself: nothing above it
		}
		d, ro, _, err := lookIn(root, filepath.Dir(dir), false)
		return d, ro, err
	}
	if inDir[pc.name] {
		// the directory's mount is asked first, then the name looked up
		d, ro, err := parent()
		switch {
		case err != nil:
			return pathKey{}, false
		case !d:
			k.errno = unix.ENOENT
		case ro:
			k.errno = unix.EROFS
		default:
			e, _, _, err := lookIn(root, raw, true)
			if err != nil || e || pc.name != "unlink" && pc.name != "unlinkat" && pc.name != "rmdir" {
				return pathKey{}, false // there, or a rename's new name: made
			}
			k.errno = unix.ENOENT
		}
		return k, true
	}
	if !writes && !makes {
		// a lookup (most calls): only whether it is there matters
		if there, err := present(root, raw, nofollowLast); err != nil || there {
			return pathKey{}, false
		}
	}
	exists, ro, mode, err := lookIn(root, raw, nofollowLast)
	if err != nil {
		return pathKey{}, false
	}
	if !exists {
		// a dangling symlink: its target is what is missing (or, with
		// O_CREAT, made); one into /proc (brig's view is not the
		// caller's there) can't be told
		if !nofollowLast {
			if l, _, m, err := lookIn(root, raw, true); err != nil || l && (m != unix.S_IFLNK || makes || danglesIntoProc(root, raw)) {
				return pathKey{}, false
			} else if l {
				k.errno = unix.ENOENT
				return k, true
			}
		}
		if !makes {
			k.errno = unix.ENOENT
			return k, true
		}
		d, dro, err := parent()
		switch {
		case err != nil:
			return pathKey{}, false
		case !d:
			k.errno = unix.ENOENT
		case dro:
			k.errno = unix.EROFS
		default:
			return pathKey{}, false // made
		}
		return k, true
	}
	// there: a create of it fails with EEXIST; a write to it on a
	// read-only mount with EROFS, but a directory opened for writing
	// fails with EISDIR, and a device or fifo opened for writing is
	// not written to the mount
	if excl || !writes || !ro || mode != unix.S_IFREG && mode != unix.S_IFDIR && mode != unix.S_IFLNK ||
		isOpen && mode == unix.S_IFDIR {
		return pathKey{}, false
	}
	k.errno = unix.EROFS
	return k, true
}

// danglesIntoProc says whether the symlink at p points into /proc.
func danglesIntoProc(root int, p string) bool {
	fd, err := openIn(root, p, unix.O_PATH|unix.O_NOFOLLOW)
	if err != nil {
		return true
	}
	defer unix.Close(fd)
	var b [unix.PathMax]byte
	n, err := unix.Readlinkat(fd, "", b[:])
	if err != nil {
		return true
	}
	t := string(b[:n])
	return t == "/proc" || strings.HasPrefix(t, "/proc/")
}

// present says whether p is there in the root root (lookIn's first
// answer alone: one openat2).
func present(root int, p string, nofollowLast bool) (bool, error) {
	fd, err := openIn(root, p, pathFlags(nofollowLast))
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	unix.Close(fd)
	return true, nil
}

// openIn opens p with flags in the root root: symlinks, .. and absolute
// paths kept inside it, no /proc magic links.
func openIn(root int, p string, flags int) (int, error) {
	rel := strings.TrimLeft(p, "/")
	if rel == "" {
		rel = "."
	}
	how := unix.OpenHow{Flags: uint64(flags) | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	return unix.Openat2(root, rel, &how)
}

// pathFlags are the flags of an O_PATH look at a path.
func pathFlags(nofollowLast bool) int {
	if nofollowLast {
		return unix.O_PATH | unix.O_NOFOLLOW
	}
	return unix.O_PATH
}

// lookIn resolves p in the root root (symlinks and .. kept inside it) and
// says whether it exists, whether it is on a read-only mount and its
// type; err is set when it can't be told (a failure other than a missing
// name: ENOTDIR, ELOOP, EACCES, ...).
func lookIn(root int, p string, nofollowLast bool) (exists, ro bool, mode uint32, err error) {
	fd, err := openIn(root, p, pathFlags(nofollowLast))
	if errors.Is(err, unix.ENOENT) {
		return false, false, 0, nil
	}
	if err != nil {
		return false, false, 0, err
	}
	defer unix.Close(fd)
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		return true, false, 0, err
	}
	var sb unix.Stat_t
	if err := unix.Fstat(fd, &sb); err != nil {
		return true, false, 0, err
	}
	return true, st.Flags&unix.ST_RDONLY != 0, sb.Mode & unix.S_IFMT, nil
}

// readMem reads the caller's memory at addr into b: the bytes read (a
// read that crosses into an unmapped page stops there). One
// process_vm_readv, its remote range split at each page boundary (the
// call transfers whole ranges only: one crossing into an unmapped page
// would fail entirely).
func readMem(pid int, addr uint64, b []byte) int {
	const page = 4096
	var remote [unix.PathMax/page + 2]unix.RemoteIovec
	n := 0
	for off := 0; off < len(b) && n < len(remote); n++ {
		size := min(len(b)-off, page-int((addr+uint64(off))%page))
		remote[n] = unix.RemoteIovec{Base: uintptr(addr) + uintptr(off), Len: size}
		off += size
	}
	local := []unix.Iovec{{Base: &b[0]}}
	local[0].SetLen(len(b))
	got, err := unix.ProcessVMReadv(pid, local, remote[:n], 0)
	if err != nil {
		return 0
	}
	return got
}

// PathRefusals is the file list of a path-watching listener (ListenOptions
// Paths): what Refusals.Snapshot gives as root, most frequent first.
func (l *Listener) PathRefusals() RefusalSnapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]PathRefusal, 0, len(l.refused))
	for k, n := range l.refused {
		out = append(out, PathRefusal{Path: k.path, Errno: k.errno, Call: k.call, Write: k.write, Count: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Path < out[j].Path
	})
	return RefusalSnapshot{Paths: out, Dropped: l.refusedDropped}
}
