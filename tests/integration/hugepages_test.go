package integration

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBrigHeapWithoutHugePages: brig's own Go processes — the `brig run`
// that waits for the container, and the init while it waits for start —
// keep their heaps and their threads' stacks out of transparent huge pages (a huge page per heap
// region is several MB of memory per container where THP is "always", as
// in Debian's kernels), and the container's process, once exec'd, is not
// affected: no region of it is marked, and THP stays enabled for it.
func TestBrigHeapWithoutHugePages(t *testing.T) {
	e := newEnv(t, "sleep", "60")
	e.create()
	pid := e.pid()
	if heap, ok := largestAnonRegion(t, pid); !ok {
		t.Errorf("the created init's heap may take huge pages: %s", heap)
	}
	// Where THP is "always" (the VM lane), nothing of it is in huge pages:
	// neither the heap nor the threads' stacks.
	if kb := anonHugeKB(t, pid); kb != 0 {
		t.Errorf("the created init has %d kB in huge pages", kb)
	}
	if r := e.brig("start", e.id); r.code != 0 {
		t.Fatalf("start: %s", r.stderr)
	}
	e.waitStatus("running")
	waitExe(t, pid, "sleep")
	if n := noHugePageRegions(t, pid); n != 0 {
		t.Errorf("the container's process has %d regions marked nohugepage: brig's setting leaked into it", n)
	}
	if s := statusField(t, pid, "THP_enabled"); s != "1" {
		t.Errorf("the container's process has THP_enabled %q, want 1", s)
	}

	// A foreground `brig run`, which lives as long as its container.
	r := newEnv(t, "sleep", "60")
	r.write()
	cmd := exec.Command(brigBin, "--root", r.root, "run", "--bundle", r.bundle, r.id)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	// Registered after newEnv's cleanup, so it runs first: the container
	// is deleted, then its `brig run` is waited for (killed by pid if it
	// hangs).
	t.Cleanup(func() {
		exec.Command(brigBin, "--root", r.root, "delete", "--force", r.id).Run()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	// (The state appears once brig run has created the container.)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st := r.brig("state", r.id); st.code == 0 && strings.Contains(st.stdout, `"running"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("brig run's container never ran")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if heap, ok := largestAnonRegion(t, cmd.Process.Pid); !ok {
		t.Errorf("brig run's heap may take huge pages: %s", heap)
	}
	if kb := anonHugeKB(t, cmd.Process.Pid); kb != 0 {
		t.Errorf("brig run has %d kB in huge pages", kb)
	}
}

// largestAnonRegion describes pid's anonymous memory region with the most
// resident memory (a Go process's heap, for brig's), and whether it is
// marked MADV_NOHUGEPAGE ("nh" in /proc/PID/smaps).
func largestAnonRegion(t *testing.T, pid int) (desc string, noHuge bool) {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		t.Fatal(err)
	}
	var region string
	var anon bool
	var rss, most int
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			region, anon = l, len(f) == 5 // no path: anonymous
		case len(f) >= 2 && f[0] == "Rss:":
			rss, _ = strconv.Atoi(f[1])
		case len(f) >= 1 && f[0] == "VmFlags:" && anon && rss > most:
			most, desc, noHuge = rss, fmt.Sprintf("%s (%d kB resident; flags %s)", region, rss, strings.Join(f[1:], " ")), false
			for _, flag := range f[1:] {
				noHuge = noHuge || flag == "nh"
			}
		}
	}
	if most == 0 {
		t.Fatalf("pid %d has no resident anonymous memory", pid)
	}
	return desc, noHuge
}

// anonHugeKB is pid's anonymous memory in transparent huge pages.
func anonHugeKB(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "AnonHugePages:" {
			kb, _ := strconv.Atoi(f[1])
			return kb
		}
	}
	t.Fatalf("no AnonHugePages in /proc/%d/smaps_rollup", pid)
	return 0
}

// noHugePageRegions counts pid's memory regions marked MADV_NOHUGEPAGE.
func noHugePageRegions(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(string(data), "\n") {
		if f, ok := strings.CutPrefix(l, "VmFlags:"); ok && strings.Contains(" "+f+" ", " nh ") {
			n++
		}
	}
	return n
}

// waitExe waits until pid's executable is named name (the init has
// exec'd the container's process).
func waitExe(t *testing.T, pid int, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) == name {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("pid %d never exec'd %s", pid, name)
}
