package initproc

import (
	"errors"
	"fmt"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"brig/internal/spec"
)

// setUser switches to process.user, keeping the permitted capabilities
// across the uid change so they can be set exactly afterwards.
//
// The ids change on this thread only (raw system calls, as runc's do):
// it is the locked thread that execs, and execve leaves only it, with
// its credentials, as the capabilities and no_new_privs (per thread
// too) already are. Go's setgroups, setresgid and setresuid change every
// thread of the process, stopping each in turn: about 0.65 ms of every
// container's start here, against a few µs.
func setUser(u specs.User, userNS, bare bool) error {
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("keepcaps: %w", err)
	}
	groups := make([]uint32, 0, len(u.AdditionalGids))
	groups = append(groups, u.AdditionalGids...)
	if err := threadSetgroups(groups); err != nil {
		// A user namespace made without privilege has setgroups denied;
		// without privilege and without namespaces, the caller's groups
		// stay.
		if !((userNS || bare) && errors.Is(err, unix.EPERM) && len(groups) == 0) {
			return fmt.Errorf("process.user.additionalGids: setgroups: %w", err)
		}
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); e != 0 {
		return fmt.Errorf("process.user.gid %d: %w", u.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); e != 0 {
		return fmt.Errorf("process.user.uid %d: %w", u.UID, e)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("keepcaps: %w", err)
	}
	if u.Umask != nil {
		unix.Umask(int(*u.Umask))
	}
	return nil
}

// threadSetgroups is setgroups(2) on this thread only.
func threadSetgroups(groups []uint32) error {
	var p unsafe.Pointer
	if len(groups) > 0 {
		p = unsafe.Pointer(&groups[0])
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(groups)), uintptr(p), 0); e != 0 {
		return e
	}
	return nil
}

func setRlimits(limits []specs.POSIXRlimit) error {
	for i, r := range limits {
		res, ok := spec.Rlimits[r.Type]
		if !ok {
			return fmt.Errorf("process.rlimits[%d]: unknown %q", i, r.Type)
		}
		lim := unix.Rlimit{Cur: r.Soft, Max: r.Hard}
		if err := unix.Prlimit(0, res, &lim, nil); err != nil {
			if errors.Is(err, unix.EPERM) {
				return fmt.Errorf("process.rlimits[%d] %s: raising the hard limit needs CAP_SYS_RESOURCE, which brig does not hold: %w", i, r.Type, err)
			}
			return fmt.Errorf("process.rlimits[%d] %s: %w", i, r.Type, err)
		}
	}
	return nil
}

func setIOPriority(p *specs.LinuxIOPriority) error {
	if p == nil {
		return nil
	}
	var class int
	switch p.Class {
	case specs.IOPRIO_CLASS_RT:
		class = 1
	case specs.IOPRIO_CLASS_BE:
		class = 2
	case specs.IOPRIO_CLASS_IDLE:
		class = 3
	default:
		return fmt.Errorf("process.ioPriority.class: unknown %q", p.Class)
	}
	const whoProcess = 1
	prio := class<<13 | p.Priority
	if _, _, e := unix.Syscall(unix.SYS_IOPRIO_SET, whoProcess, 0, uintptr(prio)); e != 0 {
		return fmt.Errorf("process.ioPriority: %w", e)
	}
	return nil
}

var schedPolicies = map[specs.LinuxSchedulerPolicy]uint32{
	specs.SchedOther: 0, specs.SchedFIFO: 1, specs.SchedRR: 2, specs.SchedBatch: 3,
	specs.SchedISO: 4, specs.SchedIdle: 5, specs.SchedDeadline: 6,
}

var schedFlags = map[specs.LinuxSchedulerFlag]uint64{
	specs.SchedFlagResetOnFork: 0x01, specs.SchedFlagReclaim: 0x02, specs.SchedFlagDLOverrun: 0x04,
	specs.SchedFlagKeepPolicy: 0x08, specs.SchedFlagKeepParams: 0x10, specs.SchedFlagUtilClampMin: 0x20,
	specs.SchedFlagUtilClampMax: 0x40,
}

func setScheduler(s *specs.Scheduler) error {
	if s == nil {
		return nil
	}
	pol, ok := schedPolicies[s.Policy]
	if !ok {
		return fmt.Errorf("process.scheduler.policy: unknown %q", s.Policy)
	}
	attr := unix.SchedAttr{
		Size: unix.SizeofSchedAttr, Policy: pol, Nice: s.Nice, Priority: uint32(s.Priority),
		Runtime: s.Runtime, Deadline: s.Deadline, Period: s.Period,
	}
	for _, f := range s.Flags {
		v, ok := schedFlags[f]
		if !ok {
			return fmt.Errorf("process.scheduler.flags: unknown %q", f)
		}
		attr.Flags |= v
	}
	if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
		return fmt.Errorf("process.scheduler: %w", err)
	}
	return nil
}

// setMemoryPolicy applies linux.memoryPolicy (validated by the plan):
// set_mempolicy, which the process keeps across execve.
func setMemoryPolicy(mp *specs.LinuxMemoryPolicy) error {
	if mp == nil {
		return nil
	}
	mode := spec.MemoryPolicyModes[mp.Mode]
	for _, f := range mp.Flags {
		mode |= spec.MemoryPolicyFlags[f]
	}
	nodes, err := spec.ParseNUMANodes(mp.Nodes)
	if err != nil {
		return fmt.Errorf("linux.memoryPolicy.nodes: %w", err)
	}
	var mask [(spec.MaxNUMANode + 1) / 64]uint64
	for _, n := range nodes {
		mask[n/64] |= 1 << (n % 64)
	}
	var maskPtr, maxnode uintptr
	if len(nodes) > 0 {
		maskPtr, maxnode = uintptr(unsafe.Pointer(&mask[0])), uintptr(len(mask)*64+1)
	}
	if _, _, e := unix.Syscall(unix.SYS_SET_MEMPOLICY, uintptr(mode), maskPtr, maxnode); e != 0 {
		return fmt.Errorf("linux.memoryPolicy: set_mempolicy %s %q: %w", mp.Mode, mp.Nodes, e)
	}
	return nil
}
