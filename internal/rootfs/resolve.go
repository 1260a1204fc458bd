package rootfs

import (
	"errors"
	"os"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// openInRoot returns an O_PATH handle to path inside root, every symlink
// resolved inside root: openat2 with RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS,
// retried when the kernel reports a concurrent rename or mount (EAGAIN,
// EXDEV) — the lookup pathrs-lite makes. pathrs-lite's OpenatInRoot then
// reads the handle's path back through its private procfs, only to name
// the *os.File; that is four more system calls for each of the init's
// dozens of lookups, about a tenth of the init's time under emulation.
// Where openat2 is missing or refused, pathrs-lite does the whole lookup
// (its fallback walks the path itself).
func openInRoot(root *os.File, path string) (*os.File, error) {
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	for tries := 0; ; tries++ {
		fd, err := unix.Openat2(int(root.Fd()), path, &how)
		switch {
		case err == nil:
			return os.NewFile(uintptr(fd), path), nil
		case (errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EXDEV)) && tries < 128:
			continue
		case errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM):
			return pathrs.OpenatInRoot(root, path)
		default:
			return nil, &os.PathError{Op: "openat2", Path: path, Err: err}
		}
	}
}

// mkdirAllInRoot returns an O_PATH handle to the directory path inside
// root, creating what is missing (pathrs-lite's MkdirAllHandle, with its
// checks); an existing directory, the usual case, is only looked up.
func mkdirAllInRoot(root *os.File, path string, mode os.FileMode) (*os.File, error) {
	if h, err := openInRoot(root, path); err == nil {
		var st unix.Stat_t
		if unix.Fstat(int(h.Fd()), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return h, nil
		}
		h.Close()
	}
	return pathrs.MkdirAllHandle(root, path, mode)
}
