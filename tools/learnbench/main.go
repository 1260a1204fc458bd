// Command learnbench measures what recording costs a workload: two
// syscall-heavy workloads (a tar of a large tree to /dev/null; a Python
// os.walk that stats and opens every file) under `brig run`, under
// `brig learn`, under `brig run` while an idle recorder is attached (the
// floor: every system call on the host takes the tracepoint's slow path,
// and the program filters it out at once), under `brig learn
// --profile-out` (files too: fanotify marks on the mounts the workload
// sees), under `brig run --report` (the denial report: a seccomp
// listener, the cgroup's events), under `brig learn --recorder seccomp`
// (the recorder without root: every call waits for brig's seccomp
// listener), and under `strace -f` (ptrace, what recorders built on it
// pay). Modes take turns run by run; it prints
// median wall times and the ratios to `brig run`. It asserts nothing.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"brig/internal/recorder"
)

func main() {
	brig := flag.String("brig", "bin/brig", "brig binary")
	n := flag.Int("n", 5, "runs per workload and mode")
	tree := flag.String("tree", "/usr/share", "the tree the workloads walk")
	flag.Parse()
	if err := run(*brig, *n, *tree); err != nil {
		fmt.Fprintln(os.Stderr, "learnbench:", err)
		os.Exit(1)
	}
}

func run(brig string, n int, tree string) error {
	brig, err := filepath.Abs(brig)
	if err != nil {
		return err
	}
	if err := recorder.Supported(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "learnbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// The sandbox's root is an unprivileged uid on the host: it must reach
	// the state root (the exec fifo).
	if err := os.Chmod(dir, 0o711); err != nil {
		return err
	}
	// An empty cgroup for the floor: the recorder attached to it records
	// nothing, but every system call on the host runs its program.
	cg, err := emptyCgroup()
	if err != nil {
		return err
	}
	defer os.Remove(cg)
	python := "/usr/bin/python3"
	workloads := []struct {
		name string
		cmd  []string
	}{
		{"tar", []string{"tar", "cf", "/dev/null", tree}},
		{"walk", []string{python, "-c", `import os, sys
n = 0
for d, _, fs in os.walk(sys.argv[1]):
    for f in fs:
        p = os.path.join(d, f)
        try:
            os.stat(p); open(p, "rb").close(); n += 1
        except OSError:
            pass
`, tree}},
	}
	if _, err := os.Stat(python); err != nil {
		workloads = workloads[:1]
		fmt.Println("(no", python, "here: the walk workload is left out)")
	}
	modes := []string{"run", "learn", "floor", "files", "report", "seccomp", "strace"}
	if _, err := exec.LookPath("strace"); err != nil {
		modes = modes[:len(modes)-1]
		fmt.Println("(no strace here: the ptrace comparison is left out)")
	}
	root := filepath.Join(dir, "state")
	fmt.Printf("wall time per run, median of %d (modes take turns); files = learn --profile-out, report = run --report, seccomp = learn --recorder seccomp\n", n)
	fmt.Printf("%-6s", "")
	for _, m := range modes {
		fmt.Printf(" %9s", m)
	}
	fmt.Printf("   ratios to run (learn/floor last)\n")
	for _, w := range workloads {
		times := map[string][]time.Duration{}
		for i := 0; i < n+1; i++ { // the first round warms the caches, unmeasured
			for _, m := range modes {
				d, err := once(brig, root, dir, cg, m, w.cmd)
				if err != nil {
					return fmt.Errorf("%s under %s: %w", w.name, m, err)
				}
				if i > 0 {
					times[m] = append(times[m], d)
				}
			}
		}
		med := map[string]float64{}
		for m, ts := range times {
			slices.Sort(ts)
			med[m] = float64(ts[len(ts)/2]) / float64(time.Millisecond)
		}
		fmt.Printf("%-6s", w.name)
		for _, m := range modes {
			fmt.Printf(" %7.0fms", med[m])
		}
		fmt.Printf("  ")
		for _, m := range modes[1:] {
			fmt.Printf(" %s %.2f", m, med[m]/med["run"])
		}
		fmt.Printf("; learn/floor %.2f\n", med["learn"]/med["floor"])
	}
	return nil
}

// once runs the workload once in a mode and times it.
func once(brig, root, dir, cg, mode string, cmd []string) (time.Duration, error) {
	args := append([]string{"--root", root, "run", "--"}, cmd...)
	name := brig
	switch mode {
	case "learn":
		prof := filepath.Join(dir, "learned.json")
		os.Remove(prof)
		args = append([]string{"--root", root, "learn", "-o", prof, "--"}, cmd...)
	case "seccomp":
		prof := filepath.Join(dir, "learned-seccomp.json")
		os.Remove(prof)
		args = append([]string{"--root", root, "learn", "--recorder", "seccomp", "-o", prof, "--"}, cmd...)
	case "files":
		prof := filepath.Join(dir, "learned-files.json")
		os.Remove(prof)
		os.Remove(prof + ".yaml")
		args = append([]string{"--root", root, "learn", "-o", prof, "--profile-out", prof + ".yaml", "--"}, cmd...)
	case "report":
		args = append([]string{"--root", root, "run", "--report", "--"}, cmd...)
	case "strace":
		args = append([]string{"-f", "-o", "/dev/null", brig}, args...)
		name = "strace"
	case "floor":
		r, err := recorder.Attach(cg)
		if err != nil {
			return 0, err
		}
		defer r.Close()
	}
	c := exec.Command(name, args...)
	var stderr strings.Builder
	c.Stdout, c.Stderr = nil, &stderr
	start := time.Now()
	err := c.Run()
	d := time.Since(start)
	// tar exits 2 where some files can't be read; that is the workload,
	// not a failure of the mode. brig's own failures exit 1.
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() != 2 || cmd[0] != "tar") {
		return 0, fmt.Errorf("%v: %s", err, stderr.String())
	}
	return d, nil
}

// emptyCgroup makes a cgroup v2 directory no process is in.
func emptyCgroup() (string, error) {
	for _, root := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err != nil {
			continue
		}
		d := filepath.Join(root, fmt.Sprintf("brig-learnbench-%d", os.Getpid()))
		return d, os.Mkdir(d, 0o755)
	}
	return "", fmt.Errorf("no cgroup v2 mount")
}
