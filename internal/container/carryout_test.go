package container

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"brig/internal/bootstrap"
	"brig/internal/cgroup"
	"brig/internal/cgroup/layout"
	"brig/internal/netdev"
	"brig/internal/plan"
	"brig/internal/protocol"
	"brig/internal/resctrl"
	"brig/internal/state"
)

// journal is a machine that only writes down what create does to it, and
// fails the failAt-th step (1-based; 0: none). Its init asks for its
// cgroup, then says it is ready.
type journal struct {
	failAt    int
	failWith  error // the failure (default: "<step> failed")
	selfJoin  bool
	steps     int
	log       []string // every effect, in order, undoing ones included
	madeTrees []*os.File
	place     func(int) error
	recvs     int
}

// step records a step that can fail.
func (j *journal) step(name string) error {
	j.steps++
	j.log = append(j.log, name)
	if j.steps == j.failAt {
		if j.failWith != nil {
			return j.failWith
		}
		return fmt.Errorf("%s failed", name)
	}
	return nil
}

// note records an effect that can't fail (clean-up).
func (j *journal) note(name string) { j.log = append(j.log, name) }

func (j *journal) lockState(id string) (func(), error) {
	if err := j.step("lockState"); err != nil {
		return nil, err
	}
	return func() { j.note("unlock") }, nil
}
func (j *journal) removeState(string)           { j.note("removeState") }
func (j *journal) saveState(*state.State) error { return j.step("saveState") }
func (j *journal) mkfifo(string, *plan.IDs) error {
	return j.step("mkfifo")
}
func (j *journal) newCgroup(string, string, *specs.LinuxResources, cgroup.Options) (cgroupEffects, error) {
	if err := j.step("newCgroup"); err != nil {
		return nil, err
	}
	return fakeCgroup{j}, nil
}
func (j *journal) removeDefaultParents(string) { j.note("removeDefaultParents") }
func (j *journal) trees(ts []plan.HostTree) (map[int]*os.File, error) {
	if err := j.step("trees"); err != nil {
		return nil, err
	}
	m := map[int]*os.File{}
	for _, t := range ts {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		w.Close()
		m[t.Index] = r
		j.madeTrees = append(j.madeTrees, r)
	}
	return m, nil
}
func (j *journal) open(l *launch, trees map[int]*os.File, _ string) ([]*os.File, []*os.File, func(), error) {
	if err := j.step("open"); err != nil {
		return nil, nil, nil, err
	}
	var passed []*os.File
	for _, fd := range l.Cfg.FDs {
		passed = append(passed, trees[fd.Mount])
	}
	return nil, passed, func() { j.note("closeFiles") }, nil
}
func (j *journal) start(o bootstrap.Options) (initEffects, error) {
	if err := j.step("start"); err != nil {
		return nil, err
	}
	j.place = o.Place
	return fakeInit{j}, nil
}
func (j *journal) oomScoreAdj(int, int) error { return j.step("oomScoreAdj") }
func (j *journal) moveNetDevices(string, map[string]specs.LinuxNetDevice) ([]netdev.Moved, error) {
	if err := j.step("moveNetDevices"); err != nil {
		return nil, err
	}
	return []netdev.Moved{{Host: "dummy0", Name: "dummy0"}}, nil
}
func (j *journal) returnNetDevices(string, []netdev.Moved) { j.note("returnNetDevices") }
func (j *journal) joinResctrl(string, *specs.LinuxIntelRdt, int) (resctrl.Group, error) {
	return resctrl.Group{Dir: "/sys/fs/resctrl/a", Made: true}, j.step("joinResctrl")
}
func (j *journal) leaveResctrl(resctrl.Group)     { j.note("leaveResctrl") }
func (j *journal) writePidFile(string, int) error { return j.step("writePidFile") }

type fakeCgroup struct{ j *journal }

func (c fakeCgroup) AllowDevices([]specs.LinuxDevice) {}
func (c fakeCgroup) SelfJoin() ([]string, string, bool) {
	return []string{"/sys/fs/cgroup/pids/brig/a"}, "", c.j.selfJoin
}
func (c fakeCgroup) Create() error   { return c.j.step("cgroup.Create") }
func (c fakeCgroup) Apply(int) error { return c.j.step("cgroup.Apply") }
func (c fakeCgroup) Limit() error    { return c.j.step("cgroup.Limit") }
func (c fakeCgroup) Paths() map[string]string {
	return map[string]string{"pids": "/sys/fs/cgroup/pids/brig/a"}
}
func (c fakeCgroup) destroy() { c.j.note("cgroup.destroy") }

type fakeInit struct{ j *journal }

func (p fakeInit) pid() int          { return 4242 }
func (p fakeInit) startTime() uint64 { return 1 }
func (p fakeInit) sendFiles(files []*os.File) error {
	return p.j.step(fmt.Sprintf("sendFiles(%d)", len(files)))
}
func (p fakeInit) sendProgram(prog []byte) error { return p.j.step("sendProgram") }
func (j *journal) cgroupLayout() ([]layout.Hierarchy, error) {
	return []layout.Hierarchy{{Mountpoint: "/sys/fs/cgroup/pids", Options: "pids"}}, nil
}
func (p fakeInit) Send(v any) error {
	if _, ok := v.(protocol.Reply); ok {
		return p.j.step("reply")
	}
	return p.j.step("sendConfig")
}
func (p fakeInit) Recv(v any) error {
	p.j.recvs++
	m := protocol.Message{Type: protocol.KindCgroup}
	switch p.j.recvs {
	case 2:
		m.Type = protocol.KindHooks
	case 3:
		m.Type = protocol.KindReady
	}
	if err := p.j.step("recv " + string(m.Type)); err != nil {
		m = protocol.Message{Type: protocol.KindError, Error: err.Error()}
	}
	if msg, ok := v.(*protocol.Message); ok {
		*msg = m
	}
	return nil
}
func (p fakeInit) Placed() error {
	if p.j.place != nil {
		place := p.j.place
		p.j.place = nil
		return place(4242)
	}
	return nil
}
func (p fakeInit) Kill() { p.j.note("kill") }
func (p fakeInit) done() { p.j.note("done") }

// carryOutCase is create's input for the journal.
func carryOutCase(t *testing.T, cgroupsPath string, o CreateOptions) (*plan.Plan, *specs.Spec, *launch) {
	t.Helper()
	s := testSpec(false)
	s.Linux.CgroupsPath = cgroupsPath
	adj := 100
	s.Process.OOMScoreAdj = &adj
	s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"dummy0": {}}
	s.Linux.IntelRdt = &specs.LinuxIntelRdt{L3CacheSchema: "L3:0=f"}
	p := testPlan(s, 1, 3)
	l, err := decideCreate(p, s, o, "/bundle", "/state/a/exec.fifo")
	if err != nil {
		t.Fatal(err)
	}
	return p, s, l
}

// TestCarryOutUndoesWhatItDid fails each step of create in turn and checks
// what was undone: the init killed before its cgroup is removed, the
// default "brig/" parents removed only for a default cgroupsPath, the
// state directory removed while still locked, the trees and files
// closed, and no step taken after the failure. Without a failure, nothing
// is undone and every step ran once.
func TestCarryOutUndoesWhatItDid(t *testing.T) {
	o := CreateOptions{ID: "a", PidFile: "/run/a.pid"}
	for _, tc := range []struct {
		name        string
		cgroupsPath string
		selfJoin    bool
	}{
		{name: "default cgroup, born in it", selfJoin: true},
		{name: "own cgroupsPath, placed by brig", cgroupsPath: "/custom/a"},
	} {
		// The run without a failure counts the steps.
		j := &journal{selfJoin: tc.selfJoin}
		p, s, l := carryOutCase(t, tc.cgroupsPath, o)
		c, err := carryOut(j, state.Store{Root: "/nonexistent"}, p, s, l, o, "/bundle")
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		want := []string{"lockState", "mkfifo", "newCgroup", "trees", "open"}
		if tc.selfJoin {
			want = append(want, "cgroup.Create", "start")
		} else {
			want = append(want, "start")
		}
		want = append(want, "oomScoreAdj", "joinResctrl", "sendFiles(2)", "sendConfig", "recv cgroup")
		if !tc.selfJoin {
			want = append(want, "cgroup.Apply")
		}
		want = append(want, "reply", "recv hooks", "moveNetDevices", "reply", "recv ready", "cgroup.Limit", "saveState", "writePidFile", "done", "closeFiles", "unlock")
		if !slices.Equal(j.log, want) {
			t.Fatalf("%s: steps\n%v\nwant\n%v", tc.name, j.log, want)
		}
		if c.Pid != 4242 || c.CgroupPaths["pids"] == "" {
			t.Errorf("%s: created %+v", tc.name, c.State)
		}
		for _, f := range j.madeTrees {
			if f.Fd() != ^uintptr(0) {
				t.Errorf("%s: a tree is still open after create", tc.name)
			}
		}

		for k := 1; k <= j.steps; k++ {
			f := &journal{failAt: k, selfJoin: tc.selfJoin}
			p, s, l := carryOutCase(t, tc.cgroupsPath, o)
			c, err := carryOut(f, state.Store{Root: "/nonexistent"}, p, s, l, o, "/bundle")
			idx := failedAt(f, k)
			name := f.log[idx]
			t.Run(fmt.Sprintf("%s/%s fails", tc.name, name), func(t *testing.T) {
				if err == nil || c != nil {
					t.Fatalf("create succeeded: %v", err)
				}
				made := func(step string) bool { return slices.Contains(f.log[:idx], step) }
				after := f.log[idx+1:]
				undone := func(step string) bool { return slices.Contains(after, step) }
				at := func(step string) int { return slices.Index(after, step) }
				// What was made is undone, and only that.
				if made("lockState") != undone("removeState") || made("lockState") != undone("unlock") {
					t.Errorf("state made %v, removed %v, unlocked %v: %v", made("lockState"), undone("removeState"), undone("unlock"), f.log)
				}
				if made("newCgroup") != undone("cgroup.destroy") {
					t.Errorf("cgroup made %v, destroyed %v: %v", made("newCgroup"), undone("cgroup.destroy"), f.log)
				}
				if undone("removeDefaultParents") != (made("newCgroup") && tc.cgroupsPath == "") {
					t.Errorf("default parents removed %v: %v", undone("removeDefaultParents"), f.log)
				}
				if made("start") != undone("kill") {
					t.Errorf("init started %v, killed %v: %v", made("start"), undone("kill"), f.log)
				}
				if made("moveNetDevices") != undone("returnNetDevices") {
					t.Errorf("devices moved %v, returned %v: %v", made("moveNetDevices"), undone("returnNetDevices"), f.log)
				}
				if undone("returnNetDevices") && at("returnNetDevices") > at("kill") {
					t.Errorf("devices returned after the init (and its namespace) died: %v", f.log)
				}
				if made("joinResctrl") != undone("leaveResctrl") {
					t.Errorf("resctrl joined %v, left %v: %v", made("joinResctrl"), undone("leaveResctrl"), f.log)
				}
				if made("open") != undone("closeFiles") {
					t.Errorf("files opened %v, closed %v: %v", made("open"), undone("closeFiles"), f.log)
				}
				// In order: the init dies before its cgroup goes, the
				// state goes while it is locked.
				if undone("kill") && undone("cgroup.destroy") && at("kill") > at("cgroup.destroy") {
					t.Errorf("cgroup removed before the init was killed: %v", f.log)
				}
				if undone("removeState") && at("removeState") > at("unlock") {
					t.Errorf("state removed after unlocking: %v", f.log)
				}
				for _, tr := range f.madeTrees {
					if tr.Fd() != ^uintptr(0) {
						t.Errorf("a tree left open")
					}
				}
				// Nothing but undoing after the failure (and telling the
				// init why, when it was answering it that failed).
				undo := []string{"reply", "returnNetDevices", "kill", "leaveResctrl", "cgroup.destroy", "removeDefaultParents", "removeState", "closeFiles", "unlock"}
				for _, step := range after {
					if !slices.Contains(undo, step) {
						t.Errorf("%s after the failure: %v", step, f.log)
					}
				}
			})
		}
	}
}

// failedAt is the index in j.log of its k-th failable step.
func failedAt(j *journal, k int) int {
	n := 0
	for i, s := range j.log {
		switch s {
		case "unlock", "removeState", "removeDefaultParents", "cgroup.destroy", "closeFiles", "kill", "done", "returnNetDevices", "leaveResctrl":
			continue
		}
		if n++; n == k {
			return i
		}
	}
	return len(j.log) - 1
}

// A rootless container without a cgroup it may write, and no limits asked:
// create goes on in the caller's cgroup, saying so once, writes no limits
// and records no cgroup.
func TestCarryOutWithoutCgroup(t *testing.T) {
	var warned []string
	o := CreateOptions{ID: "a", Rootless: true, Warn: func(w string) { warned = append(warned, w) }}
	for _, selfJoin := range []bool{true, false} {
		warned = nil
		eperm := fmt.Errorf("mkdir /sys/fs/cgroup/pids/brig: %w", os.ErrPermission)
		j := &journal{selfJoin: selfJoin, failWith: eperm}
		p, s, l := carryOutCase(t, "", o)
		// Fail the cgroup's creation (born in it) or the move (placed).
		step := "cgroup.Create"
		if !selfJoin {
			step = "cgroup.Apply"
		}
		probe := &journal{selfJoin: selfJoin}
		pp, ps, pl := carryOutCase(t, "", o)
		if _, err := carryOut(probe, state.Store{}, pp, ps, pl, o, "/bundle"); err != nil {
			t.Fatal(err)
		}
		j.failAt = slices.Index(probe.log, step) + 1
		c, err := carryOut(j, state.Store{}, p, s, l, o, "/bundle")
		if err != nil {
			t.Fatalf("%s refused: %v", step, err)
		}
		if slices.Contains(j.log, "cgroup.Limit") || len(c.CgroupPaths) != 0 {
			t.Errorf("%s: limits written or a cgroup recorded: %v %v", step, j.log, c.CgroupPaths)
		}
		if len(warned) != 1 || !strings.Contains(warned[0], "no cgroup") {
			t.Errorf("%s: warnings %q", step, warned)
		}
		// As root the same failure is an error.
		r := &journal{selfJoin: selfJoin, failAt: j.failAt, failWith: eperm}
		ro := o
		ro.Rootless = false
		p, s, l = carryOutCase(t, "", ro)
		if _, err := carryOut(r, state.Store{}, p, s, l, ro, "/bundle"); !errors.Is(err, os.ErrPermission) {
			t.Errorf("%s as root: %v", step, err)
		}
	}
}
