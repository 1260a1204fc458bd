package initprog

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"brig/internal/cgroup/layout"
	"brig/internal/protocol"
	"brig/internal/spec"
)

// The ops of a new container's set-up (steps 1–10), before the process's.
const (
	OpUnshareCgroupNS Op = 20 // a cgroup namespace, rooted at the cgroup the process is in
	OpLoopbackUp      Op = 21
	OpHostname        Op = 22 // str
	OpDomainname      Op = 23 // str
	OpRootPropagation Op = 24 // u64 flags: / made slave (or linux.rootfsPropagation)
	OpParentPrivate   Op = 25 // str root: the mount it sits on made private
	OpBindRoot        Op = 26 // str root: bound onto itself, and opened as the root handle
	OpMount           Op = 27 // str what, str dest, str source, str type, u64 flags, str data, u32 flags, u64 attrSet, u64 attrClr, u64 sysfs's bind attributes, u32 n, u64 propagation...
	OpBind            Op = 28 // str what, str dest, str source, u32 tree fd (0: clone the source), u32 recursive, u64 set, u64 clr, u64 rset, u64 rclr, u32 n, u64 propagation...
	OpCgroupTmpfs     Op = 29 // str what, str dest, u32 tmpfs: a tmpfs for the v1 hierarchies (1), or the v2 one's directory (0)
	OpCgroupMount     Op = 30 // str what, str name ("": the directory itself), str type, str data, u64 flags, str host path ("": a new mount), u64 bind attributes, u32 only mkdir
	OpCgroupReadonly  Op = 31 // str what
	OpDevice          Op = 32 // str path, u32 mode (type and permissions), u32 major, u32 minor, u32 uid, u32 gid, u32 bind from the host
	OpMakeCwd         Op = 33 // str cwd
	OpDevSymlinks     Op = 34
	OpOpenState       Op = 35 // str dir: the state directory, kept open across pivot_root
	OpPivotRoot       Op = 36 // str root
	OpNewRootProp     Op = 37 // u64 flags, str name: linux.rootfsPropagation after pivot_root
	OpSysctl          Op = 38 // str key, str value
	OpReadonlyPath    Op = 39 // str path
	OpMaskPaths       Op = 40 // strs paths
	OpReadonlyRoot    Op = 41
	OpKeyring         Op = 42 // str name
	OpPersonality     Op = 43 // u32 persona
	OpReady           Op = 44 // brig is told; errors from here on go to stderr
	OpWaitStart       Op = 45 // str fifo name: blocks until brig start opens it
	OpHooks           Op = 46 // brig runs the prestart and createRuntime hooks; its answer is awaited
)

// OpMount's flags.
const (
	MountDirOnly     = 1 // proc and sysfs: the target must be a directory
	MountSysfsInUser = 2 // sysfs refused in a user namespace: bind the host's read-only
)

// Host is what the brig command knows of the host that a new container's
// program needs: the cgroup hierarchies mounted, and the container's
// cgroup in each (by controller, "" for v2).
type Host struct {
	Hierarchies []layout.Hierarchy
	CgroupPaths map[string]string
}

// CompileCreate is the program that sets up a new container and, once
// brig start opens the exec fifo, execs its process; or why the Go init
// must do it.
func CompileCreate(cfg *protocol.Config, host Host) ([]byte, error) {
	if cfg.Exec {
		return nil, errors.New("an exec'd process")
	}
	if err := supported(cfg); err != nil {
		return nil, err
	}
	if err := createSupported(cfg); err != nil {
		return nil, err
	}
	s, l := cfg.Spec, cfg.Spec.Linux
	var p program
	if cfg.DieWithParent {
		// As early as possible: a parent killed from here on takes the
		// process with it.
		p.op(OpDeathSignal)
	}
	// 1. The cgroup namespace (the process was born in its cgroup), lo,
	// the UTS names.
	if cfg.CgroupNS {
		p.op(OpUnshareCgroupNS)
	}
	if newNetNS(l) {
		p.op(OpLoopbackUp)
	}
	if s.Hostname != "" {
		p.op(OpHostname, str(s.Hostname))
	}
	if s.Domainname != "" {
		p.op(OpDomainname, str(s.Domainname))
	}
	// 2. Mounts, while the host is reachable.
	prop := uint64(unix.MS_SLAVE | unix.MS_REC)
	if l.RootfsPropagation != "" {
		if pr := spec.ParseMountOptions([]string{l.RootfsPropagation}).Propagation; len(pr) == 1 {
			prop = uint64(pr[0])
		}
	}
	root := s.Root.Path
	p.op(OpRootPropagation, u64(prop))
	p.op(OpParentPrivate, str(root))
	p.op(OpBindRoot, str(root))
	devBound := false
	for i := range cfg.Mounts {
		m := cfg.Mounts[i]
		m.Destination = filepath.Clean("/" + m.Destination)
		if err := p.mount(cfg, host, i, &m); err != nil {
			return nil, err
		}
		if filepath.Clean(m.Destination) == "/dev" && m.Bind() {
			devBound = true
		}
	}
	if !devBound {
		if err := p.devices(cfg, l.Devices); err != nil {
			return nil, err
		}
	}
	if cfg.Process.Cwd != "" {
		p.op(OpMakeCwd, str(filepath.Clean("/"+cfg.Process.Cwd)))
	}
	p.op(OpDevSymlinks)
	// 3. The prestart and createRuntime hooks, run by brig (those run
	// in the container are the Go init's). 4. The root.
	if brigRunsHooks(s) {
		p.op(OpHooks)
	}
	p.op(OpOpenState, str(filepath.Dir(cfg.FifoPath)))
	p.op(OpPivotRoot, str(root))
	if l.RootfsPropagation != "" {
		pr := spec.ParseMountOptions([]string{l.RootfsPropagation}).Propagation
		if len(pr) != 1 {
			return nil, fmt.Errorf("linux.rootfsPropagation %q: unknown", l.RootfsPropagation)
		}
		p.op(OpNewRootProp, u64(uint64(pr[0])), str(l.RootfsPropagation))
	}
	// 6. Kernel parameters (5, the terminal, is the Go init's).
	keys := make([]string, 0, len(l.Sysctl))
	for k := range l.Sysctl {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p.op(OpSysctl, str(k), str(l.Sysctl[k]))
	}
	// 7. Read-only and masked paths, the read-only root.
	for _, path := range l.ReadonlyPaths {
		p.op(OpReadonlyPath, str(path))
	}
	if len(l.MaskedPaths) > 0 {
		p.op(OpMaskPaths, strs(l.MaskedPaths))
	}
	if s.Root.Readonly {
		p.op(OpReadonlyRoot)
	}
	// 8. The session keyring, the personality.
	if !cfg.NoNewKeyring {
		p.op(OpKeyring, str("_ses."+cfg.ID))
	}
	if pe := l.Personality; pe != nil {
		persona := uint32(0)
		if pe.Domain == specs.PerLinux32 {
			persona = 0x0008
		}
		p.op(OpPersonality, u32(persona))
	}
	// 9–11. The process; ready, then start.
	if err := p.prepare(cfg); err != nil {
		return nil, err
	}
	p.earlySeccomp(cfg)
	p.op(OpReady)
	p.op(OpWaitStart, str(filepath.Base(cfg.FifoPath)))
	if err := p.finish(cfg); err != nil {
		return nil, err
	}
	return p.done()
}

// createSupported says why a new container needs the Go init, or nil.
func createSupported(cfg *protocol.Config) error {
	s := cfg.Spec
	if s == nil || s.Root == nil || s.Linux == nil {
		return errors.New("no root or linux section")
	}
	l := s.Linux
	mountNS := false
	for _, n := range l.Namespaces {
		if n.Type == specs.MountNamespace {
			if n.Path != "" {
				return errors.New("a joined mount namespace")
			}
			mountNS = true
		}
	}
	switch {
	case !mountNS:
		return errors.New("no mount namespace")
	case cfg.NoPivot:
		return errors.New("--no-pivot")
	case s.Hooks != nil && len(s.Hooks.CreateContainer)+len(s.Hooks.StartContainer) > 0:
		return errors.New("hooks run in the container")
	case l.MountLabel != "":
		return errors.New("a mount label")
	case l.MemoryPolicy != nil:
		return errors.New("a memory policy")
	case l.Personality != nil && l.Personality.Domain != specs.PerLinux && l.Personality.Domain != specs.PerLinux32:
		return fmt.Errorf("personality %q", l.Personality.Domain)
	case !filepath.IsAbs(s.Root.Path) || cfg.FifoPath == "":
		return errors.New("a relative root")
	}
	for i, m := range cfg.Mounts {
		if m.Opts.TmpCopyUp || m.Opts.Idmap {
			return fmt.Errorf("mounts[%d]: tmpcopyup or idmap", i)
		}
		if m.Bind() && !filepath.IsAbs(m.Source) {
			return fmt.Errorf("mounts[%d]: a relative source", i)
		}
		if len(m.Opts.Propagation) > 16 {
			return fmt.Errorf("mounts[%d]: %d propagation options", i, len(m.Opts.Propagation))
		}
	}
	return nil
}

// brigRunsHooks says whether brig has work to do once the mounts are
// made: prestart and createRuntime hooks, which it runs, and the network
// devices it moves in before them.
func brigRunsHooks(s *specs.Spec) bool {
	if len(s.Linux.NetDevices) > 0 {
		return true
	}
	if s.Hooks == nil {
		return false
	}
	//lint:ignore SA1019 prestart is deprecated but still part of the spec
	pre := s.Hooks.Prestart
	return len(pre)+len(s.Hooks.CreateRuntime) > 0
}

func (p *program) mount(cfg *protocol.Config, host Host, i int, pm *spec.Mount) error {
	m, opts := &pm.Mount, pm.Opts
	what := fmt.Sprintf("mounts[%d] (%s on %s)", i, m.Type, cfg.Mounts[i].Destination)
	props := [][]byte{u32(uint32(len(opts.Propagation)))}
	for _, pr := range opts.Propagation {
		props = append(props, u64(uint64(pr)))
	}
	switch {
	case pm.Bind():
		rec := uint32(0)
		if opts.Recursive {
			rec = 1
		}
		tree := passedFD(cfg, protocol.FD{Kind: protocol.FDTree, Mount: i})
		args := [][]byte{str(what), str(m.Destination), str(m.Source), u32(tree), u32(rec),
			u64(spec.MountAttrs(opts.Flags)), u64(spec.MountAttrs(opts.ClearFlags)), u64(opts.AttrSet), u64(opts.AttrClr)}
		p.op(OpBind, append(args, props...)...)
		return nil
	case m.Type == "cgroup":
		return p.cgroup(cfg, host, what, m, opts)
	}
	src := m.Source
	if src == "" {
		src = m.Type
	}
	var flags uint32
	if m.Type == "proc" || m.Type == "sysfs" {
		flags |= MountDirOnly
	}
	if m.Type == "sysfs" && cfg.UserNS {
		flags |= MountSysfsInUser
	}
	var set, clr uint64
	if !opts.Bind {
		set, clr = opts.AttrSet, opts.AttrClr
	}
	args := [][]byte{str(what), str(m.Destination), str(src), str(m.Type), u64(uint64(opts.Flags &^ unix.MS_REMOUNT)), str(opts.Data),
		u32(flags), u64(set), u64(clr), u64(unix.MOUNT_ATTR_RDONLY | spec.MountAttrs(opts.Flags&^unix.MS_REMOUNT))}
	p.op(OpMount, append(args, props...)...)
	return nil
}

// cgroup is rootfs's mountCgroup: one cgroup2 mount on a pure v2 host,
// else a tmpfs with a mount per hierarchy — new in a cgroup namespace,
// else a bind of the container's own cgroup.
func (p *program) cgroup(cfg *protocol.Config, host Host, what string, m *specs.Mount, opts spec.MountOptions) error {
	flags := uint64(opts.Flags &^ unix.MS_REMOUNT)
	hier := host.Hierarchies
	p.op(OpCgroupTmpfs, str(what), str(m.Destination), u32(b2u(!layout.OnlyV2(hier))))
	if layout.OnlyV2(hier) {
		p.cgroupMount(cfg, host, what, "", "cgroup2", "", "", flags)
		return nil
	}
	for _, h := range hier {
		if !strings.HasPrefix(h.Mountpoint, "/sys/fs/cgroup/") {
			continue
		}
		name := filepath.Base(h.Mountpoint)
		key, fstype := name, "cgroup"
		if h.V2 {
			key, fstype = "", "cgroup2"
		}
		p.cgroupMount(cfg, host, what, name, fstype, h.Options, key, flags)
	}
	if flags&unix.MS_RDONLY != 0 {
		p.op(OpCgroupReadonly, str(what))
	}
	return nil
}

func (p *program) cgroupMount(cfg *protocol.Config, host Host, what, name, fstype, data, key string, flags uint64) {
	hostPath := ""
	bindAttrs := spec.MountAttrs(uintptr(flags) | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if !cfg.CgroupNS {
		hp, ok := host.CgroupPaths[key]
		if (!ok || hp == "") && key == "" && fstype == "cgroup2" {
			hp = "/sys/fs/cgroup/unified"
			if _, ok := host.CgroupPaths[""]; ok {
				hp = host.CgroupPaths[""]
			}
		}
		if hp == "" {
			// No cgroup of the container's in it: the directory stays
			// empty, as the Go init leaves it.
			p.op(OpCgroupMount, str(what), str(name), str(fstype), str(data), u64(flags), str(""), u64(bindAttrs), u32(1))
			return
		}
		hostPath = hp
	}
	p.op(OpCgroupMount, str(what), str(name), str(fstype), str(data), u64(flags), str(hostPath), u64(bindAttrs), u32(0))
}

// devices are the default devices and linux.devices (which replace a
// default of the same path), made in the container's /dev.
func (p *program) devices(cfg *protocol.Config, extra []specs.LinuxDevice) error {
	devs := spec.Devices(extra)
	for _, d := range devs {
		typ, perm, err := spec.DeviceMode(d)
		if err != nil {
			return fmt.Errorf("linux.devices %s: %w", d.Path, err)
		}
		var uid, gid uint32
		if d.UID != nil {
			uid = *d.UID
		}
		if d.GID != nil {
			gid = *d.GID
		}
		p.op(OpDevice, str(filepath.Clean("/"+d.Path)), u32(typ|perm), u32(uint32(d.Major)), u32(uint32(d.Minor)),
			u32(uid), u32(gid), u32(b2u(cfg.UserNS)))
	}
	return nil
}

// newNetNS says whether the container has a network namespace of its own.
func newNetNS(l *specs.Linux) bool {
	for _, n := range l.Namespaces {
		if n.Type == specs.NetworkNamespace {
			return n.Path == ""
		}
	}
	return false
}

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}
