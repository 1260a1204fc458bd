package container

import (
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"brig/internal/spec"
)

// ProcessChanges are what `brig exec`'s flags change in the process it
// starts (runc exec's flags).
type ProcessChanges struct {
	Args           []string // the command, when no process file is given
	Terminal       bool
	Env            []string // added
	Cwd            string
	UID, GID       *uint32
	AdditionalGids []string
	Caps           []string // added to every set
	NoNewPrivs     bool
	AppArmor       string
	SELinuxLabel   string
}

// ExecProcess is the process `brig exec` starts: given (a --process
// file's) if not nil, else base (the container's process, the template,
// as with runc) running ch.Args; then ch applied. given is changed; base
// is not. An error names the flag at fault.
func ExecProcess(base, given *specs.Process, ch ProcessChanges) (*specs.Process, error) {
	proc := given
	if proc == nil {
		proc = &specs.Process{}
		if len(ch.Args) == 0 {
			return nil, fmt.Errorf("want a command to run, or --process FILE")
		}
		if base != nil {
			cp := *base
			proc = &cp
		}
		proc.Args = ch.Args
		proc.Terminal = ch.Terminal
		proc.ConsoleSize = nil
	}
	proc.Env = append(proc.Env[:len(proc.Env):len(proc.Env)], ch.Env...)
	if ch.Cwd != "" {
		proc.Cwd = ch.Cwd
	}
	if proc.Cwd == "" {
		proc.Cwd = "/"
	}
	if ch.UID != nil {
		proc.User.UID, proc.User.GID = *ch.UID, *ch.GID
	}
	gids := proc.User.AdditionalGids[:len(proc.User.AdditionalGids):len(proc.User.AdditionalGids)]
	for _, gs := range ch.AdditionalGids {
		n, err := strconv.ParseUint(gs, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("--additional-gids %q: %w", gs, err)
		}
		gids = append(gids, uint32(n))
	}
	proc.User.AdditionalGids = gids
	if len(ch.Caps) > 0 {
		pc := &specs.LinuxCapabilities{}
		if proc.Capabilities != nil {
			cp := *proc.Capabilities
			pc = &cp
		}
		for _, c := range ch.Caps {
			name := strings.ToUpper(c)
			if !strings.HasPrefix(name, "CAP_") {
				name = "CAP_" + name
			}
			if _, ok := spec.CapabilityByName(name); !ok {
				return nil, fmt.Errorf("--cap %q: unknown capability", c)
			}
			for _, set := range []*[]string{&pc.Bounding, &pc.Effective, &pc.Permitted, &pc.Inheritable, &pc.Ambient} {
				*set = append((*set)[:len(*set):len(*set)], name)
			}
		}
		proc.Capabilities = pc
	}
	if ch.NoNewPrivs {
		proc.NoNewPrivileges = true
	}
	if ch.AppArmor != "" {
		proc.ApparmorProfile = ch.AppArmor
	}
	if ch.SELinuxLabel != "" {
		proc.SelinuxLabel = ch.SELinuxLabel
	}
	return proc, nil
}

// ResourceFlag is one of `brig update`'s flags (runc update's), and
// where its value goes in linux.resources.
type ResourceFlag struct {
	Name, Usage string
	set         func(r *specs.LinuxResources, n int64, s string)
	text        bool // the value is kept as text (a CPU list), not a size
}

// ResourceFlags are `brig update`'s flags, each a field of
// linux.resources; sizes take k, m and g.
var ResourceFlags = []ResourceFlag{
	{Name: "memory", Usage: "memory limit in bytes (k, m, g suffixes)", set: func(r *specs.LinuxResources, n int64, _ string) { mem(r).Limit = &n }},
	{Name: "memory-reservation", Usage: "memory soft limit", set: func(r *specs.LinuxResources, n int64, _ string) { mem(r).Reservation = &n }},
	{Name: "memory-swap", Usage: "memory+swap limit (-1: unlimited)", set: func(r *specs.LinuxResources, n int64, _ string) { mem(r).Swap = &n }},
	{Name: "cpu-shares", Usage: "CPU shares (relative weight)", set: func(r *specs.LinuxResources, n int64, _ string) { u := uint64(n); cpu(r).Shares = &u }},
	{Name: "cpu-quota", Usage: "CPU quota in µs per period", set: func(r *specs.LinuxResources, n int64, _ string) { cpu(r).Quota = &n }},
	{Name: "cpu-period", Usage: "CPU period in µs", set: func(r *specs.LinuxResources, n int64, _ string) { u := uint64(n); cpu(r).Period = &u }},
	{Name: "cpu-rt-period", Usage: "CPU real-time period in µs", set: func(r *specs.LinuxResources, n int64, _ string) { u := uint64(n); cpu(r).RealtimePeriod = &u }},
	{Name: "cpu-rt-runtime", Usage: "CPU real-time runtime in µs", set: func(r *specs.LinuxResources, n int64, _ string) { cpu(r).RealtimeRuntime = &n }},
	{Name: "pids-limit", Usage: "maximum number of processes", set: func(r *specs.LinuxResources, n int64, _ string) { r.Pids = &specs.LinuxPids{Limit: &n} }},
	{Name: "blkio-weight", Usage: "block I/O weight (10-1000)", set: func(r *specs.LinuxResources, n int64, _ string) {
		u := uint16(n)
		r.BlockIO = &specs.LinuxBlockIO{Weight: &u}
	}},
	{Name: "cpuset-cpus", Usage: "CPUs allowed (0-3,5)", text: true, set: func(r *specs.LinuxResources, _ int64, s string) { cpu(r).Cpus = s }},
	{Name: "cpuset-mems", Usage: "memory nodes allowed", text: true, set: func(r *specs.LinuxResources, _ int64, s string) { cpu(r).Mems = s }},
}

// Resources are the linux.resources `brig update` applies: the flags'
// values (by name; "" not given) set over r (a --resources file's, or
// empty). parseSize reads a size. An error names the flag at fault.
func Resources(r *specs.LinuxResources, values map[string]string, parseSize func(string) (int64, error)) (*specs.LinuxResources, error) {
	for _, f := range ResourceFlags {
		v := values[f.Name]
		if v == "" {
			continue
		}
		if f.text {
			f.set(r, 0, v)
			continue
		}
		n, err := parseSize(v)
		if err != nil {
			return nil, fmt.Errorf("--%s %q: %w", f.Name, v, err)
		}
		f.set(r, n, v)
	}
	return r, nil
}

func mem(r *specs.LinuxResources) *specs.LinuxMemory {
	if r.Memory == nil {
		r.Memory = &specs.LinuxMemory{}
	}
	return r.Memory
}

func cpu(r *specs.LinuxResources) *specs.LinuxCPU {
	if r.CPU == nil {
		r.CPU = &specs.LinuxCPU{}
	}
	return r.CPU
}
