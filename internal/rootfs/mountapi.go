package rootfs

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// cloneTree makes a detached copy of the mount at src (recursive for rbind)
// that can be given attributes and then attached with attach. Working on a
// detached tree means a bind mount is never visible with the wrong flags.
func cloneTree(src *os.File, recursive bool) (int, error) {
	flags := unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC | unix.AT_EMPTY_PATH
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	fd, err := unix.OpenTree(int(src.Fd()), "", uint(flags))
	if err != nil {
		return -1, fmt.Errorf("open_tree %s: %w", src.Name(), err)
	}
	return fd, nil
}

// setAttr applies mount attributes to a (detached) tree.
func setAttr(tree int, set, clr uint64, recursive bool) error {
	if set == 0 && clr == 0 {
		return nil
	}
	flags := unix.AT_EMPTY_PATH
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	attr := unix.MountAttr{Attr_set: set, Attr_clr: clr}
	if set&unix.MOUNT_ATTR__ATIME != 0 || clr&unix.MOUNT_ATTR__ATIME != 0 {
		attr.Attr_clr |= unix.MOUNT_ATTR__ATIME
	}
	if err := unix.MountSetattr(tree, "", uint(flags), &attr); err != nil {
		return fmt.Errorf("mount_setattr: %w", err)
	}
	return nil
}

// attach moves a detached tree onto the target handle.
func attach(tree int, target *os.File) error {
	if err := unix.MoveMount(tree, "", int(target.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount onto %s: %w", target.Name(), err)
	}
	return nil
}

// bindFD bind-mounts src onto target, both open handles, applying attrs
// before the mount becomes visible.
func bindFD(src, target *os.File, recursive bool, set, clr uint64) error {
	tree, err := cloneTree(src, recursive)
	if err != nil {
		return err
	}
	defer unix.Close(tree)
	if err := setAttr(tree, set, clr, recursive); err != nil {
		return err
	}
	return attach(tree, target)
}

// procFD names an open handle as a path mount(2) can use.
func procFD(f *os.File) string { return fmt.Sprintf("/proc/self/fd/%d", f.Fd()) }
