package container

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"brig/internal/seccomp"
	"brig/internal/spec"
)

// What `brig features` lists is exactly what the config validator and the
// mount option parser accept: one owner per vocabulary.
func TestFeaturesMatchValidators(t *testing.T) {
	f := Features()
	base := func() *specs.Spec {
		s := spec.Default(false)
		s.Root.Path = "/"
		return s
	}
	valid := func(edit func(*specs.Spec)) error {
		s := base()
		edit(s)
		return spec.Validate(s, seccomp.Validate)
	}
	seccompWith := func(edit func(*specs.LinuxSeccomp)) func(*specs.Spec) {
		return func(s *specs.Spec) {
			sc := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/run/agent.sock"}
			edit(sc)
			s.Linux.Seccomp = sc
		}
	}
	for _, tc := range []struct {
		what   string
		listed []string
		try    func(string) func(*specs.Spec)
	}{
		{"seccomp action", f.Linux.Seccomp.Actions, func(v string) func(*specs.Spec) {
			return seccompWith(func(sc *specs.LinuxSeccomp) {
				sc.Syscalls = []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.LinuxSeccompAction(v)}}
			})
		}},
		{"seccomp operator", f.Linux.Seccomp.Operators, func(v string) func(*specs.Spec) {
			return seccompWith(func(sc *specs.LinuxSeccomp) {
				sc.Syscalls = []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno,
					Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.LinuxSeccompOperator(v), Value: 1}}}}
			})
		}},
		{"seccomp arch", f.Linux.Seccomp.Archs, func(v string) func(*specs.Spec) {
			return seccompWith(func(sc *specs.LinuxSeccomp) { sc.Architectures = []specs.Arch{specs.Arch(v)} })
		}},
		{"seccomp flag", f.Linux.Seccomp.SupportedFlags, func(v string) func(*specs.Spec) {
			return seccompWith(func(sc *specs.LinuxSeccomp) { sc.Flags = []specs.LinuxSeccompFlag{specs.LinuxSeccompFlag(v)} })
		}},
		{"namespace", f.Linux.Namespaces, func(v string) func(*specs.Spec) {
			return func(s *specs.Spec) {
				s.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.LinuxNamespaceType(v)}}
				s.Hostname = ""
				if v == "user" {
					s.Linux.UIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 1}}
					s.Linux.GIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 1}}
				}
				s.Linux.MaskedPaths, s.Linux.ReadonlyPaths, s.Linux.Sysctl = nil, nil, nil
			}
		}},
	} {
		if len(tc.listed) == 0 {
			t.Errorf("features list no %s", tc.what)
		}
		for _, v := range tc.listed {
			if err := valid(tc.try(v)); err != nil {
				t.Errorf("%s %q is listed but refused: %v", tc.what, v, err)
			}
		}
		if err := valid(tc.try("NOT_A_" + strings.ToUpper(strings.ReplaceAll(tc.what, " ", "_")))); err == nil {
			t.Errorf("an unknown %s is accepted", tc.what)
		}
	}
	// Every listed mount option is read by brig, none passed on as data;
	// and every option brig reads is listed.
	for _, o := range f.MountOptions {
		if d := spec.ParseMountOptions([]string{o}).Data; d != "" {
			t.Errorf("mount option %q is listed but passed to the kernel as data", o)
		}
	}
	if d := spec.ParseMountOptions([]string{"size=1m"}).Data; d != "size=1m" {
		t.Errorf("data option: %q", d)
	}
	if len(f.Hooks) != 6 {
		t.Errorf("hooks %v", f.Hooks)
	}
}
