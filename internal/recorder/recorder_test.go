package recorder

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// A process in the cgroup (here in a cgroup below it) is recorded from its
// exec on, with the arguments that matter; a process outside it, and what
// the cgroup's process did before exec, are not.
func TestRecordsTheCgroupFromExec(t *testing.T) {
	if err := Supported(); err != nil {
		t.Skip(err)
	}
	dir := filepath.Join(v2Root(t), "brig-recorder-test-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(dir)
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
