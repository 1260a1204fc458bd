package recorder

import (
	"debug/elf"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// tree makes a directory tree for the lookups: a file, a dangling
// symlink, and, as root, a read-only tmpfs holding a file (unmounted
// at the end). ro is "" without root.
func tree(t *testing.T) (dir, ro string) {
	t.Helper()
	dir = t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "etc"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "etc", "shown"), nil, 0o644))
	must(os.WriteFile(filepath.Join(dir, "file"), nil, 0o644))
	must(os.Symlink(filepath.Join(dir, "missing"), filepath.Join(dir, "link")))
	if os.Geteuid() != 0 {
		return dir, ""
	}
	ro = filepath.Join(dir, "ro")
	must(os.Mkdir(ro, 0o755))
	must(unix.Mount("tmpfs", ro, "tmpfs", 0, "size=64k"))
	t.Cleanup(func() { unix.Unmount(ro, unix.MNT_DETACH) })
	must(os.WriteFile(filepath.Join(ro, "file"), nil, 0o644))
	must(unix.Mount("", ro, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""))
	return dir, ro
}

// TestLookIn: a path is looked up inside the caller's root, symlinks and
// .. included, never on the host around it; a read-only mount is seen.
func TestLookIn(t *testing.T) {
	root, ro := tree(t)
	for name, target := range map[string]string{"abs": "/etc/shown", "out": "/etc/hostname", "up": "../../../etc/passwd"} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	for _, c := range []struct {
		path         string
		nofollow     bool
		exists, isRO bool
	}{
		{"/", false, true, false},
		{"/etc/shown", false, true, false},
		{"/etc/missing", false, false, false},
		{"/abs", false, true, false},  // an absolute link stays inside
		{"/out", false, false, false}, // not the host's /etc/hostname
		{"/out", true, true, false},   // the link itself
		{"/up", false, false, false},  // .. stops at the root
		{"/etc/../../etc/shown", false, true, false},
		{"/ro/file", false, ro != "", ro != ""},
	} {
		exists, isRO, _, err := lookIn(fd, c.path, c.nofollow)
		if err != nil || exists != c.exists || isRO != c.isRO {
			t.Errorf("lookIn(%q, nofollow %v) = exists %v, ro %v, %v; want %v, %v", c.path, c.nofollow, exists, isRO, err, c.exists, c.isRO)
		}
	}
}

// TestPredict: the refusal predicted for a call, from its arguments in
// the caller's memory (this process's), as the kernel would answer it.
func TestPredict(t *testing.T) {
	valid := notifValid
	notifValid = func(int, uint64) bool { return true }
	defer func() { notifValid = valid }()
	dir, ro := tree(t)
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	var keep [][]byte
	str := func(s string) uint64 {
		b := append([]byte(s), 0)
		keep = append(keep, b)
		return uint64(uintptr(unsafe.Pointer(&b[0])))
	}
	how := func(flags, resolve uint64) uint64 {
		b := make([]byte, 24)
		*(*uint64)(unsafe.Pointer(&b[0])) = flags
		*(*uint64)(unsafe.Pointer(&b[16])) = resolve
		keep = append(keep, b)
		return uint64(uintptr(unsafe.Pointer(&b[0])))
	}
	const cwd = uint64(0xffffffffffffff9c) // AT_FDCWD as a register holds it
	type want struct {
		errno unix.Errno // 0: no refusal
		path  string
	}
	cases := []struct {
		name string
		nr   int32
		args [6]uint64
		root bool // needs the read-only mount
		want want
	}{
		{"open a missing file", 257, [6]uint64{cwd, str(dir + "/missing"), unix.O_RDONLY}, false, want{unix.ENOENT, dir + "/missing"}},
		{"open a file", 257, [6]uint64{cwd, str(dir + "/file"), unix.O_RDONLY}, false, want{}},
		{"O_PATH", 257, [6]uint64{cwd, str(dir + "/missing"), unix.O_PATH}, false, want{}},
		{"a trailing slash on a file (ENOTDIR)", 257, [6]uint64{cwd, str(dir + "/file/"), unix.O_RDONLY}, false, want{}},
		{"a dangling link then .. (the link is followed)", 257, [6]uint64{cwd, str(dir + "/link/../file"), unix.O_RDONLY}, false, want{unix.ENOENT, dir + "/file"}},
		{"relative to a directory fd", 257, [6]uint64{uint64(dfd), str("missing"), unix.O_RDONLY}, false, want{unix.ENOENT, dir + "/missing"}},
		{"openat2 with its own resolve rules", 437, [6]uint64{cwd, str(dir + "/missing"), how(unix.O_RDONLY, unix.RESOLVE_BENEATH), 24}, false, want{}},
		{"openat2", 437, [6]uint64{cwd, str(dir + "/missing"), how(unix.O_RDONLY, 0), 24}, false, want{unix.ENOENT, dir + "/missing"}},
		{"stat through a dangling link", 262, [6]uint64{cwd, str(dir + "/link"), 0, 0}, false, want{unix.ENOENT, dir + "/link"}},
		{"lstat-like: the link itself", 262, [6]uint64{cwd, str(dir + "/link"), 0, unix.AT_SYMLINK_NOFOLLOW}, false, want{}},
		{"O_CREAT through a dangling link (made)", 257, [6]uint64{cwd, str(dir + "/link"), unix.O_WRONLY | unix.O_CREAT}, false, want{}},
		{"mkdir under a missing directory", 83, [6]uint64{str(dir + "/missing/d")}, false, want{unix.ENOENT, dir + "/missing/d"}},
		{"mkdir of an existing name (EEXIST)", 83, [6]uint64{str(dir + "/file")}, false, want{}},
		{"unlink a missing name", 87, [6]uint64{str(dir + "/missing")}, false, want{unix.ENOENT, dir + "/missing"}},
		{"/proc is left out", 257, [6]uint64{cwd, str("/proc/self/nothing"), unix.O_RDONLY}, false, want{}},
		{"write to a read-only mount", 257, [6]uint64{cwd, str(ro + "/file"), unix.O_WRONLY}, true, want{unix.EROFS, ro + "/file"}},
		{"O_RDONLY|O_CREAT of an existing file there (no write)", 257, [6]uint64{cwd, str(ro + "/file"), unix.O_RDONLY | unix.O_CREAT}, true, want{}},
		{"create there", 257, [6]uint64{cwd, str(ro + "/new"), unix.O_WRONLY | unix.O_CREAT}, true, want{unix.EROFS, ro + "/new"}},
		{"a directory opened for writing (EISDIR)", 257, [6]uint64{cwd, str(ro), unix.O_WRONLY}, true, want{}},
		{"mkdir there", 83, [6]uint64{str(ro + "/d")}, true, want{unix.EROFS, ro + "/d"}},
		{"unlink a missing name there (the mount is asked first)", 87, [6]uint64{str(ro + "/missing")}, true, want{unix.EROFS, ro + "/missing"}},
	}
	roots := newRootDir()
	defer roots.close()
	for _, c := range cases {
		if c.root && ro == "" {
			continue
		}
		n := seccompNotif{Pid: uint32(unix.Gettid()), Nr: c.nr, Arch: 0xc000003e, Args: c.args}
		k, ok := predict(-1, &n, pathCalls[c.nr], roots)
		got := want{}
		if ok {
			got = want{k.errno, k.path}
		}
		if got != c.want {
			t.Errorf("%s: predicted %+v, want %+v", c.name, got, c.want)
		}
	}
	runtime.KeepAlive(keep)
}

// TestReadMem reads a string that ends just before an unmapped page.
func TestReadMem(t *testing.T) {
	page := os.Getpagesize()
	mem, err := unix.Mmap(-1, 0, 2*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem[:page])
	// unmapped, not PROT_NONE: /proc/PID/mem reads through protections
	if _, _, e := unix.Syscall(unix.SYS_MUNMAP, uintptr(unsafe.Pointer(&mem[page])), uintptr(page), 0); e != 0 {
		t.Fatal(e)
	}
	copy(mem[page-4:], "abc\x00")
	b := make([]byte, unix.PathMax)
	n := readMem(os.Getpid(), uint64(uintptr(unsafe.Pointer(&mem[page-4]))), b)
	if n != 4 || string(b[:3]) != "abc" {
		t.Fatalf("readMem = %d bytes %q, want the 4 before the unmapped page", n, b[:min(n, 16)])
	}
}

// TestListenerFiles: what an open, a create and an execve (of a script
// and of an ELF program) will use, recorded as fanotify would mark it;
// a missing file, a refused create, and a file off the host's mounts
// are not.
func TestListenerFiles(t *testing.T) {
	valid := notifValid
	notifValid = func(int, uint64) bool { return true }
	defer func() { notifValid = valid }()
	dir, ro := tree(t)
	own := filepath.Join(dir, "own") // stands for a tmpfs of the container's own
	for _, err := range []error{
		os.Mkdir(own, 0o755),
		os.WriteFile(filepath.Join(own, "f"), nil, 0o644),
		os.WriteFile(filepath.Join(dir, "script"), []byte("#!"+dir+"/file\n"), 0o755),
		os.Symlink(filepath.Join(dir, "file"), filepath.Join(dir, "alias")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	var keep [][]byte
	str := func(s string) uint64 {
		b := append([]byte(s), 0)
		keep = append(keep, b)
		return uint64(uintptr(unsafe.Pointer(&b[0])))
	}
	const cwd = uint64(0xffffffffffffff9c)
	roots := newRootDir()
	defer roots.close()
	f := newListenerFiles(roots)
	f.once.Do(func() {}) // the mounts: / holds host files, own doesn't
	f.mounts = []mountPoint{{own, false}, {"/", true}}
	calls := []struct {
		nr   int32
		args [6]uint64
	}{
		{257, [6]uint64{cwd, str(dir + "/etc/shown"), unix.O_RDONLY}},
		{257, [6]uint64{cwd, str(dir + "/missing"), unix.O_RDONLY}},
		{257, [6]uint64{cwd, str(dir + "/made"), unix.O_WRONLY | unix.O_CREAT}},
		{257, [6]uint64{cwd, str(dir + "/etc"), unix.O_RDONLY | unix.O_DIRECTORY}},
		{257, [6]uint64{cwd, str(own + "/f"), unix.O_RDWR}},
		{59, [6]uint64{str(dir + "/script")}},
		{59, [6]uint64{str("/bin/sh")}},
		{257, [6]uint64{cwd, str(dir + "/alias"), unix.O_RDONLY}},
	}
	if ro != "" {
		calls = append(calls, struct {
			nr   int32
			args [6]uint64
		}{257, [6]uint64{cwd, str(ro + "/new"), unix.O_WRONLY | unix.O_CREAT}})
	}
	for _, c := range calls {
		n := seccompNotif{Pid: uint32(unix.Gettid()), Nr: c.nr, Arch: 0xc000003e, Args: c.args}
		f.record(-1, &n)
	}
	runtime.KeepAlive(keep)
	got, lost := f.Snapshot()
	sh, _ := filepath.EvalSymlinks("/bin/sh")
	want := map[string]Access{
		dir + "/etc/shown": Read,
		dir + "/made":      Read | Write | Created,
		dir + "/etc":       Read | Dir,
		dir + "/script":    Read | Exec,
		dir + "/file":      Read | Exec, // the script's interpreter, then opened through alias
		dir + "/alias":     Read,
		sh:                 Read | Exec,
	}
	if interp := elfInterp(t, sh); interp != "" {
		want[interp] = Read | Exec // as given, and where its links lead
		real, _ := filepath.EvalSymlinks(interp)
		want[real] = Read | Exec
	}
	if sh != "/bin/sh" {
		want["/bin/sh"] = Read | Exec
	}
	if lost {
		t.Error("lost: want false")
	}
	for p, a := range want {
		if got[p] != a {
			t.Errorf("%s: recorded %05b, want %05b", p, got[p], a)
		}
	}
	for p, a := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s recorded (%05b): want it left out", p, a)
		}
	}
}

// elfInterp is the ELF program's PT_INTERP ("" for a static program).
func elfInterp(t *testing.T, p string) string {
	t.Helper()
	e, err := elf.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, prog := range e.Progs {
		if prog.Type == elf.PT_INTERP {
			b := make([]byte, prog.Filesz)
			prog.ReadAt(b, 0)
			return strings.TrimRight(string(b), "\x00")
		}
	}
	return ""
}
