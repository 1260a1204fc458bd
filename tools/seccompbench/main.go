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
	var sc specs.LinuxSeccomp
	check(json.Unmarshal(out, &sc))
	cfgPath := filepath.Join(bundle, "config.json")
	raw, err := os.ReadFile(cfgPath)
	check(err)
	var s specs.Spec
	check(json.Unmarshal(raw, &s))
	s.Linux.Seccomp = &sc
	raw, _ = json.Marshal(&s)
	check(os.WriteFile(cfgPath, raw, 0o644))
	compiled, _ := exec.Command(*brig, "seccomp", "compile", "default").Output()
	fmt.Printf("default profile, brig: %s", compiled)

	results := map[string][2]float64{}
	for _, rt := range []string{*brig, "runc"} {
		bin, err := exec.LookPath(rt)
		if err != nil {
			continue
		}
		var a, d []float64
		for i := 0; i < *runs; i++ {
			id := fmt.Sprintf("sb%d", i)
			cmd := exec.Command(bin, "--root", filepath.Join(dir, "state"), "run", "--bundle", bundle, id)
			o, err := cmd.Output()
			if err != nil {
				fmt.Printf("%s: %v\n", rt, err)
				break
			}
			f := strings.Fields(string(o))
			if len(f) == 4 {
				x, _ := strconv.ParseFloat(f[1], 64)
				y, _ := strconv.ParseFloat(f[3], 64)
				a, d = append(a, x), append(d, y)
			}
		}
		if len(a) > 0 {
			results[rt] = [2]float64{median(a), median(d)}
			fmt.Printf("%-6s allowed-by-argument %6.1f ns/call, denied %6.1f ns/call\n", name(rt, *brig), median(a), median(d))
		}
	}
	b, okb := results[*brig]
	r, okr := results["runc"]
	if okb && okr {
		fmt.Printf("brig/runc: allowed-by-argument %.2f, denied %.2f\n", b[0]/r[0], b[1]/r[1])
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
