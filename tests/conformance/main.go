// Command conformance runs the OCI runtime-tools validation programs
// against brig, runc and crun, prints which pass, and fails if brig fails a
// program that runc or crun passes.
//
//	cd tests/conformance && go run . -brig ../../bin/brig
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const module = "github.com/opencontainers/runtime-tools"

type outcome struct {
	pass     bool
	timedOut bool
	ok, nok  int
	exitCode int
}

func (o outcome) verdict() string {
	switch {
	case o.timedOut:
		return "TIMED OUT"
	case o.pass:
		return "pass"
	}
	return "FAIL"
}

// verbose prints each program's output when it fails, and a line for each
// program and runtime as it ends (so a run cut short shows where it was).
var verbose = os.Getenv("CONFORMANCE_VERBOSE") != ""

// Time limits: a validation program that hangs (one waits for a container
// state that never comes) is killed with everything it started, and the
// runtimes' own list and delete get a limit too, so one stuck program or
// runtime can't stall the whole suite.
const (
	programLimit = 3 * time.Minute
	commandLimit = 30 * time.Second
)

func main() {
	brig := flag.String("brig", "../../bin/brig", "brig binary")
	work := flag.String("work", filepath.Join(os.TempDir(), "brig-conformance"), "build and run directory")
	only := flag.String("run", "", "run only programs whose name contains this")
	others := flag.String("others", "runc,crun", "runtimes to compare with")
	buildOnly := flag.Bool("build-only", false, "only build the programs into -work (for the VM lane)")
	noBuild := flag.Bool("no-build", false, "run the programs already in -work (built with -build-only)")
	minPass := flag.Int("min-pass", 0, "fail unless brig fully passes at least this many programs")
	flag.Parse()
	abs, err := filepath.Abs(*brig)
	if err != nil {
		fail(err)
	}
	var progs []string
	if *noBuild {
		progs, err = built(*work)
	} else {
		progs, err = build(*work)
	}
	if err != nil {
		fail(err)
	}
	if *buildOnly {
		return
	}
	runtimes := []string{abs}
	for _, r := range strings.Split(*others, ",") {
		if p, err := exec.LookPath(r); err == nil {
			runtimes = append(runtimes, p)
		}
	}
	results := map[string]map[string]outcome{}
	for _, p := range progs {
		if *only != "" && !strings.Contains(p, *only) {
			continue
		}
		results[p] = map[string]outcome{}
		for _, rt := range runtimes {
			// Each program makes its bundles in the temporary directory
			// (ocitest*) and leaves some behind: a private one goes after.
			tmp, err := os.MkdirTemp("", "brig-conformance-tmp-")
			if err != nil {
				fail(err)
			}
			// As /tmp, it must let a container root mapped to an
			// unprivileged host uid through to the bundle.
			os.Chmod(tmp, 0o755)
			before := containerIDs(rt)
			start := time.Now()
			results[p][rt] = runOne(*work, p, rt, tmp)
			if results[p][rt].timedOut {
				// A runtime killed mid-create may still be saving
				// the container it made: let it land, then list.
				time.Sleep(2 * time.Second)
			}
			if verbose {
				o := results[p][rt]
				fmt.Fprintf(os.Stderr, "conformance: %s with %s: %s, %d ok, %d not ok, %.1fs\n",
					p, label(rt, abs), o.verdict(), o.ok, o.nok, time.Since(start).Seconds())
			}
			cleanup(rt, before)
			unmountLeftovers(tmp)
			removeTmp(tmp)
		}
	}
	removeTestCgroups()
	names := make([]string, 0, len(results))
	for p := range results {
		names = append(names, p)
	}
	sort.Strings(names)
	fmt.Printf("%-36s", "program")
	for _, rt := range runtimes {
		fmt.Printf(" %-12s", label(rt, abs))
	}
	fmt.Println()
	passes := map[string]int{}
	var regressions []string
	for _, p := range names {
		fmt.Printf("%-36s", p)
		for _, rt := range runtimes {
			o := results[p][rt]
			mark := fmt.Sprintf("FAIL %d/%d", o.ok, o.ok+o.nok)
			if o.timedOut {
				mark = "TIMEOUT"
			}
			if o.pass {
				mark = "pass"
				passes[rt]++
			}
			fmt.Printf(" %-12s", mark)
		}
		fmt.Println()
		if !results[p][abs].pass {
			for _, rt := range runtimes[1:] {
				if results[p][rt].pass && !knownWrong[p] {
					regressions = append(regressions, fmt.Sprintf("%s (passes with %s)", p, label(rt, abs)))
					break
				}
			}
		}
	}
	fmt.Println()
	for _, rt := range runtimes {
		fmt.Printf("%s: %d of %d programs fully pass\n", label(rt, abs), passes[rt], len(names))
	}
	if passes[abs] < *minPass {
		fmt.Printf("\nbrig fully passes %d programs, fewer than -min-pass %d\n", passes[abs], *minPass)
		os.Exit(1)
	}
	if len(regressions) > 0 {
		fmt.Printf("\nbrig fails what another runtime passes:\n  %s\n", strings.Join(regressions, "\n  "))
		os.Exit(1)
	}
	fmt.Println("conformance: brig passes every program another runtime passes")
}

// knownWrong are programs whose failures with brig are the test's fault,
// not brig's (README, "OCI conformance", says why for each).
var knownWrong = map[string]bool{}

// containerIDs lists the containers a runtime has in its default root.
func containerIDs(rt string) map[string]bool {
	cmd, cancel := limited(commandLimit, rt, "list", "-q")
	defer cancel()
	out, _ := cmd.Output()
	ids := map[string]bool{}
	for _, id := range strings.Fields(string(out)) {
		ids[id] = true
	}
	return ids
}

// cleanup deletes the containers a program left behind (some validation
// programs don't delete what they create when a check fails).
func cleanup(rt string, before map[string]bool) {
	for id := range containerIDs(rt) {
		if !before[id] {
			cmd, cancel := limited(commandLimit, rt, "delete", "--force", id)
			if err := cmd.Run(); err != nil && verbose {
				fmt.Fprintf(os.Stderr, "conformance: %s delete --force %s: %v\n", label(rt, ""), id, err)
			}
			cancel()
		}
	}
}

// unmountLeftovers detaches mounts a runtime left in brig's own mount
// namespace under a program's temporary directory (runc, given a config
// without a mount namespace, mounts the rootfs where it runs; a runtime may
// leave /proc mounted in a bundle's rootfs): each mount point under it,
// the deepest first, as a mount point may not be the bundle's top.
func unmountLeftovers(tmp string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 5 && strings.HasPrefix(f[4], tmp+"/") {
			points = append(points, f[4])
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	for _, p := range points {
		unix.Unmount(p, unix.MNT_DETACH)
	}
}

// removeTmp removes a program's temporary directory, unless something is
// still mounted under it (removing through a mount could reach the host's
// files): then it stays, and says so.
func removeTmp(tmp string) {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 5 && strings.HasPrefix(f[4], tmp+"/") {
			fmt.Fprintf(os.Stderr, "conformance: %s still has a mount (%s): left in place\n", tmp, f[4])
			return
		}
	}
	os.RemoveAll(tmp)
}

// removeTestCgroups removes the cgroups the validation programs name
// (cgroupsPath /cgrouptest, relative testdir/cgrouptest) where a runtime
// left them; only empty ones go (rmdir).
func removeTestCgroups() {
	ctls, _ := os.ReadDir("/sys/fs/cgroup")
	for _, c := range ctls {
		base := filepath.Join("/sys/fs/cgroup", c.Name())
		for _, d := range []string{"testdir/cgrouptest", "testdir", "cgrouptest"} {
			os.Remove(filepath.Join(base, d))
		}
	}
	for _, d := range []string{"testdir/cgrouptest", "testdir", "cgrouptest"} {
		os.Remove(filepath.Join("/sys/fs/cgroup", d))
	}
}

func label(rt, brig string) string {
	if rt == brig {
		return "brig"
	}
	return filepath.Base(rt)
}

// build compiles runtimetest and every validation program into work, with
// the rootfs tarball they expect beside them.
func build(work string) ([]string, error) {
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	// go mod download, not go list -m: on a machine whose module cache
	// doesn't hold the module yet, list gives an empty directory.
	out, err := exec.Command("go", "mod", "download", "-json", module).Output()
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", module, err)
	}
	var dl struct{ Dir string }
	if err := json.Unmarshal(out, &dl); err != nil || dl.Dir == "" {
		return nil, fmt.Errorf("download %s: no directory in %q (%v)", module, out, err)
	}
	dir := dl.Dir
	data, err := os.ReadFile(filepath.Join(dir, "rootfs-amd64.tar.gz"))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(work, "rootfs-amd64.tar.gz"), data, 0o644); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(filepath.Join(dir, "validation"))
	if err != nil {
		return nil, err
	}
	pkgs := []string{module + "/cmd/runtimetest"}
	var progs []string
	for _, e := range ents {
		if e.IsDir() && e.Name() != "util" {
			progs = append(progs, e.Name())
			pkgs = append(pkgs, module+"/validation/"+e.Name())
		}
	}
	for _, pkg := range pkgs {
		name := filepath.Base(pkg)
		target := filepath.Join(work, name+".t")
		if name == "runtimetest" {
			target = filepath.Join(work, "runtimetest")
		}
		if _, err := os.Stat(target); err == nil {
			continue
		}
		cmd := exec.Command("go", "build", "-ldflags", "-s -w", "-o", target, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build %s: %v\n%s", pkg, err, out)
		}
	}
	return progs, nil
}

// built lists the programs a -build-only run left in work.
func built(work string) ([]string, error) {
	ents, err := os.ReadDir(work)
	if err != nil {
		return nil, err
	}
	var progs []string
	for _, e := range ents {
		if name, ok := strings.CutSuffix(e.Name(), ".t"); ok {
			progs = append(progs, name)
		}
	}
	if len(progs) == 0 {
		return nil, fmt.Errorf("no programs in %s (build them with -build-only)", work)
	}
	return progs, nil
}

func runOne(work, prog, runtime, tmp string) outcome {
	cmd, cancel := limited(programLimit, filepath.Join(work, prog+".t"))
	defer cancel()
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "RUNTIME="+runtime, "TMPDIR="+tmp)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	o := outcome{exitCode: cmd.ProcessState.ExitCode()}
	o.timedOut = err != nil && time.Since(start) >= programLimit
	for _, l := range strings.Split(out.String(), "\n") {
		switch {
		case strings.HasPrefix(l, "not ok"):
			o.nok++
		case strings.HasPrefix(l, "ok"):
			o.ok++
		}
	}
	o.pass = err == nil && o.nok == 0 && o.ok > 0
	if verbose && !o.pass {
		fmt.Fprintf(os.Stderr, "=== %s with %s\n%s\n", prog, runtime, out.String())
	}
	return o
}

// limited is a command that is killed, with its whole process group, once
// limit has passed; its Wait returns at most WaitDelay later even when a
// process it left (a container's, a runtime's) still holds its output.
// The caller calls the cancel function when done with it.
func limited(limit time.Duration, name string, args ...string) (*exec.Cmd, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &unix.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		fmt.Fprintf(os.Stderr, "conformance: %s still running after %s; the processes:\n%s", name, limit, processes())
		return unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
	}
	cmd.WaitDelay = 5 * time.Second
	return cmd, cancel
}

// processes lists every process with its parent, state, the kernel
// function it waits in and its command line (what a hang waits for).
func processes() string {
	ents, _ := os.ReadDir("/proc")
	var b strings.Builder
	for _, e := range ents {
		pid := e.Name()
		if pid[0] < '0' || pid[0] > '9' {
			continue
		}
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		rest := string(stat)
		if i := strings.LastIndexByte(rest, ')'); i >= 0 {
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) < 2 || pid == "2" || f[1] == "2" { // kernel threads
			continue
		}
		wchan, _ := os.ReadFile("/proc/" + pid + "/wchan")
		cmdline, _ := os.ReadFile("/proc/" + pid + "/cmdline")
		fmt.Fprintf(&b, "  %7s %7s %s %-24s %s\n", pid, f[1], f[0], wchan,
			strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " ")))
	}
	return b.String()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "conformance:", err)
	os.Exit(1)
}
