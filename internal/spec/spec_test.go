package spec

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"brig/internal/seccomp"
)

func validSpec() *specs.Spec {
	s := Default(false)
	s.Root.Path = "/tmp/rootfs"
	return s
}

func TestDefaultIsValid(t *testing.T) {
	for _, rootless := range []bool{false, true} {
		s := Default(rootless)
		if err := Validate(s, seccomp.Validate); err != nil {
			t.Errorf("Default(%v) is invalid: %v", rootless, err)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*specs.Spec)
		want string // substring of the error; "" means valid
	}{
		{"valid", func(*specs.Spec) {}, ""},
		{"no version", func(s *specs.Spec) { s.Version = "" }, "ociVersion: missing"},
		{"version 2", func(s *specs.Spec) { s.Version = "2.0.0" }, "ociVersion"},
		{"no root", func(s *specs.Spec) { s.Root = nil }, "root.path: missing"},
		{"no args", func(s *specs.Spec) { s.Process.Args = nil }, "process.args"},
		{"relative cwd", func(s *specs.Spec) { s.Process.Cwd = "x" }, "process.cwd"},
		{"bad env", func(s *specs.Spec) { s.Process.Env = []string{"NOEQUALS"} }, "process.env[0]"},
		{"bad rlimit", func(s *specs.Spec) { s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_X"}} }, "process.rlimits[0].type"},
		{"soft above hard", func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 2, Hard: 1}}
		}, "above hard"},
		{"bad cap", func(s *specs.Spec) { s.Process.Capabilities.Effective = []string{"CAP_FOO"} }, "process.capabilities.effective[0]"},
		{"oom", func(s *specs.Spec) { v := 2000; s.Process.OOMScoreAdj = &v }, "process.oomScoreAdj"},
		{"mount without destination", func(s *specs.Spec) { s.Mounts = append(s.Mounts, specs.Mount{Type: "tmpfs"}) }, "destination: missing"},
		{"bind without source", func(s *specs.Spec) { s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "bind"}) }, ".source: missing"},
		{"hostname without uts", func(s *specs.Spec) { s.Linux.Namespaces = s.Linux.Namespaces[:1] }, "hostname"},
		{"idmap on tmpfs", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "tmpfs", Options: []string{"idmap"}})
		}, "id-mapped mounts are bind mounts"},
		{"idmap without any mapping", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: "/x", Options: []string{"ridmap"}})
		}, "idmap without mappings"},
		{"idmap uid only", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: "/x", UIDMappings: []specs.LinuxIDMapping{{Size: 1}}})
		}, "mounts["},
		{"idmap zero size", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: "/x",
				UIDMappings: []specs.LinuxIDMapping{{Size: 1}}, GIDMappings: []specs.LinuxIDMapping{{Size: 0}}})
		}, ".gidMappings[0].size"},
		{"dup namespace", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "pid"})
		}, "duplicate namespace"},
		{"bad namespace", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "bogus"})
		}, "unknown namespace type"},
		{"relative ns path", func(s *specs.Spec) { s.Linux.Namespaces[0].Path = "proc/1/ns/pid" }, "linux.namespaces[0].path"},
		{"maps without userns", func(s *specs.Spec) { s.Linux.UIDMappings = []specs.LinuxIDMapping{{Size: 1}} }, "linux.uidMappings"},
		{"userns without maps", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "user"})
		}, "needs uidMappings"},
		{"time offsets without timens", func(s *specs.Spec) {
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 1}}
		}, "linux.timeOffsets"},
		{"host sysctl", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"kernel.panic": "1"} }, "linux.sysctl.kernel.panic"},
		{"net sysctl ok", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"} }, ""},
		{"bad device type", func(s *specs.Spec) { s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/x", Type: "z"}} }, "linux.devices[0].type"},
		{"bad cgroup device access", func(s *specs.Spec) {
			s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Access: "rwx"}}
		}, "linux.resources.devices[0].access"},
		{"bad propagation", func(s *specs.Spec) { s.Linux.RootfsPropagation = "sideways" }, "linux.rootfsPropagation"},
		{"bad seccomp", func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: "X", Syscalls: []specs.LinuxSyscall{{Action: "Y"}}}
		}, "linux.seccomp.syscalls[0].names"},
		{"notify without listener", func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActNotify}
		}, "listenerPath"},
		{"relative hook", func(s *specs.Spec) { s.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: "x"}}} }, "hooks.poststop[0].path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := validSpec()
			tc.edit(s)
			err := Validate(s, seccomp.Validate)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParseNamesTheField(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"process": {"args": "sh"}}`, "process.args"},
		{`{"linux": {"namespaces": [{"type": 1}]}}`, "linux.namespaces.type"},
		{`{"ociVersion": 1}`, "ociVersion"},
		{`{"ociVersion": "1.0",,}`, "syntax error at line 1"},
		{`{"ociVersion": "1.0"`, "config.json"},
		{`{} {}`, "trailing data"},
	} {
		_, err := Parse([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%s) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestParseMountOptions(t *testing.T) {
	for _, tc := range []struct {
		opts             []string
		flags, clear     uintptr
		attrSet, attrClr uint64
		data             string
		bind, rec        bool
	}{
		{opts: []string{"ro", "nosuid", "nodev"}, flags: unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV},
		{opts: []string{"ro", "rw"}, clear: unix.MS_RDONLY},
		{opts: []string{"rbind", "rro"}, bind: true, rec: true, attrSet: unix.MOUNT_ATTR_RDONLY},
		{opts: []string{"bind"}, bind: true},
		{opts: []string{"size=64k", "mode=755", "newinstance"}, data: "size=64k,mode=755,newinstance"},
		{opts: []string{"rnosuid", "rsuid"}, attrClr: unix.MOUNT_ATTR_NOSUID},
	} {
		m := ParseMountOptions(tc.opts)
		if m.Flags != tc.flags || m.ClearFlags != tc.clear || m.AttrSet != tc.attrSet || m.AttrClr != tc.attrClr ||
			m.Data != tc.data || m.Bind != tc.bind || m.Recursive != tc.rec {
			t.Errorf("ParseMountOptions(%v) = %+v", tc.opts, m)
		}
	}
	if p := ParseMountOptions([]string{"rshared"}).Propagation; len(p) != 1 || p[0] != unix.MS_SHARED|unix.MS_REC {
		t.Errorf("rshared propagation %v", p)
	}
}

func TestCapabilityByName(t *testing.T) {
	for name, ok := range map[string]bool{"CAP_SYS_ADMIN": true, "cap_kill": true, "NET_RAW": true, "CAP_NOPE": false, "": false} {
		if _, got := CapabilityByName(name); got != ok {
			t.Errorf("CapabilityByName(%q) = %v", name, got)
		}
	}
}

// FuzzParseValidate: no input makes the parser or validator panic, and a
// config that parses and validates survives a JSON round trip.
func FuzzParseValidate(f *testing.F) {
	seed, _ := json.Marshal(Default(false))
	f.Add(seed)
	seed2, _ := json.Marshal(Default(true))
	f.Add(seed2)
	f.Add([]byte(`{"ociVersion":"1.0.2","root":{"path":"r"},"process":{"args":["sh"],"cwd":"/"},"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":9,"op":"SCMP_CMP_EQ"}]}]}}}`))
	f.Add([]byte(`{"process":{"args":"x"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			return
		}
		if Validate(s, seccomp.Validate) != nil {
			return
		}
		again, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("marshal a valid spec: %v", err)
		}
		s2, err := Parse(again)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if err := Validate(s2, seccomp.Validate); err != nil {
			t.Fatalf("valid spec invalid after a round trip: %v", err)
		}
	})
}

func TestOCIVersionAndDestination(t *testing.T) {
	for v, ok := range map[string]bool{
		"1.0.0": true, "1.2.0": true, "1.0.2-dev": true, "1.1.0+dev": true, "1.0.0-rc5-dev": true, "1.3.0": true, "1.0": true,
		"1.foo": false, "2.0.0": false, "0.9.0": false, "1": false, "1.0.0.0": false, "v1.0.0": false, "1.01.0": false, "banana": false,
	} {
		s := Default(false)
		s.Version = v
		err := Validate(s, seccomp.Validate)
		if (err == nil) != ok || (err != nil && !strings.Contains(err.Error(), "ociVersion")) {
			t.Errorf("ociVersion %q: %v", v, err)
		}
	}
	s := Default(false)
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "../../etc", Type: "tmpfs", Source: "tmpfs"})
	if err := Validate(s, seccomp.Validate); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("mounts[%d].destination", len(s.Mounts)-1)) {
		t.Errorf("a relative destination: %v", err)
	}
}
