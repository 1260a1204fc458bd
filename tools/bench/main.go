// Command bench measures container start-up: the wall time and the CPU
// time (user+sys of the runtime and everything it waited for) of `run` of
// /bin/true in a busybox bundle, for brig, runc and crun in one run (taking
// turns, run by run), and prints the ratios. It measures; it asserts
// nothing.
//
//	go run ./tools/bench -brig bin/brig -n 50
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/sys/unix"
)

type sample struct{ wall, cpu time.Duration }

func main() {
	brig := flag.String("brig", "bin/brig", "brig binary")
	n := flag.Int("n", 50, "runs per runtime")
	mkbundle := flag.String("mkbundle", "", "a built tools/mkbundle (default: go run ./tools/mkbundle; the VM lane has no Go)")
	flag.Parse()
	dir, err := os.MkdirTemp("", "brig-bench-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	bundle := filepath.Join(dir, "bundle")
	mk := exec.Command("go", "run", "./tools/mkbundle", "-brig", *brig, "-oci-version", "1.0.2", bundle, "/bin/true")
	if *mkbundle != "" {
		mk = exec.Command(*mkbundle, "-brig", *brig, "-oci-version", "1.0.2", bundle, "/bin/true")
	}
	mk.Stderr = os.Stderr
	if err := mk.Run(); err != nil {
		fail(fmt.Errorf("make bundle: %w", err))
	}
	runtimes := []string{*brig, "runc", "crun"}
	results := map[string][]sample{}
	type runner struct{ rt, bin, root string }
	var runners []runner
	for _, rt := range runtimes {
		bin, err := exec.LookPath(rt)
		if err != nil {
			fmt.Printf("%-6s not installed\n", filepath.Base(rt))
			continue
		}
		root := filepath.Join(dir, "state-"+filepath.Base(rt))
		// Warm up once (page cache), and check it works here at all.
		if out, err := runOnce(bin, root, bundle, "warm"); err != nil {
			fmt.Printf("%-6s cannot run here: %s\n", filepath.Base(rt), out)
			continue
		}
		runners = append(runners, runner{rt, bin, root})
	}
	// The runtimes take turns, run by run, so that a change in the
	// machine's load while the benchmark runs weighs on all of them alike;
	// the order rotates each round, so that each follows each other one
	// as often (a run leaves work behind for the kernel, such as a network
	// namespace's teardown, that the next run competes with).
	for i := 0; i < *n; i++ {
		for j := range runners {
			r := runners[(i+j)%len(runners)]
			var before, after unix.Rusage
			unix.Getrusage(unix.RUSAGE_CHILDREN, &before)
			start := time.Now()
			if out, err := runOnce(r.bin, r.root, bundle, fmt.Sprintf("b%d", i)); err != nil {
				fail(fmt.Errorf("%s run: %v: %s", r.rt, err, out))
			}
			wall := time.Since(start)
			unix.Getrusage(unix.RUSAGE_CHILDREN, &after)
			cpu := tv(after.Utime) + tv(after.Stime) - tv(before.Utime) - tv(before.Stime)
			results[r.rt] = append(results[r.rt], sample{wall, cpu})
		}
	}
	fmt.Printf("\nrun of /bin/true, %d runs each (median; mean CPU)\n", *n)
	fmt.Printf("%-6s %12s %12s\n", "", "wall", "cpu")
	base := results[*brig]
	for _, rt := range runtimes {
		s := results[rt]
		if len(s) == 0 {
			continue
		}
		fmt.Printf("%-6s %12v %12v\n", name(rt, *brig), median(s, wallOf), mean(s, cpuOf))
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
		fmt.Printf("brig/%s: wall %.2f, cpu %.2f\n", rt,
			float64(median(base, wallOf))/float64(median(s, wallOf)),
			float64(mean(base, cpuOf))/float64(mean(s, cpuOf)))
	}
}

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

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}
