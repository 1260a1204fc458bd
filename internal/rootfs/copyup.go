package rootfs

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// tmpfs's tmpcopyup (an extension runc, crun and Podman share): the new
// tmpfs starts with a copy of what the directory under it held, so an
// image's /etc or /var/cache stays as the image made it while writes go
// to memory. The directory underneath is read through a handle opened
// before the mount; nothing is resolved by path, so a link in the image
// can't point the copy outside the rootfs.

// openUnder opens the directory a mount is about to cover, for reading.
func openUnder(target *os.File) (*os.File, error) {
	fd, err := unix.Openat(int(target.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("tmpcopyup: open the directory underneath: %w", err)
	}
	return os.NewFile(uintptr(fd), target.Name()), nil
}

// copyUp copies the contents of directory src into directory dst: files,
// directories, links, fifos and (where permitted) devices, with their
// modes, owners and times. Extended attributes are not copied: the new
// mount's label is the container's.
func copyUp(src, dst *os.File) error {
	names, err := src.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("tmpcopyup: read %s: %w", src.Name(), err)
	}
	s, d := int(src.Fd()), int(dst.Fd())
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(s, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("tmpcopyup: %s/%s: %w", src.Name(), name, err)
		}
		if err := copyEntry(src, dst, name, &st); err != nil {
			return fmt.Errorf("tmpcopyup: %s/%s: %w", src.Name(), name, err)
		}
		if err := unix.Fchownat(d, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("tmpcopyup: chown %s: %w", name, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			// After chown, which clears set-id bits.
			if err := unix.Fchmodat(d, name, st.Mode&0o7777, 0); err != nil {
				return fmt.Errorf("tmpcopyup: chmod %s: %w", name, err)
			}
		}
		ts := []unix.Timespec{st.Atim, st.Mtim}
		if err := unix.UtimesNanoAt(d, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("tmpcopyup: times of %s: %w", name, err)
		}
	}
	return nil
}

func copyEntry(src, dst *os.File, name string, st *unix.Stat_t) error {
	s, d := int(src.Fd()), int(dst.Fd())
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := unix.Mkdirat(d, name, 0o700); err != nil {
			return err
		}
		sub, err := openDir(s, name)
		if err != nil {
			return err
		}
		defer sub.Close()
		dsub, err := openDir(d, name)
		if err != nil {
			return err
		}
		defer dsub.Close()
		return copyUp(sub, dsub)
	case unix.S_IFREG:
		in, err := unix.Openat(s, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		inf := os.NewFile(uintptr(in), name)
		defer inf.Close()
		out, err := unix.Openat(d, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		outf := os.NewFile(uintptr(out), name)
		defer outf.Close()
		_, err = io.Copy(outf, inf)
		return err
	case unix.S_IFLNK:
		target, err := readlinkat(s, name)
		if err != nil {
			return err
		}
		return unix.Symlinkat(target, d, name)
	default: // fifos, sockets, devices
		err := unix.Mknodat(d, name, st.Mode, int(st.Rdev))
		if errors.Is(err, unix.EPERM) {
			return nil // a device node a user namespace can't make
		}
		return err
	}
}

func openDir(dirfd int, name string) (*os.File, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

func readlinkat(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}
