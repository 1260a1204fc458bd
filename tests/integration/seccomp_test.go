package integration

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func errnoRet(n uint) *uint { return &n }

func TestSeccompDenyList(t *testing.T) {
	// The classic Kubernetes example: deny clock_nanosleep and sleep
	// fails. busybox sleep ignores the error, so measure the time slept.
	e := newEnv(t, "sh", "-c", "a=$(date +%s); sleep 2; b=$(date +%s); echo slept=$((b-a)); mkdir /tmp/d 2>&1; grep Seccomp: /proc/self/status")
	e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"})
	e.spec.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"clock_nanosleep", "nanosleep"}, Action: specs.ActErrno, ErrnoRet: errnoRet(1)},
			{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: errnoRet(13)},
		},
	}
	out := e.mustRun()
	contains(t, out, "slept=0", "denied clock_nanosleep")
	contains(t, out, "Permission denied", "mkdir gets errnoRet EACCES")
	contains(t, out, "Seccomp:\t2", "filter mode")
}

func TestSeccompAllowListAndArgs(t *testing.T) {
	// Default errno, an argument filter: personality(0xffffffff) (query)
	// allowed, other personality values denied.
	e := newEnv(t, "sh", "-c", "echo ok")
	e.spec.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"uname"}, Action: specs.ActErrno, ErrnoRet: errnoRet(1),
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0, Op: specs.OpEqualTo}}},
		},
	}
	out := e.mustRun()
	contains(t, out, "ok", "args filter on a non-matching value lets the call through")
}

func TestSeccompKill(t *testing.T) {
	e := newEnv(t, "mkdir", "/x")
	e.spec.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActKillProcess}},
	}
	r := e.run()
	if r.code != 128+31 {
		t.Errorf("SCMP_ACT_KILL_PROCESS: exit %d, want %d (SIGSYS)", r.code, 128+31)
	}
	notContains(t, r.stderr, "Read-only", "mkdir never reached the kernel's checks")
}

func TestSeccompUnknownSyscallSkipped(t *testing.T) {
	e := newEnv(t, "echo", "ran")
	e.spec.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"no_such_syscall_xyz"}, Action: specs.ActErrno}},
	}
	r := e.run()
	if r.code != 0 {
		t.Fatalf("unknown syscall name failed the container: %s", r.stderr)
	}
	contains(t, r.stdout, "ran", "output")
	contains(t, r.stderr, "no_such_syscall_xyz", "warning names the syscall")
}

func TestSeccompWithoutNoNewPrivs(t *testing.T) {
	// Loaded while CAP_SYS_ADMIN is still held, before capabilities drop.
	e := newEnv(t, "sh", "-c", "grep -E 'Seccomp:|NoNewPrivs' /proc/self/status")
	e.spec.Process.NoNewPrivileges = false
	e.spec.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"kexec_load"}, Action: specs.ActErrno}}}
	out := e.mustRun()
	contains(t, out, "NoNewPrivs:\t0", "no_new_privs off")
	contains(t, out, "Seccomp:\t2", "filter loaded anyway")
}
