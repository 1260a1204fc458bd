package recorder

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
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

type pathKey struct {
	path  string
	errno unix.Errno
	call  string
	write bool
}

// watchPath looks at one path-taking call the profile allows; the caller
// answers it (continue) afterwards.
func (l *Listener) watchPath(fd int, n *seccompNotif) {
	c := callOf(n)
	if c.Arch != ArchX86_64 {
		return
	}
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
	k, ok := predict(fd, n, pc)
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

// predict reads the call's path and says whether the sandbox will refuse
// it, and how.
func predict(fd int, n *seccompNotif, pc pathCall) (pathKey, bool) {
	pid := int(n.Pid)
	var flags uint64
	if f, ok := flagsArg[pc.name]; ok {
		flags = n.Args[f.i]
	}
	if pc.name == "openat2" {
		// struct open_how: its first field is the open flags
		var b [8]byte
		if readMem(pid, n.Args[2], b[:]) != len(b) {
			return pathKey{}, false
		}
		flags = *(*uint64)(unsafe.Pointer(&b[0]))
	}
	isOpen := flagsArg[pc.name].open || pc.name == "openat2"
	write := pc.write || isOpen && flags&(unix.O_WRONLY|unix.O_RDWR|unix.O_CREAT|unix.O_TRUNC) != 0
	nofollowLast := nofollow[pc.name] || creates[pc.name] ||
		isOpen && (flags&unix.O_NOFOLLOW != 0 || flags&(unix.O_CREAT|unix.O_EXCL) == unix.O_CREAT|unix.O_EXCL) ||
		!isOpen && flags&unix.AT_SYMLINK_NOFOLLOW != 0
	// PATH_MAX: a longer path fails (ENAMETOOLONG) without the sandbox
	var buf [unix.PathMax]byte
	got := readMem(pid, n.Args[argIndex(pc.reg)], buf[:])
	// the read is trusted only if the call is still the one notified
	id := n.ID
	if got <= 0 || ioctl(fd, unix.SECCOMP_IOCTL_NOTIF_ID_VALID, unsafe.Pointer(&id)) != nil {
		return pathKey{}, false
	}
	end := strings.IndexByte(string(buf[:got]), 0)
	k := pathKey{call: pc.name, write: write}
	if end < 0 {
		return pathKey{}, false
	}
	p := string(buf[:end])
	if p == "" {
		return pathKey{}, false // AT_EMPTY_PATH: the fd itself
	}
	if !filepath.IsAbs(p) {
		base := fmt.Sprintf("/proc/%d/cwd", pid)
		if pc.dir != 0 {
			if dfd := int32(n.Args[argIndex(pc.dir)]); dfd != unix.AT_FDCWD {
				base = fmt.Sprintf("/proc/%d/fd/%d", pid, dfd)
			}
		}
		dir, err := os.Readlink(base)
		if err != nil || !filepath.IsAbs(dir) || strings.HasSuffix(dir, " (deleted)") {
			return pathKey{}, false // a bad or removed directory: not the sandbox's doing
		}
		p = filepath.Join(dir, p)
	}
	p = filepath.Clean(p)
	k.path = p
	for _, skip := range []string{"/proc", "/sys", "/dev"} {
		if p == skip || strings.HasPrefix(p, skip+"/") {
			return pathKey{}, false
		}
	}
	root, err := unix.Open(fmt.Sprintf("/proc/%d/root", pid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return pathKey{}, false
	}
	defer unix.Close(root)
	exists, ro, err := lookIn(root, p, nofollowLast)
	switch {
	case err != nil:
		return pathKey{}, false
	case !write:
		if exists {
			return pathKey{}, false
		}
		k.errno = unix.ENOENT
	case exists:
		if !ro || creates[pc.name] || isOpen && flags&(unix.O_CREAT|unix.O_EXCL) == unix.O_CREAT|unix.O_EXCL {
			return pathKey{}, false // written, or EEXIST
		}
		k.errno = unix.EROFS
	default:
		// a missing name: made in its directory, or not found
		makes := creates[pc.name] || pc.name == "creat" || pc.name == "rename" || pc.name == "renameat" ||
			pc.name == "renameat2" || isOpen && flags&unix.O_CREAT != 0
		dirExists, dirRO, err := lookIn(root, filepath.Dir(p), false)
		switch {
		case err != nil:
			return pathKey{}, false
		case !dirExists || !makes:
			k.errno = unix.ENOENT
		case dirRO:
			k.errno = unix.EROFS
		default:
			return pathKey{}, false
		}
	}
	return k, true
}

// lookIn resolves p in the root root (symlinks and .. kept inside it) and
// says whether it exists and is on a read-only mount; err is set when it
// can't be told (a failure other than a missing name).
func lookIn(root int, p string, nofollowLast bool) (exists, ro bool, err error) {
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	if nofollowLast {
		how.Flags |= unix.O_NOFOLLOW
	}
	rel := strings.TrimPrefix(p, "/")
	if rel == "" {
		rel = "."
	}
	fd, err := unix.Openat2(root, rel, &how)
	if errors.Is(err, unix.ENOENT) {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	defer unix.Close(fd)
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		return true, false, err
	}
	return true, st.Flags&unix.ST_RDONLY != 0, nil
}

// readMem reads the caller's memory at addr into b: the bytes read (a
// read that crosses into an unmapped page stops there).
func readMem(pid int, addr uint64, b []byte) int {
	mem, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		return 0
	}
	defer mem.Close()
	total := 0
	for total < len(b) {
		// up to the page's end first: the next page may be unmapped
		chunk := min(len(b)-total, 4096-int((addr+uint64(total))%4096))
		n, err := mem.ReadAt(b[total:total+chunk], int64(addr)+int64(total))
		total += n
		if err != nil || n < chunk {
			break
		}
	}
	return total
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
