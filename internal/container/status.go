// Package container is the lifecycle of a container: create, start, state,
// kill, delete, exec, pause, resume, update, ps and stats. It ties the layer
// packages together; it is the only package the CLI calls for containers.
package container

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"brig/internal/cgroup"
	"brig/internal/state"
)

// StatePaused is the status of a frozen container (runc's word; the
// runtime-spec has no paused state).
const StatePaused specs.ContainerState = "paused"

// Container is a container brig has state for.
type Container struct {
	store state.Store
	*state.State
}

// Load reads a container's state.
func Load(store state.Store, id string) (*Container, error) {
	st, err := store.Load(id)
	if err != nil {
		return nil, err
	}
	return &Container{store: store, State: st}, nil
}

// Status is what the runtime-spec's state operation reports.
func (c *Container) Status() specs.ContainerState {
	if c.Pid <= 0 {
		return specs.StateCreating
	}
	if !alive(c.Pid, c.PidStart) {
		return specs.StateStopped
	}
	if _, err := os.Stat(filepath.Join(c.store.Dir(c.ID), state.FifoName)); err == nil {
		return specs.StateCreated
	}
	if cg, err := c.cgroup(); err == nil {
		if cg.Frozen() {
			return StatePaused
		}
	}
	return specs.StateRunning
}

// OCIState is the state operation's output. It carries the runtime-spec
// fields plus those runc prints, which containerd reads.
type OCIState struct {
	specs.State
	Rootfs  string    `json:"rootfs"`
	Created time.Time `json:"created"`
	Owner   string    `json:"owner"`
}

// OCIState returns the container's state as `brig state` prints it.
func (c *Container) OCIState() *OCIState {
	st := c.Status()
	pid := c.Pid
	if st == specs.StateStopped {
		pid = 0
	}
	rootfs := ""
	if c.Spec != nil && c.Spec.Root != nil {
		rootfs = c.Spec.Root.Path
	}
	return &OCIState{
		State: specs.State{
			Version: specs.Version, ID: c.ID, Status: st, Pid: pid,
			Bundle: c.Bundle, Annotations: c.Annotations,
		},
		Rootfs: rootfs, Created: c.Created, Owner: c.Owner,
	}
}

// specState is the state hooks get on stdin.
func (c *Container) specState(status specs.ContainerState) *specs.State {
	return &specs.State{Version: specs.Version, ID: c.ID, Status: status, Pid: c.Pid, Bundle: c.Bundle, Annotations: c.Annotations}
}

func (c *Container) cgroup() (*cgroup.Cgroup, error) {
	var res *specs.LinuxResources
	path := ""
	if c.Spec != nil && c.Spec.Linux != nil {
		res = c.Spec.Linux.Resources
		path = c.Spec.Linux.CgroupsPath
	}
	// A copy: the manager deletes entries from its map as it removes them.
	return cgroup.New(c.ID, path, res, cgroup.Options{Systemd: c.Systemd, Rootless: c.Rootless}, maps.Clone(c.CgroupPaths))
}

// startTime reads field 22 of /proc/PID/stat; it tells a process apart from
// a later one that reuses its pid. A zombie counts as gone.
func startTime(pid int) (uint64, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return 0, false
	}
	t, err := strconv.ParseUint(f[19], 10, 64)
	return t, err == nil
}

func alive(pid int, start uint64) bool {
	t, ok := startTime(pid)
	return ok && (start == 0 || t == start)
}

// signal sends sig to the container's init through a pidfd, after checking
// the pid still names it.
func (c *Container) signal(sig unix.Signal) error {
	fd, err := unix.PidfdOpen(c.Pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return errNotRunning(c.ID)
		}
		return fmt.Errorf("pidfd_open: %w", err)
	}
	defer unix.Close(fd)
	if !alive(c.Pid, c.PidStart) {
		return errNotRunning(c.ID)
	}
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil {
		return fmt.Errorf("signal %d: %w", sig, err)
	}
	return nil
}

// errNotRunning says it as runc does: containerd's shim recognises
// "container not running" (a pod whose container ended just before it was
// stopped is then stopped and removed, not left behind).
func errNotRunning(id string) error { return fmt.Errorf("%s: container not running", id) }

// waitGone waits until pid has exited (or timeout).
func waitGone(pid int, start uint64, timeout time.Duration) bool {
	fd, err := unix.PidfdOpen(pid, 0)
	if err == nil {
		defer unix.Close(fd)
		if !alive(pid, start) {
			return true
		}
		deadline := time.Now().Add(timeout)
		for time.Now().Before(deadline) {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, _ := unix.Poll(fds, 100)
			if n > 0 || !alive(pid, start) {
				return true
			}
		}
		return !alive(pid, start)
	}
	return !alive(pid, start)
}

// CgroupV2Dir is the container's cgroup v2 directory (on a hybrid host, in
// the unified hierarchy), "" without one.
func (c *Container) CgroupV2Dir() string {
	_, v2 := cgroup.JoinDirs(c.CgroupPaths)
	return v2
}
