// Package idmap makes ID-mapped mounts (mount_setattr MOUNT_ATTR_IDMAP)
// for mounts[] entries with uidMappings/gidMappings or the idmap and
// ridmap options. Id-mapping a mount of a host filesystem needs
// CAP_SYS_ADMIN in the user namespace that owns the filesystem — the
// host's — so the brig command makes the detached, id-mapped trees before
// the container's init starts, and the init only attaches them.
//
// None of the listed libraries make id-mapped mounts: runc and crun each
// have their own; this is the few system calls it takes.
package idmap

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// HolderArg is the hidden command a user-namespace holder runs: it waits
// for its stdin to close.
const HolderArg = "userns-holder"

// HolderMain is the holder's whole life.
func HolderMain() {
	io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

var (
	nsMu    sync.Mutex
	nsCache = map[string]*os.File{}
)

// UserNS returns a user namespace with the given mappings (what a mount is
// mapped through), made by a short-lived child: the kernel takes maps only
// for a namespace a process is in. The child is gone when UserNS returns;
// the namespace is kept (one per mapping, for this brig's life: a probe and
// the mounts after it share one child), so callers don't close it.
func UserNS(uids, gids []specs.LinuxIDMapping) (*os.File, error) {
	nsMu.Lock()
	defer nsMu.Unlock()
	key := fmt.Sprint(uids, gids)
	if ns := nsCache[key]; ns != nil {
		return ns, nil
	}
	ns, err := newUserNS(uids, gids)
	if err != nil {
		return nil, err
	}
	nsCache[key] = ns
	return ns, nil
}

func newUserNS(uids, gids []specs.LinuxIDMapping) (*os.File, error) {
	cmd := exec.Command("/proc/self/exe", HolderArg)
	cmd.Env = []string{}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER, Pdeathsig: syscall.SIGKILL,
		UidMappings: sysMaps(uids), GidMappings: sysMaps(gids), GidMappingsEnableSetgroups: true}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil { // returns once the maps are written
		return nil, fmt.Errorf("user namespace for an id-mapped mount: %w", err)
	}
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid))
	in.Close()
	cmd.Wait()
	if err != nil {
		return nil, fmt.Errorf("user namespace for an id-mapped mount: %w", err)
	}
	return ns, nil
}

func sysMaps(ms []specs.LinuxIDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(ms))
	for i, m := range ms {
		out[i] = syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)}
	}
	return out
}

// Tree clones the mount at src as a detached tree (with its submounts when
// recursive) and id-maps it through userns: the top mount only, or every
// mount of the tree when recursiveMap (ridmap). An on-disk id equal to a
// mapping's containerID is seen as its hostID.
func Tree(src string, userns *os.File, recursive, recursiveMap bool) (*os.File, error) {
	t, err := Clone(src, recursive)
	if err != nil {
		return nil, err
	}
	fd := int(t.Fd())
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(userns.Fd())}
	at := unix.AT_EMPTY_PATH
	if recursiveMap {
		at |= unix.AT_RECURSIVE
	}
	if err := unix.MountSetattr(fd, "", uint(at), &attr); err != nil {
		t.Close()
		return nil, fmt.Errorf("id-mapping %s: %w (the filesystem, or a mount under it, can't be id-mapped)", src, err)
	}
	return t, nil
}

// Clone makes a detached copy of the mount at src (with its submounts when
// recursive), as a bind mount of it would be.
func Clone(src string, recursive bool) (*os.File, error) {
	flags := unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, uint(flags))
	if err != nil {
		return nil, fmt.Errorf("bind source: open_tree %s: %w", src, err)
	}
	return os.NewFile(uintptr(fd), src), nil
}

// Wanted says whether a mount is id-mapped, and through which mappings:
// its own, or else the container's.
func Wanted(m specs.Mount, l *specs.Linux) (uids, gids []specs.LinuxIDMapping, recursive, ok bool) {
	idmap, ridmap := false, false
	for _, o := range m.Options {
		idmap = idmap || o == "idmap"
		ridmap = ridmap || o == "ridmap"
	}
	if !idmap && !ridmap && len(m.UIDMappings) == 0 && len(m.GIDMappings) == 0 {
		return nil, nil, false, false
	}
	uids, gids = m.UIDMappings, m.GIDMappings
	if len(uids) == 0 && len(gids) == 0 && l != nil {
		uids, gids = l.UIDMappings, l.GIDMappings
	}
	return uids, gids, ridmap, true
}

// Probe says whether path, and every mount under it, can be id-mapped
// here (as root).
func Probe(path string, uids, gids []specs.LinuxIDMapping) error {
	ns, err := UserNS(uids, gids)
	if err != nil {
		return err
	}
	t, err := Tree(path, ns, true, true)
	if err != nil {
		return err
	}
	return t.Close()
}
