package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"brig/internal/container"
)

func init() {
	register(command{name: "pause", summary: "freeze every process of a container", run: cmdPause})
	register(command{name: "resume", summary: "thaw a paused container", run: cmdResume})
	register(command{name: "ps", summary: "list a container's processes", run: cmdPs})
	register(command{name: "update", summary: "change a container's resource limits", run: cmdUpdate})
	register(command{name: "events", summary: "print a container's stats and events as JSON lines", run: cmdEvents})
	register(command{name: "features", summary: "print what this brig supports (runtime-spec features JSON)", run: cmdFeatures})
}

func cmdPause(g *global, args []string) (int, error) {
	fs := newFlags("pause", "ID")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	id, err := oneID(fs)
	if err != nil {
		return 2, err
	}
	return 0, container.Pause(g.store(), id)
}

func cmdResume(g *global, args []string) (int, error) {
	fs := newFlags("resume", "ID")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	id, err := oneID(fs)
	if err != nil {
		return 2, err
	}
	return 0, container.Resume(g.store(), id)
}

func cmdPs(g *global, args []string) (int, error) {
	fs := newFlags("ps", "[--format table|json] ID [PS_ARGS...]")
	format := fs.String("format", "table", "table (runs ps) or json (host pids)")
	fs.StringVar(format, "f", "table", "short for --format")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	if fs.NArg() < 1 {
		return 2, usagef("want a container id")
	}
	pids, err := container.Pids(g.store(), fs.Arg(0))
	if err != nil {
		return 1, err
	}
	switch *format {
	case "json":
		if pids == nil {
			pids = []int{}
		}
		return 0, printJSON(pids, false)
	case "table":
	default:
		return 2, usagef("--format %q: want table or json", *format)
	}
	psArgs := fs.Args()[1:]
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	out, err := exec.Command("ps", psArgs...).Output()
	if err != nil {
		return 1, fmt.Errorf("ps %s: %w", strings.Join(psArgs, " "), err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	col := -1
	for i, h := range strings.Fields(lines[0]) {
		if h == "PID" {
			col = i
		}
	}
	if col < 0 {
		return 1, fmt.Errorf("ps output has no PID column")
	}
	in := map[int]bool{}
	for _, p := range pids {
		in[p] = true
	}
	fmt.Println(lines[0])
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) > col {
			if p, err := strconv.Atoi(f[col]); err == nil && in[p] {
				fmt.Println(l)
			}
		}
	}
	return 0, nil
}

func cmdUpdate(g *global, args []string) (int, error) {
	fs := newFlags("update", "[--resources FILE|-] [flags] ID")
	resources := fs.String("resources", "", "JSON linux.resources from a file, or - for stdin")
	fs.StringVar(resources, "r", "", "short for --resources")
	memory := fs.String("memory", "", "memory limit in bytes (k, m, g suffixes)")
	memRes := fs.String("memory-reservation", "", "memory soft limit")
	memSwap := fs.String("memory-swap", "", "memory+swap limit (-1: unlimited)")
	cpuShares := fs.String("cpu-shares", "", "CPU shares (relative weight)")
	fs.StringVar(cpuShares, "cpu-share", "", "same as --cpu-shares (runc's spelling)")
	rtPeriod := fs.String("cpu-rt-period", "", "CPU real-time period in µs")
	rtRuntime := fs.String("cpu-rt-runtime", "", "CPU real-time runtime in µs")
	l3 := fs.String("l3-cache-schema", "", "Intel RDT L3 cache schema (not supported: brig applies linux.intelRdt at create only)")
	mb := fs.String("mem-bw-schema", "", "Intel RDT memory bandwidth schema (not supported: brig applies linux.intelRdt at create only)")
	cpuQuota := fs.String("cpu-quota", "", "CPU quota in µs per period")
	cpuPeriod := fs.String("cpu-period", "", "CPU period in µs")
	cpusetCpus := fs.String("cpuset-cpus", "", "CPUs allowed (0-3,5)")
	cpusetMems := fs.String("cpuset-mems", "", "memory nodes allowed")
	pidsLimit := fs.String("pids-limit", "", "maximum number of processes")
	blkioWeight := fs.String("blkio-weight", "", "block I/O weight (10-1000)")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	id, err := oneID(fs)
	if err != nil {
		return 2, err
	}
	if *l3 != "" || *mb != "" {
		return 2, usagef("--l3-cache-schema, --mem-bw-schema: brig applies linux.intelRdt when it creates a container, and can't change it afterwards")
	}
	r := &specs.LinuxResources{}
	if *resources != "" {
		var data []byte
		if *resources == "-" {
			data, err = io.ReadAll(os.Stdin)
		} else {
			data, err = os.ReadFile(*resources)
		}
		if err != nil {
			return 1, fmt.Errorf("--resources: %w", err)
		}
		if err := json.Unmarshal(data, r); err != nil {
			return 1, fmt.Errorf("--resources: %w", err)
		}
	}
	set := func(name, v string, dst func(int64)) error {
		if v == "" {
			return nil
		}
		n, err := parseBytes(v)
		if err != nil {
			return usagef("--%s %q: %v", name, v, err)
		}
		dst(n)
		return nil
	}
	mem := func() *specs.LinuxMemory {
		if r.Memory == nil {
			r.Memory = &specs.LinuxMemory{}
		}
		return r.Memory
	}
	cpu := func() *specs.LinuxCPU {
		if r.CPU == nil {
			r.CPU = &specs.LinuxCPU{}
		}
		return r.CPU
	}
	for _, e := range []error{
		set("memory", *memory, func(n int64) { mem().Limit = &n }),
		set("memory-reservation", *memRes, func(n int64) { mem().Reservation = &n }),
		set("memory-swap", *memSwap, func(n int64) { mem().Swap = &n }),
		set("cpu-shares", *cpuShares, func(n int64) { u := uint64(n); cpu().Shares = &u }),
		set("cpu-quota", *cpuQuota, func(n int64) { cpu().Quota = &n }),
		set("cpu-period", *cpuPeriod, func(n int64) { u := uint64(n); cpu().Period = &u }),
		set("cpu-rt-period", *rtPeriod, func(n int64) { u := uint64(n); cpu().RealtimePeriod = &u }),
		set("cpu-rt-runtime", *rtRuntime, func(n int64) { cpu().RealtimeRuntime = &n }),
		set("pids-limit", *pidsLimit, func(n int64) { r.Pids = &specs.LinuxPids{Limit: &n} }),
		set("blkio-weight", *blkioWeight, func(n int64) { u := uint16(n); r.BlockIO = &specs.LinuxBlockIO{Weight: &u} }),
	} {
		if e != nil {
			return 2, e
		}
	}
	if *cpusetCpus != "" {
		cpu().Cpus = *cpusetCpus
	}
	if *cpusetMems != "" {
		cpu().Mems = *cpusetMems
	}
	return 0, container.Update(g.store(), id, r)
}

// parseBytes reads 1024, 512k, 64m, 1g; -1 stays -1.
func parseBytes(s string) (int64, error) {
	mult := int64(1)
	ls := strings.ToLower(s)
	for suffix, m := range map[string]int64{"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30} {
		if strings.HasSuffix(ls, suffix) {
			if len(suffix) == 2 || !strings.HasSuffix(ls, "b") {
				mult = m
				ls = strings.TrimSuffix(ls, suffix)
				break
			}
		}
	}
	n, err := strconv.ParseInt(ls, 10, 64)
	if err != nil {
		return 0, err
	}
	return n * mult, nil
}

func cmdEvents(g *global, args []string) (int, error) {
	fs := newFlags("events", "[--stats] [--interval 5s] ID")
	stats := fs.Bool("stats", false, "print one stats event and exit")
	interval := fs.Duration("interval", 5*time.Second, "time between stats events")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	id, err := oneID(fs)
	if err != nil {
		return 2, err
	}
	if *interval <= 0 {
		return 2, usagef("--interval must be positive")
	}
	enc := json.NewEncoder(os.Stdout)
	if *stats {
		ev, err := container.StatsEvent(g.store(), id)
		if err != nil {
			return 1, err
		}
		return 0, enc.Encode(ev)
	}
	// Stats every interval, and an "oom" event (runc's) as soon as the
	// OOM killer strikes in the container; ends when the container stops.
	ooms, _ := container.OOMKills(g.store(), id)
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for first := true; ; first = false {
		if first {
			if err := emitStats(enc, g, id); err != nil {
				return 1, err
			}
		}
		select {
		case <-tick.C:
			if err := emitStats(enc, g, id); err != nil {
				return 0, nil // stopped: the stream ends
			}
		case <-poll.C:
			n, err := container.OOMKills(g.store(), id)
			if err != nil {
				return 0, nil
			}
			if n > ooms {
				enc.Encode(&container.Event{Type: "oom", ID: id})
				ooms = n
			}
		}
	}
}

func emitStats(enc *json.Encoder, g *global, id string) error {
	ev, err := container.StatsEvent(g.store(), id)
	if err != nil {
		return err
	}
	return enc.Encode(ev)
}

func cmdFeatures(g *global, args []string) (int, error) {
	fs := newFlags("features", "")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	return 0, printJSON(container.Features(), true)
}
