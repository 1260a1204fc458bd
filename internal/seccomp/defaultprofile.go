package seccomp

import (
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// brig's built-in default profile: an allow-list with the effect of
// Docker's default (the same calls allowed under the same capability and
// architecture conditions; the differential test in default_test.go checks
// that against moby/profiles). It is written here by purpose rather than as
// one flat list, so a reader can see what each group is for. Everything not
// listed fails with EPERM, and calls newer than the profile with ENOSYS
// (see enosys.go), so libc falls back.

// allowed by every container.
var baseAllow = [][]string{
	// files and directories
	{"access", "chdir", "chmod", "chown", "chown32", "close", "close_range", "copy_file_range", "creat", "dup", "dup2", "dup3",
		"faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32",
		"fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fremovexattr", "fsetxattr", "fstat", "fstat64",
		"fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64", "getcwd", "getdents", "getdents64", "getxattr",
		"inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "lchown", "lchown32", "lgetxattr", "link", "linkat",
		"listxattr", "llistxattr", "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "mkdir", "mkdirat", "mknod", "mknodat",
		"newfstatat", "open", "openat", "openat2", "pread64", "preadv", "preadv2", "pwrite64", "pwritev", "pwritev2", "read", "readahead",
		"readlink", "readlinkat", "readv", "removexattr", "rename", "renameat", "renameat2", "rmdir", "sendfile", "sendfile64",
		"setxattr", "splice", "stat", "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync", "sync_file_range",
		"syncfs", "tee", "truncate", "truncate64", "umask", "unlink", "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes",
		"vmsplice", "write", "writev", "_llseek", "_newselect", "chmod", "fanotify_mark", "futimesat", "getxattrat", "listxattrat",
		"removexattrat", "setxattrat", "name_to_handle_at", "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self",
		"memfd_create", "memfd_secret"},
	// asynchronous and multiplexed I/O
	{"epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old",
		"eventfd", "eventfd2", "io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64", "io_setup", "io_submit",
		"ioctl", "poll", "ppoll", "ppoll_time64", "pselect6", "pselect6_time64", "select", "signalfd", "signalfd4", "timerfd_create",
		"timerfd_gettime", "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "pipe", "pipe2", "futex", "futex_requeue",
		"futex_time64", "futex_wait", "futex_waitv", "futex_wake", "get_robust_list", "set_robust_list", "rseq", "restart_syscall",
		"cachestat", "map_shadow_stack"},
	// memory
	{"brk", "madvise", "membarrier", "mincore", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mremap", "msync",
		"munlock", "munlockall", "munmap", "pkey_alloc", "pkey_free", "pkey_mprotect", "remap_file_pages", "mseal"},
	// processes, credentials and scheduling
	{"capget", "capset", "exit", "exit_group", "execve", "execveat", "fork", "vfork", "getegid", "getegid32", "geteuid", "geteuid32",
		"getgid", "getgid32", "getgroups", "getgroups32", "getitimer", "getpgid", "getpgrp", "getpid", "getppid", "getpriority",
		"getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit", "getrusage", "getsid", "gettid", "getuid",
		"getuid32", "ioprio_get", "ioprio_set", "prctl", "prlimit64", "sched_get_priority_max", "sched_get_priority_min",
		"sched_getaffinity", "sched_getattr", "sched_getparam", "sched_getscheduler", "sched_rr_get_interval",
		"sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield",
		"setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer", "setpgid",
		"setpriority", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32",
		"setrlimit", "setsid", "setuid", "setuid32", "set_tid_address", "set_thread_area", "get_thread_area", "times", "uname",
		"ugetrlimit", "wait4", "waitid", "waitpid", "pidfd_open", "pidfd_send_signal", "alarm", "pause",
		"kill", "tkill", "tgkill", "process_mrelease", "seccomp"},
	// signals
	{"rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
		"rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sigaltstack", "sigprocmask", "sigreturn"},
	// time
	{"adjtimex", "clock_adjtime", "clock_adjtime64", "clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
		"clock_nanosleep_time64", "gettimeofday", "nanosleep", "time", "timer_create", "timer_delete", "timer_getoverrun",
		"timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64"},
	// networking
	{"accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt", "listen", "recv", "recvfrom", "recvmmsg",
		"recvmmsg_time64", "recvmsg", "send", "sendmmsg", "sendmsg", "sendto", "setsockopt", "shutdown", "socketcall", "socketpair"},
	// System V and POSIX IPC
	{"ipc", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend",
		"mq_timedsend_time64", "mq_unlink", "msgctl", "msgget", "msgrcv", "msgsnd", "semctl", "semget", "semop", "semtimedop",
		"semtimedop_time64", "shmat", "shmctl", "shmdt", "shmget"},
	// misc information
	{"sysinfo", "getcpu", "uname"},
}

// socketFamilies lists the address families socket(2) may create: the
// common ones; old or rarely used protocol stacks (AX.25, IPX, AppleTalk,
// NET/ROM, ROSE, DECnet, Econet, ATM, IrDA...) stay denied.
var socketFamilies = []uint64{0, 1, 2, 7, 8, 9, 10, 13, 14, 15, 16, 17, 18, 21, 22, 24, 26, 27, 28, 29, 30, 31, 32, 33, 35, 36, 39, 41, 42, 43, 44, 45}

// personalities are the personality(2) values allowed: PER_LINUX,
// PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and the query 0xffffffff.
var personalities = []uint64{0, 8, 0x20000, 0x20008, 0xffffffff}

// namespaceFlags are the clone flags that create namespaces; without
// CAP_SYS_ADMIN a container may clone, but with none of them.
const namespaceFlags = 0x7E020000

// capGated groups are allowed only when the container holds the capability
// in its bounding set.
var capGated = []struct {
	cap   string
	names []string
}{
	{"CAP_DAC_READ_SEARCH", []string{"open_by_handle_at"}},
	{"CAP_SYS_ADMIN", []string{"bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "lookup_dcookie",
		"mount", "mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname",
		"setns", "syslog", "umount", "umount2", "unshare", "listmount", "statmount"}},
	{"CAP_SYS_BOOT", []string{"reboot"}},
	{"CAP_SYS_CHROOT", []string{"chroot"}},
	{"CAP_SYS_MODULE", []string{"delete_module", "init_module", "finit_module"}},
	{"CAP_SYS_PACCT", []string{"acct"}},
	{"CAP_SYS_PTRACE", []string{"kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"}},
	{"CAP_SYS_RAWIO", []string{"iopl", "ioperm"}},
	{"CAP_SYS_TIME", []string{"settimeofday", "stime", "clock_settime", "clock_settime64"}},
	{"CAP_SYS_TTY_CONFIG", []string{"vhangup"}},
	{"CAP_SYS_NICE", []string{"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"}},
	{"CAP_SYSLOG", []string{"syslog"}},
	{"CAP_BPF", []string{"bpf"}},
	{"CAP_PERFMON", []string{"perf_event_open"}},
}

// archOnly groups are allowed on some architectures only.
var archOnly = []struct {
	arches []string // GOARCH-style names as libseccomp spells them
	names  []string
}{
	{[]string{"ppc64le"}, []string{"sync_file_range2", "swapcontext"}},
	{[]string{"arm", "arm64"}, []string{"arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls"}},
	{[]string{"amd64", "x32"}, []string{"arch_prctl"}},
	{[]string{"amd64", "x32", "x86"}, []string{"modify_ldt"}},
	{[]string{"s390", "s390x"}, []string{"s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"}},
	{[]string{"riscv64"}, []string{"riscv_flush_icache"}},
}

// since48 are allowed from kernel 4.8, where ptrace can no longer be used
// to bypass seccomp.
var since48 = []string{"process_vm_readv", "process_vm_writev", "ptrace"}

// DefaultProfile returns the built-in profile for a container whose
// bounding set is bounding, on the running architecture (native plus its
// compat arches).
func DefaultProfile(bounding []string, arch string, kernelAtLeast48 bool) *specs.LinuxSeccomp {
	eperm := uint(1)
	enosys := uint(38)
	p := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: &eperm}
	switch arch {
	case "amd64":
		p.Architectures = []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}
	case "arm64":
		p.Architectures = []specs.Arch{specs.ArchAARCH64, specs.ArchARM}
	case "s390x":
		p.Architectures = []specs.Arch{specs.ArchS390X, specs.ArchS390}
	case "ppc64le":
		p.Architectures = []specs.Arch{specs.ArchPPC64LE}
	case "riscv64":
		p.Architectures = []specs.Arch{specs.ArchRISCV64}
	}
	var names []string
	for _, g := range baseAllow {
		names = append(names, g...)
	}
	for _, g := range archOnly {
		if slices.Contains(g.arches, arch) || (arch == "amd64" && slices.Contains(g.arches, "x32")) {
			names = append(names, g.names...)
		}
	}
	if kernelAtLeast48 {
		names = append(names, since48...)
	}
	has := func(c string) bool { return slices.Contains(bounding, c) }
	for _, g := range capGated {
		if has(g.cap) {
			names = append(names, g.names...)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	// Leave out calls this host's libseccomp doesn't know (they would
	// only be skipped with a warning when compiled).
	names = slices.DeleteFunc(names, func(n string) bool {
		_, err := libseccomp.GetSyscallFromName(n)
		return err != nil
	})
	p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: names, Action: specs.ActAllow})
	for _, v := range personalities {
		p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: []string{"personality"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: v, Op: specs.OpEqualTo}}})
	}
	p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: []string{"socket"}, Action: specs.ActAllow,
		Args: []specs.LinuxSeccompArg{{Index: 0, Value: 3, Op: specs.OpLessThan}}})
	for _, f := range socketFamilies {
		if f < 3 {
			continue
		}
		p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: []string{"socket"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: f, Op: specs.OpEqualTo}}})
	}
	// Typing into a terminal (TIOCSTI) and pasting its selection
	// (TIOCLINUX) push input into another program's terminal (CVE-2017-5226's
	// class): refused although ioctl is allowed — a rule with argument
	// checks comes before one without (see compiler.go). The kernel reads
	// the request as 32 bits, so only those are compared.
	p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: []string{"ioctl"}, Action: specs.ActErrno, ErrnoRet: &eperm,
		Args: []specs.LinuxSeccompArg{{Index: 1, Value: 0xffffffff, ValueTwo: unix.TIOCSTI, Op: specs.OpMaskedEqual}}},
		specs.LinuxSyscall{Names: []string{"ioctl"}, Action: specs.ActErrno, ErrnoRet: &eperm,
			Args: []specs.LinuxSeccompArg{{Index: 1, Value: 0xffffffff, ValueTwo: unix.TIOCLINUX, Op: specs.OpMaskedEqual}}})
	if !has("CAP_SYS_ADMIN") {
		// clone without namespace flags (the flags are argument 1 on s390).
		idx := uint(0)
		if arch == "s390" || arch == "s390x" {
			idx = 1
		}
		p.Syscalls = append(p.Syscalls,
			specs.LinuxSyscall{Names: []string{"clone"}, Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{{Index: idx, Value: namespaceFlags, ValueTwo: 0, Op: specs.OpMaskedEqual}}},
			// clone3's flags are in memory seccomp can't read: make libc
			// fall back to clone, which can be checked.
			specs.LinuxSyscall{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys})
	}
	return p
}

// CapabilityFor is the capability under which the built-in profile allows
// a call ("" if none does).
func CapabilityFor(name string) string {
	for _, g := range capGated {
		if slices.Contains(g.names, name) {
			return g.cap
		}
	}
	return ""
}

// Tracing are the calls by which one process reads or changes another's
// memory or takes its files (each needs ptrace access to it).
var Tracing = []string{"ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "process_madvise", "kcmp"}

// DenyTracing takes the Tracing calls out of p's allow rules and refuses
// them with EPERM by a rule of their own (so explain and reports name it):
// within one sandbox, a process can't attach to, read or write another.
func DenyTracing(p *specs.LinuxSeccomp) {
	for i := range p.Syscalls {
		if p.Syscalls[i].Action == specs.ActAllow {
			p.Syscalls[i].Names = slices.DeleteFunc(slices.Clone(p.Syscalls[i].Names), func(n string) bool { return slices.Contains(Tracing, n) })
		}
	}
	p.Syscalls = slices.DeleteFunc(p.Syscalls, func(s specs.LinuxSyscall) bool { return len(s.Names) == 0 })
	eperm := uint(1)
	var known []string
	for _, n := range Tracing {
		if _, err := libseccomp.GetSyscallFromName(n); err == nil {
			known = append(known, n)
		}
	}
	p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: known, Action: specs.ActErrno, ErrnoRet: &eperm})
}

// DenySockets makes p refuse socket(2) (and x86's socketcall) with
// EACCES, whatever its other rules say: for brig run without a network
// namespace and without --net host, where nothing else keeps the command
// off the network. socketpair stays.
func DenySockets(p *specs.LinuxSeccomp) {
	calls := []string{"socket", "socketcall"}
	for i := range p.Syscalls {
		p.Syscalls[i].Names = slices.DeleteFunc(slices.Clone(p.Syscalls[i].Names), func(n string) bool { return slices.Contains(calls, n) })
	}
	p.Syscalls = slices.DeleteFunc(p.Syscalls, func(s specs.LinuxSyscall) bool { return len(s.Names) == 0 })
	eacces := uint(unix.EACCES)
	p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: calls, Action: specs.ActErrno, ErrnoRet: &eacces})
}
