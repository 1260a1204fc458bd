package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"brig/internal/spec"
)

func createDevices(c *Config, root *os.File) error {
	devs := spec.Devices(c.Devices)
	for _, d := range devs {
		if err := createDevice(c, root, d); err != nil {
			return fmt.Errorf("linux.devices %s: %w", d.Path, err)
		}
	}
	return nil
}

func createDevice(c *Config, root *os.File, d specs.LinuxDevice) error {
	dest := filepath.Clean("/" + d.Path)
	parent, err := mkdirAllInRoot(root, filepath.Dir(dest), 0o755)
	if err != nil {
		return err
	}
	defer parent.Close()
	name := filepath.Base(dest)
	if c.InUserNS {
		// mknod is not allowed in a user namespace: bind the host's node.
		return bindHostDevice(parent, name, d)
	}
	typ, perm, err := spec.DeviceMode(d)
	if err != nil {
		return err
	}
	_ = unix.Unlinkat(int(parent.Fd()), name, 0)
	if err := unix.Mknodat(int(parent.Fd()), name, typ|perm, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))); err != nil {
		return fmt.Errorf("mknod: %w", err)
	}
	// mknod is subject to the umask; set the mode exactly.
	if err := fchmodatNoFollow(parent, name, perm); err != nil {
		return err
	}
	uid, gid := 0, 0
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	if err := unix.Fchownat(int(parent.Fd()), name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	return nil
}

func fchmodatNoFollow(parent *os.File, name string, perm uint32) error {
	fd, err := unix.Openat(int(parent.Fd()), name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Chmod(fmt.Sprintf("/proc/self/fd/%d", fd), perm); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	return nil
}

func bindHostDevice(parent *os.File, name string, d specs.LinuxDevice) error {
	src, err := os.OpenFile(d.Path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("host device: %w", err)
	}
	defer src.Close()
	fd, err := unix.Openat(int(parent.Fd()), name, unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_RDONLY, 0o644)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("create mount point: %w", err)
	}
	if fd >= 0 {
		unix.Close(fd)
	}
	tfd, err := unix.Openat(int(parent.Fd()), name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	target := os.NewFile(uintptr(tfd), d.Path)
	defer target.Close()
	return bindFD(src, target, false, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC, 0)
}

// setupDevSymlinks adds /dev/fd, /dev/std{in,out,err}, /dev/core and the
// /dev/ptmx link to the devpts instance.
func setupDevSymlinks(root *os.File) error {
	dev, err := openInRoot(root, "/dev")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	defer dev.Close()
	links := [][2]string{
		{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"}, {"/proc/kcore", "core"},
	}
	for _, l := range links {
		if l[1] == "core" {
			// As runc: only where the kernel has /proc/kcore.
			if _, err := os.Stat("/proc/kcore"); err != nil {
				continue
			}
		}
		if err := unix.Symlinkat(l[0], int(dev.Fd()), l[1]); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("symlink /dev/%s: %w", l[1], err)
		}
	}
	// /dev/ptmx must be the devpts instance's ptmx if one is mounted.
	var st unix.Stat_t
	if unix.Fstatat(int(dev.Fd()), "pts/ptmx", &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
		_ = unix.Unlinkat(int(dev.Fd()), "ptmx", 0)
		if err := unix.Symlinkat("pts/ptmx", int(dev.Fd()), "ptmx"); err != nil {
			return fmt.Errorf("symlink /dev/ptmx: %w", err)
		}
	}
	return nil
}
