// nsenter: brig's pre-Go bootstrap.
//
// Joining a user or mount namespace with setns(2) requires a single-threaded
// caller, and the Go runtime starts threads before main() runs. So this
// constructor runs first, in C, when the brig binary is started as a container
// init or exec process (the environment variable _BRIG_BOOTSTRAP names the
// bootstrap socket). Otherwise it returns at once and brig is an ordinary CLI.
//
// What it does, in this order (see docs/ARCHITECTURE.md):
//   1. read the bootstrap message from the parent (one line per item), and
//      move into the container's cgroup v1 hierarchies (see join_cgroup);
//   2. setns() into every namespace to join (the user namespace first);
//   3. unshare(CLONE_NEWUSER) and let the parent write uid/gid maps;
//   4. unshare() every other new namespace but cgroup (the init makes that
//      one, once the parent has put it in its cgroup); write time namespace
//      offsets;
//   5. if a PID or time namespace applies only to children, clone once with
//      CLONE_PARENT, so the container's process is a direct child of the brig
//      command that started us; the intermediate reports the pid and exits;
//   6. return, and the Go runtime starts inside the namespaces; or, when
//      the message says "program", run the init program brig sends next
//      (program.c), which ends in the container process's execve: no Go
//      runtime starts at all.
//
// Protocol on the socket (lines, '\n'-terminated):
//   parent -> child: "size <n>", then n bytes of lines: "cgroup <v1 dir>",
//                    "join <type> <path>", "clone <flags>", "timeoff <line>",
//                    "program", "end"
//   child -> parent: "U" (maps please), parent answers "u";
//                    "P <pid>" the final pid; or "E <message>" on failure.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include "program.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif

#define MAX_JOIN 16
#define MAX_CGROUPS 24
#define MAX_LINE 4096
#define MAX_MSG (64 * 1024)

struct join {
	int flag;
	int fd;
	char path[MAX_LINE];
};

static int bootfd = -1;

// The process's RLIMIT_NOFILE before the Go runtime raised its soft limit
// to the hard one (Go does at start-up): the Go init restores it before
// the container's execve (nsenter.OriginalNofile).
unsigned long long brig_nofile_cur, brig_nofile_max;
int brig_have_nofile;

static void writeall(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(bootfd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		buf += n;
		len -= (size_t)n;
	}
}

static void bail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void bail(const char *fmt, ...)
{
	char msg[MAX_LINE];
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg) - 64, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if (n > (int)sizeof(msg) - 64)
		n = (int)sizeof(msg) - 64;
	if (saved)
		n += snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", strerror(saved));
	char line[MAX_LINE + 4];
	int l = snprintf(line, sizeof(line), "E %s\n", msg);
	if (bootfd >= 0 && l > 0)
		writeall(line, (size_t)l);
	_exit(1);
}

// readline reads one '\n'-terminated line byte by byte (the socket is shared
// with the Go side later, so nothing past the line may be consumed).
static int readline(char *buf, size_t size)
{
	size_t i = 0;
	while (i + 1 < size) {
		char c;
		ssize_t n = read(bootfd, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		if (c == '\n')
			break;
		buf[i++] = c;
	}
	buf[i] = '\0';
	return (int)i;
}

// readall reads exactly len bytes.
static void readall(char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = read(bootfd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			bail("read bootstrap message");
		buf += n;
		len -= (size_t)n;
	}
}

static int nsflag(const char *name)
{
	static const struct {
		const char *name;
		int flag;
	} t[] = {
		{"user", CLONE_NEWUSER}, {"mnt", CLONE_NEWNS},   {"pid", CLONE_NEWPID},
		{"net", CLONE_NEWNET},   {"ipc", CLONE_NEWIPC},  {"uts", CLONE_NEWUTS},
		{"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(t[i].name, name) == 0)
			return t[i].flag;
	return 0;
}

static const char *nsname(int flag)
{
	switch (flag) {
	case CLONE_NEWUSER: return "user";
	case CLONE_NEWNS: return "mnt";
	case CLONE_NEWPID: return "pid";
	case CLONE_NEWNET: return "net";
	case CLONE_NEWIPC: return "ipc";
	case CLONE_NEWUTS: return "uts";
	case CLONE_NEWCGROUP: return "cgroup";
	case CLONE_NEWTIME: return "time";
	}
	return "?";
}

// same_ns reports whether fd refers to the namespace this process is in
// already (setns into one's own user namespace fails with EINVAL).
static int same_ns(int fd, int flag)
{
	char own[64];
	struct stat a, b;
	snprintf(own, sizeof(own), "/proc/self/ns/%s", nsname(flag));
	if (fstat(fd, &a) < 0 || stat(own, &b) < 0)
		return 0;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static void open_ns(struct join *j)
{
	j->fd = open(j->path, O_RDONLY | O_CLOEXEC);
	if (j->fd < 0)
		bail("open %s namespace %s", nsname(j->flag), j->path);
}

static void join_ns(struct join *j)
{
	if (!same_ns(j->fd, j->flag) && setns(j->fd, j->flag) < 0)
		bail("setns %s namespace %s", nsname(j->flag), j->path);
	close(j->fd);
}

static void write_file(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		bail("open %s", path);
	size_t len = strlen(data);
	if (write(fd, data, len) != (ssize_t)len)
		bail("write %s", path);
	close(fd);
}

// join_cgroup moves this process into a cgroup v1 directory. Writing "0"
// to its tasks file moves the calling thread, which is the whole process
// while it is single-threaded; and a thread moving itself is the one move
// the kernel makes without taking cgroup_threadgroup_rwsem for writing,
// whose first writer after a quiet spell waits for an RCU grace period.
static void join_cgroup(const char *dir)
{
	char path[MAX_LINE + 8];
	size_t n = strnlen(dir, MAX_LINE);
	memcpy(path, dir, n);
	memcpy(path + n, "/tasks", sizeof("/tasks"));
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		bail("join cgroup %s", dir);
	if (write(fd, "0", 1) != 1)
		bail("join cgroup %s", dir);
	close(fd);
}

// smallStacks makes the threads the Go runtime starts through cgo take
// 1 MiB stacks instead of glibc's 8 MiB default. Where transparent huge
// pages are "always" and the kernel predates 6.7 (which keeps MAP_STACK
// mappings out of THP), as Debian 12's does, the first touch of each 8 MiB
// stack faulted in a 2 MiB huge page: 2 MiB per thread of every brig
// process. No 2 MiB-aligned huge page fits in 1 MiB, and a cgo thread's
// stack only holds Go's system stack and short C calls.
static void smallStacks(void)
{
	pthread_attr_t attr;
	if (pthread_getattr_default_np(&attr) != 0)
		return;
	if (pthread_attr_setstacksize(&attr, 1 << 20) == 0)
		pthread_setattr_default_np(&attr);
	pthread_attr_destroy(&attr);
}

// noHugeBss keeps the binary's zeroed data out of THP. It holds the Go
// runtime's heap arena index (32 MiB, almost all untouched), so a few hot
// variables inside one 2 MiB-aligned window of it fault in a whole huge
// page where THP is "always": 2 MiB per brig process. (The Go heap itself
// is kept out by GODEBUG disablethp=1, the binary's default.) The range
// is marked MADV_NOHUGEPAGE before Go runs; but glibc's start-up writes
// its own variables (TLS sizes, string-copy thresholds) before any
// constructor, and where the linker put them in a whole window, that
// window is a huge page already: it is given back and its few written
// pages put back as small ones.
#define HPAGE (2UL << 20)
extern char __bss_start[], _end[];
// Written by glibc's start-up before constructors; only a static binary
// has it (dynamically linked, glibc's data is libc.so's, not ours).
extern char _dl_tls_static_size[] __attribute__((weak));

static void smallPagesAgain(uintptr_t start, uintptr_t end, uintptr_t addr)
{
	uintptr_t w = addr & ~(HPAGE - 1);
	if (w < start || w + HPAGE > end)
		return; // not a whole window: never a huge page
	uint64_t *tmp = mmap(NULL, HPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (tmp == MAP_FAILED)
		return;
	volatile uint64_t *win = (volatile uint64_t *)w;
	size_t words = HPAGE / 8, per = 4096 / 8;
	for (size_t i = 0; i < words; i++)
		tmp[i] = win[i];
	if (madvise((void *)w, HPAGE, MADV_DONTNEED) == 0) {
		// Plain loops, no libc: the string functions read thresholds
		// that live in this window, zero until it is put back.
		for (size_t p = 0; p < words; p += per) {
			int used = 0;
			for (size_t i = p; i < p + per && !used; i++)
				used = tmp[i] != 0;
			for (size_t i = p; used && i < p + per; i++)
				win[i] = tmp[i];
		}
	}
	munmap(tmp, HPAGE);
}

// thpAlways says whether THP is "always" (only then can the window be a
// huge page before any of our code ran).
static int thpAlways(void)
{
	char buf[64] = "";
	int fd = open("/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 && strstr(buf, "[always]") != NULL;
}

static void noHugeBss(void)
{
	uintptr_t start = ((uintptr_t)__bss_start + 4095) & ~(uintptr_t)4095;
	uintptr_t end = (uintptr_t)_end & ~(uintptr_t)4095;
	if (end <= start || madvise((void *)start, end - start, MADV_NOHUGEPAGE) != 0)
		return;
	if (_dl_tls_static_size != NULL && thpAlways())
		smallPagesAgain(start, end, (uintptr_t)_dl_tls_static_size);
}

__attribute__((constructor(101))) static void brig_nsenter(void)
{
	smallStacks();
	noHugeBss();
	const char *env = getenv("_BRIG_BOOTSTRAP");
	if (env == NULL || *env == '\0')
		return;
	struct rlimit nofile;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
		brig_nofile_cur = nofile.rlim_cur;
		brig_nofile_max = nofile.rlim_max;
		brig_have_nofile = 1;
	}
	bootfd = atoi(env);
	if (bootfd < 3 || fcntl(bootfd, F_GETFD) < 0) {
		fprintf(stderr, "brig: bad _BRIG_BOOTSTRAP %s\n", env);
		_exit(1);
	}
	// Nothing in the container may ptrace us or open our /proc files
	// while we set up (execve resets this for the container's process).
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	// Our argv[0] is a /proc/self/fd path: give ps a readable name.
	prctl(PR_SET_NAME, (unsigned long)"brig:[init]", 0, 0, 0);

	struct join joins[MAX_JOIN];
	static char cgroups[MAX_CGROUPS][MAX_LINE];
	int njoin = 0, ncgroup = 0, cloneflags = 0, program = 0;
	char timeoff[MAX_LINE] = "";
	char line[MAX_LINE];

	// The message comes whole after a line with its size, and is read in
	// one go (line by line, byte by byte, it took hundreds of reads).
	static char msgbuf[MAX_MSG + 1];
	if (readline(line, sizeof(line)) < 0 || strncmp(line, "size ", 5) != 0)
		bail("read bootstrap message size");
	long msglen = strtol(line + 5, NULL, 10);
	if (msglen <= 0 || msglen > MAX_MSG)
		bail("bad bootstrap message size %ld", msglen);
	readall(msgbuf, (size_t)msglen);
	msgbuf[msglen] = '\0';
	char *next = msgbuf;
	for (;;) {
		char *nl = strchr(next, '\n');
		if (nl == NULL)
			bail("bootstrap message without end");
		*nl = '\0';
		size_t linelen = (size_t)(nl - next);
		if (linelen >= sizeof(line))
			bail("bootstrap line too long");
		memcpy(line, next, linelen + 1);
		next = nl + 1;
		if (strcmp(line, "end") == 0)
			break;
		if (strncmp(line, "join ", 5) == 0) {
			char *type = line + 5, *path = strchr(type, ' ');
			if (path == NULL || njoin >= MAX_JOIN)
				bail("bad join line");
			*path++ = '\0';
			int flag = nsflag(type);
			if (flag == 0)
				bail("unknown namespace type %s", type);
			joins[njoin].flag = flag;
			snprintf(joins[njoin].path, sizeof(joins[njoin].path), "%s", path);
			njoin++;
		} else if (strncmp(line, "cgroup ", 7) == 0) {
			if (ncgroup >= MAX_CGROUPS)
				bail("too many cgroup lines");
			snprintf(cgroups[ncgroup++], MAX_LINE, "%s", line + 7);
		} else if (strncmp(line, "clone ", 6) == 0) {
			cloneflags = (int)strtol(line + 6, NULL, 10);
		} else if (strcmp(line, "program") == 0) {
			program = 1;
		} else if (strncmp(line, "timeoff ", 8) == 0) {
			size_t used = strlen(timeoff);
			snprintf(timeoff + used, sizeof(timeoff) - used, "%s\n", line + 8);
		} else {
			bail("unknown bootstrap line");
		}
	}

	// The container's cgroup v1 hierarchies, before anything else, while
	// still in the host's namespaces (the v2 cgroup, if any, we were born
	// in). Children made from here on are born in them.
	for (int i = 0; i < ncgroup; i++)
		join_cgroup(cgroups[i]);

	// 2. Join. Every path is opened first: after entering a mount
	// namespace, /proc/PID/ns paths would resolve in the container. The
	// user namespace goes first, so that the others (owned by it) can be
	// joined with the capabilities it grants.
	for (int i = 0; i < njoin; i++)
		open_ns(&joins[i]);
	for (int i = 0; i < njoin; i++)
		if (joins[i].flag == CLONE_NEWUSER)
			join_ns(&joins[i]);
	for (int i = 0; i < njoin; i++)
		if (joins[i].flag != CLONE_NEWUSER)
			join_ns(&joins[i]);
	int joined_user = 0, joined_pid = 0, joined_time = 0;
	for (int i = 0; i < njoin; i++) {
		joined_user |= joins[i].flag == CLONE_NEWUSER;
		joined_pid |= joins[i].flag == CLONE_NEWPID;
		joined_time |= joins[i].flag == CLONE_NEWTIME;
	}
	if (joined_user) {
		// Become root of the joined user namespace where it is mapped.
		if (setresgid(0, 0, 0) < 0 && errno != EINVAL)
			bail("setresgid in joined user namespace");
		if (setresuid(0, 0, 0) < 0 && errno != EINVAL)
			bail("setresuid in joined user namespace");
	}

	// 3. A new user namespace: the parent writes the maps.
	if (cloneflags & CLONE_NEWUSER) {
		if (unshare(CLONE_NEWUSER) < 0)
			bail("unshare user namespace");
		// The parent opens /proc/<pid>/uid_map: allow it for a moment.
		prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
		writeall("U\n", 2);
		if (readline(line, sizeof(line)) < 0 || strcmp(line, "u") != 0)
			bail("parent did not write id maps");
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
		if (setresgid(0, 0, 0) < 0 && errno != EINVAL)
			bail("setresgid in new user namespace");
		if (setresuid(0, 0, 0) < 0 && errno != EINVAL)
			bail("setresuid in new user namespace");
	}

	// 4. The other new namespaces. The cgroup namespace is not among
	// them: it must be rooted at the container's cgroup, and where systemd
	// places the process the parent moves it while the Go runtime starts;
	// the init makes it once in place.
	int rest = cloneflags & ~CLONE_NEWUSER;
	if (rest & CLONE_NEWCGROUP)
		bail("internal: the cgroup namespace is made by the init, not here");
	if (rest && unshare(rest) < 0)
		bail("unshare namespaces 0x%x", rest);
	if ((rest & CLONE_NEWTIME) && timeoff[0] != '\0') {
		prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
		write_file("/proc/self/timens_offsets", timeoff);
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	}

	// 5. PID and time namespaces take effect for children only.
	char msg[64];
	if ((rest & (CLONE_NEWPID | CLONE_NEWTIME)) || joined_pid || joined_time) {
		pid_t pid = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, NULL, NULL, NULL, NULL);
		if (pid < 0)
			bail("clone into pid namespace");
		if (pid > 0) {
			int l = snprintf(msg, sizeof(msg), "P %d\n", pid);
			writeall(msg, (size_t)l);
			_exit(0);
		}
		// The child is the container's process; it outlives the brig
		// command that created it, so no parent-death signal is set.
	} else {
		int l = snprintf(msg, sizeof(msg), "P %d\n", getpid());
		writeall(msg, (size_t)l);
	}
	// 6. The init program, where brig compiled one; else return, and the
	// Go runtime starts now, in the namespaces.
	if (program)
		brig_run_program(bootfd);
}
