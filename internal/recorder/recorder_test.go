package recorder

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// v2Root is where this host mounts cgroup v2 (the unified hierarchy on a
// hybrid host).
func v2Root(t *testing.T) string {
	for _, d := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		var fs unix.Statfs_t
		if unix.Statfs(d, &fs) == nil && fs.Type == unix.CGROUP2_SUPER_MAGIC {
			return d
		}
	}
	t.Skip("no cgroup v2 mount")
	return ""
}

// testCgroup makes a cgroup v2 directory for the test, removed after it
// (after the test's own deferred calls: its processes have ended); it
// skips where this process can't record.
func testCgroup(t *testing.T, name string) string {
	if err := Supported(); err != nil {
		t.Skip(err)
	}
	dir := filepath.Join(v2Root(t), "brig-"+name+"-test-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	return dir
}

// A process in the cgroup (here in a cgroup below it) is recorded from its
// exec on, with the arguments that matter; a process outside it, and what
// the cgroup's process did before exec, are not.
func TestRecordsTheCgroupFromExec(t *testing.T) {
	dir := testCgroup(t, "recorder")
	r, err := Attach(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Armed() {
		t.Fatal("armed before any exec")
	}
	// The workload runs in a cgroup below the recorded one, as a
	// container that makes cgroups of its own does.
	child := filepath.Join(dir, "child")
	if err := os.Mkdir(child, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(child)
	cg, err := os.Open(child)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	// The shell is born in the cgroup; what it runs is recorded.
	py := `import socket, os; s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); os.getppid(); os.sync()`
	cmd := exec.Command("python3", "-c", py)
	// Setpgid: a call the child makes before its exec, not recorded.
	cmd.SysProcAttr = &unix.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd()), Setpgid: true}
	if _, err := exec.LookPath("python3"); err != nil {
		cmd = exec.Command("sh", "-c", "sync")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if f, err := os.Open("/"); err == nil {
		unix.Syncfs(int(f.Fd())) // outside the cgroup: not recorded
		f.Close()
	}
	rec, err := r.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if !r.Armed() {
		t.Error("the exec did not arm the recorder")
	}
	if !rec.Calls[Call{ArchX86_64, unix.SYS_SYNC}] || !rec.Calls[Call{ArchX86_64, unix.SYS_EXIT_GROUP}] {
		t.Errorf("sync or exit_group not recorded: %v", rec.Calls)
	}
	for _, nr := range []int{unix.SYS_SYNCFS, unix.SYS_SETPGID} {
		if rec.Calls[Call{ArchX86_64, nr}] {
			t.Errorf("call %d recorded: made outside the cgroup or before the exec", nr)
		}
	}
	if len(rec.Incomplete) > 0 {
		t.Errorf("incomplete: %v", rec.Incomplete)
	}
	if filepath.Base(cmd.Path) == "python3" {
		if !rec.Calls[Call{ArchX86_64, unix.SYS_GETPPID}] {
			t.Errorf("getppid not recorded")
		}
		want := uint64(unix.AF_INET6)<<32 | unix.SOCK_DGRAM
		if !rec.Args[unix.SYS_SOCKET][want] {
			t.Errorf("socket(AF_INET6, SOCK_DGRAM) not among %v", rec.Args[unix.SYS_SOCKET])
		}
		if !rec.Args[unix.SYS_MMAP][unix.PROT_EXEC] {
			t.Errorf("no executable mmap seen for a dynamically linked python: %v", rec.Args[unix.SYS_MMAP])
		}
	}
}

// attachRefusals attaches a Refusals recorder to a test cgroup of its
// own, and opens the cgroup for a command to be started in.
func attachRefusals(t *testing.T, name string) (*Refusals, *os.File) {
	dir := testCgroup(t, name)
	r, err := AttachRefusals(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	cg, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cg.Close() })
	return r, cg
}

// Paths the cgroup's process failed on are counted by error, call and
// intent, from its exec on; what succeeded, failed otherwise, or happened
// outside the cgroup is not.
func TestRefusals(t *testing.T) {
	r, cg := attachRefusals(t, "refusals")
	tmp := t.TempDir()
	ro := filepath.Join(tmp, "ro")
	os.Mkdir(ro, 0o755)
	os.WriteFile(filepath.Join(tmp, "there"), nil, 0o644)
	// A read-only bind of ro over itself, in a mount namespace of its own:
	// writes there fail with EROFS.
	script := `mount --bind ` + ro + ` ` + ro + ` && mount -o remount,bind,ro ` + ro + ` || exit 9
cat /no/such/file 2>/dev/null; cat /no/such/file 2>/dev/null
touch ` + ro + `/new 2>/dev/null
mkdir /no/such/dir 2>/dev/null
cat ` + tmp + `/there
ls -d ` + tmp + ` >/dev/null
cd ` + tmp + ` && cat no-such-relative 2>/dev/null
command -v python3 >/dev/null && python3 -c 'import os; fd = os.open("/", os.O_RDONLY)
try: os.stat("no-such-at-dirfd", dir_fd=fd)
except FileNotFoundError: pass'
exit 0`
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script)
	cmd.SysProcAttr = &unix.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	os.Stat("/no/such/outside") // outside the cgroup: not recorded
	snap, err := r.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	got := snap.Paths
	if snap.Dropped != 0 {
		t.Errorf("%d refusals dropped, with room for all", snap.Dropped)
	}
	find := func(path string, errno unix.Errno, write bool) *PathRefusal {
		for i, g := range got {
			if g.Path == path && g.Errno == errno && g.Write == write {
				return &got[i]
			}
		}
		return nil
	}
	if g := find("/no/such/file", unix.ENOENT, false); g == nil || g.Count < 2 || g.Call == "" {
		t.Errorf("cat of a missing file: %+v, want ENOENT at least twice, with its call; all: %+v", g, got)
	}
	if find(ro+"/new", unix.EROFS, true) == nil {
		t.Errorf("touch on a read-only mount: no EROFS write among %+v", got)
	}
	if g := find("/no/such/dir", unix.ENOENT, true); g == nil || g.Call != "mkdir" {
		t.Errorf("mkdir: %+v, want ENOENT, write, mkdir; all: %+v", g, got)
	}
	if g := find("no-such-relative", unix.ENOENT, false); g == nil || g.DirRelative {
		t.Errorf("a relative path against the working directory: %+v, want it, not DirRelative", g)
	}
	if _, err := exec.LookPath("python3"); err == nil {
		if g := find("no-such-at-dirfd", unix.ENOENT, false); g == nil || !g.DirRelative {
			t.Errorf("a relative path against a directory fd: %+v, want it DirRelative", g)
		}
	}
	for _, g := range got {
		if g.Path == "/no/such/outside" || g.Path == tmp+"/there" || g.Path == tmp {
			t.Errorf("recorded %+v: outside the cgroup, or no failure", g)
		}
	}
}

// Beyond the map's room, refusals are counted as dropped, not lost
// without a word; a path longer than the slot is flagged as cut.
func TestRefusalsBounds(t *testing.T) {
	r, cg := attachRefusals(t, "refusals-bounds")
	extra := 100
	long := "/no/such/" + strings.Repeat("l", MaxPath)
	// exactly as long as the slot holds (with its NUL): whole, not cut
	exact := "/no/such/" + strings.Repeat("e", MaxPath-1-len("/no/such/"))
	// [ -e ] is the shell's own stat: one failed call per name, no fork.
	script := fmt.Sprintf(`[ -e %s ]; [ -e %s ]; i=0; while [ $i -lt %d ]; do [ -e /no/such/$i ]; i=$((i+1)); done; exit 0`, long, exact, RefusalEntries+extra)
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &unix.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	snap, err := r.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Paths) != RefusalEntries || snap.Dropped < extra {
		t.Errorf("%d kept, %d dropped; want %d kept and at least %d dropped", len(snap.Paths), snap.Dropped, RefusalEntries, extra)
	}
	t.Logf("%d kept, %d dropped", len(snap.Paths), snap.Dropped)
	cut := 0
	for _, p := range snap.Paths {
		if p.Truncated {
			cut++
		}
		if p.Truncated != strings.HasPrefix(long, p.Path) {
			t.Errorf("%.40s… (%d bytes): truncated %v", p.Path, len(p.Path), p.Truncated)
		}
	}
	if cut != 1 {
		t.Errorf("%d paths flagged as cut, want the long one", cut)
	}
	found := false
	for _, p := range snap.Paths {
		found = found || (p.Path == exact && !p.Truncated)
	}
	if !found {
		t.Errorf("the %d-byte path: not recorded whole", len(exact))
	}
}
