package main

import (
	"fmt"
	"runtime"
	"syscall"
	"time"

	"brig/internal/seccomp"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// inProcess measures what each filter adds to a call, without containers:
// one OS thread per filter (seccomp filters are per thread), the calls
// timed in interleaved rounds, the least round kept per filter (the
// machine's noise only ever adds). A thread with no filter is the base.
func inProcess(filters []namedFilter, rounds, n int) {
	type cmd struct{ done chan [2]float64 }
	workers := make([]chan cmd, len(filters))
	ready := make(chan error)
	for i, f := range filters {
		ch := make(chan cmd)
		workers[i] = ch
		go func(f namedFilter) {
			runtime.LockOSThread() // never unlocked: the thread ends with its filter
			if f.prog != nil {
				if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
					ready <- err
					return
				}
				if _, err := f.prog.Load(); err != nil {
					ready <- fmt.Errorf("%s: %w", f.name, err)
					return
				}
			}
			ready <- nil
			for c := range ch {
				c.done <- [2]float64{timeCalls(unix.SYS_PERSONALITY, 0xffffffff, n), timeCalls(unix.SYS_KEXEC_LOAD, 0, n)}
			}
		}(f)
		if err := <-ready; err != nil {
			fmt.Println("in-process:", err)
			return
		}
	}
	best := make([][2]float64, len(filters))
	for r := 0; r < rounds; r++ {
		for i := range filters {
			c := cmd{done: make(chan [2]float64)}
			workers[i] <- c
			v := <-c.done
			for k := 0; k < 2; k++ {
				if r == 0 || v[k] < best[i][k] {
					best[i][k] = v[k]
				}
			}
		}
	}
	for _, ch := range workers {
		close(ch)
	}
	base := best[0]
	fmt.Printf("in-process, least of %d rounds of %d calls, ns added per call (personality(0xffffffff), allowed by an argument rule / kexec_load, denied):\n", rounds, n)
	for i, f := range filters[1:] {
		b := best[i+1]
		fmt.Printf("  %-44s %4d insns  %+6.1f / %+6.1f\n", f.name, len(f.prog.Insns), b[0]-base[0], b[1]-base[1])
	}
}

type namedFilter struct {
	name string
	prog *seccomp.Program
}

func timeCalls(nr, a0 uintptr, n int) float64 {
	start := time.Now()
	for i := 0; i < n; i++ {
		syscall.RawSyscall(nr, a0, 0, 0)
	}
	return float64(time.Since(start).Nanoseconds()) / float64(n)
}

// inProcessFilters: none, the floor, brig's default compiled by brig and
// by libseccomp (as brig did before, binary tree, and as runc and crun
// load it, libseccomp's default layout).
func inProcessFilters(def, floor *specs.LinuxSeccomp) []namedFilter {
	out := []namedFilter{{name: "none"}}
	add := func(name string, p *seccomp.Program, err error) {
		if err != nil {
			fmt.Println(name+":", err)
			return
		}
		out = append(out, namedFilter{name, p})
	}
	p, _, err := seccomp.Compile(floor)
	add("floor (arch, number, argument)", p, err)
	p, _, err = seccomp.Compile(def)
	add("default profile, brig's compiler", p, err)
	for _, level := range []int{2, 0} {
		p, err := seccomp.CompileWithLibseccomp(def, level)
		name := "default profile, libseccomp tree (brig before)"
		if level == 0 {
			name = "default profile, libseccomp default (runc, crun)"
		}
		add(name, p, err)
	}
	return out
}
