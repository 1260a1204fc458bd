package protocol

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
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
		FDs: []FD{{Kind: FDTree, Mount: 2}}, UserNS: true, Mounts: spec.ParseMounts(s.Mounts),
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
	if got.ID != c.ID || got.FifoPath != c.FifoPath || !reflect.DeepEqual(got.FDs, c.FDs) || !got.UserNS {
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

// Files passed with SendFiles arrive in order, close-on-exec, and the
// config's FDs give them their roles. More files than one message holds
// take several messages; the JSON line after them is read whole.
func TestPassFiles(t *testing.T) {
	for _, n := range []int{0, 1, 3, maxRights, maxRights + 5, 2*maxRights + 1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			parent, child := os.NewFile(uintptr(fds[0]), "parent"), os.NewFile(uintptr(fds[1]), "child")
			defer parent.Close()
			defer child.Close()
			var files []*os.File
			cfg := Config{ID: "c"}
			for i := 0; i < n; i++ {
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				defer w.Close()
				fmt.Fprintf(w, "%d", i)
				w.Close()
				files = append(files, r)
				cfg.FDs = append(cfg.FDs, FD{Kind: FDTree, Mount: i})
			}
			done := make(chan error, 1)
			go func() {
				err := SendFiles(parent, files)
				if err == nil {
					var data []byte
					data, err = json.Marshal(cfg)
					parent.Write(append(data, '\n'))
				}
				done <- err
			}()
			got, err := RecvFiles(child)
			if err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(child).ReadBytes('\n')
			if err != nil {
				t.Fatal(err)
			}
			var back Config
			if err := json.Unmarshal(line, &back); err != nil {
				t.Fatal(err)
			}
			if err := back.Attach(got); err != nil {
				t.Fatal(err)
			}
			if len(back.Trees) != n {
				t.Fatalf("%d trees, want %d", len(back.Trees), n)
			}
			for i := 0; i < n; i++ {
				f := back.Trees[i]
				defer f.Close()
				flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0)
				if err != nil || flags&unix.FD_CLOEXEC == 0 {
					t.Errorf("fd %d: not close-on-exec (%v)", i, err)
				}
				data, _ := io.ReadAll(f)
				if string(data) != fmt.Sprint(i) {
					t.Errorf("mounts[%d]'s fd reads %q", i, data)
				}
			}
		})
	}
}

func TestAttach(t *testing.T) {
	f := func() *os.File { r, _, _ := os.Pipe(); return r }
	for _, tc := range []struct {
		name  string
		fds   []FD
		files int
		err   string
	}{
		{name: "each role", fds: []FD{{Kind: FDParent}, {Kind: FDTree, Mount: 3}, {Kind: FDConsole}}, files: 3},
		{name: "fewer arrived", fds: []FD{{Kind: FDParent}}, files: 0, err: "1 fds, 0 arrived"},
		{name: "more arrived", files: 1, err: "0 fds, 1 arrived"},
		{name: "two parents", fds: []FD{{Kind: FDParent}, {Kind: FDParent}}, files: 2, err: "two parent"},
		{name: "two consoles", fds: []FD{{Kind: FDConsole}, {Kind: FDConsole}}, files: 2, err: "two console"},
		{name: "one mount twice", fds: []FD{{Kind: FDTree, Mount: 1}, {Kind: FDTree, Mount: 1}}, files: 2, err: "mounts[1]"},
		{name: "unknown kind", fds: []FD{{Kind: "cwd"}}, files: 1, err: `unknown kind "cwd"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var files []*os.File
			for i := 0; i < tc.files; i++ {
				files = append(files, f())
				defer files[i].Close()
			}
			c := Config{FDs: tc.fds}
			err := c.Attach(files)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || c.Parent != files[0] || c.Trees[3] != files[1] || c.Console != files[2] {
				t.Fatalf("attach: %v %+v", err, c)
			}
		})
	}
}
