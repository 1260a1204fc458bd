// Command bench measures container start-up: the wall time and the CPU
// time (user+sys of the runtime and everything it waited for) of `run` of
// /bin/true in a busybox bundle, for brig, runc and crun in one run (each
// measured run after one of the same runtime, these pairs shuffled
// together), and prints the ratios. It measures; it asserts
// nothing.
//
//	go run ./tools/bench -brig bin/brig -n 50
//	go run ./tools/bench -brig bin/brig -others /tmp/brig-before,crun -n 50
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

type sample struct {
	wall, cpu time.Duration
	rss       int64  // peak resident set of the runtime's processes, KiB
	after     string // the runtime whose run came just before ("" for the first)
}

func main() {
	brig := flag.String("brig", "bin/brig", "brig binary")
	n := flag.Int("n", 50, "runs per runtime")
	mkbundle := flag.String("mkbundle", "", "a built tools/mkbundle (default: go run ./tools/mkbundle; the VM lane has no Go)")
	gap := flag.Duration("gap", 0, "pause before each run, to start it on a machine done with the last run's leftovers")
	stateParent := flag.String("states", tmpfsDir(), "where the runtimes' state roots go")
	byPrev := flag.Bool("by-previous", false, "also print each runtime's median wall time by the runtime that ran just before it")
	others := flag.String("others", "runc,crun", "the runtimes to compare brig with, comma-separated (another brig build too, to measure a change)")
	profile := flag.String("seccomp", "", `"engines": the bundle gets the engines' default seccomp profile (containers-common's where installed, else Docker's), as Docker and Podman pass it`)
	sandboxRuns := flag.Int("sandbox", 0, "instead: this many paired runs of brig run -- true and bwrap --unshare-all --new-session")
	execRuns := flag.Int("exec", 0, "instead: this many execs of /bin/true into a running container, per runtime")
	density := flag.Int("density", 0, "instead: create, start and delete this many containers at once, per runtime")
	flag.Parse()
	if *sandboxRuns > 0 {
		sandboxBench(*brig, *sandboxRuns)
		return
	}
	dir, err := os.MkdirTemp("", "brig-bench-")
	if err != nil {
		fail(err)
	}
	atExit(func() { os.RemoveAll(dir) })
	// The state roots go on a tmpfs, as /run is where runtimes keep state
	// on a usual machine: on ext4 each file a run creates in its state
	// directory makes the inode allocator skip the ones recently deleted,
	// a scan that grows run by run (an eighth of a run's time here, where
	// /run is ext4).
	states, err := os.MkdirTemp(*stateParent, "brig-bench-state-")
	if err != nil {
		fail(err)
	}
	atExit(func() { os.RemoveAll(states) })
	defer cleanup()
	bundle := filepath.Join(dir, "bundle")
	mk := exec.Command("go", "run", "./tools/mkbundle", "-brig", *brig, "-oci-version", "1.0.2", bundle, "/bin/true")
	if *mkbundle != "" {
		mk = exec.Command(*mkbundle, "-brig", *brig, "-oci-version", "1.0.2", bundle, "/bin/true")
	}
	mk.Stderr = os.Stderr
	if err := mk.Run(); err != nil {
		fail(fmt.Errorf("make bundle: %w", err))
	}
	if *execRuns > 0 || *density > 0 {
		var rts []string
		rts = append(rts, *brig)
		for _, rt := range strings.Split(*others, ",") {
			if rt = strings.TrimSpace(rt); rt != "" {
				rts = append(rts, rt)
			}
		}
		// The containers run sleep instead of exiting.
		if err := sleepBundle(filepath.Join(bundle, "config.json")); err != nil {
			fail(err)
		}
		if *execRuns > 0 {
			execBench(rts, *brig, bundle, states, *execRuns)
		}
		if *density > 0 {
			densityBench(rts, *brig, bundle, states, *density)
		}
		return
	}
	what := "run of /bin/true"
	if *profile == "engines" {
		name, err := withEnginesProfile(filepath.Join(bundle, "config.json"))
		if err != nil {
			fail(err)
		}
		what += ", with " + name
	} else if *profile != "" {
		fail(fmt.Errorf("-seccomp: %q is not \"engines\"", *profile))
	}
	runtimes := []string{*brig}
	for _, rt := range strings.Split(*others, ",") {
		if rt = strings.TrimSpace(rt); rt != "" {
			runtimes = append(runtimes, rt)
		}
	}
	results := map[string][]sample{}
	type runner struct{ rt, bin, root string }
	var runners []runner
	for _, rt := range runtimes {
		bin, err := exec.LookPath(rt)
		if err != nil {
			fmt.Printf("%-6s not installed\n", name(rt, *brig))
			continue
		}
		root := filepath.Join(states, fmt.Sprintf("state-%d", len(runners)))
		// Warm up once (page cache), and check it works here at all.
		if out, err := runOnce(bin, root, bundle, "warm"); err != nil {
			fmt.Printf("%-6s cannot run here: %s\n", name(rt, *brig), out)
			continue
		}
		runners = append(runners, runner{rt, bin, root})
	}
	// Each run leaves work behind that the next run pays for (deferred
	// teardown in the kernel, memory to reclaim, under emulation the
	// emulator's own bookkeeping), and how much differs from runtime to
	// runtime: in the VM lane, a run right after crun's took 80–270 ms
	// longer than after brig's, whichever runtime it was. So each measured run follows an
	// unmeasured run of the same runtime — a machine running one runtime,
	// start after start, pays its own leftovers and no other's — and these
	// pairs are shuffled together (fixed seed), so that a change in the
	// machine's load weighs on all runtimes alike. (Taking turns in a
	// fixed cycle made each runtime always follow the same other one.)
	var schedule []runner
	for i := 0; i < *n; i++ {
		schedule = append(schedule, runners...)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(schedule), func(i, j int) { schedule[i], schedule[j] = schedule[j], schedule[i] })
	prev := ""
	measured := map[string][]sample{}
	for i, r := range schedule {
		for k := 0; k < 2; k++ {
			if *gap > 0 {
				time.Sleep(*gap)
			}
			var before, after unix.Rusage
			unix.Getrusage(unix.RUSAGE_CHILDREN, &before)
			start := time.Now()
			out, rss, err := runOnceRSS(r.bin, r.root, bundle, fmt.Sprintf("b%d-%d", i, k))
			if err != nil {
				fail(fmt.Errorf("%s run: %v: %s", r.rt, err, out))
			}
			wall := time.Since(start)
			unix.Getrusage(unix.RUSAGE_CHILDREN, &after)
			cpu := tv(after.Utime) + tv(after.Stime) - tv(before.Utime) - tv(before.Stime)
			x := sample{wall, cpu, rss, prev}
			results[r.rt] = append(results[r.rt], x)
			if k == 1 {
				measured[r.rt] = append(measured[r.rt], x)
			}
			prev = r.rt
		}
	}
	all := results
	results = measured
	fmt.Printf("\n%s, %d runs each, each after one of its own (median; mean CPU; peak RSS of the runtime's command, median)\n", what, *n)
	fmt.Printf("%-6s %12s %12s %12s\n", "", "wall", "cpu", "peak RSS")
	base := results[*brig]
	for _, rt := range runtimes {
		s := results[rt]
		if len(s) == 0 {
			continue
		}
		fmt.Printf("%-6s %12v %12v %9d KiB\n", name(rt, *brig), median(s, wallOf), mean(s, cpuOf), medianRSS(s))
	}
	if *byPrev {
		fmt.Println("\nmedian wall time of all runs, by the runtime that ran just before:")
		for _, rt := range runtimes {
			for _, p := range runtimes {
				var s []sample
				for _, x := range all[rt] {
					if x.after == p {
						s = append(s, x)
					}
				}
				if len(s) > 0 {
					fmt.Printf("%-6s after %-6s %12v (%d runs)\n", name(rt, *brig), name(p, *brig), median(s, wallOf), len(s))
				}
			}
		}
	}
	if len(base) == 0 {
		return
	}
	fmt.Println()
	for _, rt := range runtimes[1:] {
		s := results[rt]
		if len(s) == 0 {
			continue
		}
		fmt.Printf("brig/%s: wall %.2f, cpu %.2f, peak RSS %.2f\n", name(rt, *brig),
			float64(median(base, wallOf))/float64(median(s, wallOf)),
			float64(mean(base, cpuOf))/float64(mean(s, cpuOf)),
			float64(medianRSS(base))/float64(medianRSS(s)))
	}
}

// name is how a runtime is shown: brig, a command's name (runc), or the
// path of another binary.
func name(rt, brig string) string {
	if rt == brig {
		return "brig"
	}
	return rt
}

func runOnce(bin, root, bundle, id string) ([]byte, error) {
	cmd := exec.Command(bin, "--root", root, "run", "--bundle", bundle, id)
	out, err := cmd.CombinedOutput()
	if err != nil {
		exec.Command(bin, "--root", root, "delete", "--force", id).Run()
	}
	return out, err
}

// runOnceRSS is runOnce with the peak RSS of the runtime's own process
// (see measured).
func runOnceRSS(bin, root, bundle, id string) ([]byte, int64, error) {
	cmd, rss := measured(os.TempDir(), bin, "--root", root, "run", "--bundle", bundle, id)
	out, err := cmd.CombinedOutput()
	kib := rss()
	if err != nil {
		exec.Command(bin, "--root", root, "delete", "--force", id).Run()
		return out, 0, err
	}
	return out, kib, nil
}

// medianRSS is the median of the runs' peaks (their maximum swings with
// when the garbage collector ran).
func medianRSS(s []sample) int64 {
	v := make([]int64, len(s))
	for i, x := range s {
		v[i] = x.rss
	}
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	return v[len(v)/2]
}

func tv(t unix.Timeval) time.Duration {
	return time.Duration(t.Sec)*time.Second + time.Duration(t.Usec)*time.Microsecond
}

func wallOf(s sample) time.Duration { return s.wall }
func cpuOf(s sample) time.Duration  { return s.cpu }

func median(s []sample, f func(sample) time.Duration) time.Duration {
	v := make([]time.Duration, len(s))
	for i, x := range s {
		v[i] = f(x)
	}
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	return v[len(v)/2].Round(10 * time.Microsecond)
}

func mean(s []sample, f func(sample) time.Duration) time.Duration {
	var t time.Duration
	for _, x := range s {
		t += f(x)
	}
	return (t / time.Duration(len(s))).Round(10 * time.Microsecond)
}

// tmpfsDir is /dev/shm where it is a tmpfs, else the temporary directory.
func tmpfsDir() string {
	var st unix.Statfs_t
	if unix.Statfs("/dev/shm", &st) == nil && st.Type == unix.TMPFS_MAGIC {
		return "/dev/shm"
	}
	return os.TempDir()
}

var cleanups []func()

func atExit(f func()) { cleanups = append(cleanups, f) }

func cleanup() {
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	cleanups = nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	cleanup()
	os.Exit(1)
}
