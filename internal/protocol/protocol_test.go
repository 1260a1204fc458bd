package protocol

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"brig/internal/seccomp"
	"brig/internal/spec"
)

// The config reaches the init with every part of the spec the init reads,
// and without the parts it doesn't (linux.resources above all).
func TestConfigWire(t *testing.T) {
	s := spec.Default(false)
	s.Hostname, s.Domainname = "box", "example.org"
	s.Annotations = map[string]string{"a": "b"}
	s.Hooks = &specs.Hooks{CreateContainer: []specs.Hook{{Path: "/bin/true", Args: []string{"true"}}}}
	s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
	s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229}}
	s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"kexec_load"}, Action: specs.ActErrno}}}
	s.Linux.RootfsPropagation = "rslave"
	s.Linux.MountLabel = "system_u:object_r:container_file_t:s0:c1,c2"
	s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32}
	limit := int64(1 << 20)
	s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}
	s.Windows = &specs.Windows{LayerFolders: []string{`C:\x`}}
	c := Config{ID: "c1", Spec: s, Process: s.Process, FifoPath: "/run/brig/c1/exec.fifo",
		TreeFDs: map[int]int{2: 7}, UserNS: true, Mounts: spec.ParseMounts(s.Mounts),
		Seccomp: &seccomp.Program{Insns: []unix.SockFilter{{Code: 0x20, K: 4}, {Code: 0x06, Jt: 1, Jf: 2, K: 0x7fff0000}}, Flags: 2}}

	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	// The profile and the unparsed mounts stay behind: the plan's program
	// and typed mounts travel instead.
	for _, absent := range []string{`"resources"`, `"windows"`, `"uidMappings"`, `"syscalls"`, `"annotations"`} {
		if strings.Contains(string(data), absent) {
			t.Errorf("the init's config carries %s", absent)
		}
	}
	var got Config
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != c.ID || got.FifoPath != c.FifoPath || got.TreeFDs[2] != 7 || !got.UserNS {
		t.Errorf("config fields lost: %+v", got)
	}
	if !reflect.DeepEqual(got.Seccomp, c.Seccomp) {
		t.Errorf("seccomp program: got %+v, want %+v", got.Seccomp, c.Seccomp)
	}
	if !reflect.DeepEqual(got.Mounts, c.Mounts) || len(got.Mounts) == 0 {
		t.Errorf("mounts: got %+v, want %+v", got.Mounts, c.Mounts)
	}
	if !reflect.DeepEqual(got.Process, c.Process) {
		t.Errorf("process: got %+v, want %+v", got.Process, c.Process)
	}
	if !reflect.DeepEqual(toInitSpec(got.Spec), toInitSpec(s)) {
		t.Errorf("the init's part of the spec changed on the way:\ngot  %+v\nwant %+v", got.Spec, s)
	}
	if got.Spec.Linux.Resources != nil || got.Spec.Windows != nil {
		t.Errorf("parts the init doesn't read arrived: %+v", got.Spec)
	}
	// A config without a spec stays without one.
	data, _ = json.Marshal(Config{ID: "x"})
	var none Config
	if err := json.Unmarshal(data, &none); err != nil || none.Spec != nil {
		t.Errorf("no spec: got %+v, %v", none.Spec, err)
	}
}
