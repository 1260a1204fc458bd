package container

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"brig/internal/bootstrap"
	"brig/internal/cgroup"
	"brig/internal/cgroup/layout"
	"brig/internal/netdev"
	"brig/internal/plan"
	"brig/internal/protocol"
	"brig/internal/resctrl"
	"brig/internal/state"
)

// effects are everything create does to the machine once it has decided:
// the state directory, the exec fifo, the cgroup, the host-side trees and
// the launch's files, the init, its oom_score_adj, the pid file. Create
// carries a launch out over them (carryOut); machine is the real one, and
// create_test.go has a journal that fails any one step, to show that a
// failed create undoes exactly what it did and nothing else, without
// privilege.
type effects interface {
	// lockState makes the container's state directory and locks it; it
	// fails if the id is taken.
	lockState(id string) (unlock func(), err error)
	removeState(id string)
	saveState(st *state.State) error
	mkfifo(path string, owner *plan.IDs) error
	newCgroup(id, path string, res *specs.LinuxResources, o cgroup.Options) (cgroupEffects, error)
	// removeDefaultParents removes the default "brig/" parent cgroups.
	removeDefaultParents(id string)
	trees(ts []plan.HostTree) (map[int]*os.File, error)
	open(l *launch, trees map[int]*os.File, consoleSocket string) (inherited, passed []*os.File, closeAll func(), err error)
	start(o bootstrap.Options) (initEffects, error)
	// cgroupLayout is the host's cgroup hierarchies, for the C init's
	// program; openat2 must work (the C init resolves every path with it).
	cgroupLayout() ([]layout.Hierarchy, error)
	oomScoreAdj(pid, v int) error
	writePidFile(path string, pid int) error
	// moveNetDevices moves linux.netDevices into the network namespace
	// at nsPath, all or none; returnNetDevices moves them back.
	moveNetDevices(nsPath string, devs map[string]specs.LinuxNetDevice) ([]netdev.Moved, error)
	returnNetDevices(nsPath string, moved []netdev.Moved)
	// joinResctrl puts pid in the container's resctrl group
	// (linux.intelRdt); leaveResctrl removes what it made.
	joinResctrl(id string, r *specs.LinuxIntelRdt, pid int) (resctrl.Group, error)
	leaveResctrl(g resctrl.Group)
}

// cgroupEffects are the container's cgroup as create uses it.
type cgroupEffects interface {
	AllowDevices(own []specs.LinuxDevice)
	SelfJoin() (v1Dirs []string, v2Dir string, ok bool)
	Create() error
	Apply(pid int) error
	Limit() error
	Paths() map[string]string
	// destroy removes it, killing what is left in it.
	destroy()
}

// initEffects are the started init as create talks to it.
type initEffects interface {
	protocol.Conn
	pid() int
	startTime() uint64
	sendFiles(files []*os.File) error
	// sendProgram sends the C init its program (bootstrap.Options.Program).
	sendProgram(prog []byte) error
	Placed() error
	// Kill kills the init (and an intermediate child) and reaps them.
	Kill()
	// done closes brig's end of the socket and reaps the intermediate
	// child, if a pid namespace made one: create is over.
	done()
}

// machine is the real machine.
type machine struct{ store state.Store }

func (h machine) lockState(id string) (func(), error) {
	l, err := h.store.Create(id)
	if err != nil {
		return nil, err
	}
	return func() { l.Unlock() }, nil
}

func (h machine) removeState(id string)           { h.store.Remove(id) }
func (h machine) saveState(st *state.State) error { return h.store.Save(st) }

func (h machine) mkfifo(path string, owner *plan.IDs) error {
	if err := unix.Mkfifo(path, 0o622); err != nil {
		return err
	}
	if owner != nil {
		return os.Chown(path, owner.UID, owner.GID)
	}
	return nil
}

func (h machine) newCgroup(id, path string, res *specs.LinuxResources, o cgroup.Options) (cgroupEffects, error) {
	cg, err := cgroup.New(id, path, res, o, nil)
	if err != nil {
		return nil, err
	}
	return hostCgroup{cg}, nil
}

func (h machine) removeDefaultParents(id string) { cgroup.RemoveDefaultParents(id) }

func (h machine) trees(ts []plan.HostTree) (map[int]*os.File, error) { return sourceTrees(ts) }

func (h machine) open(l *launch, trees map[int]*os.File, consoleSocket string) ([]*os.File, []*os.File, func(), error) {
	return l.open(trees, consoleSocket)
}

func (h machine) start(o bootstrap.Options) (initEffects, error) {
	p, err := bootstrap.Start(o)
	if err != nil {
		return nil, err
	}
	return hostInit{p}, nil
}

func (h machine) oomScoreAdj(pid, v int) error            { return writeOOMScoreAdj(pid, v) }
func (h machine) writePidFile(path string, pid int) error { return writePidFile(path, pid) }

func (h machine) moveNetDevices(nsPath string, devs map[string]specs.LinuxNetDevice) ([]netdev.Moved, error) {
	hosts := make([]string, 0, len(devs))
	for host := range devs {
		hosts = append(hosts, host)
	}
	sort.Strings(hosts)
	var moved []netdev.Moved
	for _, host := range hosts {
		m, err := netdev.MoveIn(nsPath, host, devs[host].Name)
		if err != nil {
			h.returnNetDevices(nsPath, moved)
			return nil, fmt.Errorf("linux.netDevices.%s: %w", host, err)
		}
		moved = append(moved, m)
	}
	return moved, nil
}

func (h machine) joinResctrl(id string, r *specs.LinuxIntelRdt, pid int) (resctrl.Group, error) {
	return resctrl.Apply(resctrl.Root, id, r, pid)
}

func (h machine) leaveResctrl(g resctrl.Group) { resctrl.Remove(g) }

func (h machine) returnNetDevices(nsPath string, moved []netdev.Moved) {
	for _, m := range moved {
		netdev.MoveOut(nsPath, m)
	}
}

type hostCgroup struct{ *cgroup.Cgroup }

func (c hostCgroup) destroy() { destroyCgroup(c.Cgroup) }

type hostInit struct{ *bootstrap.Process }

func (p hostInit) pid() int { return p.Pid }

func (p hostInit) startTime() uint64 {
	t, _ := startTime(p.Pid)
	return t
}

func (p hostInit) sendFiles(files []*os.File) error { return protocol.SendFiles(p.Process, files) }

func (p hostInit) sendProgram(prog []byte) error { return p.SendProgram(prog) }

func (h machine) cgroupLayout() ([]layout.Hierarchy, error) {
	if !openat2Works() {
		return nil, errors.New("openat2 is not available")
	}
	return layout.Hierarchies()
}

// openat2Works says whether the kernel has openat2(2) and lets brig use
// it (a seccomp profile around brig may refuse it).
var openat2Works = sync.OnceValue(func() bool {
	fd, err := unix.Openat2(unix.AT_FDCWD, "/", &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT})
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
})

func (p hostInit) done() {
	p.Close()
	if p.Cmd.Process.Pid != p.Pid {
		p.Cmd.Wait()
	}
}
