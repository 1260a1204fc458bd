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
		fds      []fdSlot
		parent   int
		console  int
		treeFDs  map[int]int
		setsid   bool
		err      string
	}{
		{name: "nothing inherited", o: CreateOptions{ID: "a"}},
		{name: "preserved fds keep their numbers", o: CreateOptions{ID: "a", PreserveFDs: 2},
			fds: []fdSlot{{fdPreserved, 3}, {fdPreserved, 4}}},
		{name: "everything, in order", terminal: true, trees: []int{7, 2},
			o:      CreateOptions{ID: "a", PreserveFDs: 1, DieWithParent: true, ConsoleSocket: "/run/c.sock"},
			fds:    []fdSlot{{fdPreserved, 3}, {Kind: fdParent}, {fdTree, 2}, {fdTree, 7}, {Kind: fdConsole}},
			parent: 4, treeFDs: map[int]int{2: 5, 7: 6}, console: 7},
		{name: "new session without a terminal", o: CreateOptions{ID: "a", NewSession: true}, setsid: true},
		{name: "no new session with a terminal", terminal: true, o: CreateOptions{ID: "a", NewSession: true, ConsoleSocket: "/s"},
			fds: []fdSlot{{Kind: fdConsole}}, console: 3},
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
			if !reflect.DeepEqual(l.FDs, tc.fds) {
				t.Errorf("fds %v, want %v", l.FDs, tc.fds)
			}
			if l.Cfg.ParentFD != tc.parent || l.Cfg.ConsoleFD != tc.console || !reflect.DeepEqual(l.Cfg.TreeFDs, tc.treeFDs) {
				t.Errorf("parent %d console %d trees %v, want %d %d %v", l.Cfg.ParentFD, l.Cfg.ConsoleFD, l.Cfg.TreeFDs, tc.parent, tc.console, tc.treeFDs)
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
// marked as an exec.
func TestDecideExec(t *testing.T) {
	s := testSpec(false)
	ep := &plan.Exec{Process: plan.Process{Spec: &specs.Process{Args: []string{"/bin/sh"}}}}
	ep.Namespaces.Join = []plan.Join{{Type: "pid", Path: "/proc/42/ns/pid"}, {Type: "mnt", Path: "/proc/42/ns/mnt"}}
	for _, tc := range []struct {
		name     string
		terminal bool
		o        ExecOptions
		socket   string
		fds      []fdSlot
		console  int
		err      string
	}{
		{name: "plain"},
		{name: "preserved and a terminal", terminal: true, o: ExecOptions{PreserveFDs: 1}, socket: "/s",
			fds: []fdSlot{{fdPreserved, 3}, {Kind: fdConsole}}, console: 4},
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
			if !reflect.DeepEqual(l.FDs, tc.fds) || l.Cfg.ConsoleFD != tc.console {
				t.Errorf("fds %v console %d, want %v %d", l.FDs, l.Cfg.ConsoleFD, tc.fds, tc.console)
			}
			b := l.Boot
			if b.CloneFlags != 0 || b.Setsid || len(b.UIDMappings)+len(b.GIDMappings) != 0 || len(b.Join) != 2 {
				t.Errorf("exec bootstrap %+v", b)
			}
			if !l.Cfg.Exec || l.Cfg.ParentFD != 0 || l.Cfg.TreeFDs != nil || l.Cfg.FifoPath != "" || l.Cfg.ID != "c1" {
				t.Errorf("exec config %+v", l.Cfg)
			}
		})
	}
}

// TestLaunchOpen: the files are the slots' own, in the slots' order; a
// tree the launch needs but wasn't made is an error naming its mount.
func TestLaunchOpen(t *testing.T) {
	a, _ := os.CreateTemp(t.TempDir(), "a")
	b, _ := os.CreateTemp(t.TempDir(), "b")
	defer a.Close()
	defer b.Close()
	// A preserved fd of the test's own (not fd 3 of the test binary,
	// which the wrapping file would close when collected).
	kept, err := unix.Dup(int(a.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	l := &launch{FDs: []fdSlot{{fdPreserved, kept}, {fdTree, 5}, {fdTree, 1}, {Kind: fdParent}}}
	files, closeAll, err := l.open(map[int]*os.File{1: a, 5: b}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	defer files[0].Close()
	if len(files) != 4 || files[0].Fd() != uintptr(kept) || files[1] != b || files[2] != a {
		t.Fatalf("files %v", files)
	}
	// The pidfd is of this process.
	info, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", files[3].Fd()))
	if err != nil || !strings.Contains(string(info), fmt.Sprintf("Pid:\t%d\n", os.Getpid())) {
		t.Errorf("parent fd is not a pidfd of this process: %v %s", err, info)
	}
	if _, _, err := (&launch{FDs: []fdSlot{{fdTree, 9}}}).open(nil, ""); err == nil || !strings.Contains(err.Error(), "mounts[9]") {
		t.Errorf("missing tree: %v", err)
	}
}
