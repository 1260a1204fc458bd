// create.c: the C init's steps for a new container (internal/initprog's
// create ops): mounts with every target resolved inside the rootfs
// (openat2 RESOLVE_IN_ROOT, never a symlink out of it), bind mounts as
// detached trees that get their attributes before they are attached,
// /dev, pivot_root, sysctls through a checked procfs, read-only and
// masked paths. Each function is what internal/rootfs does in Go, step
// for step; the order is the program's.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <net/if.h>
#include <unistd.h>
#include <linux/magic.h>
#include <linux/openat2.h>

#include "program.h"

#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#define MOVE_MOUNT_T_EMPTY_PATH 0x00000040
#endif
#ifndef MOUNT_ATTR__ATIME
#define MOUNT_ATTR__ATIME 0x00000070
#endif
#ifndef STATX_ATTR_MOUNT_ROOT
#define STATX_ATTR_MOUNT_ROOT 0x00002000
#endif
#ifndef STATX_MNT_ID
#define STATX_MNT_ID 0x00001000U
#endif

struct brig_mount_attr {
	uint64_t attr_set, attr_clr, propagation, userns_fd;
};

// copy_path copies a path into a buffer, refusing one that doesn't fit.
static void copy_path(char *dst, size_t size, const char *src, const char *what)
{
	int n = snprintf(dst, size, "%s", src);
	if (n < 0 || (size_t)n >= size) {
		errno = ENAMETOOLONG;
		brig_fail(ENAMETOOLONG, "%s: %.64s...", what, src);
	}
}

static char procfd_buf[4][64];
static int procfd_next;

// procfd names an open handle as a path mount(2) can take.
static const char *procfd(int fd)
{
	char *b = procfd_buf[procfd_next++ % 4];
	snprintf(b, 64, "/proc/self/fd/%d", fd);
	return b;
}

int brig_open_in_root(int root, const char *path)
{
	struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
	for (int tries = 0;; tries++) {
		int fd = (int)syscall(SYS_openat2, root, path, &how, sizeof(how));
		if (fd >= 0)
			return fd;
		if ((errno == EAGAIN || errno == EXDEV) && tries < 128)
			continue;
		return -1;
	}
}

static int is_dir(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
}

// mkdir_all returns a handle on the directory path inside root, making
// what is missing (0755), each component looked up inside root again.
int brig_mkdir_all(int root, const char *path)
{
	int fd = brig_open_in_root(root, path);
	if (fd >= 0) {
		if (is_dir(fd))
			return fd;
		close(fd);
	}
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	size_t len = strlen(buf);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		char saved = buf[i];
		buf[i] = '\0';
		if (buf[i - 1] == '/') { // "//"
			buf[i] = saved;
			continue;
		}
		int c = brig_open_in_root(root, buf);
		if (c < 0 && errno == ENOENT) {
			char *slash = strrchr(buf, '/');
			*slash = '\0';
			int parent = brig_open_in_root(root, slash == buf ? "/" : buf);
			*slash = '/';
			if (parent < 0)
				return -1;
			if (mkdirat(parent, slash + 1, 0755) < 0 && errno != EEXIST) {
				int e = errno;
				close(parent);
				errno = e;
				return -1;
			}
			close(parent);
			c = brig_open_in_root(root, buf);
		}
		if (c < 0)
			return -1;
		if (!is_dir(c)) {
			close(c);
			errno = ENOTDIR;
			return -1;
		}
		close(c);
		buf[i] = saved;
	}
	return brig_open_in_root(root, path);
}

// open_target makes dest inside root (a directory, or a file) and
// returns a handle on it.
static int open_target(int root, const char *dest, int dir, const char *what)
{
	if (dir) {
		int fd = brig_mkdir_all(root, dest);
		if (fd < 0)
			brig_fail(errno, "%s: create mount point %s", what, dest);
		return fd;
	}
	char parent_path[PATH_MAX];
	copy_path(parent_path, sizeof(parent_path), dest, what);
	char *slash = strrchr(parent_path, '/');
	if (slash == NULL)
		brig_fail(0, "%s: %s is not absolute", what, dest);
	const char *name = slash + 1;
	*slash = '\0';
	char namebuf[NAME_MAX + 1];
	copy_path(namebuf, sizeof(namebuf), name, what);
	int parent = brig_mkdir_all(root, parent_path[0] ? parent_path : "/");
	if (parent < 0)
		brig_fail(errno, "%s: create mount point %s", what, dest);
	int fd = openat(parent, namebuf, O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_RDONLY, 0644);
	if (fd >= 0)
		close(fd);
	else if (errno != EEXIST && errno != EISDIR && errno != ELOOP && errno != EACCES && errno != ETXTBSY)
		brig_fail(errno, "%s: create mount point %s", what, dest);
	close(parent);
	fd = brig_open_in_root(root, dest);
	if (fd < 0)
		brig_fail(errno, "%s: open mount point %s", what, dest);
	return fd;
}

static const char *const proc_files[] = {"/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat",
	"/proc/swaps", "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev",
	"/proc/sys/kernel/ns_last_pid", NULL};

static int under(const char *p, const char *dir)
{
	size_t n = strlen(dir);
	return strncmp(p, dir, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

// check_target refuses a target reached through a symbolic link into
// /proc, /sys or /dev, and any target on procfs but lxcfs's files.
static void check_target(int root, int target, const char *dest, const char *what)
{
	char rootpath[PATH_MAX], at[PATH_MAX];
	ssize_t a = readlink(procfd(root), rootpath, sizeof(rootpath) - 1);
	ssize_t b = readlink(procfd(target), at, sizeof(at) - 1);
	if (a < 0 || b < 0)
		brig_fail(errno, "%s: mount on %s: where the target lies", what, dest);
	rootpath[a] = at[b] = '\0';
	char rel[PATH_MAX + 2];
	if (strcmp(rootpath, "/") == 0) {
		snprintf(rel, sizeof(rel), "%s", at);
	} else {
		const char *r = at;
		if (strncmp(at, rootpath, (size_t)a) == 0)
			r = at + a;
		while (*r == '/')
			r++;
		snprintf(rel, sizeof(rel), "/%s", r);
	}
	static const char *const kernel[] = {"/proc", "/sys", "/dev"};
	for (int i = 0; i < 3; i++)
		if (strcmp(rel, dest) != 0 && under(rel, kernel[i]))
			brig_fail(0, "%s: mount on %s: the destination resolves to %s through a symbolic link, inside %s: refused",
				what, dest, rel, kernel[i]);
	struct statfs fs;
	if (fstatfs(target, &fs) < 0)
		brig_fail(errno, "%s: mount on %s", what, dest);
	if (fs.f_type == PROC_SUPER_MAGIC) {
		for (int i = 0; proc_files[i]; i++)
			if (strcmp(dest, proc_files[i]) == 0)
				return;
		brig_fail(0, "%s: mount on %s: the target is on procfs; only a proc mount at /proc and binds over the lxcfs files may be there", what, dest);
	}
}

static int clone_tree(int src, int recursive)
{
	unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH;
	if (recursive)
		flags |= AT_RECURSIVE;
	return (int)syscall(SYS_open_tree, src, "", flags);
}

static int set_attr(int tree, uint64_t set, uint64_t clr, int recursive)
{
	if (set == 0 && clr == 0)
		return 0;
	struct brig_mount_attr attr = {.attr_set = set, .attr_clr = clr};
	if ((set | clr) & MOUNT_ATTR__ATIME)
		attr.attr_clr |= MOUNT_ATTR__ATIME;
	unsigned flags = AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0);
	return (int)syscall(SYS_mount_setattr, tree, "", flags, &attr, sizeof(attr));
}

static int attach(int tree, int target)
{
	return (int)syscall(SYS_move_mount, tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
}

// bind_fd binds src onto target, the attributes set before it is seen.
static void bind_fd(int src, int target, int recursive, uint64_t set, uint64_t clr, const char *what)
{
	int tree = clone_tree(src, recursive);
	if (tree < 0)
		brig_fail(errno, "%s: open_tree", what);
	if (set_attr(tree, set, clr, recursive) < 0)
		brig_fail(errno, "%s: mount_setattr", what);
	if (attach(tree, target) < 0)
		brig_fail(errno, "%s: move_mount", what);
	close(tree);
}

struct props {
	uint32_t n;
	uint64_t flags[16];
};

static void read_props(struct brig_args *a, struct props *p, const char *what)
{
	p->n = brig_u32(a);
	if (p->n > 16)
		brig_fail(0, "%s: %u propagation flags", what, p->n);
	for (uint32_t i = 0; i < p->n; i++)
		p->flags[i] = brig_u64(a);
}

static void propagation(int root, const char *dest, const struct props *p, uint64_t set, uint64_t clr, const char *what)
{
	uint32_t n = p->n;
	const uint64_t *props = p->flags;
	if (n == 0 && set == 0 && clr == 0)
		return;
	int mnt = brig_open_in_root(root, dest);
	if (mnt < 0)
		brig_fail(errno, "%s: reopen %s after mounting", what, dest);
	for (uint32_t i = 0; i < n; i++)
		if (mount("", procfd(mnt), NULL, (unsigned long)props[i], NULL) < 0)
			brig_fail(errno, "%s: set propagation", what);
	if ((set || clr) && set_attr(mnt, set, clr, 1) < 0)
		brig_fail(errno, "%s: mount_setattr", what);
	close(mnt);
}

static int g_root = -1, g_state = -1, g_cgdir = -1;

void brig_op_mount(struct brig_args *a)
{
	char *what = brig_str(a), *dest = brig_str(a), *src = brig_str(a), *type = brig_str(a);
	uint64_t flags = brig_u64(a);
	char *data = brig_str(a);
	uint32_t mflags = brig_u32(a);
	uint64_t set = brig_u64(a), clr = brig_u64(a), sysfs_attrs = brig_u64(a);
	struct props props;
	read_props(a, &props, what);
	int target = open_target(g_root, dest, 1, what);
	check_target(g_root, target, dest, what);
	if ((mflags & BRIG_MOUNT_DIR_ONLY) && !is_dir(target))
		brig_fail(0, "%s: %s is not a directory", what, dest);
	if (mount(src, procfd(target), type, (unsigned long)flags, data[0] ? data : NULL) < 0) {
		if ((mflags & BRIG_MOUNT_SYSFS_IN_USER) && errno == EPERM) {
			// sysfs needs a network namespace owned by the user
			// namespace: the host's, read-only.
			int host = open("/sys", O_PATH | O_CLOEXEC);
			if (host < 0)
				brig_fail(errno, "%s: open /sys", what);
			bind_fd(host, target, 1, sysfs_attrs, 0, what);
			close(host);
			close(target);
			return;
		}
		brig_fail(errno, "%s: mount", what);
	}
	close(target);
	propagation(g_root, dest, &props, set, clr, what);
}

void brig_op_bind(struct brig_args *a)
{
	char *what = brig_str(a), *dest = brig_str(a), *source = brig_str(a);
	uint32_t prepared = brig_u32(a), recursive = brig_u32(a);
	uint64_t set = brig_u64(a), clr = brig_u64(a), rset = brig_u64(a), rclr = brig_u64(a);
	struct props props;
	read_props(a, &props, what);
	// A tree brig cloned (and id-mapped) with the host's privileges, or
	// a clone of the source made here.
	int src = prepared ? (int)prepared : open(source, O_PATH | O_CLOEXEC);
	if (src < 0)
		brig_fail(errno, "%s: bind source", what);
	int target = open_target(g_root, dest, is_dir(src), what);
	check_target(g_root, target, dest, what);
	int tree = prepared ? src : clone_tree(src, (int)recursive);
	if (tree < 0)
		brig_fail(errno, "%s: open_tree %s", what, source);
	if (set_attr(tree, set, clr, 0) < 0 || set_attr(tree, rset, rclr, 1) < 0)
		brig_fail(errno, "%s: mount_setattr", what);
	if (attach(tree, target) < 0)
		brig_fail(errno, "%s: move_mount onto %s", what, dest);
	if (tree != src)
		close(tree);
	close(target);
	close(src);
	propagation(g_root, dest, &props, 0, 0, what);
}

void brig_op_cgroup_tmpfs(struct brig_args *a)
{
	char *what = brig_str(a), *dest = brig_str(a);
	uint32_t tmpfs = brig_u32(a);
	int target = open_target(g_root, dest, 1, what);
	if (g_cgdir >= 0)
		close(g_cgdir); // an earlier cgroup mount's
	g_cgdir = -1;
	if (!tmpfs) {
		g_cgdir = target;
		return;
	}
	if (mount("tmpfs", procfd(target), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755") < 0)
		brig_fail(errno, "%s: mount tmpfs for cgroups", what);
	close(target);
	g_cgdir = brig_open_in_root(g_root, dest);
	if (g_cgdir < 0)
		brig_fail(errno, "%s: reopen %s after mounting", what, dest);
}

void brig_op_cgroup_mount(struct brig_args *a)
{
	char *what = brig_str(a), *name = brig_str(a), *fstype = brig_str(a), *data = brig_str(a);
	uint64_t flags = brig_u64(a);
	char *host = brig_str(a);
	uint64_t bind_attrs = brig_u64(a);
	uint32_t only_mkdir = brig_u32(a);
	if (g_cgdir < 0)
		brig_fail(0, "init program: a cgroup mount before its directory");
	int sub;
	if (name[0]) {
		if (mkdirat(g_cgdir, name, 0755) < 0 && errno != EEXIST)
			brig_fail(errno, "%s: mkdir cgroup %s", what, name);
		sub = openat(g_cgdir, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0)
			brig_fail(errno, "%s: cgroup %s", what, name);
	} else {
		sub = fcntl(g_cgdir, F_DUPFD_CLOEXEC, 0);
		if (sub < 0)
			brig_fail(errno, "%s: cgroup directory", what);
	}
	if (!only_mkdir) {
		if (host[0] == '\0') {
			if (mount("cgroup", procfd(sub), fstype, (unsigned long)flags | MS_NOSUID | MS_NODEV | MS_NOEXEC, data[0] ? data : NULL) < 0)
				brig_fail(errno, "%s: cgroup %s: mount %s", what, name, fstype);
		} else {
			int src = open(host, O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (src >= 0) { // else: a controller this container doesn't use
				bind_fd(src, sub, 0, bind_attrs, 0, what);
				close(src);
			}
		}
	}
	close(sub);
}

void brig_op_cgroup_readonly(struct brig_args *a)
{
	char *what = brig_str(a);
	if (mount("", procfd(g_cgdir), NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		brig_fail(errno, "%s: remount cgroup tmpfs read-only", what);
}

void brig_op_device(struct brig_args *a)
{
	char *path = brig_str(a);
	uint32_t mode = brig_u32(a), major_ = brig_u32(a), minor_ = brig_u32(a), uid = brig_u32(a), gid = brig_u32(a);
	uint32_t from_host = brig_u32(a);
	char parent_path[PATH_MAX];
	copy_path(parent_path, sizeof(parent_path), path, "linux.devices");
	char *slash = strrchr(parent_path, '/');
	if (slash == NULL)
		brig_fail(0, "linux.devices %s: not absolute", path);
	char name[NAME_MAX + 1];
	copy_path(name, sizeof(name), slash + 1, "linux.devices");
	*slash = '\0';
	int parent = brig_mkdir_all(g_root, parent_path[0] ? parent_path : "/");
	if (parent < 0)
		brig_fail(errno, "linux.devices %s", path);
	if (from_host) {
		// mknod is not allowed in a user namespace: bind the host's node.
		int src = open(path, O_PATH | O_CLOEXEC);
		if (src < 0)
			brig_fail(errno, "linux.devices %s: host device", path);
		int fd = openat(parent, name, O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_RDONLY, 0644);
		if (fd < 0 && errno != EEXIST)
			brig_fail(errno, "linux.devices %s: create mount point", path);
		if (fd >= 0)
			close(fd);
		int target = openat(parent, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (target < 0)
			brig_fail(errno, "linux.devices %s", path);
		bind_fd(src, target, 0, 0x2 /* NOSUID */ | 0x8 /* NOEXEC */, 0, path);
		close(target);
		close(src);
		close(parent);
		return;
	}
	unlinkat(parent, name, 0);
	if (mknodat(parent, name, mode, makedev(major_, minor_)) < 0)
		brig_fail(errno, "linux.devices %s: mknod", path);
	// mknod is subject to the umask: the mode set exactly.
	int fd = openat(parent, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		brig_fail(errno, "linux.devices %s", path);
	if (chmod(procfd(fd), mode & 07777) < 0)
		brig_fail(errno, "linux.devices %s: chmod", path);
	close(fd);
	if (fchownat(parent, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		brig_fail(errno, "linux.devices %s: chown", path);
	close(parent);
}

void brig_op_make_cwd(struct brig_args *a)
{
	char *cwd = brig_str(a);
	int fd = brig_open_in_root(g_root, cwd);
	if (fd >= 0) {
		close(fd);
		return;
	}
	if (errno != ENOENT)
		return; // the init's error, when it enters it
	fd = brig_mkdir_all(g_root, cwd);
	if (fd < 0)
		brig_fail(errno, "process.cwd \"%s\": can't be made", cwd);
	close(fd);
}

void brig_op_dev_symlinks(void)
{
	int dev = brig_open_in_root(g_root, "/dev");
	if (dev < 0) {
		if (errno == ENOENT)
			return;
		brig_fail(errno, "open /dev");
	}
	static const char *const links[][2] = {{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"},
		{"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}, {"/proc/kcore", "core"}};
	for (int i = 0; i < 5; i++) {
		struct stat st;
		if (strcmp(links[i][1], "core") == 0 && stat("/proc/kcore", &st) < 0)
			continue; // as runc: only where the kernel has it
		if (symlinkat(links[i][0], dev, links[i][1]) < 0 && errno != EEXIST)
			brig_fail(errno, "symlink /dev/%s", links[i][1]);
	}
	struct stat st;
	if (fstatat(dev, "pts/ptmx", &st, AT_SYMLINK_NOFOLLOW) == 0) {
		unlinkat(dev, "ptmx", 0);
		if (symlinkat("pts/ptmx", dev, "ptmx") < 0)
			brig_fail(errno, "symlink /dev/ptmx");
	}
	close(dev);
}

static int mount_root_of(const char *p)
{
	struct statx stx;
	if (statx(AT_FDCWD, p, AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx) < 0)
		return 0;
	return (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
}

// parent_private makes the mount the rootfs sits on private: pivot_root
// refuses a shared parent.
void brig_op_parent_private(struct brig_args *a)
{
	char *root = brig_str(a);
	char p[PATH_MAX];
	copy_path(p, sizeof(p), root, "root.path");
	for (;;) {
		struct stat st, parent;
		if (stat(p, &st) < 0)
			brig_fail(errno, "stat %s", p);
		if (strcmp(p, "/") == 0)
			break;
		char dir[PATH_MAX];
		memcpy(dir, p, sizeof(dir));
		char *slash = strrchr(dir, '/');
		if (slash == dir)
			dir[1] = '\0';
		else
			*slash = '\0';
		if (stat(dir, &parent) < 0)
			brig_fail(errno, "stat %s", dir);
		if (st.st_dev != parent.st_dev || st.st_ino == parent.st_ino || mount_root_of(p))
			break;
		snprintf(p, sizeof(p), "%s", dir);
	}
	if (mount("", p, NULL, MS_PRIVATE, NULL) < 0)
		brig_fail(errno, "make %s private", p);
}

void brig_op_bind_root(struct brig_args *a)
{
	char *root = brig_str(a);
	if (mount(root, root, NULL, MS_BIND | MS_REC, NULL) < 0)
		brig_fail(errno, "bind rootfs %s", root);
	g_root = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (g_root < 0)
		brig_fail(errno, "open rootfs");
}

void brig_op_open_state(struct brig_args *a)
{
	char *dir = brig_str(a);
	g_state = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (g_state < 0)
		brig_fail(errno, "open state dir");
}

void brig_op_pivot_root(struct brig_args *a)
{
	char *root = brig_str(a);
	int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (oldroot < 0)
		brig_fail(errno, "open old root");
	int newroot = open(root, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (newroot < 0)
		brig_fail(errno, "open new root");
	if (fchdir(newroot) < 0)
		brig_fail(errno, "chdir new root");
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		brig_fail(errno, "pivot_root");
	if (fchdir(oldroot) < 0)
		brig_fail(errno, "chdir old root");
	// The old root is stacked on the new one: unmounting it must not
	// reach the host.
	if (mount("", ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		brig_fail(errno, "make old root slave");
	if (umount2(".", MNT_DETACH) < 0)
		brig_fail(errno, "detach old root");
	if (chdir("/") < 0)
		brig_fail(errno, "chdir /");
	close(oldroot);
	close(newroot);
	if (g_root >= 0)
		close(g_root);
	g_root = -1;
	if (g_cgdir >= 0)
		close(g_cgdir);
	g_cgdir = -1;
}

// open_proc opens a procfs of the process's own: a new, detached
// instance (as pathrs-lite's procfs does), so that no mount the container
// put over /proc — or a /proc mounted read-only, or none at all — is in
// the way; else, without the privilege for that, the container's /proc,
// checked to be the root of a procfs.
static int open_proc(const char *what)
{
	int fs = (int)syscall(SYS_fsopen, "proc", 1 /* FSOPEN_CLOEXEC */);
	if (fs >= 0) {
		int mnt = -1;
		if (syscall(SYS_fsconfig, fs, 6 /* FSCONFIG_CMD_CREATE */, NULL, NULL, 0) == 0)
			mnt = (int)syscall(SYS_fsmount, fs, 1 /* FSMOUNT_CLOEXEC */, 0x2 | 0x4 | 0x8 /* NOSUID NODEV NOEXEC */);
		close(fs);
		if (mnt >= 0)
			return mnt;
	}
	int proc = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct statfs sfs;
	struct stat st;
	if (proc < 0)
		brig_fail(errno, "%s: open procfs", what);
	if (fstatfs(proc, &sfs) < 0 || sfs.f_type != PROC_SUPER_MAGIC || fstat(proc, &st) < 0 || st.st_ino != 1)
		brig_fail(0, "%s: open procfs: /proc is not the root of a procfs", what);
	return proc;
}

// apparmor_exec sets the profile this thread's execve enters, through
// the container's procfs, never leaving it (no magic link, no other
// mount).
void brig_op_apparmor_exec(struct brig_args *a)
{
	char *profile = brig_str(a);
	int proc = open_proc("apparmor");
	struct open_how how = {.flags = O_WRONLY | O_CLOEXEC, .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV};
	int fd = (int)syscall(SYS_openat2, proc, "thread-self/attr/apparmor/exec", &how, sizeof(how));
	if (fd < 0)
		fd = (int)syscall(SYS_openat2, proc, "thread-self/attr/exec", &how, sizeof(how));
	if (fd < 0)
		brig_fail(errno, "apparmor: open exec attr");
	char value[4096];
	int n = snprintf(value, sizeof(value), "exec %s", profile);
	if (n < 0 || n >= (int)sizeof(value) || write(fd, value, (size_t)n) != n)
		brig_fail(errno, "apparmor: set profile \"%s\"", profile);
	close(fd);
	close(proc);
}

void brig_op_sysctl(struct brig_args *a)
{
	char *key = brig_str(a), *value = brig_str(a);
	int proc = open_proc("sysctl");
	char rel[PATH_MAX];
	if (snprintf(rel, sizeof(rel), "sys/%s", key) >= (int)sizeof(rel))
		brig_fail(ENAMETOOLONG, "linux.sysctl.%.64s", key);
	for (char *c = rel + 4; *c; c++)
		if (*c == '.')
			*c = '/';
	struct open_how how = {.flags = O_WRONLY | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV};
	int fd = (int)syscall(SYS_openat2, proc, rel, &how, sizeof(how));
	if (fd < 0)
		brig_fail(errno, "linux.sysctl.%s", key);
	size_t n = strlen(value);
	ssize_t w = write(fd, value, n);
	if (w != (ssize_t)n)
		brig_fail(w < 0 ? errno : EIO, "linux.sysctl.%s=%s", key, value);
	close(fd);
	close(proc);
}

void brig_op_readonly_path(struct brig_args *a)
{
	char *path = brig_str(a);
	int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		brig_fail(errno, "readonlyPaths %s", path);
	int h = brig_open_in_root(root, path);
	if (h < 0) {
		if (errno == ENOENT)
			return (void)close(root);
		brig_fail(errno, "readonlyPaths %s", path);
	}
	char what[PATH_MAX + 32];
	snprintf(what, sizeof(what), "readonlyPaths %s", path);
	// MOUNT_ATTR_RDONLY | NOSUID | NODEV | NOEXEC
	bind_fd(h, h, 1, 0x1 | 0x2 | 0x4 | 0x8, 0, what);
	close(h);
	close(root);
}

void brig_op_mask_paths(struct brig_args *a)
{
	char **paths = brig_strs(a);
	int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		brig_fail(errno, "maskedPaths");
	// The container's /dev/null, checked to be the null device.
	int null = open("/dev/null", O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (null < 0)
		brig_fail(errno, "open /dev/null");
	struct stat st;
	if (fstat(null, &st) < 0 || !S_ISCHR(st.st_mode) || major(st.st_rdev) != 1 || minor(st.st_rdev) != 3)
		brig_fail(0, "/dev/null is not the null device: refusing to use it for masking");
	for (char **p = paths; *p; p++) {
		int h = brig_open_in_root(root, *p);
		if (h < 0) {
			if (errno == ENOENT)
				continue;
			brig_fail(errno, "maskedPaths %s", *p);
		}
		if (fstat(h, &st) < 0)
			brig_fail(errno, "maskedPaths %s", *p);
		if (S_ISDIR(st.st_mode)) {
			if (mount("tmpfs", procfd(h), "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0,mode=0555") < 0)
				brig_fail(errno, "maskedPaths %s", *p);
		} else {
			char what[PATH_MAX + 32];
			snprintf(what, sizeof(what), "maskedPaths %s", *p);
			bind_fd(null, h, 0, 0x1 | 0x2 | 0x8, 0, what); // RDONLY | NOSUID | NOEXEC
		}
		close(h);
	}
	close(null);
	close(root);
}

void brig_op_readonly_root(void)
{
	struct statfs fs;
	if (statfs("/", &fs) < 0)
		brig_fail(errno, "remount / read-only");
	unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY;
	static const struct {
		long st;
		unsigned long ms;
	} locked[] = {{ST_NOSUID, MS_NOSUID}, {ST_NODEV, MS_NODEV}, {ST_NOEXEC, MS_NOEXEC},
		{ST_NOATIME, MS_NOATIME}, {ST_NODIRATIME, MS_NODIRATIME}, {ST_RELATIME, MS_RELATIME}};
	for (size_t i = 0; i < sizeof(locked) / sizeof(locked[0]); i++)
		if (fs.f_flags & locked[i].st)
			flags |= locked[i].ms;
	if (mount("", "/", NULL, flags, NULL) < 0)
		brig_fail(errno, "remount / read-only");
}

void brig_op_loopback_up(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		brig_fail(errno, "lo");
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		brig_fail(errno, "lo");
	if (!(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
			brig_fail(errno, "lo up");
	}
	close(fd);
}

void brig_op_wait_start(struct brig_args *a)
{
	char *name = brig_str(a);
	int fd = openat(g_state, name, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		brig_fail(errno, "open exec fifo");
	if (write(fd, "0", 1) != 1)
		brig_fail(errno, "write exec fifo");
	close(fd);
	close(g_state);
	g_state = -1;
}
