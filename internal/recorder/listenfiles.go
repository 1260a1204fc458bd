package recorder

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"brig/internal/seccomp"
)

// ListenerFiles records, for `brig learn --profile-out` without root
// (fanotify's mount marks need CAP_SYS_ADMIN), the files the container's
// processes open, execute and write, from the calls brig's seccomp
// listener is sent anyway while it learns them: each open, creat and
// execve of the program's processes has its path read from the caller
// and looked up in the caller's view just before the call (as for
// --report-files), and what it will use is recorded as Files records it
// — by path as the container sees it, on the mounts that hold host
// files, with the same Access bits. What the kernel opens by itself is
// added for an execve: a script's #! interpreter and an ELF program's
// dynamic loader. What it can't see: a file reached through a directory
// fd the kernel opened, and a path changed by another process between
// the look and the call.
type ListenerFiles struct {
	start  time.Time
	root   *rootDir
	once   sync.Once
	mounts []mountPoint // the container's mounts, deepest first
	mu     sync.Mutex
	use    map[string]Access
}

func newListenerFiles(root *rootDir) *ListenerFiles {
	return &ListenerFiles{start: time.Now(), root: root, use: map[string]Access{}}
}

// opens are the calls whose use is recorded (what fanotify sees: opens
// and executions, not stats, renames or removals).
var opens = map[string]bool{"open": true, "openat": true, "openat2": true, "creat": true, "execve": true, "execveat": true}

// record looks at one allowed call of the container's program (the
// listener is armed) and records the file it will use.
func (f *ListenerFiles) record(fd int, n *seccompNotif) {
	if n.Arch != seccomp.AuditArchX86_64 || n.Nr&x32Bit != 0 {
		return
	}
	pc, ok := pathCalls[n.Nr]
	if !ok || !opens[pc.name] {
		return
	}
	a, ok := readPathArgs(fd, n, pc)
	if !ok {
		return
	}
	pid := int(n.Pid)
	f.once.Do(func() { f.mounts = hostFileMounts(pid) })
	root, ok := f.root.get(pid)
	if !ok {
		return
	}
	exec := pc.name == "execve" || pc.name == "execveat"
	nofollowLast := a.isOpen && a.flags&unix.O_NOFOLLOW != 0 || pc.name == "execveat" && a.flags&unix.AT_SYMLINK_NOFOLLOW != 0
	exists, _, mode, err := lookIn(root, a.raw, nofollowLast)
	if err != nil {
		return
	}
	var use Access
	switch {
	case exec:
		if !exists {
			return
		}
		use = Read | Exec
		f.interpreter(root, a.raw)
	case exists:
		use = Read
		if pc.name == "creat" || a.flags&unix.O_ACCMODE != unix.O_RDONLY || a.flags&unix.O_TRUNC != 0 {
			use |= Write
		}
		if a.isOpen && a.flags&(unix.O_CREAT|unix.O_EXCL) == unix.O_CREAT|unix.O_EXCL {
			return // EEXIST
		}
	case pc.name == "creat" || a.isOpen && a.flags&unix.O_CREAT != 0:
		// made now, where its directory lets it be
		d, ro, _, err := lookIn(root, filepath.Dir(strings.TrimRight(a.raw, "/")), false)
		if err != nil || !d || ro {
			return
		}
		use = Read
		if pc.name == "creat" || a.flags&unix.O_ACCMODE != unix.O_RDONLY {
			use |= Write | Created
		}
	default:
		return // not found: --report-files' business, not a use
	}
	if mode == unix.S_IFDIR {
		use |= Dir
	}
	f.add(root, a.raw, nofollowLast, use)
}

// add records use of the path p names (symlinks resolved, as fanotify
// names a file by its path), if it is on a mount of host files; and of p
// as given where that differs (a symlink the replay must show too, which
// fanotify doesn't see).
func (f *ListenerFiles) add(root int, p string, nofollowLast bool, use Access) {
	given := filepath.Clean(p)
	real := given
	if use&Created == 0 {
		if r, ok := realPath(root, p, nofollowLast); ok {
			real = r
		}
	} else if dir, ok := realPath(root, filepath.Dir(strings.TrimRight(p, "/")), false); ok {
		real = filepath.Join(dir, filepath.Base(strings.TrimRight(p, "/")))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.onHostFiles(real) {
		f.use[real] |= use
	}
	if given != real && f.onHostFiles(given) {
		f.use[given] |= use &^ Dir
	}
}

// realPath is p with its symlinks resolved, in the root: the path of the
// file the kernel would open (the caller's view: d_path from outside its
// mount namespace starts at that namespace's root).
func realPath(root int, p string, nofollowLast bool) (string, bool) {
	fd, err := openIn(root, p, pathFlags(nofollowLast))
	if err != nil {
		return "", false
	}
	defer unix.Close(fd)
	r, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil || !filepath.IsAbs(r) || strings.HasSuffix(r, " (deleted)") {
		return "", false
	}
	return r, true
}

// interpreter records what the kernel opens to run the program at p: a
// script's #! interpreter, an ELF program's dynamic loader.
func (f *ListenerFiles) interpreter(root int, p string) {
	fd, err := openIn(root, p, unix.O_RDONLY)
	if err != nil {
		return
	}
	file := os.NewFile(uintptr(fd), p)
	defer file.Close()
	var head [256]byte
	n, _ := file.ReadAt(head[:], 0)
	var interp string
	switch {
	case n > 2 && head[0] == '#' && head[1] == '!':
		line, _, _ := bytes.Cut(head[2:n], []byte("\n"))
		if fields := strings.Fields(string(line)); len(fields) > 0 {
			interp = fields[0]
		}
	case n > 4 && string(head[:4]) == elf.ELFMAG:
		e, err := elf.NewFile(file)
		if err != nil {
			return
		}
		for _, prog := range e.Progs {
			if prog.Type == elf.PT_INTERP {
				b := make([]byte, min(prog.Filesz, unix.PathMax))
				if m, _ := prog.ReadAt(b, 0); m > 0 {
					interp = strings.TrimRight(string(b[:m]), "\x00")
				}
			}
		}
	}
	if !filepath.IsAbs(interp) {
		return
	}
	if exists, _, _, err := lookIn(root, interp, false); err == nil && exists {
		f.add(root, interp, false, Read|Exec)
	}
}

// mountPoint is one of the container's mounts: whether it holds host
// files.
type mountPoint struct {
	path string
	host bool
}

// hostFileMounts are the mounts of the container whose process is pid,
// each marked as Files would mark it (host files, or the container's
// own: proc, sysfs, a tmpfs of its own...), deepest first.
func hostFileMounts(pid int) []mountPoint {
	mounts, err := readMountInfo(pid)
	if err != nil {
		return nil
	}
	// a later mount at the same place covers the earlier one
	all := map[string]bool{}
	for _, m := range mounts {
		all[m.point] = m.holdsHostFiles()
	}
	out := make([]mountPoint, 0, len(all))
	for m, host := range all {
		out = append(out, mountPoint{m, host})
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i].path) > len(out[j].path) })
	return out
}

// onHostFiles says whether p is on a mount of host files: the deepest
// mount holding it decides.
func (f *ListenerFiles) onHostFiles(p string) bool {
	for _, m := range f.mounts {
		if p == m.path || m.path == "/" || strings.HasPrefix(p, m.path+"/") {
			return m.host
		}
	}
	return false
}

// Snapshot is what was used so far, by path; nothing is lost (each call
// waits for its record).
func (f *ListenerFiles) Snapshot() (map[string]Access, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]Access, len(f.use))
	for p, a := range f.use {
		out[p] = a
	}
	return out, false
}

// Start is when the recording began.
func (f *ListenerFiles) Start() time.Time { return f.start }

// Close does nothing: the listener's Close ends it.
func (f *ListenerFiles) Close() {}

// Files is what the listener records of the files the program uses (nil
// unless ListenOptions.Files and Calls were given).
func (l *Listener) Files() *ListenerFiles { return l.files }
