package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"

	"brig/internal/seccomp"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// withEnginesProfile puts the engines' default seccomp profile, resolved
// for the bundle's bounding set, into its config: containers-common's
// (Podman, CRI-O) where installed, else Docker's. It returns its name.
func withEnginesProfile(cfgPath string) (string, error) {
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		return "", err
	}
	var s specs.Spec
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", err
	}
	var bounding []string
	if s.Process != nil && s.Process.Capabilities != nil {
		bounding = s.Process.Capabilities.Bounding
	}
	name := "containers-common's seccomp profile"
	var sc *specs.LinuxSeccomp
	if data, err := os.ReadFile("/usr/share/containers/seccomp.json"); err == nil {
		if sc, err = seccomp.Parse(data, bounding); err != nil {
			return "", fmt.Errorf("containers-common profile: %w", err)
		}
	} else {
		name = "Docker's default seccomp profile"
		if sc, err = mobyseccomp.GetDefaultProfile(&s); err != nil {
			return "", err
		}
	}
	s.Linux.Seccomp = sc
	raw, err = json.Marshal(&s)
	if err != nil {
		return "", err
	}
	return name, os.WriteFile(cfgPath, raw, 0o644)
}

// sandboxBench pairs brig run -- true, every default layer, with
// bubblewrap's nearest: every namespace it can make and a new session.
func sandboxBench(brig string, n int) {
	bwrap, err := exec.LookPath("bwrap")
	if err != nil {
		fmt.Println("bwrap not installed (make deps installs it)")
		return
	}
	root, err := os.MkdirTemp(tmpfsDir(), "brig-bench-sandbox-")
	if err != nil {
		fail(err)
	}
	atExit(func() { os.RemoveAll(root) })
	defer cleanup()
	if err := os.Chmod(root, 0o711); err != nil { // as /run/brig
		fail(err)
	}
	cmds := map[string][]string{
		"brig":  {brig, "--root", root, "run", "--", "true"},
		"bwrap": {bwrap, "--unshare-all", "--new-session", "--die-with-parent", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "true"},
	}
	type t2 struct{ wall, cpu time.Duration }
	res := map[string][]t2{}
	once := func(name string) t2 {
		c := cmds[name]
		var before, after unix.Rusage
		unix.Getrusage(unix.RUSAGE_CHILDREN, &before)
		start := time.Now()
		cmd := exec.Command(c[0], c[1:]...)
		if out, err := cmd.CombinedOutput(); err != nil {
			fail(fmt.Errorf("%s: %v: %s", name, err, out))
		}
		wall := time.Since(start)
		unix.Getrusage(unix.RUSAGE_CHILDREN, &after)
		return t2{wall, tv(after.Utime) + tv(after.Stime) - tv(before.Utime) - tv(before.Stime)}
	}
	once("brig")
	once("bwrap")
	var ratios []float64
	for i := 0; i < n; i++ {
		order := []string{"brig", "bwrap"}
		if i%2 == 1 {
			order = []string{"bwrap", "brig"}
		}
		got := map[string]t2{}
		for _, name := range order {
			got[name] = once(name)
			res[name] = append(res[name], got[name])
		}
		ratios = append(ratios, float64(got["brig"].wall)/float64(got["bwrap"].wall))
	}
	med := func(v []time.Duration) time.Duration {
		sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
		return v[len(v)/2].Round(10 * time.Microsecond)
	}
	fmt.Printf("\nbrig run -- true (every default layer) and bwrap --unshare-all --new-session, %d paired runs (median)\n", n)
	for _, name := range []string{"brig", "bwrap"} {
		var w, c []time.Duration
		for _, x := range res[name] {
			w, c = append(w, x.wall), append(c, x.cpu)
		}
		fmt.Printf("%-6s wall %10v cpu %10v\n", name, med(w), med(c))
	}
	sort.Float64s(ratios)
	fmt.Printf("brig/bwrap wall, median of the pairs: %.2f\n", ratios[len(ratios)/2])
}

// sleepBundle makes the bundle's process sleep (for exec and density).
func sleepBundle(cfgPath string) error {
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		return err
	}
	var s specs.Spec
	if err := json.Unmarshal(raw, &s); err != nil {
		return err
	}
	s.Process.Args = []string{"/bin/sleep", "600"}
	s.Process.Terminal = false
	raw, err = json.Marshal(&s)
	if err != nil {
		return err
	}
	return os.WriteFile(cfgPath, raw, 0o644)
}

// measured wraps a command so its own peak RSS can be read afterwards.
// wait4's rusage can't tell it for a child of this process: Go starts
// children with vfork, and a child's peak counts the memory it shared
// with this benchmark before its execve. busybox time (a small static
// binary, installed by make deps) starts the command from its own small
// memory and writes the figure to a file. rss gives KiB, or 0.
func measured(dir string, bin string, args ...string) (cmd *exec.Cmd, rss func() int64) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		return exec.Command(bin, args...), func() int64 { return 0 }
	}
	f, err := os.CreateTemp(dir, "rss-")
	if err != nil {
		return exec.Command(bin, args...), func() int64 { return 0 }
	}
	f.Close()
	cmd = exec.Command(bb, append([]string{"time", "-f", "%M", "-o", f.Name(), bin}, args...)...)
	return cmd, func() int64 {
		defer os.Remove(f.Name())
		raw, err := os.ReadFile(f.Name())
		if err != nil {
			return 0
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
		if err != nil {
			return 0
		}
		// busybox reads ru_maxrss (KiB) as pages: undo it.
		return v / int64(os.Getpagesize()/1024)
	}
}
