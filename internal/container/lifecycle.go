package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"brig/internal/cgroup"
	"brig/internal/hooks"
	"brig/internal/netdev"
	"brig/internal/resctrl"
	"brig/internal/state"
)

// Start lets a created container's init exec the container's process.
func Start(store state.Store, id string, warn func(string)) error {
	lock, err := store.Lock(id)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	c, err := Load(store, id)
	if err != nil {
		return err
	}
	return c.start(warn)
}

// start is Start of a loaded container, its state locked.
func (c *Container) start(warn func(string)) error {
	id, store := c.ID, c.store
	switch st := c.Status(); st {
	case specs.StateCreated:
	case specs.StateStopped:
		return fmt.Errorf("container %q has stopped: cannot start it", id)
	default:
		return fmt.Errorf("container %q is %s, not created: cannot start it", id, st)
	}
	fifoPath := filepath.Join(store.Dir(id), state.FifoName)
	fd, err := unix.Open(fifoPath, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	defer unix.Close(fd)
	// Init's blocking open for writing returns now; wait for its byte, or
	// for it to die.
	buf := make([]byte, 1)
	for {
		n, err := unix.Read(fd, buf)
		if n > 0 {
			break
		}
		if err != nil && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("read exec fifo: %w", err)
		}
		if !alive(c.Pid, c.PidStart) {
			return fmt.Errorf("container %q: init died before start", id)
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		unix.Poll(fds, 10)
	}
	// Removing the fifo is the record that it started (Status reads it):
	// no state write on the start path.
	os.Remove(fifoPath)
	if c.Spec.Hooks != nil {
		if err := hooks.Run("poststart", c.Spec.Hooks.Poststart, c.specState(specs.StateRunning)); err != nil && warn != nil {
			warn(err.Error())
		}
	}
	return nil
}

// Kill signals the container's init, or with all every process in its
// cgroup.
func Kill(store state.Store, id string, sig unix.Signal, all bool) error {
	lock, err := store.Lock(id)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	c, err := Load(store, id)
	if err != nil {
		return err
	}
	stopped := c.Status() == specs.StateStopped
	if all {
		// As runc: --all reaches every process left in the cgroup, also
		// after init has exited (a shim kills the children of an init
		// that shared its PID namespace this way). Nothing left is no error.
		return c.signalAll(sig, stopped)
	}
	if stopped {
		return errNotRunning(id)
	}
	return c.signal(sig)
}

func (c *Container) signalAll(sig unix.Signal, stopped bool) error {
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	if sig == unix.SIGKILL {
		if done, err := cg.KillAll(); done {
			return err
		}
	}
	pids, err := cg.Pids()
	if err != nil && stopped {
		return nil // the cgroup is gone with the processes
	}
	if err != nil {
		return fmt.Errorf("list container processes: %w", err)
	}
	frozen := cg.Frozen()
	for _, pid := range pids {
		unix.Kill(pid, sig)
	}
	if frozen && sig == unix.SIGKILL {
		cg.SetFrozen(false)
	}
	return nil
}

// Delete removes a stopped (or, with force, any) container: its processes,
// cgroup and state, then runs poststop hooks.
func Delete(store state.Store, id string, force bool, warn func(string)) error {
	lock, err := store.Lock(id)
	if err != nil {
		if force && errors.Is(err, state.ErrNotExist) {
			// As runc: --force on a container that never finished
			// creating removes whatever is left and succeeds.
			store.Remove(id)
			return nil
		}
		return err
	}
	defer lock.Unlock()
	c, err := Load(store, id)
	if err != nil {
		// A state directory without readable state: remove what's there.
		if force {
			return store.Remove(id)
		}
		return err
	}
	return c.delete(force, warn)
}

// delete is Delete of a loaded container, its state locked.
func (c *Container) delete(force bool, warn func(string)) error {
	id, store := c.ID, c.store
	st := c.Status()
	if force || st == specs.StateStopped || st == specs.StateCreating || st == specs.StateCreated {
		// Host network devices go back while their namespace lives.
		c.returnNetDevices(st)
	}
	switch st {
	case specs.StateStopped, specs.StateCreating:
	case specs.StateCreated:
		if err := c.kill(); err != nil {
			return err
		}
	default:
		if !force {
			return fmt.Errorf("container %q is %s: stop it first or use --force", id, st)
		}
		if err := c.kill(); err != nil {
			return err
		}
	}
	if err := c.destroy(); err != nil {
		return err
	}
	if c.Resctrl != nil {
		resctrl.Remove(*c.Resctrl)
	}
	// Poststop hooks run after delete whenever the container was created,
	// started or not (runtime-spec); a failure is only a warning.
	if c.Spec != nil && c.Spec.Hooks != nil {
		if err := hooks.Run("poststop", c.Spec.Hooks.Poststop, c.specState(specs.StateStopped)); err != nil && warn != nil {
			warn(err.Error())
		}
	}
	// A `brig run --` sandbox's root directory goes with it.
	if sb, err := filepath.Abs(filepath.Join(store.Root, SandboxRootPrefix+id)); err == nil && c.Bundle == sb {
		os.RemoveAll(sb)
		for _, f := range SandboxFiles {
			os.Remove(sb + f)
		}
	}
	return store.Remove(id)
}

// kill SIGKILLs every process of the container and waits for init to die:
// 10 s at most, then it says what holds it (the container is kept, so a
// later delete can finish the job).
func (c *Container) kill() error {
	if c.sharesPIDNamespace() {
		c.signalAll(unix.SIGKILL, false)
	} else {
		c.signal(unix.SIGKILL)
		if cg, err := c.cgroup(); err == nil {
			if cg.Frozen() {
				cg.SetFrozen(false)
			}
		}
	}
	if !waitGone(c.Pid, c.PidStart, 10*time.Second) {
		return fmt.Errorf("container %q: its init (pid %d) is still running 10 s after SIGKILL%s; the container is kept: delete it again once that ends",
			c.ID, c.Pid, whatHolds(c.Pid))
	}
	return nil
}

// whatHolds says why a SIGKILLed process may live on: a frozen cgroup, or
// an uninterruptible sleep in the kernel.
func whatHolds(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 {
			continue
		}
		switch {
		case strings.Contains(f[1], "freezer"):
			if st, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup/freezer", f[2], "freezer.state")); strings.TrimSpace(string(st)) != "THAWED" && len(st) > 0 {
				return fmt.Sprintf(": it is in the frozen cgroup %s (freezer.state %s)", f[2], strings.TrimSpace(string(st)))
			}
		case f[0] == "0":
			for _, base := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
				if ev, _ := os.ReadFile(filepath.Join(base, f[2], "cgroup.events")); strings.Contains(string(ev), "frozen 1") {
					return fmt.Sprintf(": it is in the frozen cgroup %s", f[2])
				}
			}
		}
	}
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(status), "\n") {
		if st, ok := strings.CutPrefix(l, "State:"); ok {
			return fmt.Sprintf(": it is in state %s", strings.TrimSpace(st))
		}
	}
	return ""
}

func (c *Container) sharesPIDNamespace() bool {
	if c.Spec == nil || c.Spec.Linux == nil {
		return true
	}
	for _, ns := range c.Spec.Linux.Namespaces {
		if ns.Type == specs.PIDNamespace {
			return ns.Path != ""
		}
	}
	return true
}

// destroy removes the cgroup, killing stragglers.
func (c *Container) destroy() error {
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	if pids, _ := cg.Pids(); len(pids) > 0 {
		for _, p := range pids {
			unix.Kill(p, unix.SIGKILL)
		}
	}
	if err := destroyCgroup(cg); err != nil {
		return err
	}
	if c.Spec == nil || c.Spec.Linux == nil || c.Spec.Linux.CgroupsPath == "" {
		cgroup.RemoveDefaultParents(c.ID)
	}
	return nil
}

func destroyCgroup(cg *cgroup.Cgroup) error {
	var err error
	for i := 0; i < 50; i++ {
		if err = cg.Destroy(); err == nil {
			return nil
		}
		if pids, _ := cg.Pids(); len(pids) > 0 {
			for _, p := range pids {
				unix.Kill(p, unix.SIGKILL)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("remove cgroup: %w", err)
}

// Pause freezes the container.
func Pause(store state.Store, id string) error { return freeze(store, id, true) }

// Resume thaws it.
func Resume(store state.Store, id string) error { return freeze(store, id, false) }

func freeze(store state.Store, id string, frozen bool) error {
	lock, err := store.Lock(id)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	c, err := Load(store, id)
	if err != nil {
		return err
	}
	st := c.Status()
	if frozen && st != specs.StateRunning && st != specs.StateCreated {
		return fmt.Errorf("container %q is %s: only a running container can be paused", id, st)
	}
	if !frozen && st != StatePaused {
		return fmt.Errorf("container %q is %s, not paused", id, st)
	}
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	if err := cg.SetFrozen(frozen); err != nil {
		return fmt.Errorf("freezer: %w", err)
	}
	return nil
}

// Pids lists the host pids of the container's processes.
func Pids(store state.Store, id string) ([]int, error) {
	c, err := Load(store, id)
	if err != nil {
		return nil, err
	}
	if c.Status() == specs.StateStopped {
		return nil, errNotRunning(id)
	}
	cg, err := c.cgroup()
	if err != nil {
		return nil, err
	}
	return cg.Pids()
}

// sendSeccompListener hands the notify fd the init passed (files) with the
// container's state to the agent at listenerPath, as runc does: one
// message whose data is the JSON state and whose SCM_RIGHTS carries the
// fd.
func (c *Container) sendSeccompListener(pid int, files []*os.File, s *specs.Spec) error {
	sc := s.Linux.Seccomp
	if len(files) != 1 {
		return fmt.Errorf("seccomp notify: the init passed %d fds, want its listener", len(files))
	}
	nfd := int(files[0].Fd())
	st := specs.ContainerProcessState{
		Version: specs.Version, Fds: []string{specs.SeccompFdName}, Pid: pid,
		Metadata: sc.ListenerMetadata, State: *c.specState(specs.StateCreating),
	}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	conn, err := net.Dial("unix", sc.ListenerPath)
	if err != nil {
		return fmt.Errorf("linux.seccomp.listenerPath %s: %w", sc.ListenerPath, err)
	}
	defer conn.Close()
	uc := conn.(*net.UnixConn)
	if _, _, err := uc.WriteMsgUnix(data, unix.UnixRights(nfd), nil); err != nil {
		return fmt.Errorf("linux.seccomp.listenerPath %s: send: %w", sc.ListenerPath, err)
	}
	return nil
}

// SandboxRootPrefix names the root directories `brig run --` makes in the
// state root (".rootfs-" + container id).
const SandboxRootPrefix = ".rootfs-"

// SandboxFiles are the files a sandbox keeps beside its root directory
// (its name plus one of these), removed with it: --allow-net's /etc/hosts
// and /etc/resolv.conf, -d's output.
var SandboxFiles = []string{".hosts", ".resolv", ".log"}

// CollectSandboxes removes what `brig run --` containers left when their
// brig was killed: their process died with it (parent-death signal), so
// any such container that is stopped is deleted, with its root directory.
func CollectSandboxes(store state.Store, warn func(string)) {
	ents, err := os.ReadDir(store.Root)
	if err != nil {
		return
	}
	for _, e := range ents {
		id, ok := strings.CutPrefix(e.Name(), SandboxRootPrefix)
		if !ok {
			continue
		}
		for _, f := range SandboxFiles {
			id = strings.TrimSuffix(id, f)
		}
		c, err := Load(store, id)
		if err == nil && c.Status() != specs.StateStopped {
			continue // still running under a live brig
		}
		if err != nil {
			// No state yet: maybe another brig is creating it right now.
			if fi, serr := e.Info(); serr != nil || time.Since(fi.ModTime()) < time.Minute {
				continue
			}
		}
		Delete(store, id, true, warn)
		os.RemoveAll(filepath.Join(store.Root, SandboxRootPrefix+id))
		for _, f := range SandboxFiles {
			os.Remove(filepath.Join(store.Root, SandboxRootPrefix+id+f))
		}
	}
}

// returnNetDevices moves the host network devices the container was given
// back to the host: from the namespace it joined by path, or its own while
// its init lives; once that has ended, a physical device is back on the
// host under its container name and is renamed.
func (c *Container) returnNetDevices(st specs.ContainerState) {
	if len(c.NetDevices) == 0 {
		return
	}
	nsPath := ""
	if c.Spec != nil && c.Spec.Linux != nil {
		for _, ns := range c.Spec.Linux.Namespaces {
			if ns.Type == specs.NetworkNamespace && ns.Path != "" {
				nsPath = ns.Path
			}
		}
	}
	if nsPath == "" && st != specs.StateStopped {
		nsPath = fmt.Sprintf("/proc/%d/ns/net", c.Pid)
	}
	for _, m := range c.NetDevices {
		netdev.MoveOut(nsPath, m)
	}
}
