// program.c: brig's init without a Go runtime. The brig command compiles
// what the init would do for an exec'd process (internal/initprog: the
// order, every value) into a program of system calls; this file only
// carries them out, in order, and names the step that failed. See
// internal/initprog/initprog.go for the ops and their wire form.
//
// It runs in the constructor, in the container's process, once the
// namespaces are joined and the cgroups entered, so the Go runtime never
// starts: that start (about 4 ms of CPU here) and a second Go process's
// page faults are most of what an init costs. A failure is sent to brig as
// the protocol's error message (one line of JSON) and the process exits 1;
// success is execve, which closes the socket (close-on-exec).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "program.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

enum {
	OP_SETPGID = 1,
	OP_CWD_INSIDE = 2,
	OP_LOOKPATH = 3,
	OP_HOME = 4,
	OP_RLIMIT = 5,
	OP_CLOSE_RANGE = 6,
	OP_SECCOMP = 7,
	OP_BOUNDING = 8,
	OP_USER = 9,
	OP_CAPS = 10,
	OP_CHDIR = 11,
	OP_NO_NEW_PRIVS = 12,
	OP_EXEC = 13,
	OP_LANDLOCK = 14,
	OP_DEATH_SIGNAL = 15,
	OP_PARENT_ALIVE = 16,
	OP_APPARMOR_EXEC = 17,
	OP_UNSHARE_CGROUPNS = 20,
	OP_LOOPBACK_UP = 21,
	OP_HOSTNAME = 22,
	OP_DOMAINNAME = 23,
	OP_ROOT_PROPAGATION = 24,
	OP_PARENT_PRIVATE = 25,
	OP_BIND_ROOT = 26,
	OP_MOUNT = 27,
	OP_BIND = 28,
	OP_CGROUP_TMPFS = 29,
	OP_CGROUP_MOUNT = 30,
	OP_CGROUP_READONLY = 31,
	OP_DEVICE = 32,
	OP_MAKE_CWD = 33,
	OP_DEV_SYMLINKS = 34,
	OP_OPEN_STATE = 35,
	OP_PIVOT_ROOT = 36,
	OP_NEW_ROOT_PROPAGATION = 37,
	OP_SYSCTL = 38,
	OP_READONLY_PATH = 39,
	OP_MASK_PATHS = 40,
	OP_READONLY_ROOT = 41,
	OP_KEYRING = 42,
	OP_PERSONALITY = 43,
	OP_READY = 44,
	OP_WAIT_START = 45,
	OP_HOOKS = 46,
};

#define USER_TOLERATE_SETGROUPS 1
#define USER_UMASK 2

#define MAX_PROGRAM (1 << 20)

static int sock = -1;
// ready: brig has been told the container is created, and reads no more;
// errors go to stderr.
static int ready;

static void sendall(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(sock, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			_exit(1); // brig is gone: nobody to tell, nothing to run for
		}
		buf += n;
		len -= (size_t)n;
	}
}

// fail sends {"type":"error","error":"..."} and exits. With errno set
// (err != 0), ": <strerror>" follows the message, as Go's %w of an Errno.
void brig_fail(int err, const char *fmt, ...)
{
	char msg[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg) - 256, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if (n > (int)sizeof(msg) - 257)
		n = (int)sizeof(msg) - 257; // what vsnprintf kept
	if (err) {
		// Go's Errno strings are lower case; glibc's are capitalised.
		char e[200];
		snprintf(e, sizeof(e), "%s", strerror(err));
		if (e[0] >= 'A' && e[0] <= 'Z' && !(e[1] >= 'A' && e[1] <= 'Z'))
			e[0] = (char)(e[0] - 'A' + 'a');
		n += snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", e);
	}
	if (ready) {
		dprintf(2, "brig init: %.*s\n", n, msg);
		_exit(1);
	}
	// JSON: quotes, backslashes and control characters escaped.
	static char line[4096 * 6 + 64];
	size_t l = 0;
	l += (size_t)snprintf(line, sizeof(line), "{\"type\":\"error\",\"error\":\"");
	for (int i = 0; i < n && msg[i]; i++) {
		unsigned char c = (unsigned char)msg[i];
		if (c == '"' || c == '\\') {
			line[l++] = '\\';
			line[l++] = (char)c;
		} else if (c < 0x20) {
			l += (size_t)snprintf(line + l, sizeof(line) - l, "\\u%04x", c);
		} else {
			line[l++] = (char)c;
		}
	}
	l += (size_t)snprintf(line + l, sizeof(line) - l, "\"}\n");
	sendall(line, l);
	_exit(1);
}

uint32_t brig_u32(struct brig_args *a)
{
	if (a->end - a->p < 4)
		brig_fail(0, "init program: op %d: short argument", a->op);
	uint32_t v = (uint32_t)a->p[0] | (uint32_t)a->p[1] << 8 | (uint32_t)a->p[2] << 16 | (uint32_t)a->p[3] << 24;
	a->p += 4;
	return v;
}

uint64_t brig_u64(struct brig_args *a)
{
	uint64_t lo = brig_u32(a);
	return lo | (uint64_t)brig_u32(a) << 32;
}

// get_bytes returns a NUL-terminated copy (the program's memory is kept
// until execve, so nothing is freed).
char *brig_bytes(struct brig_args *a, size_t *len)
{
	uint32_t n = brig_u32(a);
	if ((size_t)(a->end - a->p) < n)
		brig_fail(0, "init program: op %d: short string", a->op);
	char *s = malloc((size_t)n + 1);
	if (s == NULL)
		brig_fail(ENOMEM, "init program");
	memcpy(s, a->p, n);
	s[n] = '\0';
	a->p += n;
	if (len)
		*len = n;
	return s;
}

// brig_view returns the bytes in place, copying nothing.
const void *brig_view(struct brig_args *a, size_t *len)
{
	uint32_t n = brig_u32(a);
	if ((size_t)(a->end - a->p) < n)
		brig_fail(0, "init program: op %d: short string", a->op);
	const void *v = a->p;
	a->p += n;
	*len = n;
	return v;
}

// brig_str is a string argument; one with a NUL byte in it is refused
// (the kernel would see only what comes before it).
char *brig_str(struct brig_args *a)
{
	size_t n;
	char *s = brig_bytes(a, &n);
	if (strlen(s) != n)
		brig_fail(0, "init program: op %d: a string with a NUL byte: \"%s\"", a->op, s);
	return s;
}

char **brig_strs(struct brig_args *a)
{
	uint32_t n = brig_u32(a);
	if (n > (uint32_t)(a->end - a->p) / 4)
		brig_fail(0, "init program: op %d: bad list", a->op);
	char **v = calloc((size_t)n + 1, sizeof(char *));
	if (v == NULL)
		brig_fail(ENOMEM, "init program");
	for (uint32_t i = 0; i < n; i++)
		v[i] = brig_str(a);
	return v;
}

// The state ops share: the executable found, the environment.
static const char *exe_path;
// The execve's arguments, decoded before the first op runs: nothing is
// allocated after the address-space limit (OP_RLIMIT of RLIMIT_AS) or
// the seccomp filter. exec_env has a slot left for HOME.
static char **exec_argv, **exec_env;
static size_t exec_envn;

static int executable(const char *p, int *err)
{
	struct stat st;
	if (stat(p, &st) < 0) {
		*err = errno;
		return 0;
	}
	if (S_ISDIR(st.st_mode)) {
		*err = EISDIR;
		return 0;
	}
	if ((st.st_mode & 0111) == 0) {
		*err = EACCES;
		return 0;
	}
	return 1;
}

// lookpath finds the executable: name itself when it has a slash, else
// the first of candidates (PATH's directories joined with name as Go's
// filepath.Join does, by the brig command) that is an executable file.
static void lookpath(const char *name, char **candidates)
{
	int err = 0;
	if (strchr(name, '/') != NULL) {
		if (!executable(name, &err))
			brig_fail(err, "process.args[0] \"%s\"", name);
		exe_path = name;
		return;
	}
	for (char **c = candidates; *c; c++) {
		if (executable(*c, &err)) {
			exe_path = *c;
			return;
		}
	}
	brig_fail(0, "process.args[0] \"%s\": executable file not found in $PATH", name);
}

// home is the user's home in the container's /etc/passwd, else "/".
static void home(uint32_t uid)
{
	const char *dir = "/";
	char *found = NULL;
	char want[16]; // as Go's strconv.FormatUint: the text must match
	snprintf(want, sizeof(want), "%u", uid);
	FILE *f = fopen("/etc/passwd", "re");
	if (f != NULL) {
		char *line = NULL;
		size_t cap = 0;
		while (getline(&line, &cap, f) > 0) {
			line[strcspn(line, "\n")] = '\0';
			char *field[7] = {0};
			int n = 0;
			for (char *s = line; n < 7;) {
				field[n++] = s;
				char *c = strchr(s, ':');
				if (c == NULL)
					break;
				*c = '\0';
				s = c + 1;
			}
			if (n < 6 || field[5][0] != '/')
				continue;
			if (strcmp(field[2], want) != 0)
				continue;
			found = strdup(field[5]);
			if (found == NULL)
				brig_fail(ENOMEM, "init program");
			break;
		}
		free(line);
		fclose(f);
	}
	if (found)
		dir = found;
	if (exec_env == NULL || asprintf(&exec_env[exec_envn], "HOME=%s", dir) < 0)
		brig_fail(ENOMEM, "init program");
}

static void cwd_inside(const char *cwd)
{
	if (chdir(cwd) < 0) {
		if (errno == ENOENT)
			brig_fail(0, "process.cwd \"%s\": does not exist in the container", cwd);
		brig_fail(errno, "process.cwd \"%s\"", cwd);
	}
	// getcwd gives "(unreachable)/..." (glibc: ENOENT) outside the root.
	char buf[PATH_MAX];
	if (syscall(SYS_getcwd, buf, sizeof(buf)) < 0 || buf[0] != '/')
		brig_fail(0, "process.cwd \"%s\": working directory is outside the container", cwd);
}

static void set_rlimit(uint32_t res, uint64_t soft, uint64_t hard, const char *field)
{
	struct rlimit64 r = {.rlim_cur = soft, .rlim_max = hard};
	if (syscall(SYS_prlimit64, 0, res, &r, NULL) < 0) {
		if (errno == EPERM)
			brig_fail(EPERM, "%s: raising the hard limit needs CAP_SYS_RESOURCE, which brig does not hold", field);
		brig_fail(errno, "%s", field);
	}
}

static void load_seccomp(uint64_t flags, const void *insns, size_t len)
{
	if (len == 0 || len % 8 != 0 || len / 8 > 4096)
		brig_fail(0, "load seccomp filter: a program of %zu bytes", len);
	struct sock_fprog prog = {.len = (unsigned short)(len / 8), .filter = (struct sock_filter *)insns};
	long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, (unsigned long)flags, &prog);
	if (r < 0)
		brig_fail(errno, "load seccomp filter");
	if (r != 0)
		brig_fail(0, "load seccomp filter: thread %ld could not be synchronised", r);
}

// bounding drops every capability outside kept, where this process may
// (CAP_SETPCAP effective), as moby/sys/capability's Apply(BOUNDING).
static void bounding(uint64_t kept)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2];
	if (syscall(SYS_capget, &hdr, data) < 0)
		brig_fail(errno, "set bounding capabilities");
	if (!(data[0].effective & (1U << CAP_SETPCAP)))
		return;
	for (int i = 0; i < 64; i++) {
		if (prctl(PR_CAPBSET_READ, i, 0, 0, 0) < 0) {
			if (errno == EINVAL)
				break; // past the kernel's last capability
			brig_fail(errno, "set bounding capabilities: read capability %d", i);
		}
		if (kept & (1ULL << i))
			continue;
		if (prctl(PR_CAPBSET_DROP, i, 0, 0, 0) < 0 && errno != EINVAL)
			brig_fail(errno, "set bounding capabilities");
	}
}

static void set_user(struct brig_args *a)
{
	uint32_t uid = brig_u32(a), gid = brig_u32(a), flags = brig_u32(a), umask_v = brig_u32(a);
	uint32_t n = brig_u32(a);
	if (n > 65536)
		brig_fail(0, "init program: %u groups", n);
	gid_t *groups = calloc(n ? n : 1, sizeof(gid_t));
	if (groups == NULL)
		brig_fail(ENOMEM, "init program");
	for (uint32_t i = 0; i < n; i++)
		groups[i] = brig_u32(a);
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		brig_fail(errno, "keepcaps");
	// Raw calls: this thread only (glibc's wrappers would signal every
	// thread, and there is only this one anyway).
	if (syscall(SYS_setgroups, (size_t)n, groups) < 0) {
		if (!((flags & USER_TOLERATE_SETGROUPS) && errno == EPERM && n == 0))
			brig_fail(errno, "process.user.additionalGids: setgroups");
	}
	if (syscall(SYS_setresgid, gid, gid, gid) < 0)
		brig_fail(errno, "process.user.gid %u", gid);
	if (syscall(SYS_setresuid, uid, uid, uid) < 0)
		brig_fail(errno, "process.user.uid %u", uid);
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		brig_fail(errno, "keepcaps");
	if (flags & USER_UMASK)
		umask((mode_t)umask_v);
}

static void set_caps(uint64_t eff, uint64_t perm, uint64_t inh, uint64_t amb)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2] = {
		{.effective = (uint32_t)eff, .permitted = (uint32_t)perm, .inheritable = (uint32_t)inh},
		{.effective = (uint32_t)(eff >> 32), .permitted = (uint32_t)(perm >> 32), .inheritable = (uint32_t)(inh >> 32)},
	};
	if (syscall(SYS_capset, &hdr, data) < 0)
		brig_fail(errno, "set capabilities");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		brig_fail(errno, "set capabilities");
	for (int i = 0; i < 64; i++) {
		if (!(amb & (1ULL << i)))
			continue;
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, i, 0, 0) < 0 && errno != EINVAL)
			brig_fail(errno, "set capabilities");
	}
}

// Landlock's structures (linux/landlock.h; Debian 12's headers predate
// the network and scope fields).
struct ll_ruleset_attr {
	uint64_t handled_access_fs, handled_access_net, scoped;
};
struct ll_path_beneath_attr {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));
struct ll_net_port_attr {
	uint64_t allowed_access, port;
};
#define LL_CREATE_RULESET_VERSION 1
#define LL_RULE_PATH_BENEATH 1
#define LL_RULE_NET_PORT 2

static void ll_add_path(int ruleset, const char *path, uint64_t access)
{
	int fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0)
		brig_fail(errno, "landlock: populating ruleset for \"%s\" with access %#llx: open", path, (unsigned long long)access);
	struct ll_path_beneath_attr attr = {.allowed_access = access, .parent_fd = fd};
	if (syscall(SYS_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &attr, 0) < 0) {
		if (errno == EINVAL)
			brig_fail(EINVAL, "landlock: populating ruleset for \"%s\" with access %#llx: landlock_add_rule: inconsistent access rights (using directory access rights on a regular file?)",
				path, (unsigned long long)access);
		brig_fail(errno, "landlock: populating ruleset for \"%s\": landlock_add_rule", path);
	}
	close(fd);
}

// landlock restricts this process (the only thread) to the rule set the
// brig command planned (lsm.Landlock.Plan): what go-landlock would do.
static void landlock(struct brig_args *a)
{
	uint32_t host_abi = brig_u32(a), none = brig_u32(a);
	struct ll_ruleset_attr rs = {.handled_access_fs = brig_u64(a), .handled_access_net = brig_u64(a), .scoped = brig_u64(a)};
	uint32_t proc_task = brig_u32(a);
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
	if (abi < 0)
		abi = 0;
	if (abi < (long)host_abi)
		brig_fail(0, "landlock: the host has ABI %u but this process reaches %ld: the container's seccomp profile, loaded before Landlock (for SCMP_ACT_NOTIFY or without noNewPrivileges), denies the landlock system calls", host_abi, abi);
	if (none) {
		// Nothing to restrict; the rules are read all the same.
		for (uint32_t i = brig_u32(a); i > 0; i--) {
			brig_u64(a);
			brig_str(a);
		}
		for (uint32_t i = brig_u32(a); i > 0; i--) {
			brig_u64(a);
			brig_u64(a);
		}
		return;
	}
	int ruleset = (int)syscall(SYS_landlock_create_ruleset, &rs, sizeof(rs), 0);
	if (ruleset < 0)
		brig_fail(errno, "landlock: landlock_create_ruleset");
	for (uint32_t i = brig_u32(a); i > 0; i--) {
		uint64_t access = brig_u64(a);
		ll_add_path(ruleset, brig_str(a), access);
	}
	if (proc_task) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/task", (int)getpid());
		ll_add_path(ruleset, path, 1ULL << 3 /* LANDLOCK_ACCESS_FS_READ_DIR */);
	}
	for (uint32_t i = brig_u32(a); i > 0; i--) {
		struct ll_net_port_attr np = {.allowed_access = brig_u64(a), .port = brig_u64(a)};
		if (syscall(SYS_landlock_add_rule, ruleset, LL_RULE_NET_PORT, &np, 0) < 0)
			brig_fail(errno, "landlock: landlock_add_rule port %llu", (unsigned long long)np.port);
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		brig_fail(errno, "landlock: prctl(PR_SET_NO_NEW_PRIVS)");
	if (syscall(SYS_landlock_restrict_self, ruleset, 0) < 0)
		brig_fail(errno, "landlock: landlock_restrict_self");
	close(ruleset);
}

static void do_exec(void)
{
	if (exe_path == NULL || exec_argv == NULL)
		brig_fail(0, "init program: exec before the executable was found");
	syscall(SYS_execve, exe_path, exec_argv, exec_env);
	brig_fail(errno, "exec %s", exe_path);
}

// next_op reads the header of the op at *p: its code and arguments.
static int next_op(const unsigned char **p, const unsigned char *end, struct brig_args *a)
{
	if (*p >= end)
		return 0;
	if (end - *p < 8)
		brig_fail(0, "init program: truncated op");
	const unsigned char *q = *p;
	a->op = q[0] | q[1] << 8;
	uint32_t alen = (uint32_t)q[4] | (uint32_t)q[5] << 8 | (uint32_t)q[6] << 16 | (uint32_t)q[7] << 24;
	q += 8;
	if ((size_t)(end - q) < alen)
		brig_fail(0, "init program: op %d: truncated", a->op);
	a->p = q;
	a->end = q + alen;
	*p = q + alen;
	return 1;
}

void brig_run_program(int fd)
{
	sock = fd;
	// The fd brig-init was executed through: not needed any more (the
	// Go init closes it first thing too).
	const char *exefd = getenv("_BRIG_EXEFD");
	if (exefd != NULL && atoi(exefd) > 2 && atoi(exefd) != fd)
		close(atoi(exefd));
	unsigned char hdr[4];
	size_t got = 0;
	while (got < sizeof(hdr)) {
		ssize_t r = read(sock, hdr + got, sizeof(hdr) - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			_exit(1); // brig is gone
		got += (size_t)r;
	}
	size_t len = (size_t)hdr[0] | (size_t)hdr[1] << 8 | (size_t)hdr[2] << 16 | (size_t)hdr[3] << 24;
	if (len == 0 || len > MAX_PROGRAM)
		brig_fail(0, "init program of %zu bytes", len);
	unsigned char *prog = malloc(len);
	if (prog == NULL)
		brig_fail(ENOMEM, "init program");
	for (got = 0; got < len;) {
		ssize_t r = read(sock, prog + got, len - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			_exit(1);
		got += (size_t)r;
	}
	const unsigned char *p = prog, *end = prog + len;
	struct brig_args a;
	// The execve's arguments first (see exec_argv).
	while (next_op(&p, end, &a)) {
		if (a.op != OP_EXEC)
			continue;
		exec_argv = brig_strs(&a);
		char **env = brig_strs(&a);
		while (env[exec_envn])
			exec_envn++;
		exec_env = calloc(exec_envn + 2, sizeof(char *));
		if (exec_env == NULL)
			brig_fail(ENOMEM, "init program");
		memcpy(exec_env, env, exec_envn * sizeof(char *));
	}
	p = prog;
	while (next_op(&p, end, &a)) {
		switch (a.op) {
		case OP_SETPGID:
			if (setpgid(0, 0) < 0)
				brig_fail(errno, "setpgid");
			break;
		case OP_CWD_INSIDE:
			cwd_inside(brig_str(&a));
			break;
		case OP_LOOKPATH: {
			char *name = brig_str(&a);
			lookpath(name, brig_strs(&a));
			break;
		}
		case OP_HOME:
			home(brig_u32(&a));
			break;
		case OP_RLIMIT: {
			uint32_t res = brig_u32(&a);
			uint64_t soft = brig_u64(&a), hard = brig_u64(&a);
			set_rlimit(res, soft, hard, brig_str(&a));
			break;
		}
		case OP_CLOSE_RANGE:
			if (syscall(SYS_close_range, brig_u32(&a), ~0U, CLOSE_RANGE_CLOEXEC) < 0)
				brig_fail(errno, "mark fds close-on-exec");
			break;
		case OP_SECCOMP: {
			uint64_t flags = brig_u64(&a);
			size_t n;
			const void *insns = brig_view(&a, &n);
			load_seccomp(flags, insns, n);
			break;
		}
		case OP_BOUNDING:
			bounding(brig_u64(&a));
			break;
		case OP_USER:
			set_user(&a);
			break;
		case OP_CAPS: {
			uint64_t eff = brig_u64(&a), perm = brig_u64(&a), inh = brig_u64(&a);
			set_caps(eff, perm, inh, brig_u64(&a));
			break;
		}
		case OP_CHDIR: {
			char *cwd = brig_str(&a);
			if (chdir(cwd) < 0)
				brig_fail(errno, "process.cwd \"%s\"", cwd);
			break;
		}
		case OP_NO_NEW_PRIVS:
			if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
				brig_fail(errno, "no_new_privs");
			break;
		case OP_EXEC:
			do_exec();
			break;
		case OP_LANDLOCK:
			landlock(&a);
			break;
		case OP_DEATH_SIGNAL:
			if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
				brig_fail(errno, "parent-death signal");
			break;
		case OP_PARENT_ALIVE: {
			int fd = (int)brig_u32(&a);
			if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
				brig_fail(errno, "parent-death signal");
			struct pollfd pfd = {.fd = fd, .events = POLLIN};
			if (poll(&pfd, 1, 0) > 0)
				brig_fail(0, "brig exited before the command started");
			break;
		}
		case OP_APPARMOR_EXEC:
			brig_op_apparmor_exec(&a);
			break;
		case OP_UNSHARE_CGROUPNS:
			if (unshare(CLONE_NEWCGROUP) < 0)
				brig_fail(errno, "unshare cgroup namespace");
			break;
		case OP_LOOPBACK_UP:
			brig_op_loopback_up();
			break;
		case OP_HOSTNAME: {
			char *h = brig_str(&a);
			if (sethostname(h, strlen(h)) < 0)
				brig_fail(errno, "hostname");
			break;
		}
		case OP_DOMAINNAME: {
			char *d = brig_str(&a);
			if (setdomainname(d, strlen(d)) < 0)
				brig_fail(errno, "domainname");
			break;
		}
		case OP_ROOT_PROPAGATION:
			if (mount("", "/", NULL, (unsigned long)brig_u64(&a), NULL) < 0)
				brig_fail(errno, "set / propagation");
			break;
		case OP_PARENT_PRIVATE:
			brig_op_parent_private(&a);
			break;
		case OP_BIND_ROOT:
			brig_op_bind_root(&a);
			break;
		case OP_MOUNT:
			brig_op_mount(&a);
			break;
		case OP_BIND:
			brig_op_bind(&a);
			break;
		case OP_CGROUP_TMPFS:
			brig_op_cgroup_tmpfs(&a);
			break;
		case OP_CGROUP_MOUNT:
			brig_op_cgroup_mount(&a);
			break;
		case OP_CGROUP_READONLY:
			brig_op_cgroup_readonly(&a);
			break;
		case OP_DEVICE:
			brig_op_device(&a);
			break;
		case OP_MAKE_CWD:
			brig_op_make_cwd(&a);
			break;
		case OP_DEV_SYMLINKS:
			brig_op_dev_symlinks();
			break;
		case OP_OPEN_STATE:
			brig_op_open_state(&a);
			break;
		case OP_PIVOT_ROOT:
			brig_op_pivot_root(&a);
			break;
		case OP_NEW_ROOT_PROPAGATION: {
			uint64_t flags = brig_u64(&a);
			char *name = brig_str(&a);
			if (mount("", "/", NULL, (unsigned long)flags, NULL) < 0)
				brig_fail(errno, "linux.rootfsPropagation %s", name);
			break;
		}
		case OP_SYSCTL:
			brig_op_sysctl(&a);
			break;
		case OP_READONLY_PATH:
			brig_op_readonly_path(&a);
			break;
		case OP_MASK_PATHS:
			brig_op_mask_paths(&a);
			break;
		case OP_READONLY_ROOT:
			brig_op_readonly_root();
			break;
		case OP_KEYRING: {
			char *name = brig_str(&a);
			if (syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, name) < 0 && errno != ENOSYS)
				brig_fail(errno, "join session keyring");
			break;
		}
		case OP_PERSONALITY:
			if (syscall(SYS_personality, (unsigned long)brig_u32(&a)) < 0)
				brig_fail(errno, "personality");
			break;
		case OP_READY: {
			static const char msg[] = "{\"type\":\"ready\"}\n";
			sendall(msg, sizeof(msg) - 1);
			close(sock);
			sock = -1;
			ready = 1;
			break;
		}
		case OP_HOOKS: {
			// The protocol's message; brig answers {} once its hooks
			// have run, or an error, and then kills this process.
			static const char msg[] = "{\"type\":\"hooks\"}\n";
			sendall(msg, sizeof(msg) - 1);
			char reply[256];
			size_t n = 0;
			for (;;) {
				char c;
				ssize_t r = read(sock, &c, 1);
				if (r < 0 && errno == EINTR)
					continue;
				if (r <= 0)
					_exit(1); // brig is gone
				if (c == '\n')
					break;
				if (n < sizeof(reply) - 1)
					reply[n++] = c;
			}
			reply[n] = '\0';
			if (strcmp(reply, "{}") != 0)
				brig_fail(0, "hooks: %s", reply);
			break;
		}
		case OP_WAIT_START:
			brig_op_wait_start(&a);
			break;
		default:
			brig_fail(0, "init program: unknown op %d", a.op);
		}
		if (a.p != a.end)
			brig_fail(0, "init program: op %d: %zu bytes left over", a.op, (size_t)(a.end - a.p));
	}
	brig_fail(0, "init program: ended without exec");
}
