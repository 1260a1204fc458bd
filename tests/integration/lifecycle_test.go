package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestRunExitCode(t *testing.T) {
	for _, tc := range []struct {
		script string
		want   int
	}{
		{"exit 0", 0}, {"exit 3", 3}, {"kill -TERM $$", 128 + 15},
	} {
		t.Run(tc.script, func(t *testing.T) {
			e := newEnv(t, "sh", "-c", tc.script)
			// Without a pid namespace the shell is not a namespace's init,
			// so a signal it sends itself is not ignored.
			e.dropNamespace("pid")
			r := e.run()
			if r.code != tc.want {
				t.Fatalf("exit code %d, want %d (stderr %s)", r.code, tc.want, r.stderr)
			}
		})
	}
}

func TestRunStdio(t *testing.T) {
	e := newEnv(t, "sh", "-c", "read x; echo got:$x; echo err >&2")
	e.write()
	r := e.brigIn([]byte("hello\n"), "run", "--bundle", e.bundle, e.id)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	contains(t, r.stdout, "got:hello", "stdout")
	contains(t, r.stderr, "err", "stderr")
}

func TestLifecycle(t *testing.T) {
	e := newEnv(t, "sleep", "60")
	pidFile := filepath.Join(t.TempDir(), "pid")
	e.create("--pid-file", pidFile)
	st := e.state()
	if st["status"] != "created" || st["id"] != e.id || st["bundle"] != e.bundle || st["ociVersion"] == "" {
		t.Fatalf("state after create: %v", st)
	}
	pid := e.pid()
	data, err := os.ReadFile(pidFile)
	if err != nil || strings.TrimSpace(string(data)) != strconv.Itoa(pid) {
		t.Fatalf("pid file %q, state pid %d (%v)", data, pid, err)
	}
	// The created container's process is brig's init, waiting for start.
	if comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm"); !strings.HasPrefix(string(comm), "brig:[init]") {
		t.Errorf("created init is %q, want brig's init", comm)
	}
	if r := e.brig("start", e.id); r.code != 0 {
		t.Fatalf("start: %s", r.stderr)
	}
	e.waitStatus("running")
	if comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm"); strings.TrimSpace(string(comm)) != "sleep" {
		t.Errorf("running process is %q, want sleep", comm)
	}
	if r := e.brig("start", e.id); r.code == 0 {
		t.Errorf("second start succeeded")
	}
	if r := e.brig("delete", e.id); r.code == 0 {
		t.Errorf("delete of a running container without --force succeeded")
	}
	r := e.brig("list", "--format", "json")
	var list []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 1 || list[0]["id"] != e.id || list[0]["status"] != "running" {
		t.Errorf("list: %s (%v)", r.stdout, err)
	}
	if r := e.brig("kill", e.id, "KILL"); r.code != 0 {
		t.Fatalf("kill: %s", r.stderr)
	}
	e.waitStatus("stopped")
	if r := e.brig("kill", e.id, "TERM"); r.code == 0 {
		t.Errorf("kill of a stopped container succeeded")
	}
	if r := e.brig("delete", e.id); r.code != 0 {
		t.Fatalf("delete: %s", r.stderr)
	}
	if r := e.brig("state", e.id); r.code == 0 || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("state after delete: exit %d, %s", r.code, r.stderr)
	}
	if !gone(pid) {
		t.Errorf("process %d still exists after delete", pid)
	}
}

func TestDeleteCreated(t *testing.T) {
	e := newEnv(t, "true")
	e.create()
	pid := e.pid()
	if r := e.brig("delete", e.id); r.code != 0 {
		t.Fatalf("delete created: %s", r.stderr)
	}
	if !gone(pid) {
		t.Errorf("init %d still alive after deleting the created container", pid)
	}
}

func TestDeleteForceRunning(t *testing.T) {
	e := newEnv(t, "sleep", "60")
	e.create()
	e.brig("start", e.id)
	pid := e.pid()
	if r := e.brig("delete", "--force", e.id); r.code != 0 {
		t.Fatalf("delete --force: %s", r.stderr)
	}
	if !gone(pid) {
		t.Errorf("process %d alive after delete --force", pid)
	}
}

func TestKillSignals(t *testing.T) {
	for _, sig := range []string{"TERM", "SIGTERM", "15", "term"} {
		t.Run(sig, func(t *testing.T) {
			e := newEnv(t, "sh", "-c", "trap 'exit 7' TERM; while true; do sleep 0.1; done")
			e.create()
			e.brig("start", e.id)
			e.waitStatus("running")
			// "running" comes before the shell has set its trap: a
			// SIGTERM before that is ignored (the pid namespace's init
			// with no handler), as with runc. Wait for the handler.
			waitSignalCaught(t, e.pid(), unix.SIGTERM)
			if r := e.brig("kill", e.id, sig); r.code != 0 {
				t.Fatalf("kill %s: %s", sig, r.stderr)
			}
			e.waitStatus("stopped")
		})
	}
	e := newEnv(t, "true")
	e.create()
	if r := e.brig("kill", e.id, "NOSUCHSIG"); r.code == 0 || !strings.Contains(r.stderr, "unknown signal") {
		t.Errorf("kill with a bad signal: exit %d %s", r.code, r.stderr)
	}
	// A container that has ended: kill fails with runc's words, which
	// containerd's shim recognises (a pod whose container ended just before
	// it was stopped is then stopped and removed).
	e.brig("start", e.id)
	e.waitStatus("stopped")
	if r := e.brig("kill", e.id, "KILL"); r.code == 0 || !strings.Contains(r.stderr, "container not running") {
		t.Errorf("kill of a stopped container: exit %d %q, want runc's \"container not running\"", r.code, r.stderr)
	}
}

func TestPauseResume(t *testing.T) {
	e := newEnv(t, "sleep", "60")
	e.create()
	e.brig("start", e.id)
	if r := e.brig("pause", e.id); r.code != 0 {
		t.Fatalf("pause: %s", r.stderr)
	}
	if s := e.status(); s != "paused" {
		t.Errorf("status after pause %q", s)
	}
	if st := statusField(t, e.pid(), "State"); !strings.HasPrefix(st, "S") && !strings.HasPrefix(st, "D") {
		t.Logf("state of a frozen task: %s", st)
	}
	if r := e.brig("resume", e.id); r.code != 0 {
		t.Fatalf("resume: %s", r.stderr)
	}
	if s := e.status(); s != "running" {
		t.Errorf("status after resume %q", s)
	}
	if r := e.brig("resume", e.id); r.code == 0 {
		t.Errorf("resume of a running container succeeded")
	}
}

func TestPs(t *testing.T) {
	e := newEnv(t, "sh", "-c", "sleep 60 & sleep 60")
	e.create()
	e.brig("start", e.id)
	// busybox sh execs its last command: two processes, both sleep.
	var pids []int
	for i := 0; i < 100 && len(pids) < 2; i++ {
		r := e.brig("ps", "--format", "json", e.id)
		if r.code != 0 {
			t.Fatalf("ps: %s", r.stderr)
		}
		json.Unmarshal([]byte(r.stdout), &pids)
	}
	if len(pids) != 2 {
		t.Fatalf("ps --format json: %v, want 2 host pids", pids)
	}
	found := false
	for _, p := range pids {
		found = found || p == e.pid()
	}
	if !found {
		t.Errorf("ps pids %v lack the init pid %d", pids, e.pid())
	}
	r := e.brig("ps", e.id)
	contains(t, r.stdout, "PID", "ps table header")
	contains(t, r.stdout, "sleep 60", "ps table")
}

// TestSpecSeccomp: brig spec writes the built-in default profile, so a
// container from it has a filter (runc runs the same config the same);
// --seccomp unconfined leaves it out.
func TestSpecSeccomp(t *testing.T) {
	for _, tc := range []struct {
		flags []string
		want  string
	}{{nil, "Seccomp:\t2"}, {[]string{"--seccomp", "unconfined"}, "Seccomp:\t0"}} {
		dir := t.TempDir()
		if out, err := exec.Command(brigBin, append([]string{"spec", "--bundle", dir}, tc.flags...)...).CombinedOutput(); err != nil {
			t.Fatalf("brig spec: %v: %s", err, out)
		}
		data, _ := os.ReadFile(filepath.Join(dir, "config.json"))
		var s specs.Spec
		if err := json.Unmarshal(data, &s); err != nil {
			t.Fatal(err)
		}
		bins := []string{brigBin}
		if p, err := exec.LookPath("runc"); err == nil && works(t, p) {
			bins = append(bins, p)
		}
		for _, bin := range bins {
			e := newEnv(t, "grep", "Seccomp:", "/proc/self/status")
			e.bin = bin
			e.spec.Linux.Seccomp = s.Linux.Seccomp
			e.spec.Version = "1.0.2"
			if out := e.mustRun(); !strings.Contains(out, tc.want) {
				t.Errorf("%s, brig spec %v: %q, want %q", bin, tc.flags, out, tc.want)
			}
		}
	}
	if r := runCmd(exec.Command(brigBin, "spec", "--bundle", t.TempDir(), "--seccomp", "strict")); r.code != 2 || !strings.Contains(r.stderr, "--seccomp") {
		t.Errorf("brig spec --seccomp strict: exit %d: %s", r.code, r.stderr)
	}
}

// TestRunKeep: run --keep leaves the ended container: state says stopped,
// exec into it is a clear error, delete removes it (runc run --keep).
func TestRunKeep(t *testing.T) {
	e := newEnv(t, "sh", "-c", "exit 3")
	e.write()
	if r := e.brig("run", "--keep", "--bundle", e.bundle, e.id); r.code != 3 {
		t.Fatalf("run --keep: exit %d, want the process's 3: %s", r.code, r.stderr)
	}
	if s := e.status(); s != "stopped" {
		t.Fatalf("after run --keep: %q, want stopped", s)
	}
	if r := e.brig("exec", e.id, "true"); r.code == 0 || !strings.Contains(r.stderr, "stopped") {
		t.Errorf("exec into a kept, stopped container: exit %d %q", r.code, r.stderr)
	}
	if r := e.brig("delete", e.id); r.code != 0 {
		t.Fatalf("delete: %s", r.stderr)
	}
	if r := e.brig("state", e.id); r.code == 0 {
		t.Error("state after delete")
	}
}

// TestRuncFlagsAccepted: every flag runc's help lists, for each command
// and globally, is one brig knows (a new runc flag is noticed here).
func TestRuncFlagsAccepted(t *testing.T) {
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("no runc")
	}
	root, dir := t.TempDir(), t.TempDir()
	flagsOf := func(args ...string) []string {
		out, _ := exec.Command("runc", append(args, "--help")...).Output()
		var fl []string
		for _, l := range strings.Split(string(out), "\n") {
			f := strings.Fields(l)
			if len(f) > 0 && strings.HasPrefix(f[0], "--") && f[0] != "--help" && f[0] != "--version" {
				fl = append(fl, strings.TrimSuffix(strings.SplitN(f[0], "=", 2)[0], ","))
			}
		}
		return fl
	}
	check := func(args ...string) {
		cmd := exec.Command(brigBin, append([]string{"--root", root}, args...)...)
		cmd.Dir = dir
		r := runCmd(cmd)
		if strings.Contains(r.stderr, "no such flag") || strings.Contains(r.stderr, "provided but not defined") {
			t.Errorf("brig %v: %s", args, strings.TrimSpace(r.stderr))
		}
	}
	for _, f := range flagsOf() {
		check(f, "x", "list")
	}
	for _, c := range []string{"create", "run", "start", "exec", "kill", "delete", "state", "list", "ps", "pause", "resume", "update", "events", "spec", "features"} {
		for _, f := range flagsOf(c) {
			check(c, f)
		}
	}
}

// TestDeleteForceGivesUp: delete --force of a container whose init can't
// die (moved into a frozen cgroup of someone else's) gives up within
// seconds, naming the pid and what holds it, and keeps the container; once
// that is thawed, delete finishes.
func TestDeleteForceGivesUp(t *testing.T) {
	if _, err := os.Stat("/sys/fs/cgroup/freezer"); err != nil {
		t.Skip("no cgroup v1 freezer here")
	}
	e := newEnv(t, "sleep", "60")
	e.create()
	e.brig("start", e.id)
	e.waitStatus("running")
	frozen := filepath.Join("/sys/fs/cgroup/freezer", "brigtest-frozen-"+e.id)
	if err := os.Mkdir(frozen, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.WriteFile(filepath.Join(frozen, "freezer.state"), []byte("THAWED"), 0)
		exec.Command(brigBin, "--root", e.root, "delete", "--force", e.id).Run()
		for i := 0; i < 50 && os.Remove(frozen) != nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
	})
	pid := e.pid()
	if err := os.WriteFile(filepath.Join(frozen, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(frozen, "freezer.state"), []byte("FROZEN"), 0); err != nil {
		t.Fatal(err)
	}
	r := e.brig("delete", "--force", e.id) // returns: it gives up
	if r.code == 0 || !strings.Contains(r.stderr, strconv.Itoa(pid)) || !strings.Contains(r.stderr, "frozen") {
		t.Errorf("delete --force: exit %d %q, want a failure naming pid %d and the frozen cgroup", r.code, r.stderr, pid)
	}
	if e.status() == "" {
		t.Error("the container's state is gone though its init lives")
	}
	os.WriteFile(filepath.Join(frozen, "freezer.state"), []byte("THAWED"), 0)
	if r := e.brig("delete", "--force", e.id); r.code != 0 {
		t.Errorf("delete after thawing: %s", r.stderr)
	}
}

// waitSignalCaught waits until the container's command (not brig's init,
// whose Go runtime catches every signal) has a handler for sig (SigCgt in
// /proc/PID/status).
func waitSignalCaught(t *testing.T, pid int, sig unix.Signal) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.HasPrefix(string(cmd), "brig\x00init") {
			continue
		}
		caught, err := strconv.ParseUint(statusField(t, pid, "SigCgt"), 16, 64)
		if err == nil && caught&(1<<(uint(sig)-1)) != 0 {
			return
		}
	}
	t.Fatalf("process %d has no handler for %v after 10 s", pid, sig)
}
