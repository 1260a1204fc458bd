package container

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"brig/internal/bootstrap"
	"brig/internal/plan"
	"brig/internal/protocol"
)

// The decisions of create and exec, without privilege: run them as root
// with an empty bounding set and they still pass.

func testSpec(terminal bool) *specs.Spec {
	return &specs.Spec{Process: &specs.Process{Terminal: terminal, Args: []string{"/bin/true"}},
		Linux: &specs.Linux{UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}},
			Seccomp: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}}}
}

func testPlan(s *specs.Spec, trees ...int) *plan.Plan {
	p := &plan.Plan{Spec: s, Process: plan.Process{Spec: s.Process}}
	p.Namespaces.CloneFlags = unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUSER
	p.Namespaces.Join = []plan.Join{{Type: "net", Path: "/var/run/netns/x"}}
	p.Namespaces.UserNS = true
	for _, i := range trees {
		p.HostTrees = append(p.HostTrees, plan.HostTree{Index: i, Source: "/src", Destination: "/dst"})
	}
	return p
}

func TestDecideCreate(t *testing.T) {
	for _, tc := range []struct {
		name     string
		terminal bool
		o        CreateOptions
		trees    []int
		preserve int
		fds      []protocol.FD
		setsid   bool
		err      string
	}{
		{name: "nothing passed", o: CreateOptions{ID: "a"}},
		{name: "preserved fds are inherited", o: CreateOptions{ID: "a", PreserveFDs: 2}, preserve: 2},
		{name: "everything, in order", terminal: true, trees: []int{7, 2},
			o:        CreateOptions{ID: "a", PreserveFDs: 1, DieWithParent: true, ConsoleSocket: "/run/c.sock"},
			preserve: 1,
			fds: []protocol.FD{{Kind: protocol.FDParent}, {Kind: protocol.FDTree, Mount: 2},
				{Kind: protocol.FDTree, Mount: 7}, {Kind: protocol.FDConsole}}},
		{name: "new session without a terminal", o: CreateOptions{ID: "a", NewSession: true}, setsid: true},
		{name: "no new session with a terminal", terminal: true, o: CreateOptions{ID: "a", NewSession: true, ConsoleSocket: "/s"},
			fds: []protocol.FD{{Kind: protocol.FDConsole}}},
		{name: "terminal without a console socket", terminal: true, o: CreateOptions{ID: "a"}, err: "--console-socket is required"},
		{name: "console socket without a terminal", o: CreateOptions{ID: "a", ConsoleSocket: "/s"}, err: "process.terminal is false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testSpec(tc.terminal)
			p := testPlan(s, tc.trees...)
			l, err := decideCreate(p, s, tc.o, "/bundle", "/state/a/exec.fifo")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(l.Cfg.FDs, tc.fds) || l.Preserve != tc.preserve {
				t.Errorf("fds %v, preserve %d, want %v, %d", l.Cfg.FDs, l.Preserve, tc.fds, tc.preserve)
			}
			if l.Boot.Setsid != tc.setsid {
				t.Errorf("setsid %v", l.Boot.Setsid)
			}
			// What create always decides from the plan.
			if l.Boot.CloneFlags != p.Namespaces.CloneFlags || len(l.Boot.UIDMappings) != 1 ||
				!reflect.DeepEqual(l.Boot.Join, []bootstrap.Namespace{{Type: "net", Path: "/var/run/netns/x"}}) {
				t.Errorf("bootstrap %+v", l.Boot)
			}
			if l.Cfg.Exec || l.Cfg.FifoPath != "/state/a/exec.fifo" || l.Cfg.PreserveFDs != tc.o.PreserveFDs || !l.Cfg.UserNS {
				t.Errorf("config %+v", l.Cfg)
			}
			// The init gets the program, not the profile; the caller's
			// spec keeps it.
			if l.Cfg.Spec.Linux.Seccomp != nil || s.Linux.Seccomp == nil {
				t.Errorf("seccomp profile: to the init %v, kept %v", l.Cfg.Spec.Linux.Seccomp != nil, s.Linux.Seccomp != nil)
			}
		})
	}
}

// TestDecideExec: exec differs from create — it makes no namespace, maps
// no ids, starts no session, inherits no trees or parent pidfd, and is
// marked as an exec; a process the C init can run gets its program.
func TestDecideExec(t *testing.T) {
	s := testSpec(false)
	ep := &plan.Exec{Process: plan.Process{Spec: &specs.Process{Args: []string{"/bin/sh"}}}}
	ep.Namespaces.Join = []plan.Join{{Type: "pid", Path: "/proc/42/ns/pid"}, {Type: "mnt", Path: "/proc/42/ns/mnt"}}
	for _, tc := range []struct {
		name     string
		terminal bool
		o        ExecOptions
		socket   string
		preserve int
		fds      []protocol.FD
		err      string
	}{
		{name: "plain"},
		{name: "preserved and a terminal", terminal: true, o: ExecOptions{PreserveFDs: 1}, socket: "/s",
			preserve: 1, fds: []protocol.FD{{Kind: protocol.FDConsole}}},
		{name: "detached terminal without a socket", terminal: true, o: ExecOptions{Detach: true}, err: "--console-socket is required with --detach"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.Process = &specs.Process{Terminal: tc.terminal}
			l, err := decideExec(ep, s, "c1", "/bundle", o, tc.socket)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(l.Cfg.FDs, tc.fds) || l.Preserve != tc.preserve {
				t.Errorf("fds %v, preserve %d, want %v, %d", l.Cfg.FDs, l.Preserve, tc.fds, tc.preserve)
			}
			b := l.Boot
			if b.CloneFlags != 0 || b.Setsid || len(b.UIDMappings)+len(b.GIDMappings) != 0 || len(b.Join) != 2 {
				t.Errorf("exec bootstrap %+v", b)
			}
			if !l.Cfg.Exec || l.Cfg.FifoPath != "" || l.Cfg.ID != "c1" {
				t.Errorf("exec config %+v", l.Cfg)
			}
			// The C init runs a plain process; a terminal needs the Go init.
			if (l.Program != nil) == tc.terminal || b.Program != (l.Program != nil) || (l.GoInit == nil) != (l.Program != nil) {
				t.Errorf("init program %d bytes (bootstrap says %v), Go init because %v", len(l.Program), b.Program, l.GoInit)
			}
		})
	}
}

// TestLaunchOpen: the passed files are the fds' own, in Cfg.FDs's order;
// a tree the launch needs but wasn't made is an error naming its mount.
func TestLaunchOpen(t *testing.T) {
	a, _ := os.CreateTemp(t.TempDir(), "a")
	b, _ := os.CreateTemp(t.TempDir(), "b")
	defer a.Close()
	defer b.Close()
	l := &launch{Cfg: &protocol.Config{FDs: []protocol.FD{{Kind: protocol.FDTree, Mount: 5},
		{Kind: protocol.FDTree, Mount: 1}, {Kind: protocol.FDParent}}}}
	inherited, files, closeAll, err := l.open(map[int]*os.File{1: a, 5: b}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	if len(inherited) != 0 || len(files) != 3 || files[0] != b || files[1] != a {
		t.Fatalf("inherited %v, passed %v", inherited, files)
	}
	// The pidfd is of this process.
	info, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", files[2].Fd()))
	if err != nil || !strings.Contains(string(info), fmt.Sprintf("Pid:\t%d\n", os.Getpid())) {
		t.Errorf("parent fd is not a pidfd of this process: %v %s", err, info)
	}
	missing := &launch{Cfg: &protocol.Config{FDs: []protocol.FD{{Kind: protocol.FDTree, Mount: 9}}}}
	if _, _, _, err := missing.open(nil, ""); err == nil || !strings.Contains(err.Error(), "mounts[9]") {
		t.Errorf("missing tree: %v", err)
	}
}
