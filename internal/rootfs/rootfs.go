// Package rootfs builds a container's filesystem view inside its new mount
// namespace: propagation, the bind of the root, every mounts[] entry (targets
// resolved inside the rootfs, never through a symlink out of it), /dev,
// pivot_root, then read-only and masked paths and a read-only root.
package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"brig/internal/spec"
)

// Config is what the rootfs layer needs to know.
type Config struct {
	Root        string       // absolute path of the rootfs
	Mounts      []spec.Mount // parsed by the plan
	Propagation string       // linux.rootfsPropagation
	Devices     []specs.LinuxDevice
	MountLabel  string
	// InUserNS: devices are bind mounts from the host, not mknod.
	InUserNS bool
	// CgroupNS: the container has its own cgroup namespace.
	CgroupNS bool
	// CgroupPaths are the container's cgroups by controller ("" for v2).
	CgroupPaths map[string]string
	// Trees are detached clones of bind-mount sources the brig command made
	// for mounts[i] (id-mapped where asked, see internal/idmap), attached
	// instead of a clone of the source made here: a container root mapped
	// to an unprivileged id may not reach the source itself.
	Trees map[int]*os.File
	// Cwd is process.cwd: made (0755, root's) where the image lacks it,
	// as runc and crun make it, before the root can be read-only.
	Cwd string
}

// Prepare does everything before pivot_root: it runs in the container's
// mount namespace, while the host's filesystem is still reachable.
func Prepare(c *Config) error {
	prop := uintptr(unix.MS_SLAVE | unix.MS_REC)
	if c.Propagation != "" {
		p := spec.ParseMountOptions([]string{c.Propagation}).Propagation
		if len(p) == 1 {
			prop = p[0]
		}
	}
	if err := unix.Mount("", "/", "", prop, ""); err != nil {
		return fmt.Errorf("set / propagation: %w", err)
	}
	if err := makeParentPrivate(c.Root); err != nil {
		return err
	}
	if err := unix.Mount(c.Root, c.Root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind rootfs %s: %w", c.Root, err)
	}
	root, err := os.OpenFile(c.Root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs: %w", err)
	}
	defer root.Close()

	devBound := false
	for i := range c.Mounts {
		m := &c.Mounts[i]
		if err := mountEntry(c, root, m, c.Trees[i]); err != nil {
			return fmt.Errorf("mounts[%d] (%s on %s): %w", i, m.Type, m.Destination, err)
		}
		if filepath.Clean(m.Destination) == "/dev" && m.Bind() {
			devBound = true
		}
	}
	if !devBound {
		if err := createDevices(c, root); err != nil {
			return err
		}
	}
	if err := makeCwd(root, c.Cwd); err != nil {
		return err
	}
	return setupDevSymlinks(root)
}

// makeCwd makes the working directory where it is missing (and only
// then: a cwd that is there but can't be entered is the init's error).
func makeCwd(root *os.File, cwd string) error {
	if cwd == "" {
		return nil
	}
	h, err := openInRoot(root, filepath.Clean("/"+cwd))
	if err == nil {
		h.Close()
		return nil
	}
	if !errors.Is(err, unix.ENOENT) {
		return nil
	}
	if h, err = mkdirAllInRoot(root, filepath.Clean("/"+cwd), 0o755); err != nil {
		return fmt.Errorf("process.cwd %q: can't be made: %w", cwd, err)
	}
	h.Close()
	return nil
}

// makeParentPrivate makes the mount the rootfs sits on private, because
// pivot_root refuses a shared parent.
func makeParentPrivate(root string) error {
	mp, err := mountPointOf(root)
	if err != nil {
		return err
	}
	if err := unix.Mount("", mp, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make %s private: %w", mp, err)
	}
	return nil
}

// mountPointOf finds the mount point that contains path.
func mountPointOf(path string) (string, error) {
	p := path
	for {
		var st, parent unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			return "", fmt.Errorf("stat %s: %w", p, err)
		}
		if p == "/" {
			return "/", nil
		}
		dir := filepath.Dir(p)
		if err := unix.Stat(dir, &parent); err != nil {
			return "", fmt.Errorf("stat %s: %w", dir, err)
		}
		if st.Dev != parent.Dev || st.Ino == parent.Ino {
			return p, nil
		}
		// Same device: might still be a bind mount; check mountinfo.
		if isMountPoint(p) {
			return p, nil
		}
		p = dir
	}
}

func isMountPoint(p string) bool {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, p, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, &st); err != nil {
		return false
	}
	return st.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0
}

// openTarget creates dest inside root (a directory, or a file when the
// source is not a directory) and returns an O_PATH handle to it, resolved
// with every symlink kept inside root.
func openTarget(root *os.File, dest string, dir bool) (*os.File, error) {
	dest = filepath.Clean("/" + dest)
	if dir {
		h, err := mkdirAllInRoot(root, dest, 0o755)
		if err != nil {
			return nil, fmt.Errorf("create mount point %s: %w", dest, err)
		}
		return h, nil
	}
	parent, err := mkdirAllInRoot(root, filepath.Dir(dest), 0o755)
	if err != nil {
		return nil, fmt.Errorf("create mount point %s: %w", dest, err)
	}
	defer parent.Close()
	name := filepath.Base(dest)
	fd, err := unix.Openat(int(parent.Fd()), name, unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_RDONLY, 0o644)
	if err == nil {
		unix.Close(fd)
	} else if !errors.Is(err, unix.EEXIST) && !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.ELOOP) && !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.ETXTBSY) {
		return nil, fmt.Errorf("create mount point %s: %w", dest, err)
	}
	h, err := openInRoot(root, dest)
	if err != nil {
		return nil, fmt.Errorf("open mount point %s: %w", dest, err)
	}
	return h, nil
}

func mountEntry(c *Config, root *os.File, pm *spec.Mount, tree *os.File) error {
	m, opts := &pm.Mount, pm.Opts
	data := opts.Data
	// The mount label goes in as context= where the filesystem takes it
	// (tmpfs, devpts...); mqueue doesn't, so its root is labelled after
	// mounting, as runc does.
	if c.MountLabel != "" && m.Type != "proc" && m.Type != "sysfs" && m.Type != "cgroup" && m.Type != "cgroup2" && m.Type != "mqueue" && !pm.Bind() {
		data = joinData(data, fmt.Sprintf("context=%q", c.MountLabel))
	}
	switch {
	case pm.Bind():
		return bindMount(root, m, opts, tree)
	case m.Type == "cgroup":
		return mountCgroup(c, root, m, opts)
	}
	target, err := openTarget(root, m.Destination, true)
	if err != nil {
		return err
	}
	defer target.Close()
	if err := checkTarget(root, target, m); err != nil {
		return err
	}
	flags := opts.Flags &^ unix.MS_REMOUNT
	if m.Type == "proc" || m.Type == "sysfs" {
		if err := checkProcTarget(target, m.Destination); err != nil {
			return err
		}
	}
	src := m.Source
	if src == "" {
		src = m.Type
	}
	var under *os.File // tmpcopyup: what the tmpfs starts with
	if opts.TmpCopyUp && m.Type == "tmpfs" {
		if under, err = openUnder(target); err != nil {
			return err
		}
		defer under.Close()
		flags &^= unix.MS_RDONLY // filled first, made read-only after
	}
	if err := unix.Mount(src, procFD(target), m.Type, flags, data); err != nil {
		if m.Type == "sysfs" && errors.Is(err, unix.EPERM) && c.InUserNS {
			// sysfs needs a network namespace owned by the user
			// namespace; bind the host's read-only instead.
			host, herr := os.OpenFile("/sys", unix.O_PATH|unix.O_CLOEXEC, 0)
			if herr != nil {
				return herr
			}
			defer host.Close()
			return bindFD(host, target, true, unix.MOUNT_ATTR_RDONLY|spec.MountAttrs(flags), 0)
		}
		return fmt.Errorf("mount: %w", err)
	}
	if under != nil {
		if err := fillTmpfs(root, m.Destination, under, opts.Flags&unix.MS_RDONLY != 0); err != nil {
			return err
		}
	}
	if m.Type == "mqueue" && c.MountLabel != "" {
		mnt, err := reopenMounted(root, m.Destination)
		if err != nil {
			return err
		}
		defer mnt.Close()
		if err := unix.Setxattr(procFD(mnt), "security.selinux", []byte(c.MountLabel), 0); err != nil {
			return fmt.Errorf("label: %w", err)
		}
	}
	return applyPropagation(root, m, opts)
}

// fillTmpfs copies what was under a new tmpfs into it (tmpcopyup), then
// makes it read-only if it is to be.
func fillTmpfs(root *os.File, dest string, under *os.File, ro bool) error {
	mnt, err := reopenMounted(root, dest)
	if err != nil {
		return err
	}
	defer mnt.Close()
	dir, err := openUnder(mnt)
	if err != nil {
		return err
	}
	defer dir.Close()
	if err := copyUp(under, dir); err != nil {
		return err
	}
	if ro {
		return setAttr(int(mnt.Fd()), unix.MOUNT_ATTR_RDONLY, 0, false)
	}
	return nil
}

// procFiles are the files of /proc a mount may cover: lxcfs's, and
// CRIU's ns_last_pid, as runc allows them.
var procFiles = map[string]bool{"/proc/cpuinfo": true, "/proc/diskstats": true, "/proc/meminfo": true, "/proc/stat": true,
	"/proc/swaps": true, "/proc/uptime": true, "/proc/loadavg": true, "/proc/slabinfo": true, "/proc/net/dev": true,
	"/proc/sys/kernel/ns_last_pid": true}

// checkTarget refuses a mount whose target, resolved inside the root,
// went through a symbolic link into /proc, /sys or /dev (an image's
// `/data -> /proc/sys/...` would have a mount land on the kernel's
// interfaces: the 2025 runc CVEs' class), and any mount on procfs but
// the lxcfs-style files.
func checkTarget(root, target *os.File, m *specs.Mount) error {
	dest := filepath.Clean("/" + m.Destination)
	rootPath, err1 := os.Readlink(procFD(root))
	at, err2 := os.Readlink(procFD(target))
	if err1 != nil || err2 != nil {
		return fmt.Errorf("mount on %s: where the target lies: %v %v", dest, err1, err2)
	}
	rel := "/" + strings.TrimPrefix(strings.TrimPrefix(at, rootPath), "/")
	if rootPath == "/" {
		rel = at
	}
	under := func(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }
	for _, kernel := range []string{"/proc", "/sys", "/dev"} {
		if rel != dest && under(rel, kernel) {
			return fmt.Errorf("mount on %s: the destination resolves to %s through a symbolic link, inside %s: refused", dest, rel, kernel)
		}
	}
	var fs unix.Statfs_t
	if err := unix.Fstatfs(int(target.Fd()), &fs); err != nil {
		return fmt.Errorf("mount on %s: %w", dest, err)
	}
	if fs.Type == unix.PROC_SUPER_MAGIC && !procFiles[dest] {
		return fmt.Errorf("mount on %s: the target is on procfs; only a proc mount at /proc and binds over %s may be there", dest, strings.Join(sortedKeys(procFiles), ", "))
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func joinData(a, b string) string {
	if a == "" {
		return b
	}
	return a + "," + b
}

// checkProcTarget refuses to mount procfs or sysfs on a symlink or on a
// path that isn't where the spec says (a container could have replaced a
// directory with a link to redirect later writes).
func checkProcTarget(target *os.File, dest string) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(target.Fd()), &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("%s is not a directory", dest)
	}
	return nil
}

func bindMount(root *os.File, m *specs.Mount, opts spec.MountOptions, prepared *os.File) error {
	src := prepared
	if src == nil {
		var err error
		if src, err = os.OpenFile(m.Source, unix.O_PATH|unix.O_CLOEXEC, 0); err != nil {
			return fmt.Errorf("bind source: %w", err)
		}
	}
	defer src.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(src.Fd()), &st); err != nil {
		return err
	}
	target, err := openTarget(root, m.Destination, st.Mode&unix.S_IFMT == unix.S_IFDIR)
	if err != nil {
		return err
	}
	defer target.Close()
	if err := checkTarget(root, target, m); err != nil {
		return err
	}
	// Flags on a bind mount apply to its top; recursive attributes (rro...)
	// to every mount below it too.
	set := spec.MountAttrs(opts.Flags)
	clr := spec.MountAttrs(opts.ClearFlags)
	tree := int(src.Fd())
	if prepared == nil {
		if tree, err = cloneTree(src, opts.Recursive); err != nil {
			return err
		}
		defer unix.Close(tree)
	}
	if err := setAttr(tree, set, clr, false); err != nil {
		return err
	}
	if err := setAttr(tree, opts.AttrSet, opts.AttrClr, true); err != nil {
		return err
	}
	if err := attach(tree, target); err != nil {
		return err
	}
	return applyPropagation(root, m, opts)
}

func applyPropagation(root *os.File, m *specs.Mount, opts spec.MountOptions) error {
	if len(opts.Propagation) == 0 && (opts.Bind || (opts.AttrSet == 0 && opts.AttrClr == 0)) {
		return nil
	}
	mnt, err := reopenMounted(root, m.Destination)
	if err != nil {
		return err
	}
	defer mnt.Close()
	for _, p := range opts.Propagation {
		if err := unix.Mount("", procFD(mnt), "", p, ""); err != nil {
			return fmt.Errorf("set propagation: %w", err)
		}
	}
	if !opts.Bind && (opts.AttrSet != 0 || opts.AttrClr != 0) {
		return setAttr(int(mnt.Fd()), opts.AttrSet, opts.AttrClr, true)
	}
	return nil
}

// reopenMounted resolves dest again inside root. A handle opened before a
// mount points at the directory underneath it; this one is the mount's
// root.
func reopenMounted(root *os.File, dest string) (*os.File, error) {
	h, err := openInRoot(root, filepath.Clean("/"+dest))
	if err != nil {
		return nil, fmt.Errorf("reopen %s after mounting: %w", dest, err)
	}
	return h, nil
}

// PivotRoot makes root the container's / and detaches the host's.
func PivotRoot(root string) error {
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open old root: %w", err)
	}
	defer unix.Close(oldroot)
	newroot, err := unix.Open(root, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open new root: %w", err)
	}
	defer unix.Close(newroot)
	if err := unix.Fchdir(newroot); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Fchdir(oldroot); err != nil {
		return err
	}
	// The old root is stacked on top of the new one: make sure unmounting
	// it doesn't propagate to the host, then detach it.
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root slave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	return unix.Chdir("/")
}

// MoveRoot is --no-pivot: move the rootfs over / and chroot into it, for
// roots pivot_root can't handle (an initramfs).
func MoveRoot(root string) error {
	if err := unix.Chdir(root); err != nil {
		return err
	}
	if err := unix.Mount(root, "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move rootfs to /: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	return unix.Chdir("/")
}

// SetRootPropagation applies linux.rootfsPropagation to the new root after
// pivot_root: before it, the rootfs's parent had to be private, and a bind
// of a private mount is private too.
func SetRootPropagation(prop string) error {
	if prop == "" {
		return nil
	}
	p := spec.ParseMountOptions([]string{prop}).Propagation
	if len(p) != 1 {
		return fmt.Errorf("linux.rootfsPropagation %q: unknown", prop)
	}
	if err := unix.Mount("", "/", "", p[0], ""); err != nil {
		return fmt.Errorf("linux.rootfsPropagation %s: %w", prop, err)
	}
	return nil
}

// ReadonlyRoot remounts / read-only, keeping the flags the kernel locked.
func ReadonlyRoot() error {
	var sfs unix.Statfs_t
	if err := unix.Statfs("/", &sfs); err != nil {
		return err
	}
	flags := uintptr(unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY) | lockedFlags(sfs.Flags)
	if err := unix.Mount("", "/", "", flags, ""); err != nil {
		return fmt.Errorf("remount / read-only: %w", err)
	}
	return nil
}

func lockedFlags(f int64) uintptr {
	var out uintptr
	for _, x := range []struct {
		st int64
		ms uintptr
	}{
		{unix.ST_NOSUID, unix.MS_NOSUID}, {unix.ST_NODEV, unix.MS_NODEV}, {unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_NOATIME, unix.MS_NOATIME}, {unix.ST_NODIRATIME, unix.MS_NODIRATIME}, {unix.ST_RELATIME, unix.MS_RELATIME},
	} {
		if f&x.st != 0 {
			out |= x.ms
		}
	}
	return out
}

// ReadonlyPaths bind-mounts each path onto itself read-only. Missing paths
// are skipped.
func ReadonlyPaths(paths []string) error {
	root, err := os.OpenFile("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, p := range paths {
		h, err := openInRoot(root, p)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return fmt.Errorf("readonlyPaths %s: %w", p, err)
		}
		err = bindFD(h, h, true, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC, 0)
		h.Close()
		if err != nil {
			return fmt.Errorf("readonlyPaths %s: %w", p, err)
		}
	}
	return nil
}

// MaskPaths hides each path: files get /dev/null bound over them, and
// directories an empty read-only tmpfs. The /dev/null used is checked to be
// the real null device, and targets are opened without following symlinks
// out of the root, so a container can't redirect a mask (CVE-2025-31133).
func MaskPaths(paths []string, mountLabel string) error {
	if len(paths) == 0 {
		return nil
	}
	root, err := os.OpenFile("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer root.Close()
	null, err := openDevNull()
	if err != nil {
		return err
	}
	defer null.Close()
	for _, p := range paths {
		h, err := openInRoot(root, p)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return fmt.Errorf("maskedPaths %s: %w", p, err)
		}
		err = maskOne(h, null, mountLabel)
		h.Close()
		if err != nil {
			return fmt.Errorf("maskedPaths %s: %w", p, err)
		}
	}
	return nil
}

func maskOne(h, null *os.File, mountLabel string) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		data := "size=0,mode=0555"
		if mountLabel != "" {
			data += fmt.Sprintf(",context=%q", mountLabel)
		}
		return unix.Mount("tmpfs", procFD(h), "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, data)
	}
	return bindFD(null, h, false, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC, 0)
}

// openDevNull opens the container's /dev/null and checks it is the null
// character device (1:3), not something put there to be bound elsewhere.
func openDevNull() (*os.File, error) {
	f, err := os.OpenFile("/dev/null", unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/null: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		f.Close()
		return nil, errors.New("/dev/null is not the null device: refusing to use it for masking")
	}
	return f, nil
}
