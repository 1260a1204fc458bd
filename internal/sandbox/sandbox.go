// Package sandbox builds the OCI configuration for `brig run -- CMD`:
// confine a command with secure defaults and no image — a read-only view
// of the host's system directories, a private /tmp, every namespace,
// Docker's default capabilities, no_new_privs, the built-in seccomp
// profile and, where the kernel has it, Landlock over the same paths.
package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"brig/internal/lsm"
	"brig/internal/seccomp"
	"brig/internal/spec"
)

// SystemDirs are the host directories the sandbox sees, read-only.
var SystemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt"}

// Options are `brig run --` flags.
type Options struct {
	Args     []string
	Env      []string
	Cwd      string
	User     *specs.User
	RO, RW   []string // extra host paths
	Volumes  []string // SRC:DST[:ro]
	Tmpfs    []string
	Hostname string
	CapAdd   []string
	CapDrop  []string
	Seccomp  string // "", "unconfined" or a profile path
	NetHost  bool
	Terminal bool
	// Memory and Pids: 0 for none, -1 (Unset) for the defaults
	// (DefaultPids, DefaultMemory).
	Memory   int64
	CPUs     float64
	Pids     int64
	Degraded []string // layers allowed to be missing
	Egress   *Egress  // --allow-net: join a fenced network namespace
	// IdmapRW: as root, the writable host paths can be id-mapped (the
	// caller probed them), so the sandbox keeps its own user namespace.
	IdmapRW bool
	// Unprotect are Protected names left writable ("all": every one).
	Unprotect []string
	// NoCgroup: this user can't have a cgroup here (see cgroup.Usable), so
	// the sandbox is bounded by rlimits: processes (DefaultPids, or
	// --pids-limit) and, with --memory, each process's address space.
	// Limits asked for still need a cgroup unless DegradedCgroup.
	NoCgroup, DegradedCgroup bool
	// AllowPtrace: the built-in profile lets one sandboxed process trace
	// another (debuggers); by default it can't.
	AllowPtrace bool
}

// Egress is a running egress fence the sandbox joins (see internal/egress).
type Egress struct {
	NetNS  string   // network namespace path
	UserNS string   // user namespace path, without root (it owns NetNS)
	Hosts  string   // host file bound over /etc/hosts
	Resolv string   // host file bound over /etc/resolv.conf (the DNS responder)
	Ports  []uint16 // TCP ports Landlock lets connect() reach; nil: any
}

// Unset is a limit left to the default.
const Unset = -1

// DefaultPids bounds a sandbox's processes (and threads) unless
// --pids-limit says otherwise: Podman's default, which builds pass under.
const DefaultPids = 2048

// DefaultMemory is a sandbox's memory limit unless --memory says
// otherwise: half of the host's memory (0 where it can't be read).
func DefaultMemory() int64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 0
	}
	// Rounded down to 2 MiB: the kernel keeps a limit in whole pages.
	return int64(si.Totalram) * int64(si.Unit) / 2 &^ (2<<20 - 1)
}

// TmpSize is the private /tmp's size: a quarter of the host's memory (a
// tmpfs's pages are memory; its default, half, is the memory limit).
const TmpSize = "25%"

// Build returns the spec, with root.path at rootDir (an empty directory
// the caller made; brig creates the mount points in it).
func Build(o *Options, rootDir string) (*specs.Spec, error) {
	s, _, err := build(o, rootDir)
	return s, err
}

// build is Build, with the protected paths it found in the writable ones.
func build(o *Options, rootDir string) (*specs.Spec, []protection, error) {
	if len(o.Args) == 0 {
		return nil, nil, errors.New("brig run --: give a command to run after --")
	}
	s := spec.Default(false)
	s.Root = &specs.Root{Path: rootDir, Readonly: true}
	s.Process.Terminal = o.Terminal
	s.Process.Args = o.Args
	s.Process.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/tmp"}, o.Env...)
	if t := os.Getenv("TERM"); t != "" && o.Terminal {
		s.Process.Env = append(s.Process.Env, "TERM="+t)
	}
	s.Process.Rlimits = nil
	s.Hostname = o.Hostname
	if s.Hostname == "" {
		s.Hostname = "sandbox"
	}
	caps := slices.Clone(spec.DefaultCapabilities)
	for _, c := range o.CapDrop {
		if strings.EqualFold(c, "ALL") {
			caps = nil
			continue
		}
		caps = slices.DeleteFunc(caps, func(x string) bool { return strings.EqualFold(x, capName(c)) })
	}
	for _, c := range o.CapAdd {
		if _, ok := spec.CapabilityByName(capName(c)); !ok {
			return nil, nil, fmt.Errorf("--cap-add %q: unknown capability", c)
		}
		if o.Egress != nil && (capName(c) == "CAP_NET_ADMIN" || capName(c) == "CAP_NET_RAW") {
			return nil, nil, fmt.Errorf("--cap-add %s: not with --allow-net (it would let the command rewrite or bypass the egress rules)", c)
		}
		caps = append(caps, capName(c))
	}
	if o.Egress != nil {
		// Raw and packet sockets bypass the output hook the fence filters.
		caps = slices.DeleteFunc(caps, func(x string) bool { return x == "CAP_NET_RAW" || x == "CAP_NET_ADMIN" })
	}
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	if o.User != nil {
		s.Process.User = *o.User
	}
	// Mounts: the system directories read-only; a private /tmp.
	var mounts []specs.Mount
	for _, d := range SystemDirs {
		if fi, err := os.Lstat(d); err != nil || fi.Mode()&os.ModeSymlink != 0 {
			continue // absent, or a merged-usr link the caller recreates
		}
		mounts = append(mounts, bind(d, d, true))
	}
	// The private /tmp before the user's paths, which may lie under it.
	mounts = append(mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", "size=" + TmpSize}})
	for _, p := range o.RO {
		abs, err := hostPath(p, "--ro")
		if err != nil {
			return nil, nil, err
		}
		mounts = append(mounts, bind(abs, abs, true))
	}
	var roots []writableRoot
	for _, p := range o.RW {
		abs, err := hostPath(p, "--rw")
		if err != nil {
			return nil, nil, err
		}
		mounts = append(mounts, bind(abs, abs, false))
		roots = addRoot(roots, writableRoot{abs, abs})
	}
	for _, v := range o.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || len(parts) > 3 || (len(parts) == 3 && parts[2] != "ro" && parts[2] != "rw") {
			return nil, nil, fmt.Errorf("-v %q: want SRC:DST[:ro]", v)
		}
		src, err := hostPath(parts[0], "-v")
		if err != nil {
			return nil, nil, err
		}
		if !filepath.IsAbs(parts[1]) {
			return nil, nil, fmt.Errorf("-v %q: the destination must be absolute", v)
		}
		ro := len(parts) == 3 && parts[2] == "ro"
		mounts = append(mounts, bind(src, parts[1], ro))
		if !ro {
			roots = addRoot(roots, writableRoot{src, filepath.Clean(parts[1])})
		}
	}
	// What a host tool acts on later, inside the writable paths: re-bound
	// read-only over them (protect.go).
	watch, err := protections(roots, o.Unprotect)
	if err != nil {
		return nil, nil, err
	}
	held := map[string]bool{}
	before := len(mounts) // the mounts asked for: those a protection can lie under
	for _, p := range watch {
		if coveredInside(mounts[:before], roots, p) {
			// another mount (a -v volume, --ro) lies between its root and
			// it: the sandbox doesn't see the host's path there, and a bind
			// of it would replace that mount
			continue
		}
		if m, ok := p.mount(); ok {
			mounts = append(mounts, m)
			held[m.Destination] = !p.Ancestor
		}
	}
	for _, t := range o.Tmpfs {
		dst, opts, _ := strings.Cut(t, ":")
		if !filepath.IsAbs(dst) {
			return nil, nil, fmt.Errorf("--tmpfs %q: the destination must be absolute", t)
		}
		m := specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev"}}
		if opts != "" {
			m.Options = append(m.Options, strings.Split(opts, ",")...)
		}
		mounts = append(mounts, m)
	}
	// brig's default mounts (/proc, /dev, /dev/pts, /dev/shm, /dev/mqueue,
	// /sys read-only) come first; the cgroup tree is not shown.
	var base []specs.Mount
	for _, m := range s.Mounts {
		if m.Destination != "/sys/fs/cgroup" {
			base = append(base, m)
		}
	}
	s.Mounts = append(base, mounts...)
	// cwd: the current directory where it is visible, else /tmp.
	s.Process.Cwd = "/tmp"
	if o.Cwd != "" {
		s.Process.Cwd = o.Cwd
	} else if wd, err := os.Getwd(); err == nil && visible(wd, s.Mounts) {
		s.Process.Cwd = wd
	}
	if o.NetHost && o.Egress != nil {
		return nil, nil, errors.New("--net host and --allow-net: choose one (--allow-net gives the command a network of its own)")
	}
	if o.NetHost {
		s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.NetworkNamespace })
		s.Mounts = slices.DeleteFunc(s.Mounts, func(m specs.Mount) bool { return m.Type == "sysfs" })
		s.Mounts = append(s.Mounts, bind("/sys", "/sys", true))
	}
	if e := o.Egress; e != nil {
		for i, n := range s.Linux.Namespaces {
			if n.Type == specs.NetworkNamespace {
				s.Linux.Namespaces[i].Path = e.NetNS
			}
		}
		if os.Geteuid() == 0 {
			// A sysfs mount needs a network namespace of the mounter's
			// user namespace; this one is the host's.
			s.Mounts = slices.DeleteFunc(s.Mounts, func(m specs.Mount) bool { return m.Type == "sysfs" })
			s.Mounts = append(s.Mounts, bind("/sys", "/sys", true))
		}
		s.Mounts = append(s.Mounts, bind(e.Hosts, "/etc/hosts", true))
		if e.Resolv != "" {
			s.Mounts = append(s.Mounts, bind(e.Resolv, "/etc/resolv.conf", true))
		}
	}
	switch {
	case o.Egress != nil && os.Geteuid() != 0:
		// The fence's user namespace, whose root owns the fenced network.
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace, Path: o.Egress.UserNS})
		s.Linux.Resources = nil
		rootlessPts(s)
	case os.Geteuid() == 0 && (o.IdmapRW || len(WritablePaths(o)) == 0):
		// As root, root inside is an unprivileged range outside. Writable
		// host paths are id-mapped through the same range, so their files
		// keep their owners inside and what root inside writes there
		// belongs to root outside. (Where a path can't be id-mapped, the
		// run keeps the host's user namespace, and brig inspect says so.)
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = RootMapping()
		s.Linux.GIDMappings = RootMapping()
		for i, m := range s.Mounts {
			if m.Type == "bind" && (!slices.Contains(m.Options, "ro") || held[m.Destination]) {
				s.Mounts[i].Options = append(s.Mounts[i].Options, "ridmap")
			}
		}
	case os.Geteuid() != 0:
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Geteuid()), Size: 1}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Getegid()), Size: 1}}
		s.Linux.Resources = nil
		rootlessPts(s)
	}
	// Limits: those asked for, else the defaults where there is a cgroup
	// (without one, rlimits stand in: noCgroupRlimits).
	asked := o.Memory > 0 || o.CPUs > 0 || o.Pids > 0
	memAsked := o.Memory > 0
	if o.Pids == Unset {
		o.Pids = DefaultPids
	}
	if o.Memory == Unset {
		o.Memory = DefaultMemory()
	}
	if o.NoCgroup && !asked {
		// Only defaults, and no cgroup: bounded by rlimits, not refused.
	} else if o.Memory > 0 || o.CPUs > 0 || o.Pids > 0 {
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		if o.Memory > 0 {
			s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &o.Memory}
		}
		if o.CPUs > 0 {
			period := uint64(100000)
			quota := int64(o.CPUs * float64(period))
			s.Linux.Resources.CPU = &specs.LinuxCPU{Period: &period, Quota: &quota}
		}
		if o.Pids > 0 {
			s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &o.Pids}
		}
	}
	if o.NoCgroup {
		noCgroupRlimits(s, o, memAsked)
	}
	// seccomp: the built-in profile unless told otherwise.
	if s.Linux.Seccomp, err = seccompFor(o, caps); err != nil {
		return nil, nil, err
	}
	// Landlock over the same paths, as a second fence.
	if err := addLandlock(s, o); err != nil {
		return nil, nil, err
	}
	return s, watch, nil
}

// seccompFor is the sandbox's seccomp profile: brig's built-in one (with
// tracing between the command's processes denied unless --allow-ptrace),
// none for "unconfined", or the file --security-opt names.
func seccompFor(o *Options, caps []string) (*specs.LinuxSeccomp, error) {
	switch o.Seccomp {
	case "unconfined":
		return nil, nil
	case "":
		p := seccomp.DefaultProfile(caps, runtime.GOARCH, seccomp.KernelAtLeast(4, 8))
		if !o.AllowPtrace {
			seccomp.DenyTracing(p)
		}
		return p, nil
	}
	p, err := seccomp.LoadFile(o.Seccomp, caps)
	if err != nil {
		return nil, fmt.Errorf("--security-opt seccomp=%s: %w", o.Seccomp, err)
	}
	return p, nil
}

// noCgroupRlimits bounds the sandbox by rlimits where it has no cgroup
// (none above what the caller's hard limits allow).
func noCgroupRlimits(s *specs.Spec, o *Options, memAsked bool) {
	if o.DegradedCgroup {
		s.Linux.Resources = nil
	}
	limit := func(typ string, res int, v uint64) {
		var cur unix.Rlimit
		if unix.Getrlimit(res, &cur) == nil && cur.Max < v {
			v = cur.Max
		}
		s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: typ, Hard: v, Soft: v})
	}
	if o.Pids > 0 {
		limit("RLIMIT_NPROC", unix.RLIMIT_NPROC, uint64(o.Pids))
	}
	if memAsked {
		// Only when asked: an address-space limit by default would stop
		// programs that reserve more than they use.
		limit("RLIMIT_AS", unix.RLIMIT_AS, uint64(o.Memory))
	}
}

// rootlessPts drops devpts's gid= option: without root there is no tty
// group to map.
func rootlessPts(s *specs.Spec) {
	for i, m := range s.Mounts {
		if m.Destination == "/dev/pts" {
			s.Mounts[i].Options = []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}
		}
	}
}

// RootMapping is root's sandboxes' id mapping.
func RootMapping() []specs.LinuxIDMapping {
	return []specs.LinuxIDMapping{{ContainerID: 0, HostID: RootRange, Size: 65536}}
}

// WritablePaths are the host paths the sandbox may write: --rw and the
// sources of writable -v binds.
func WritablePaths(o *Options) []string {
	out := slices.Clone(o.RW)
	for _, v := range o.Volumes {
		if parts := strings.Split(v, ":"); len(parts) >= 2 && !(len(parts) == 3 && parts[2] == "ro") {
			out = append(out, parts[0])
		}
	}
	return out
}

// RootRange is the first host id root's sandboxes map their users to
// (65536 ids from it), as Podman's default for root.
const RootRange = 100000

// addRoot adds a writable root; one it hides (the same place inside, or
// a place under it) no longer counts.
func addRoot(roots []writableRoot, r writableRoot) []writableRoot {
	roots = slices.DeleteFunc(roots, func(x writableRoot) bool {
		return x.Dst == r.Dst || strings.HasPrefix(x.Dst, r.Dst+"/")
	})
	return append(roots, r)
}

func capName(c string) string {
	c = strings.ToUpper(c)
	if !strings.HasPrefix(c, "CAP_") {
		c = "CAP_" + c
	}
	return c
}

// coveredInside says whether a mount other than p's writable root's own
// holds p's place, at or below that root.
func coveredInside(ms []specs.Mount, roots []writableRoot, p protection) bool {
	rootDst := ""
	for _, r := range roots {
		if r.Src == p.Root {
			rootDst = r.Dst
		}
	}
	for _, m := range ms {
		d := filepath.Clean(m.Destination)
		if d != rootDst && strings.HasPrefix(d, rootDst+"/") && (p.Dst == d || strings.HasPrefix(p.Dst, d+"/")) {
			return true
		}
	}
	return false
}

func bind(src, dst string, ro bool) specs.Mount {
	opts := []string{"rbind", "nosuid", "nodev"}
	if ro {
		opts = append(opts, "ro", "rro")
	}
	return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: opts}
}

func hostPath(p, flag string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("%s %q: %w", flag, p, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return "", fmt.Errorf("%s %q: %w", flag, p, err)
	}
	return abs, nil
}

func visible(dir string, mounts []specs.Mount) bool {
	for _, m := range mounts {
		if m.Type == "bind" && (dir == m.Destination || strings.HasPrefix(dir, m.Destination+"/")) {
			return true
		}
	}
	return false
}

// addLandlock restricts the filesystem to what is mounted (reads and
// execution of the read-only paths, writes where the mount is writable)
// when the kernel has Landlock.
func addLandlock(s *specs.Spec, o *Options) error {
	if lsm.LandlockABI() == 0 {
		return nil
	}
	type rule struct {
		AllowedAccess []string `json:"allowedAccess"`
		Paths         []string `json:"paths"`
	}
	read := []string{"execute", "read_file", "read_dir"}
	write := []string{"execute", "read_file", "read_dir", "write_file", "remove_dir", "remove_file", "make_dir", "make_reg", "make_sym", "make_sock", "make_fifo", "truncate"}
	var ro, rw, roFiles, rwFiles []string
	for _, m := range s.Mounts {
		file := false
		if m.Type == "bind" {
			fi, err := os.Stat(m.Source)
			file = err == nil && !fi.IsDir()
		}
		switch {
		case m.Destination == "/proc" || m.Destination == "/sys":
			ro = append(ro, m.Destination)
		case m.Type == "bind" && slices.Contains(m.Options, "ro") && file:
			roFiles = append(roFiles, m.Destination)
		case m.Type == "bind" && slices.Contains(m.Options, "ro"):
			ro = append(ro, m.Destination)
		case m.Type == "bind" && file:
			rwFiles = append(rwFiles, m.Destination)
		case m.Type == "bind" || m.Type == "tmpfs" || m.Destination == "/dev/pts" || m.Destination == "/dev/mqueue":
			rw = append(rw, m.Destination)
		}
	}
	// Directories may be listed anywhere (what is mounted is what there is).
	// A bound file gets only the rights a file can have.
	rules := []rule{{AllowedAccess: []string{"read_dir"}, Paths: []string{"/"}},
		{AllowedAccess: read, Paths: ro}, {AllowedAccess: append(write, "ioctl_dev"), Paths: rw}}
	if len(roFiles) > 0 {
		rules = append(rules, rule{AllowedAccess: []string{"execute", "read_file"}, Paths: roFiles})
	}
	if len(rwFiles) > 0 {
		rules = append(rules, rule{AllowedAccess: []string{"execute", "read_file", "write_file", "truncate", "ioctl_dev"}, Paths: rwFiles})
	}
	ll := map[string]any{"rules": map[string]any{"pathBeneath": rules}}
	if e := o.Egress; e != nil && e.Ports != nil && lsm.LandlockABI() >= 4 {
		// connect() only to the allowed ports (loopback included: Landlock
		// doesn't know addresses), the second fence after nftables.
		ll["ruleset"] = map[string]any{"handledAccessNetwork": []string{"connect_tcp"}} // and every FS right, as without
		ll["rules"].(map[string]any)["netPort"] = []map[string]any{{"allowedAccess": []string{"connect_tcp"}, "ports": e.Ports}}
	}
	data, err := json.Marshal(ll)
	if err != nil {
		return err
	}
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[lsm.LandlockAnnotation] = string(data)
	return nil
}

// PrepareRoot makes the empty root directory's merged-usr links (/bin →
// usr/bin and the like), mirroring the host's.
func PrepareRoot(dir string) error {
	for _, d := range SystemDirs {
		fi, err := os.Lstat(d)
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			continue
		}
		target, err := os.Readlink(d)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, filepath.Join(dir, filepath.Base(d))); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	return nil
}
