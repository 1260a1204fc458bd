package plan

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"brig/internal/caps"
	"brig/internal/lsm"
	"brig/internal/seccomp"
	"brig/internal/spec"
)

// fakeHost answers as a host would, without touching this one: the
// decisions below hold with no capability at all (they run under
// `setpriv --bounding-set=-all` too).
type fakeHost struct {
	euid     int
	selinux  bool
	missing  []string // capabilities the host can't grant
	apparmor func(string) (string, error)
	compiled int // Seccomp calls
	abi      int
	// netDevices the host has
	netDevices []string
	// resctrl: the host has a resctrl filesystem
	resctrl bool
}

func (h *fakeHost) Resctrl() error {
	if h.resctrl {
		return nil
	}
	return errors.New("this host has no resctrl filesystem")
}

func (h *fakeHost) Euid() int            { return h.euid }
func (h *fakeHost) SELinuxEnabled() bool { return h.selinux }
func (h *fakeHost) ResolveAppArmor(p string) (string, error) {
	if h.apparmor != nil {
		return h.apparmor(p)
	}
	return p, nil
}
func (h *fakeHost) CheckSELinux(label string) error {
	if label != "" && !h.selinux {
		return errors.New("process.selinuxLabel: SELinux is not enabled")
	}
	return nil
}
func (h *fakeHost) Caps(c *specs.LinuxCapabilities) (*caps.Sets, error) {
	return &caps.Sets{Missing: h.missing}, nil
}
func (h *fakeHost) LandlockABI() int { return h.abi }
func (h *fakeHost) NetDevice(name string) error {
	if slices.Contains(h.netDevices, name) {
		return nil
	}
	return fmt.Errorf("the host has no network device %q", name)
}
func (h *fakeHost) Seccomp(sc *specs.LinuxSeccomp) (*seccomp.Program, seccomp.Warnings, error) {
	h.compiled++
	return seccomp.Compile(sc)
}

func newSpec(t *testing.T) *specs.Spec {
	t.Helper()
	s := spec.Default(false)
	s.Root.Path = t.TempDir() // CheckRootfs: a directory on the host
	return s
}

func TestBuildNamespaces(t *testing.T) {
	for _, tc := range []struct {
		name  string
		nss   []specs.LinuxNamespace
		flags uintptr
		join  []Join
		user  bool
		cgNS  bool
		mount bool
	}{
		{name: "all new", nss: []specs.LinuxNamespace{{Type: "pid"}, {Type: "mount"}, {Type: "network"}, {Type: "ipc"}, {Type: "uts"}, {Type: "cgroup"}},
			flags: unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWNET | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS, cgNS: true, mount: true},
		{name: "joined network", nss: []specs.LinuxNamespace{{Type: "mount"}, {Type: "network", Path: "/run/netns/x"}},
			flags: unix.CLONE_NEWNS, join: []Join{{Type: "net", Path: "/run/netns/x"}}, mount: true},
		{name: "joined user", nss: []specs.LinuxNamespace{{Type: "user", Path: "/proc/1/ns/user"}, {Type: "mount"}},
			flags: unix.CLONE_NEWNS, join: []Join{{Type: "user", Path: "/proc/1/ns/user"}}, user: true, mount: true},
		{name: "no mount namespace", nss: []specs.LinuxNamespace{{Type: "pid"}}, flags: unix.CLONE_NEWPID},
		{name: "joined cgroup is joined, not made", nss: []specs.LinuxNamespace{{Type: "cgroup", Path: "/proc/1/ns/cgroup"}},
			join: []Join{{Type: "cgroup", Path: "/proc/1/ns/cgroup"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSpec(t)
			s.Hostname = ""
			s.Linux.Namespaces = tc.nss
			s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
			p, err := Build(s, &fakeHost{}, Options{Bundle: "/b"})
			if err != nil {
				t.Fatal(err)
			}
			n := p.Namespaces
			if n.CloneFlags != tc.flags || !reflect.DeepEqual(n.Join, tc.join) || n.UserNS != tc.user || n.CgroupNS != tc.cgNS || n.Mount != tc.mount {
				t.Errorf("got %+v", n)
			}
		})
	}
}

func TestBuildTimeOffsets(t *testing.T) {
	s := newSpec(t)
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
	s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 10, Nanosecs: 5}}
	p, err := Build(s, &fakeHost{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p.Namespaces.TimeOffsets, []string{"monotonic 10 5"}) || p.Namespaces.CloneFlags&unix.CLONE_NEWTIME == 0 {
		t.Errorf("got %+v", p.Namespaces)
	}
}

// Which bind sources the host clones: id-mapped ones always (root only),
// every bind when a root brig gives the container a new user namespace,
// none otherwise.
func TestBuildHostTrees(t *testing.T) {
	userns := func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	}
	own := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 5000, Size: 10}}
	for _, tc := range []struct {
		name     string
		edit     func(*specs.Spec)
		rootless bool
		want     []HostTree
		err      string
	}{
		{name: "plain binds stay with the init", edit: func(s *specs.Spec) {}},
		{name: "new user namespace clones every bind", edit: userns, want: []HostTree{
			{Index: 7, Destination: "/data", Source: "/b/data", Recursive: true},
			{Index: 8, Destination: "/etc/x", Source: "/etc/x"},
		}},
		{name: "rootless leaves binds to the init", edit: userns, rootless: true},
		{name: "idmap through the container's mapping", edit: func(s *specs.Spec) {
			userns(s)
			s.Mounts[8].Options = append(s.Mounts[8].Options, "ridmap")
		}, want: []HostTree{
			{Index: 7, Destination: "/data", Source: "/b/data", Recursive: true},
			{Index: 8, Destination: "/etc/x", Source: "/etc/x", IDMap: &IDMap{
				UIDs: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}},
				GIDs: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}, Recursive: true}},
		}},
		{name: "idmap with its own mapping, no user namespace", edit: func(s *specs.Spec) {
			s.Mounts[8].UIDMappings, s.Mounts[8].GIDMappings = own, own
		}, want: []HostTree{{Index: 8, Destination: "/etc/x", Source: "/etc/x", IDMap: &IDMap{UIDs: own, GIDs: own}}}},
		{name: "idmap without root", rootless: true, edit: func(s *specs.Spec) {
			userns(s)
			s.Mounts[8].Options = append(s.Mounts[8].Options, "idmap")
		}, err: "mounts[8]: id-mapped mounts need root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSpec(t)
			s.Mounts = append(s.Mounts,
				specs.Mount{Destination: "/data", Source: "data", Options: []string{"rbind"}},
				specs.Mount{Destination: "/etc/x", Type: "bind", Source: "/etc/x"})
			if len(s.Mounts) != 9 {
				t.Fatalf("the default spec has %d mounts; the cases expect 7", len(s.Mounts)-2)
			}
			tc.edit(s)
			h := &fakeHost{}
			if tc.rootless {
				h.euid = 1000
			}
			p, err := Build(s, h, Options{Bundle: "/b", Rootless: tc.rootless})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.HostTrees, tc.want) {
				t.Errorf("got  %+v\nwant %+v", p.HostTrees, tc.want)
			}
		})
	}
}

// Mounts are parsed once, index for index, with one bind predicate.
func TestBuildMounts(t *testing.T) {
	s := newSpec(t)
	s.Mounts = []specs.Mount{
		{Destination: "/a", Type: "bind", Source: "/x"},
		{Destination: "/b", Type: "none", Source: "/x", Options: []string{"rbind", "ro", "nosuid"}},
		{Destination: "/c", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m", "noexec", "rprivate"}},
	}
	p, err := Build(s, &fakeHost{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Mounts) != 3 {
		t.Fatalf("got %d mounts", len(p.Mounts))
	}
	a, b, c := p.Mounts[0], p.Mounts[1], p.Mounts[2]
	if !a.Bind() || a.Opts.Recursive || !b.Bind() || !b.Opts.Recursive || c.Bind() {
		t.Errorf("bind: %v %v %v", a.Opts, b.Opts, c.Opts)
	}
	if b.Opts.Flags != unix.MS_RDONLY|unix.MS_NOSUID || c.Opts.Flags != unix.MS_NOEXEC || c.Opts.Data != "size=1m" ||
		!reflect.DeepEqual(c.Opts.Propagation, []uintptr{unix.MS_PRIVATE | unix.MS_REC}) {
		t.Errorf("options: %+v %+v", b.Opts, c.Opts)
	}
}

func TestBuildSeccompCompiledInParent(t *testing.T) {
	s := newSpec(t)
	s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"kexec_load", "no_such_call_xyz"}, Action: specs.ActErrno}}}
	h := &fakeHost{}
	p, err := Build(s, h, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if h.compiled != 1 || p.Process.Seccomp == nil || len(p.Process.Seccomp.Insns) == 0 {
		t.Fatalf("not compiled once: %d calls, %+v", h.compiled, p.Process.Seccomp)
	}
	if v, err := p.Process.Seccomp.Verdict(seccomp.AuditArchX86_64, unix.SYS_KEXEC_LOAD, [6]uint64{}); err != nil || v&unix.SECCOMP_RET_ACTION_FULL != unix.SECCOMP_RET_ERRNO {
		t.Errorf("kexec_load: verdict %#x, want errno", v)
	}
	if !strings.Contains(strings.Join(p.Warnings, "\n"), "no_such_call_xyz") {
		t.Errorf("no warning for the unknown name: %q", p.Warnings)
	}
}

// Every refusal happens in Build, before the lifecycle creates anything;
// each names its JSON path.
func TestBuildRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*specs.Spec)
		host fakeHost
		want string
		also string // a second problem reported in the same error
	}{
		{name: "no process", edit: func(s *specs.Spec) { s.Process = nil }, want: "process: missing"},
		{name: "missing rootfs", edit: func(s *specs.Spec) { s.Root.Path = "/nonexistent/rootfs" }, want: "root.path"},
		{name: "unknown seccomp arch", edit: func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{"SCMP_ARCH_NOPE"}}
		}, want: "linux.seccomp.architectures[0]"},
		{name: "unknown seccomp flag", edit: func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_NOPE"}}
		}, want: "linux.seccomp.flags"},
		{name: "seccomp program over the kernel's size", edit: func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}
			for v := range uint64(3000) {
				s.Linux.Seccomp.Syscalls = append(s.Linux.Seccomp.Syscalls, specs.LinuxSyscall{Names: []string{"ioctl"}, Action: specs.ActAllow,
					Args: []specs.LinuxSeccompArg{{Index: 1, Op: specs.OpEqualTo, Value: v<<32 | v}}})
			}
		}, want: "linux.seccomp: seccomp: program of"},
		{name: "bad landlock", edit: func(s *specs.Spec) {
			s.Annotations = map[string]string{lsm.LandlockAnnotation: `{"rules": {"pathBeneath": [{"allowedAccess": ["fly"], "paths": ["/"]}]}}`}
		}, want: "fly"},
		{name: "selinux label without selinux", edit: func(s *specs.Spec) { s.Process.SelinuxLabel = "system_u:system_r:x:s0" }, want: "selinuxLabel"},
		{name: "apparmor profile not loaded", edit: func(s *specs.Spec) { s.Process.ApparmorProfile = "nope" },
			host: fakeHost{apparmor: func(p string) (string, error) { return "", errors.New("process.apparmorProfile \"nope\": not loaded") }}, want: "apparmorProfile"},
		{name: "rootless without user namespace", host: fakeHost{euid: 1000}, edit: func(s *specs.Spec) {}, want: "linux.namespaces: without root"},
		{name: "validation problems together", edit: func(s *specs.Spec) {
			s.Process.Cwd = "rel"
			s.Linux.Sysctl = map[string]string{"vm.swappiness": "1"}
		}, want: "process.cwd", also: "linux.sysctl.vm.swappiness"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSpec(t)
			tc.edit(s)
			_, err := Build(s, &tc.host, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.also) {
				t.Fatalf("got %v, want an error naming %q and %q", err, tc.want, tc.also)
			}
		})
	}
}

func TestBuildWarnings(t *testing.T) {
	s := newSpec(t)
	s.Linux.MountLabel = "system_u:object_r:x:s0"
	h := &fakeHost{missing: []string{"CAP_SYS_RESOURCE"},
		apparmor: func(string) (string, error) { return "", lsm.ErrAppArmorDefaultNeedsRoot }}
	p, err := Build(s, h, Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(p.Warnings, "\n")
	for _, want := range []string{"linux.mountLabel", "CAP_SYS_RESOURCE", "AppArmor"} {
		if !strings.Contains(w, want) {
			t.Errorf("no warning naming %s in %q", want, w)
		}
	}
	if s.Linux.MountLabel != "" {
		t.Errorf("mount label kept without SELinux")
	}
}

func TestBuildLimitsAndMappedRoot(t *testing.T) {
	s := newSpec(t)
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1001, Size: 1}}
	s.Linux.Resources = &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}
	p, err := Build(s, &fakeHost{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.WantsLimits {
		t.Errorf("device rules alone want limits")
	}
	if p.MappedRoot == nil || *p.MappedRoot != (IDs{1000, 1001}) {
		t.Errorf("mapped root %+v", p.MappedRoot)
	}
	pids := int64(5)
	s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &pids}
	if p, err = Build(s, &fakeHost{}, Options{}); err != nil || !p.WantsLimits {
		t.Errorf("a pids limit: WantsLimits %v, %v", p != nil && p.WantsLimits, err)
	}
}

// An exec'd process joins every namespace of the container through its
// init's /proc entry, and runs under the container's profile and rule set.
func TestBuildExec(t *testing.T) {
	c := newSpec(t)
	c.Process.ApparmorProfile = "brig-default"
	c.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"kexec_load"}, Action: specs.ActErrno}}}
	c.Annotations = map[string]string{lsm.LandlockAnnotation: `{"rules": {"pathBeneath": [{"allowedAccess": ["read_file"], "paths": ["/"]}]}}`}
	c.Linux.Namespaces = append(c.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	proc := &specs.Process{Args: []string{"sh"}, Cwd: "/"}
	h := &fakeHost{abi: 7}
	e, err := BuildExec(c, proc, 4242, h)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Namespaces.Join) != len(c.Linux.Namespaces) || e.Namespaces.CloneFlags != 0 || !e.Namespaces.UserNS {
		t.Errorf("namespaces %+v", e.Namespaces)
	}
	for _, j := range e.Namespaces.Join {
		if !strings.HasPrefix(j.Path, "/proc/4242/ns/") || !strings.HasSuffix(j.Path, "/"+j.Type) {
			t.Errorf("join %+v", j)
		}
	}
	if proc.ApparmorProfile != "brig-default" {
		t.Errorf("apparmor profile not inherited: %q", proc.ApparmorProfile)
	}
	if e.Process.Seccomp == nil || h.compiled != 1 || e.Process.Landlock == nil || e.Process.LandlockABI != 7 {
		t.Errorf("process layers %+v", e.Process)
	}
	if _, err := BuildExec(c, &specs.Process{Cwd: "/"}, 1, h); err == nil || !strings.Contains(err.Error(), "process.args") {
		t.Errorf("exec without args: %v", err)
	}
}

// linux.netDevices: a device the host lacks, one without a network
// namespace of the container's own, a bad or doubled name and a rootless
// caller are refused, each naming the field; devices the host has pass.
func TestNetDevices(t *testing.T) {
	for _, tc := range []struct {
		name string
		devs map[string]specs.LinuxNetDevice
		euid int
		noNS bool
		err  string
	}{
		{name: "present, renamed", devs: map[string]specs.LinuxNetDevice{"dummy0": {Name: "ctr0"}, "eth1": {}}},
		{name: "missing on the host", devs: map[string]specs.LinuxNetDevice{"nope0": {}}, err: `linux.netDevices.nope0: the host has no network device "nope0"`},
		{name: "no network namespace", devs: map[string]specs.LinuxNetDevice{"dummy0": {}}, noNS: true, err: "linux.netDevices: needs a network namespace"},
		{name: "bad host name", devs: map[string]specs.LinuxNetDevice{"a/b": {}}, err: "linux.netDevices.a/b"},
		{name: "name too long", devs: map[string]specs.LinuxNetDevice{"dummy0": {Name: "a-very-long-name0"}}, err: "linux.netDevices.dummy0.name"},
		{name: "two to one name", devs: map[string]specs.LinuxNetDevice{"dummy0": {Name: "eth1"}, "eth1": {}}, err: "also the name of"},
		{name: "rootless", devs: map[string]specs.LinuxNetDevice{"dummy0": {}}, euid: 1000, err: "needs root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := spec.Default(tc.euid != 0)
			s.Root.Path = t.TempDir()
			s.Linux.NetDevices = tc.devs
			if tc.noNS {
				s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.NetworkNamespace })
			}
			_, err := Build(s, &fakeHost{euid: tc.euid, netDevices: []string{"dummy0", "eth1"}}, Options{Bundle: "/b"})
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err %v, want %q", err, tc.err)
			}
		})
	}
}

// linux.intelRdt: refused where the host has no resctrl filesystem, with a
// bad field, or rootless; accepted where there is one.
func TestIntelRdt(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rdt     specs.LinuxIntelRdt
		euid    int
		resctrl bool
		err     string
	}{
		{name: "applied where resctrl is", rdt: specs.LinuxIntelRdt{ClosID: "gold", L3CacheSchema: "L3:0=ff"}, resctrl: true},
		{name: "refused where it isn't", rdt: specs.LinuxIntelRdt{L3CacheSchema: "L3:0=ff"}, err: "linux.intelRdt: this host has no resctrl"},
		{name: "bad closID", rdt: specs.LinuxIntelRdt{ClosID: "../x"}, resctrl: true, err: "linux.intelRdt.closID"},
		{name: "bad memBwSchema", rdt: specs.LinuxIntelRdt{MemBwSchema: "L3:0=50"}, resctrl: true, err: "linux.intelRdt.memBwSchema"},
		{name: "rootless", rdt: specs.LinuxIntelRdt{ClosID: "gold"}, euid: 1000, resctrl: true, err: "needs root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := spec.Default(tc.euid != 0)
			s.Root.Path = t.TempDir()
			s.Linux.IntelRdt = &tc.rdt
			_, err := Build(s, &fakeHost{euid: tc.euid, resctrl: tc.resctrl}, Options{Bundle: "/b"})
			if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("err %v, want %q", err, tc.err)
			}
		})
	}
}

// What brig doesn't apply is said by its JSON path, never ignored quietly.
func TestIgnoredFieldsWarned(t *testing.T) {
	s := spec.Default(false)
	s.Root.Path = t.TempDir()
	s.Windows = &specs.Windows{}
	s.VM = &specs.VM{}
	s.Process.User.Username = "ContainerUser"
	k, f := int64(1<<20), false
	//lint:ignore SA1019 the deprecated field is what is tested
	s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Kernel: &k, KernelTCP: &k, UseHierarchy: &f}}
	p, err := Build(s, &fakeHost{}, Options{Bundle: "/b"})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(p.Warnings, "\n")
	for _, want := range []string{"windows: ignored", "vm: ignored", "linux.resources.memory.kernel: ignored", "linux.resources.memory.kernelTCP: ignored", "useHierarchy false: ignored", "process.user.username: ignored"} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings lack %q:\n%s", want, all)
		}
	}
	d := spec.Default(false)
	d.Root.Path = t.TempDir()
	if p, err = Build(d, &fakeHost{}, Options{Bundle: "/b"}); err != nil || strings.Contains(strings.Join(p.Warnings, "\n"), "ignored") {
		t.Errorf("the default config: %v, warnings %v", err, p)
	}
}
