package bootstrap_test

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"brig/internal/bootstrap"
	_ "brig/internal/nsenter" // the C half under test: this binary is the child too
	"brig/internal/protocol"
)

// The two halves of the bootstrap — the text message bootstrap.Start
// writes and nsenter.c reads, and the protocol after it — tested with a
// real child: this test binary, started as "brig init", runs the C
// constructor and then fakeInit, which reports what it finds.

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		fakeInit()
	}
	os.Exit(m.Run())
}

// fakeInit receives the fds and the config as the init does, and sends
// back what the test checks, then waits for the socket to close.
func fakeInit() {
	p, err := bootstrap.FromInit()
	if err != nil {
		os.Exit(3)
	}
	files, err := protocol.RecvFiles(p)
	var cfg protocol.Config
	if err == nil {
		err = p.Recv(&cfg)
	}
	if err == nil {
		err = cfg.Attach(files)
	}
	report := map[string]string{"pid": strconv.Itoa(os.Getpid())}
	if err != nil {
		report["error"] = err.Error()
	}
	for _, ns := range []string{"uts", "mnt", "user", "pid", "time", "net"} {
		report["ns "+ns], _ = os.Readlink("/proc/self/ns/" + ns)
	}
	for _, f := range []string{"uid_map", "gid_map", "cgroup", "timens_offsets"} {
		data, _ := os.ReadFile("/proc/self/" + f)
		report[f] = string(data)
	}
	for i, f := range cfg.Trees {
		data, _ := io.ReadAll(f)
		flags, _ := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0)
		report[fmt.Sprintf("tree %d", i)] = fmt.Sprintf("%s cloexec=%v", data, flags&unix.FD_CLOEXEC != 0)
	}
	report["id"] = cfg.ID
	p.Send(report)
	var end struct{}
	p.Recv(&end) // EOF once the test is done
	os.Exit(0)
}

func needRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: namespaces, id maps and cgroups")
	}
}

func self(ns string) string {
	l, _ := os.Readlink("/proc/self/ns/" + ns)
	return l
}

// start starts the child with o, passes files, sends a config and returns
// the child's report; the child is killed and reaped at the end of the
// test.
func start(t *testing.T, o bootstrap.Options, fds []protocol.FD, files []*os.File) (*bootstrap.Process, map[string]string) {
	t.Helper()
	o.Args = []string{"init"}
	o.Stdout, o.Stderr = os.Stdout, os.Stderr
	p, err := bootstrap.Start(o)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(p.Kill)
	if err := protocol.SendFiles(p, files); err != nil {
		t.Fatal(err)
	}
	if err := p.Send(protocol.Config{ID: "c1", FDs: fds}); err != nil {
		t.Fatal(err)
	}
	var report map[string]string
	if err := p.Recv(&report); err != nil {
		t.Fatalf("report: %v", err)
	}
	if report["error"] != "" {
		t.Fatalf("child: %s", report["error"])
	}
	if report["id"] != "c1" {
		t.Errorf("config not received: %v", report)
	}
	return p, report
}

// New namespaces are the child's; "P <pid>" names the process that
// reports, which is the child itself without a pid namespace.
func TestStartNewNamespaces(t *testing.T) {
	needRoot(t)
	p, r := start(t, bootstrap.Options{CloneFlags: unix.CLONE_NEWUTS | unix.CLONE_NEWNS | unix.CLONE_NEWNET}, nil, nil)
	for _, ns := range []string{"uts", "mnt", "net"} {
		if r["ns "+ns] == self(ns) {
			t.Errorf("%s namespace not new: %s", ns, r["ns "+ns])
		}
	}
	if r["ns user"] != self("user") || r["ns pid"] != self("pid") {
		t.Errorf("namespaces made that were not asked for: %v", r)
	}
	if r["pid"] != strconv.Itoa(p.Pid) || p.Pid != p.Cmd.Process.Pid {
		t.Errorf("pid: reported %s, P line %d, started %d", r["pid"], p.Pid, p.Cmd.Process.Pid)
	}
}

// A user namespace: the child asks "U", brig writes the maps and answers
// "u", and the child sees them.
func TestStartUserNamespaceMaps(t *testing.T) {
	needRoot(t)
	maps := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 1000}}
	_, r := start(t, bootstrap.Options{CloneFlags: unix.CLONE_NEWUSER | unix.CLONE_NEWUTS, UIDMappings: maps, GIDMappings: maps}, nil, nil)
	for _, f := range []string{"uid_map", "gid_map"} {
		if fs := strings.Fields(r[f]); strings.Join(fs, " ") != "0 100000 1000" {
			t.Errorf("%s in the child: %q", f, r[f])
		}
	}
	if r["ns user"] == self("user") {
		t.Error("user namespace not new")
	}
}

// A pid or time namespace takes a second clone: the process that reports
// is pid 1 inside, the P line gives its host pid (not the intermediate's),
// and the time offsets are written before it.
func TestStartPidAndTimeNamespaces(t *testing.T) {
	needRoot(t)
	p, r := start(t, bootstrap.Options{CloneFlags: unix.CLONE_NEWPID | unix.CLONE_NEWTIME,
		TimeOffsets: []string{"monotonic 86400 0", "boottime 3600 0"}}, nil, nil)
	if r["pid"] != "1" {
		t.Errorf("pid inside: %s, want 1", r["pid"])
	}
	if p.Pid == p.Cmd.Process.Pid || p.Pid <= 0 {
		t.Errorf("P line %d, intermediate %d", p.Pid, p.Cmd.Process.Pid)
	}
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid)); err != nil || !strings.Contains(string(st), "NSpid:\t"+strconv.Itoa(p.Pid)+"\t1\n") {
		t.Errorf("host pid %d is not the child's: %v %s", p.Pid, err, st)
	}
	offs := strings.Join(strings.Fields(r["timens_offsets"]), " ")
	if !strings.Contains(offs, "monotonic 86400 0") || !strings.Contains(offs, "boottime 3600 0") {
		t.Errorf("time offsets: %q", r["timens_offsets"])
	}
}

// "join <type> <path>": the child is in the namespace of another process;
// a path that is not there is the child's "E" line, naming it.
func TestStartJoin(t *testing.T) {
	needRoot(t)
	holder := exec.Command("sleep", "60")
	holder.SysProcAttr = &unix.SysProcAttr{Cloneflags: unix.CLONE_NEWUTS}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer holder.Wait()
	defer holder.Process.Kill()
	path := fmt.Sprintf("/proc/%d/ns/uts", holder.Process.Pid)
	want, _ := os.Readlink(path)
	_, r := start(t, bootstrap.Options{Join: []bootstrap.Namespace{{Type: "uts", Path: path}}}, nil, nil)
	if r["ns uts"] != want || want == self("uts") {
		t.Errorf("joined %s, want %s", r["ns uts"], want)
	}

	missing := filepath.Join(t.TempDir(), "no-such-ns")
	p, err := bootstrap.Start(bootstrap.Options{Args: []string{"init"}, Join: []bootstrap.Namespace{{Type: "net", Path: missing}}})
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("joining a missing namespace: %v, want an error naming %s", err, missing)
	}
	if p != nil {
		p.Kill()
	}
}

// "cgroup <dir>": the child moves itself into a cgroup v1 directory before
// anything else.
func TestStartJoinCgroupV1(t *testing.T) {
	needRoot(t)
	base := "/sys/fs/cgroup/pids"
	if _, err := os.Stat(filepath.Join(base, "cgroup.procs")); err != nil {
		t.Skip("no cgroup v1 pids hierarchy")
	}
	dir := filepath.Join(base, fmt.Sprintf("brig-bootstrap-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(dir)
	p, r := start(t, bootstrap.Options{JoinCgroups: []string{dir}}, nil, nil)
	rel := strings.TrimPrefix(dir, base)
	if !strings.Contains(r["cgroup"], ":pids:"+rel+"\n") {
		t.Errorf("child's cgroups:\n%s\nwant pids at %s", r["cgroup"], rel)
	}
	p.Kill() // before the directory is removed
}

// Fds passed after the bootstrap arrive in the child close-on-exec, with
// the roles the config gives them.
func TestStartPassesFiles(t *testing.T) {
	needRoot(t)
	var files []*os.File
	var fds []protocol.FD
	for i, m := range []int{4, 1} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		fmt.Fprintf(w, "tree-%d", i)
		w.Close()
		files = append(files, r)
		fds = append(fds, protocol.FD{Kind: protocol.FDTree, Mount: m})
	}
	_, r := start(t, bootstrap.Options{CloneFlags: unix.CLONE_NEWNS}, fds, files)
	if r["tree 4"] != "tree-0 cloexec=true" || r["tree 1"] != "tree-1 cloexec=true" {
		t.Errorf("passed files in the child: %q, %q", r["tree 4"], r["tree 1"])
	}
}
