package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

// execBench times `exec` of /bin/true into a running container (the
// bundle's process is replaced by sleep), per runtime, in turns.
func execBench(runtimes []string, brig, bundle, states string, n int) {
	type rt struct {
		name, bin, root, id string
	}
	var rts []rt
	for i, r := range runtimes {
		bin, err := exec.LookPath(r)
		if err != nil {
			continue
		}
		x := rt{name(r, brig), bin, filepath.Join(states, fmt.Sprintf("exec-%d", i)), "execbench"}
		// The detached container keeps its stdio: a file, not a pipe
		// (a pipe would stay open, and the wait for it, until it ends).
		log, err := os.CreateTemp(states, "exec-log-")
		if err != nil {
			fail(err)
		}
		c := exec.Command(bin, "--root", x.root, "run", "-d", "--bundle", bundle, x.id)
		c.Stdout, c.Stderr = log, log
		err = c.Run()
		log.Close()
		if err != nil {
			out, _ := os.ReadFile(log.Name())
			fmt.Printf("%-6s exec: can't start a container here: %s\n", x.name, strings.TrimSpace(string(out)))
			continue
		}
		atExit(func() { exec.Command(bin, "--root", x.root, "delete", "--force", x.id).Run() })
		rts = append(rts, x)
	}
	times := map[string][]time.Duration{}
	for i := 0; i < n; i++ {
		for _, x := range rts {
			start := time.Now()
			if out, err := exec.Command(x.bin, "--root", x.root, "exec", x.id, "/bin/true").CombinedOutput(); err != nil {
				fmt.Printf("%-6s exec: %v: %s\n", x.name, err, out)
				break
			}
			times[x.name] = append(times[x.name], time.Since(start))
		}
	}
	fmt.Printf("\nexec of /bin/true into a running container, %d each in turns (median wall)\n", n)
	for _, x := range rts {
		if t := times[x.name]; len(t) > 0 {
			fmt.Printf("%-6s %12v\n", x.name, medianD(t))
		}
	}
}

// densityBench creates, starts and deletes n containers at once per
// runtime (each running sleep): the time of each phase, failures, the
// most memory the runtime's processes held together (sum of peak RSS of
// the concurrent commands of a phase), and what was left.
func densityBench(runtimes []string, brig, bundle, states string, n int) {
	fmt.Printf("\n%d containers created, started and deleted concurrently (wall per phase; failures; sum of the commands' peak RSS)\n", n)
	for i, r := range runtimes {
		bin, err := exec.LookPath(r)
		if err != nil {
			continue
		}
		root := filepath.Join(states, fmt.Sprintf("density-%d", i))
		phase := func(args func(id string) []string) (time.Duration, int, int64) {
			var wg sync.WaitGroup
			var mu sync.Mutex
			fails, rss := 0, int64(0)
			sem := make(chan struct{}, 4*runtime.NumCPU()+n) // all at once
			start := time.Now()
			for k := 0; k < n; k++ {
				wg.Add(1)
				sem <- struct{}{}
				go func(id string) {
					defer wg.Done()
					defer func() { <-sem }()
					c, peak := measured(states, bin, append([]string{"--root", root}, args(id)...)...)
					err := c.Run()
					kib := peak()
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						fails++
						return
					}
					rss += kib
				}(fmt.Sprintf("d%d", k))
			}
			wg.Wait()
			return time.Since(start), fails, rss
		}
		c, cf, crss := phase(func(id string) []string { return []string{"create", "--bundle", bundle, id} })
		s, sf, srss := phase(func(id string) []string { return []string{"start", id} })
		d, df, drss := phase(func(id string) []string { return []string{"delete", "--force", id} })
		// Anything left: state entries, and the containers' cgroups.
		left := 0
		if ents, err := os.ReadDir(root); err == nil {
			for _, e := range ents {
				if e.IsDir() && strings.HasPrefix(e.Name(), "d") {
					left++
					exec.Command(bin, "--root", root, "delete", "--force", e.Name()).Run()
				}
			}
		}
		os.RemoveAll(root)
		fmt.Printf("%-6s create %9v (%d failed) start %9v (%d failed) delete %9v (%d failed); peak RSS %d/%d/%d MiB; left %d\n",
			name(r, brig), c.Round(time.Millisecond), cf, s.Round(time.Millisecond), sf, d.Round(time.Millisecond), df,
			crss/1024, srss/1024, drss/1024, left)
	}
}

func medianD(v []time.Duration) time.Duration {
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	return v[len(v)/2].Round(10 * time.Microsecond)
}
