// Command seccompbench compares the cost of seccomp filtering under brig
// and runc on the same profile: the instruction count of the compiled
// default profile, and the time per syscall of a loop (tools/seccompbench/
// loop) run as the container's process, for a call allowed by an argument
// rule and a denied call (both go through the BPF program; calls allowed
// unconditionally are short-cut by the kernel's cache). Ratios are printed;
// nothing is asserted.
//
//	go run ./tools/seccompbench -brig bin/brig
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func main() {
	brig := flag.String("brig", "bin/brig", "brig binary")
	runs := flag.Int("runs", 5, "container runs per runtime (median taken)")
	rounds := flag.Int("rounds", 15, "in-process rounds per filter (least taken)")
	containers := flag.Bool("containers", true, "also time the calls in containers of each runtime")
	flag.Parse()
	dir, err := os.MkdirTemp("", "brig-seccompbench-")
	check(err)
	defer os.RemoveAll(dir)
	bundle := filepath.Join(dir, "bundle")
	mk := exec.Command("go", "run", "./tools/mkbundle", "-brig", *brig, "-oci-version", "1.0.2", bundle, "/loop")
	mk.Stderr = os.Stderr
	check(mk.Run())
	build := exec.Command("go", "build", "-o", filepath.Join(bundle, "rootfs", "loop"), "./tools/seccompbench/loop")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stderr = os.Stderr
	check(build.Run())
	out, err := exec.Command(*brig, "seccomp", "default").Output()
	check(err)
	var def specs.LinuxSeccomp
	check(json.Unmarshal(out, &def))
	// The floor: the least filter that must run for both calls — check
	// the arch, find the number, check the argument.
	eperm := uint(1)
	floor := specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: &eperm, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0x1234, Op: specs.OpEqualTo}}},
		{Names: []string{"kexec_load"}, Action: specs.ActErrno, ErrnoRet: &eperm}}}
	cfgPath := filepath.Join(bundle, "config.json")
	raw, err := os.ReadFile(cfgPath)
	check(err)
	var base specs.Spec
	check(json.Unmarshal(raw, &base))
	setProfile := func(sc *specs.LinuxSeccomp) {
		s := base
		l := *base.Linux
		l.Seccomp = sc
		s.Linux = &l
		raw, _ := json.Marshal(&s)
		check(os.WriteFile(cfgPath, raw, 0o644))
	}
	compiled, _ := exec.Command(*brig, "seccomp", "compile", "default").Output()
	fmt.Printf("default profile, brig: %s", compiled)
	inProcess(inProcessFilters(&def, &floor), *rounds, 100000)
	if !*containers {
		return
	}

	type result struct{ allowed, denied float64 }
	measure := func(bin string) (result, bool) {
		var a, d []float64
		for i := 0; i < *runs; i++ {
			id := fmt.Sprintf("sb%d", i)
			cmd := exec.Command(bin, "--root", filepath.Join(dir, "state"), "run", "--bundle", bundle, id)
			o, err := cmd.Output()
			if err != nil {
				fmt.Printf("%s: %v\n", bin, err)
				return result{}, false
			}
			f := strings.Fields(string(o))
			if len(f) == 4 {
				x, _ := strconv.ParseFloat(f[1], 64)
				y, _ := strconv.ParseFloat(f[3], 64)
				a, d = append(a, x), append(d, y)
			}
		}
		if len(a) == 0 {
			return result{}, false
		}
		return result{median(a), median(d)}, true
	}
	// Each runtime: no filter, the floor, the default profile; what a
	// filter adds is its time less the time with none.
	added := map[string][2]float64{}
	for _, rt := range []string{*brig, "runc", "crun"} {
		bin, err := exec.LookPath(rt)
		if err != nil {
			continue
		}
		setProfile(nil)
		none, ok1 := measure(bin)
		setProfile(&floor)
		fl, ok2 := measure(bin)
		setProfile(&def)
		dp, ok3 := measure(bin)
		if !ok1 || !ok2 || !ok3 {
			continue
		}
		fmt.Printf("%-5s no filter %6.1f/%6.1f ns/call; added by the floor filter %+5.1f/%+5.1f, by the default profile %+5.1f/%+5.1f (allowed-by-argument/denied)\n",
			name(rt, *brig), none.allowed, none.denied, fl.allowed-none.allowed, fl.denied-none.denied, dp.allowed-none.allowed, dp.denied-none.denied)
		added[rt] = [2]float64{dp.allowed - none.allowed, dp.denied - none.denied}
		if rt == *brig {
			added["floor"] = [2]float64{fl.allowed - none.allowed, fl.denied - none.denied}
		}
	}
	b, ok := added[*brig]
	if !ok {
		return
	}
	for _, other := range []string{"runc", "crun", "floor"} {
		if o, ok := added[other]; ok {
			fmt.Printf("default profile, added ns per call, brig − %s: allowed-by-argument %+.1f, denied %+.1f\n", other, b[0]-o[0], b[1]-o[1])
		}
	}
}

func name(rt, brig string) string {
	if rt == brig {
		return "brig"
	}
	return rt
}

func median(v []float64) float64 {
	for i := range v {
		for j := i + 1; j < len(v); j++ {
			if v[j] < v[i] {
				v[i], v[j] = v[j], v[i]
			}
		}
	}
	return v[len(v)/2]
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "seccompbench:", err)
		os.Exit(1)
	}
}
