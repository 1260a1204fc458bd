package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestOOMScoreAdjAndIOPriorityAndPersonality(t *testing.T) {
	e := newEnv(t, "sleep", "60")
	adj := 500
	e.spec.Process.OOMScoreAdj = &adj
	e.spec.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 6}
	e.spec.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32}
	pid := running(t, e)
	if got, _ := os.ReadFile(fmt.Sprintf("/proc/%d/oom_score_adj", pid)); strings.TrimSpace(string(got)) != "500" {
		t.Errorf("oom_score_adj = %q", got)
	}
	if got, _ := os.ReadFile(fmt.Sprintf("/proc/%d/personality", pid)); strings.TrimSpace(string(got)) != "00000008" {
		t.Errorf("personality = %q, want 00000008 (PER_LINUX32)", got)
	}
}

func TestOOMScoreAdjBelowCurrentNeedsCapability(t *testing.T) {
	e := newEnv(t, "true")
	adj := -999
	e.spec.Process.OOMScoreAdj = &adj
	r := e.run()
	own, _ := os.ReadFile("/proc/self/oom_score_adj")
	if strings.TrimSpace(string(own)) == "-1000" || r.code == 0 {
		t.Skipf("this host lets brig lower oom_score_adj (exit %d)", r.code)
	}
	contains(t, r.stderr, "oomScoreAdj", "error names the field")
}

func TestNoPivot(t *testing.T) {
	e := newEnv(t, "sh", "-c", "ls /; grep ' / ' /proc/self/mountinfo")
	e.write()
	r := e.brig("run", "--no-pivot", "--bundle", e.bundle, e.id)
	if r.code != 0 {
		t.Fatalf("run --no-pivot: %s", r.stderr)
	}
	contains(t, r.stdout, "bin", "rootfs content")
	notContains(t, r.stdout, "home", "host root hidden")
}

func TestKillAll(t *testing.T) {
	e := newEnv(t, "sh", "-c", "sleep 60 & sleep 60 & wait")
	e.dropNamespace(specs.PIDNamespace) // no pid namespace: killing init alone would leave the others
	running(t, e)
	var pids []int
	for i := 0; i < 100 && len(pids) < 3; i++ {
		json.Unmarshal([]byte(e.brig("ps", "--format", "json", e.id).stdout), &pids)
	}
	if len(pids) < 3 {
		t.Fatalf("ps: %v", pids)
	}
	if r := e.brig("kill", "--all", e.id, "KILL"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	for _, p := range pids {
		if !gone(p) {
			t.Errorf("process %d survived kill --all", p)
		}
	}
}

// TestKillAllAfterInitExit: without its own PID namespace a container's
// children outlive its init; containerd's shim then runs `kill --all`
// on the stopped container, which must reach them and succeed (runc does;
// the shim sends no exit event while it fails).
func TestKillAllAfterInitExit(t *testing.T) {
	e := newEnv(t, "sh", "-c", "sleep 60 & echo $! > /tmp/child; sleep 0.3")
	e.dropNamespace(specs.PIDNamespace)
	running(t, e)
	e.waitStatus("stopped")
	procs := filepath.Join("/sys/fs/cgroup/pids/brigtest", e.id, "cgroup.procs")
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		procs = filepath.Join("/sys/fs/cgroup/brigtest", e.id, "cgroup.procs") // v2
	}
	data, _ := os.ReadFile(procs)
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		if p, err := strconv.Atoi(f); err == nil {
			pids = append(pids, p)
		}
	}
	if len(pids) != 1 {
		t.Fatalf("want the orphaned sleep alone in the cgroup, got %v", pids)
	}
	if r := e.brig("kill", e.id, "KILL"); r.code == 0 {
		t.Errorf("kill without --all of a stopped container succeeded")
	}
	if r := e.brig("kill", "--all", e.id, "KILL"); r.code != 0 {
		t.Fatalf("kill --all after init exit: %s", r.stderr)
	}
	if !gone(pids[0]) {
		t.Errorf("orphan %d survived kill --all", pids[0])
	}
}

func TestRootfsPropagation(t *testing.T) {
	for _, tc := range []struct{ prop, want, not string }{
		{"rshared", "shared:", ""},
		{"rprivate", "", "shared:"},
	} {
		t.Run(tc.prop, func(t *testing.T) {
			e := newEnv(t, "sh", "-c", "awk '$5 == \"/\"' /proc/self/mountinfo")
			e.spec.Linux.RootfsPropagation = tc.prop
			out := e.mustRun()
			if tc.want != "" {
				contains(t, out, tc.want, "root mount propagation")
			}
			if tc.not != "" {
				notContains(t, out, tc.not, "root mount propagation")
			}
		})
	}
}

func TestListTable(t *testing.T) {
	e := newEnv(t, "sleep", "60")
	running(t, e)
	r := e.brig("list")
	contains(t, r.stdout, "ID", "header")
	contains(t, r.stdout, e.id, "container listed")
	contains(t, r.stdout, "running", "status")
	r = e.brig("list", "-q")
	if strings.TrimSpace(r.stdout) != e.id {
		t.Errorf("list -q: %q", r.stdout)
	}
}

// TestExecProcessGroupAndPreservedFDs: an exec'd process leads a process
// group inside the container's pid namespace (getpgrp isn't 0), as under
// runc; --preserve-fds naming fds that aren't open says which one, and
// nothing runs.
func TestExecProcessGroupAndPreservedFDs(t *testing.T) {
	e := newEnv(t, "sleep", "60")
	e.create()
	e.brig("start", e.id)
	e.waitStatus("running")
	r := e.brig("exec", e.id, "sh", "-c", `read -r a b c d pgrp rest < /proc/self/stat; echo "$$ $pgrp"`)
	if f := strings.Fields(r.stdout); r.code != 0 || len(f) != 2 || f[0] != f[1] || f[1] == "0" {
		t.Errorf("exec: exit %d, pid and process group %q, want the same, not 0: %s", r.code, r.stdout, r.stderr)
	}
	r = e.brig("exec", "--preserve-fds", "100", e.id, "true")
	if r.code == 0 || !strings.Contains(r.stderr, "--preserve-fds 100") || !strings.Contains(r.stderr, "is not open") {
		t.Errorf("exec --preserve-fds 100: exit %d, %q", r.code, r.stderr)
	}
}
