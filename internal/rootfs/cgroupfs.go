package rootfs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"brig/internal/cgroup/layout"
	"brig/internal/spec"
)

// mountCgroup gives the container its view of the cgroup filesystem. On
// cgroup v2 that is one cgroup2 mount. On v1 and hybrid hosts it is a tmpfs
// with one mount per hierarchy, as runc does: a fresh cgroup mount when the
// container has a cgroup namespace (its root is then the container's
// cgroup), else a bind of the container's own cgroup directory.
func mountCgroup(c *Config, root *os.File, m *specs.Mount, opts spec.MountOptions) error {
	flags := opts.Flags &^ unix.MS_REMOUNT
	hier, err := layout.Hierarchies()
	if err != nil {
		return err
	}
	target, err := openTarget(root, m.Destination, true)
	if err != nil {
		return err
	}
	defer target.Close()
	if layout.OnlyV2(hier) {
		return mountCgroupHierarchy(c, target, "cgroup2", "", "", flags)
	}
	if err := unix.Mount("tmpfs", procFD(target), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=755"); err != nil {
		return fmt.Errorf("mount tmpfs for cgroups: %w", err)
	}
	dir, err := reopenMounted(root, m.Destination)
	if err != nil {
		return err
	}
	defer dir.Close()
	for _, h := range hier {
		if !strings.HasPrefix(h.Mountpoint, "/sys/fs/cgroup/") {
			continue
		}
		name := filepath.Base(h.Mountpoint)
		if err := unix.Mkdirat(int(dir.Fd()), name, 0o755); err != nil && err != unix.EEXIST {
			return fmt.Errorf("mkdir cgroup %s: %w", name, err)
		}
		fd, err := unix.Openat(int(dir.Fd()), name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		sub := os.NewFile(uintptr(fd), name)
		key, fstype := name, "cgroup"
		if h.V2 {
			key, fstype = "", "cgroup2"
		}
		err = mountCgroupHierarchy(c, sub, fstype, h.Options, key, flags)
		sub.Close()
		if err != nil {
			return fmt.Errorf("cgroup %s: %w", name, err)
		}
	}
	if flags&unix.MS_RDONLY != 0 {
		if err := unix.Mount("", procFD(dir), "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return fmt.Errorf("remount cgroup tmpfs read-only: %w", err)
		}
	}
	return nil
}

func mountCgroupHierarchy(c *Config, target *os.File, fstype, data, key string, flags uintptr) error {
	if c.CgroupNS {
		if err := unix.Mount("cgroup", procFD(target), fstype, flags|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, data); err != nil {
			return fmt.Errorf("mount %s: %w", fstype, err)
		}
		return nil
	}
	// No cgroup namespace: show only the container's cgroup.
	hostPath, ok := c.CgroupPaths[key]
	if !ok || hostPath == "" {
		if key == "" && fstype == "cgroup2" {
			hostPath = "/sys/fs/cgroup/unified"
			if _, ok := c.CgroupPaths[""]; ok {
				hostPath = c.CgroupPaths[""]
			}
		}
	}
	if hostPath == "" {
		return nil
	}
	src, err := os.OpenFile(hostPath, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil // controller not used by this container
	}
	defer src.Close()
	return bindFD(src, target, false, spec.MountAttrs(flags|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC), 0)
}
