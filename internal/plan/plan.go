// Package plan decides, in the brig command and before anything exists,
// everything a container — or a process exec'd into one — will be: the
// spec validated (every problem with its JSON path), labels settled,
// capabilities resolved against the host, the seccomp profile compiled to
// BPF, the Landlock rule set parsed, mounts parsed into typed entries,
// namespaces turned into clone flags and joins, and which bind sources the
// host must prepare. A Plan is data: the lifecycle (internal/container)
// carries it out and the init (internal/initproc) applies it in the layer
// order, and neither parses or decides again. Bad input stops in Build, so
// it never gets a state directory, a cgroup, a namespace, a mount or a
// hook run.
//
// What Build needs to know of the machine comes through Host, so the
// decisions are unit-tested without root (see plan_test.go).
package plan

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"brig/internal/caps"
	"brig/internal/lsm"
	"brig/internal/netdev"
	"brig/internal/resctrl"
	"brig/internal/seccomp"
	"brig/internal/spec"
)

// Plan is a container as decided.
type Plan struct {
	// Spec is the validated spec, settled in place: a mount label dropped
	// where SELinux is off, the AppArmor profile resolved. It is what the
	// state keeps (exec and hooks read it).
	Spec   *specs.Spec
	Bundle string // absolute
	// Warnings are said once by the caller: what the host can't give and
	// brig leaves out (capabilities, a mount label, unknown syscall names).
	Warnings   []string
	Namespaces Namespaces
	// Mounts are mounts[] with their options parsed, index for index.
	Mounts []spec.Mount
	// HostTrees are the bind sources brig clones as detached trees with
	// the host's privileges, for the init to attach.
	HostTrees []HostTree
	Process   Process
	// WantsLimits: linux.resources asks for a limit (device rules alone
	// don't count: only root has a devices cgroup to write them to).
	WantsLimits bool
	// MappedRoot is the host uid and gid of the container's root in a new
	// user namespace (it opens the exec fifo), nil without one.
	MappedRoot *IDs
}

// IDs is a uid and a gid.
type IDs struct{ UID, GID int }

// Namespaces say how the init gets its namespaces.
type Namespaces struct {
	// CloneFlags are the namespaces the C constructor creates.
	CloneFlags uintptr
	// Join are the namespaces it joins, by path (user first is the
	// constructor's job).
	Join []Join
	// UserNS: the process has a user namespace of its own, new or joined
	// (no mknod, no host groups).
	UserNS bool
	// CgroupNS: a new cgroup namespace, made by the init once it is in its
	// cgroup (so the namespace is rooted there).
	CgroupNS bool
	// Mount: a mount namespace, new or joined (without one: chroot).
	Mount bool
	// TimeOffsets are lines for /proc/self/timens_offsets.
	TimeOffsets []string
}

// Join is a namespace joined by path; Type as /proc/PID/ns names it.
type Join struct{ Type, Path string }

// HostTree is a bind source brig clones on the host side.
type HostTree struct {
	Index       int    // mounts[Index]
	Destination string // its destination, for messages
	Source      string // absolute
	Recursive   bool   // rbind: the mounts below the source too
	// IDMap, when set, makes the clone an id-mapped mount.
	IDMap *IDMap
}

// IDMap is the mapping of an id-mapped mount.
type IDMap struct {
	UIDs, GIDs []specs.LinuxIDMapping
	// Recursive: every mount of the tree id-mapped (ridmap), not its top.
	Recursive bool
}

// Process is what the init applies to the process it execs, for create
// and exec alike.
type Process struct {
	Spec *specs.Process
	Caps *caps.Sets
	// Seccomp is the compiled filter, nil without linux.seccomp.
	Seccomp *seccomp.Program
	// Landlock is the parsed rule set, nil without one; LandlockABI the
	// host's ABI then (the init checks it reaches as much).
	Landlock    *lsm.Landlock
	LandlockABI int
}

// Options are the caller's choices that change decisions.
type Options struct {
	Bundle string
	// Rootless: brig runs without root (no id-mapped mounts, no
	// host-side clones).
	Rootless bool
}

// Host is what a plan asks of the machine brig runs on.
type Host interface {
	// Euid is brig's effective uid.
	Euid() int
	SELinuxEnabled() bool
	// ResolveAppArmor gives the profile the process enters for a
	// process.apparmorProfile ("" → brig's default where AppArmor runs);
	// lsm.ErrAppArmorDefaultNeedsRoot is a warning, not a failure.
	ResolveAppArmor(profile string) (string, error)
	CheckSELinux(label string) error
	// Caps resolves process.capabilities against brig's bounding set.
	Caps(*specs.LinuxCapabilities) (*caps.Sets, error)
	LandlockABI() int
	// Seccomp compiles a profile to BPF.
	Seccomp(*specs.LinuxSeccomp) (*seccomp.Program, seccomp.Warnings, error)
	// NetDevice says whether the host has this network device.
	NetDevice(name string) error
	// Resctrl says whether the host has a resctrl filesystem.
	Resctrl() error
}

// System is the Host brig runs on. SeccompCache, when set, keeps compiled
// filters (see seccomp.Cache).
type System struct {
	SeccompCache *seccomp.Cache
}

func (System) Euid() int            { return unix.Geteuid() }
func (System) SELinuxEnabled() bool { return lsm.SELinuxEnabled() }
func (System) ResolveAppArmor(p string) (string, error) {
	return lsm.ResolveAppArmor(p)
}
func (System) CheckSELinux(label string) error { return lsm.CheckSELinux(label) }
func (System) Caps(c *specs.LinuxCapabilities) (*caps.Sets, error) {
	return caps.Resolve(c)
}
func (System) LandlockABI() int            { return lsm.LandlockABI() }
func (System) NetDevice(name string) error { return netdev.Exists(name) }
func (System) Resctrl() error              { return resctrl.Available(resctrl.Root) }
func (s System) Seccomp(sc *specs.LinuxSeccomp) (*seccomp.Program, seccomp.Warnings, error) {
	return s.SeccompCache.Compile(sc)
}

// nsKinds maps namespace types to clone flags and /proc/PID/ns names.
var nsKinds = map[specs.LinuxNamespaceType]struct {
	flag uintptr
	name string
}{
	specs.UserNamespace: {unix.CLONE_NEWUSER, "user"}, specs.MountNamespace: {unix.CLONE_NEWNS, "mnt"},
	specs.PIDNamespace: {unix.CLONE_NEWPID, "pid"}, specs.NetworkNamespace: {unix.CLONE_NEWNET, "net"},
	specs.IPCNamespace: {unix.CLONE_NEWIPC, "ipc"}, specs.UTSNamespace: {unix.CLONE_NEWUTS, "uts"},
	specs.CgroupNamespace: {unix.CLONE_NEWCGROUP, "cgroup"}, specs.TimeNamespace: {unix.CLONE_NEWTIME, "time"},
}

// Build decides a new container from its spec. On error nothing has been
// created, and the error names the JSON path of each problem.
func Build(s *specs.Spec, h Host, o Options) (*Plan, error) {
	if s == nil {
		return nil, errors.New("config.json: empty")
	}
	if err := spec.Validate(s, seccomp.Validate); err != nil {
		return nil, err
	}
	if err := spec.CheckRootfs(s); err != nil {
		return nil, err
	}
	if s.Process == nil {
		return nil, errors.New("config.json: process: missing (create needs a process to run)")
	}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	p := &Plan{Spec: s, Bundle: o.Bundle, WantsLimits: wantsLimits(s.Linux.Resources)}
	if s.Linux.MountLabel != "" && !h.SELinuxEnabled() {
		// As runc: a label is meaningless without SELinux; say so.
		p.warn("linux.mountLabel %q ignored: SELinux is not enabled on this host", s.Linux.MountLabel)
		s.Linux.MountLabel = ""
	}
	// The AppArmor profile is settled here, in the host's mount namespace
	// (loading brig's default needs apparmor_parser and securityfs), and
	// kept in the saved spec so exec'd processes get it too.
	prof, err := h.ResolveAppArmor(s.Process.ApparmorProfile)
	switch {
	case errors.Is(err, lsm.ErrAppArmorDefaultNeedsRoot):
		p.Warnings = append(p.Warnings, err.Error())
	case err != nil:
		return nil, err
	}
	s.Process.ApparmorProfile = prof
	if err := h.CheckSELinux(s.Process.SelinuxLabel); err != nil {
		return nil, err
	}
	// Without root: a new user namespace, or one the caller owns, joined
	// by path (the kernel refuses any other).
	if h.Euid() != 0 && !spec.HasNamespace(s.Linux.Namespaces, specs.UserNamespace) {
		return nil, errors.New("linux.namespaces: without root, brig needs a user namespace (write the config with `brig spec --rootless`)")
	}
	if len(s.Linux.NetDevices) > 0 && h.Euid() != 0 {
		return nil, errors.New("linux.netDevices: moving a host network device into a container needs root")
	}
	hosts := make([]string, 0, len(s.Linux.NetDevices))
	for host := range s.Linux.NetDevices {
		hosts = append(hosts, host)
	}
	sort.Strings(hosts)
	for _, host := range hosts {
		if err := h.NetDevice(host); err != nil {
			return nil, fmt.Errorf("linux.netDevices.%s: %w", host, err)
		}
	}
	p.ignored(s)
	if r := s.Linux.IntelRdt; r != nil {
		if err := resctrl.Validate(r); err != nil {
			return nil, err
		}
		if h.Euid() != 0 {
			return nil, errors.New("linux.intelRdt: a resctrl group needs root")
		}
		if err := h.Resctrl(); err != nil {
			return nil, fmt.Errorf("linux.intelRdt: %w", err)
		}
	}
	p.Namespaces = namespaces(s.Linux)
	if err := p.processLayers(s, s.Process, h); err != nil {
		return nil, err
	}
	p.Mounts = spec.ParseMounts(s.Mounts)
	if p.HostTrees, err = hostTrees(p.Mounts, s.Linux, o); err != nil {
		return nil, err
	}
	if uid, gid, ok := mappedRoot(s.Linux); ok {
		p.MappedRoot = &IDs{UID: uid, GID: gid}
	}
	return p, nil
}

// Exec is a process to run in a running container, as decided.
type Exec struct {
	Warnings   []string
	Namespaces Namespaces
	Process    Process
}

// BuildExec decides a process exec'd into a container whose spec is c and
// whose init is pid: it joins every namespace the container has, and runs
// under the container's seccomp profile and Landlock rule set.
func BuildExec(c *specs.Spec, proc *specs.Process, pid int, h Host) (*Exec, error) {
	if err := spec.ValidateProcess(proc); err != nil {
		return nil, err
	}
	// An exec'd process stays under the container's AppArmor profile
	// unless it names its own (containerd's --process files often name
	// none).
	if proc.ApparmorProfile == "" && c.Process != nil {
		proc.ApparmorProfile = c.Process.ApparmorProfile
	}
	if proc.ApparmorProfile != "" {
		prof, err := h.ResolveAppArmor(proc.ApparmorProfile)
		if err != nil {
			return nil, err
		}
		proc.ApparmorProfile = prof
	}
	if err := h.CheckSELinux(proc.SelinuxLabel); err != nil {
		return nil, err
	}
	e := &Exec{}
	if c.Linux != nil {
		for _, ns := range c.Linux.Namespaces {
			k := nsKinds[ns.Type]
			e.Namespaces.Join = append(e.Namespaces.Join, Join{Type: k.name, Path: fmt.Sprintf("/proc/%d/ns/%s", pid, k.name)})
			switch ns.Type {
			case specs.UserNamespace:
				e.Namespaces.UserNS = true
			case specs.MountNamespace:
				e.Namespaces.Mount = true
			}
		}
	}
	// The exec'd process reports its capabilities problems as a hard
	// error only through Caps; what the host lacks is left out quietly,
	// as it was for the container's own process.
	var pl Plan
	if err := pl.processLayers(c, proc, h); err != nil {
		return nil, err
	}
	e.Process, e.Warnings = pl.Process, pl.Warnings
	return e, nil
}

// processLayers decides the layers the init applies to the process last:
// capabilities, seccomp, Landlock.
func (p *Plan) processLayers(s *specs.Spec, proc *specs.Process, h Host) error {
	sets, err := h.Caps(proc.Capabilities)
	if err != nil {
		return fmt.Errorf("process.capabilities: %w", err)
	}
	if len(sets.Missing) > 0 {
		p.warn("process.capabilities: this host can't grant %s (not in brig's bounding set or unknown to the kernel): granting the rest", strings.Join(sets.Missing, ", "))
	}
	if d := sets.DropUnraisableAmbient(); len(d) > 0 {
		p.warn("process.capabilities.ambient: %s not both permitted and inheritable, so the kernel can't raise them: left out, as runc and crun do", strings.Join(d, ", "))
	}
	p.Process = Process{Spec: proc, Caps: sets}
	if s.Linux != nil && s.Linux.Seccomp != nil {
		prog, warns, err := h.Seccomp(s.Linux.Seccomp)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "linux.seccomp") {
				err = fmt.Errorf("linux.seccomp: %w", err)
			}
			return err
		}
		if w := warns.Summary(); w != "" {
			p.Warnings = append(p.Warnings, w)
		}
		p.Process.Seccomp = prog
	}
	ll, err := lsm.LandlockFromSpec(s)
	if err != nil {
		return err
	}
	if ll != nil {
		if d := ll.Describe(); !strings.Contains(d, "whole rule set") {
			p.Warnings = append(p.Warnings, d)
		}
		p.Process.Landlock = ll
		p.Process.LandlockABI = h.LandlockABI()
	}
	return nil
}

func (p *Plan) warn(format string, a ...any) {
	p.Warnings = append(p.Warnings, fmt.Sprintf(format, a...))
}

// namespaces turns linux.namespaces into what the C constructor and the
// init do.
func namespaces(l *specs.Linux) Namespaces {
	var n Namespaces
	for _, ns := range l.Namespaces {
		k := nsKinds[ns.Type]
		switch ns.Type {
		case specs.UserNamespace:
			n.UserNS = true
		case specs.MountNamespace:
			n.Mount = true
		}
		switch {
		case ns.Path != "":
			n.Join = append(n.Join, Join{Type: k.name, Path: ns.Path})
		case ns.Type == specs.CgroupNamespace:
			n.CgroupNS = true
		default:
			n.CloneFlags |= k.flag
		}
	}
	for clock, off := range l.TimeOffsets {
		n.TimeOffsets = append(n.TimeOffsets, fmt.Sprintf("%s %d %d", clock, off.Secs, off.Nanosecs))
	}
	return n
}

// hostTrees picks the bind sources brig clones with the host's
// privileges: those asking for an id-mapped mount (only the host's user
// namespace may id-map a host filesystem), and, when a root brig gives the
// container a new user namespace, every other one too — the container's
// root, an unprivileged id on the host, may not be able to reach them
// (runc does the same).
func hostTrees(ms []spec.Mount, l *specs.Linux, o Options) ([]HostTree, error) {
	cloneAll := !o.Rootless && spec.HasNewNamespace(l.Namespaces, specs.UserNamespace) && spec.HasNamespace(l.Namespaces, specs.MountNamespace)
	var trees []HostTree
	for i := range ms {
		m := &ms[i]
		if !m.Bind() {
			continue
		}
		src := m.Source
		if !filepath.IsAbs(src) {
			src = filepath.Join(o.Bundle, src)
		}
		t := HostTree{Index: i, Destination: m.Destination, Source: src, Recursive: m.Opts.Recursive}
		switch {
		case m.Opts.Idmap || len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0:
			if o.Rootless {
				return nil, fmt.Errorf("mounts[%d]: id-mapped mounts need root (the host's user namespace owns the filesystem)", i)
			}
			uids, gids := m.UIDMappings, m.GIDMappings
			if len(uids) == 0 && len(gids) == 0 {
				uids, gids = l.UIDMappings, l.GIDMappings
			}
			t.IDMap = &IDMap{UIDs: uids, GIDs: gids, Recursive: m.Opts.IdmapRecursive}
		case !cloneAll:
			continue
		}
		trees = append(trees, t)
	}
	return trees, nil
}

// ignored warns, by JSON path, about what a config asks for that brig
// doesn't apply and the runtime-spec lets a runtime leave out: other
// platforms' sections, and the kernel memory limits the kernel no longer
// has (as runc 1.2+). Nothing is ignored without a word.
func (p *Plan) ignored(s *specs.Spec) {
	for _, o := range []struct {
		name string
		set  bool
	}{{"solaris", s.Solaris != nil}, {"vm", s.VM != nil}, {"windows", s.Windows != nil}, {"zos", s.ZOS != nil}} {
		if o.set {
			p.warn("%s: ignored: a section for another platform", o.name)
		}
	}
	if s.Process != nil && s.Process.User.Username != "" {
		p.warn("process.user.username: ignored: Windows only (on Linux the user is process.user.uid and gid)")
	}
	if s.Process != nil && s.Process.CommandLine != "" {
		p.warn("process.commandLine: ignored: Windows only (process.args is run)")
	}
	if r := s.Linux.Resources; r != nil && r.Memory != nil {
		m := r.Memory
		//lint:ignore SA1019 a config may still set it: it is warned about
		if m.Kernel != nil {
			p.warn("linux.resources.memory.kernel: ignored: kernel memory limits are obsolete in Linux (since 5.4; gone from cgroup v2), as runc ignores them")
		}
		if m.KernelTCP != nil {
			p.warn("linux.resources.memory.kernelTCP: ignored: as runc 1.2+, brig sets no TCP kernel memory limit")
		}
		if m.UseHierarchy != nil && !*m.UseHierarchy {
			p.warn("linux.resources.memory.useHierarchy false: ignored: memory accounting is always hierarchical (cgroup v1 since Linux 5.16, and v2)")
		}
	}
}

// wantsLimits reports whether linux.resources asks for any limit.
func wantsLimits(r *specs.LinuxResources) bool {
	if r == nil {
		return false
	}
	return r.Memory != nil || r.CPU != nil || r.Pids != nil || r.BlockIO != nil || len(r.HugepageLimits) > 0 ||
		r.Network != nil || len(r.Rdma) > 0 || len(r.Unified) > 0
}

// mappedRoot is the host uid and gid of the container's root in a new
// user namespace.
func mappedRoot(l *specs.Linux) (int, int, bool) {
	uid, gid := -1, -1
	for _, m := range l.UIDMappings {
		if m.ContainerID == 0 {
			uid = int(m.HostID)
		}
	}
	for _, m := range l.GIDMappings {
		if m.ContainerID == 0 {
			gid = int(m.HostID)
		}
	}
	return uid, gid, uid >= 0 && gid >= 0
}
