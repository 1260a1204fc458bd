package container

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"

	"brig/internal/cgroup"
	"brig/internal/lsm"
	"brig/internal/seccomp"
	"brig/internal/spec"
	"brig/internal/state"
)

// Update merges r into the container's resources, applies them to its
// cgroup, and saves them.
func Update(store state.Store, id string, r *specs.LinuxResources) error {
	lock, err := store.Lock(id)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	c, err := Load(store, id)
	if err != nil {
		return err
	}
	if c.Status() == specs.StateStopped {
		return fmt.Errorf("container %q has stopped: cannot update it", id)
	}
	if c.Spec.Linux == nil {
		c.Spec.Linux = &specs.Linux{}
	}
	if c.Spec.Linux.Resources == nil {
		c.Spec.Linux.Resources = &specs.LinuxResources{}
	}
	merge(c.Spec.Linux.Resources, r)
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	if err := cg.Update(c.Spec.Linux.Resources); err != nil {
		return err
	}
	return store.Save(c.State)
}

// merge copies the fields r sets into dst.
func merge(dst, r *specs.LinuxResources) {
	if r.Memory != nil {
		if dst.Memory == nil {
			dst.Memory = &specs.LinuxMemory{}
		}
		m := r.Memory
		setp(&dst.Memory.Limit, m.Limit)
		setp(&dst.Memory.Reservation, m.Reservation)
		setp(&dst.Memory.Swap, m.Swap)
		if m.Swappiness != nil {
			dst.Memory.Swappiness = m.Swappiness
		}
	}
	if r.CPU != nil {
		if dst.CPU == nil {
			dst.CPU = &specs.LinuxCPU{}
		}
		c := r.CPU
		if c.Shares != nil {
			dst.CPU.Shares = c.Shares
		}
		setp(&dst.CPU.Quota, c.Quota)
		if c.Period != nil {
			dst.CPU.Period = c.Period
		}
		setp(&dst.CPU.RealtimeRuntime, c.RealtimeRuntime)
		if c.RealtimePeriod != nil {
			dst.CPU.RealtimePeriod = c.RealtimePeriod
		}
		if c.Cpus != "" {
			dst.CPU.Cpus = c.Cpus
		}
		if c.Mems != "" {
			dst.CPU.Mems = c.Mems
		}
		if c.Idle != nil {
			dst.CPU.Idle = c.Idle
		}
		if c.Burst != nil {
			dst.CPU.Burst = c.Burst
		}
	}
	if r.Pids != nil {
		dst.Pids = r.Pids
	}
	if r.BlockIO != nil {
		if dst.BlockIO == nil {
			dst.BlockIO = &specs.LinuxBlockIO{}
		}
		if r.BlockIO.Weight != nil {
			dst.BlockIO.Weight = r.BlockIO.Weight
		}
		b := r.BlockIO
		if b.ThrottleReadBpsDevice != nil {
			dst.BlockIO.ThrottleReadBpsDevice = b.ThrottleReadBpsDevice
		}
		if b.ThrottleWriteBpsDevice != nil {
			dst.BlockIO.ThrottleWriteBpsDevice = b.ThrottleWriteBpsDevice
		}
		if b.ThrottleReadIOPSDevice != nil {
			dst.BlockIO.ThrottleReadIOPSDevice = b.ThrottleReadIOPSDevice
		}
		if b.ThrottleWriteIOPSDevice != nil {
			dst.BlockIO.ThrottleWriteIOPSDevice = b.ThrottleWriteIOPSDevice
		}
	}
	if r.HugepageLimits != nil {
		dst.HugepageLimits = r.HugepageLimits
	}
	if r.Unified != nil {
		if dst.Unified == nil {
			dst.Unified = map[string]string{}
		}
		for k, v := range r.Unified {
			dst.Unified[k] = v
		}
	}
}

func setp(dst **int64, v *int64) {
	if v != nil {
		*dst = v
	}
}

// Event is one line of `brig events`, in runc's shape.
type Event struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data any    `json:"data,omitempty"`
}

// StatsEvent reads the container's cgroup statistics.
func StatsEvent(store state.Store, id string) (*Event, error) {
	c, err := Load(store, id)
	if err != nil {
		return nil, err
	}
	if c.Status() == specs.StateStopped {
		return nil, errNotRunning(id)
	}
	cg, err := c.cgroup()
	if err != nil {
		return nil, err
	}
	st, err := cg.Stats()
	if err != nil {
		return nil, err
	}
	return &Event{Type: "stats", ID: id, Data: st}, nil
}

// OOMKills reads how many processes the kernel's OOM killer has killed in
// the container's cgroup (memory.oom_control on v1, memory.events on v2).
func OOMKills(store state.Store, id string) (uint64, error) {
	c, err := Load(store, id)
	if err != nil {
		return 0, err
	}
	n, _ := cgroup.Events(c.CgroupPaths)
	return n, nil
}

// Features describes what this brig supports (runtime-spec features).
func Features() *features.Features {
	t := true
	apparmor, selinux := lsm.AppArmorEnabled(), lsm.SELinuxEnabled()
	var capNames []string
	for _, c := range capability.ListKnown() {
		capNames = append(capNames, "CAP_"+upper(c.String()))
	}
	sort.Strings(capNames)
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         spec.HookNames,
		MountOptions:  spec.MountOptionNames(),
		Linux: &features.Linux{
			Namespaces:      spec.NamespaceTypes(),
			Capabilities:    capNames,
			Cgroup:          &features.Cgroup{V1: &t, V2: &t, Systemd: &t},
			MountExtensions: &features.MountExtensions{IDMap: &features.IDMap{Enabled: &t}},
			MemoryPolicy:    memoryPolicyFeatures(),
			NetDevices:      &features.NetDevices{Enabled: &t},
			IntelRdt:        &features.IntelRdt{Enabled: &t, Schemata: &t, Monitoring: &t},
			Seccomp: &features.Seccomp{
				Enabled:        &t,
				Actions:        seccomp.ActionNames(),
				Operators:      seccomp.OperatorNames(),
				Archs:          seccomp.ArchNames(),
				KnownFlags:     seccomp.FlagNames(),
				SupportedFlags: seccomp.FlagNames(),
			},
			Apparmor: &features.Apparmor{Enabled: &apparmor},
			Selinux:  &features.Selinux{Enabled: &selinux},
		},
		Annotations: map[string]string{
			"org.opencontainers.runc.checkpoint.enabled": "false",
			"io.github.brig.cgroup.mode":                 cgroup.Mode(),
			"io.github.brig.landlock.abi":                strconv.Itoa(lsm.LandlockABI()),
			"io.github.brig.landlock.annotation":         lsm.LandlockAnnotation,
		},
	}
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

func memoryPolicyFeatures() *features.MemoryPolicy {
	modes, flags := spec.MemoryPolicyNames()
	return &features.MemoryPolicy{Modes: modes, Flags: flags}
}
