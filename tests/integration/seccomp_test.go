package integration

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
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
	// Denied, sleep returns at once: 0 s, or 1 if a second boundary fell
	// between the two date calls; allowed, it would be 2.
	if !strings.Contains(out, "slept=0") && !strings.Contains(out, "slept=1") {
		t.Errorf("denied clock_nanosleep: %q", out)
	}
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

// TestBuiltinDefaultProfile: the profile `brig seccomp default` prints,
// put in config.json, lets an ordinary workload run and denies what
// Docker's default denies — here unshare, even with CAP_SYS_ADMIN granted,
// because the profile was made for the default capability set.
func TestBuiltinDefaultProfile(t *testing.T) {
	e := newEnv(t, "sh", "-c", "ls / >/dev/null && echo works; unshare -m true 2>&1; grep Seccomp: /proc/self/status")
	r := e.brig("seccomp", "default")
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	var sc specs.LinuxSeccomp
	if err := json.Unmarshal([]byte(r.stdout), &sc); err != nil {
		t.Fatal(err)
	}
	e.spec.Linux.Seccomp = &sc
	c := append([]string{"CAP_SYS_ADMIN"}, e.spec.Process.Capabilities.Bounding...)
	e.spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: c, Effective: c, Permitted: c}
	out := e.mustRun()
	contains(t, out, "works", "ordinary calls")
	contains(t, out, "Operation not permitted", "unshare denied by the profile")
	contains(t, out, "Seccomp:\t2", "filter mode")
}

func TestSeccompCLI(t *testing.T) {
	e := newEnv(t, "true")
	dir := t.TempDir()
	deny := filepath.Join(dir, "deny.json")
	os.WriteFile(deny, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["clock_nanosleep"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644)
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_NOPE"}]}`), 0o644)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"seccomp", "test", deny, "clock_nanosleep"}, 0, "errno 1 (EPERM)"},
		{[]string{"seccomp", "test", deny, "read"}, 0, "allow"},
		{[]string{"seccomp", "test", "default", "keyctl"}, 0, "errno 1 (EPERM)"},
		{[]string{"seccomp", "test", "default", "personality", "0xffffffff"}, 0, "allow"},
		{[]string{"seccomp", "test", "default", "personality", "0x1"}, 0, "EPERM"},
		{[]string{"seccomp", "test", "--arch", "x86", "default", "read"}, 0, "allow"},
		{[]string{"seccomp", "check", deny}, 0, "valid"},
		{[]string{"seccomp", "check", bad}, 1, "syscalls[0].action"},
		{[]string{"seccomp", "compile", "default"}, 0, "instructions"},
		{[]string{"seccomp", "compile", "--arch", "x86", "--dump", "default"}, 0, "ret #"},
		{[]string{"seccomp", "explain", "default"}, 0, "allow-list"},
		{[]string{"seccomp", "explain", deny}, 0, "deny-list"},
		{[]string{"seccomp", "diff", deny, deny}, 0, "no differences"},
		{[]string{"seccomp", "diff", deny, "default"}, 1, "keyctl"},
		{[]string{"seccomp", "test", deny, "no_such_call"}, 1, "unknown syscall"},
	} {
		var r result
		if tc.code == 1 && strings.Contains(strings.Join(tc.args, " "), "check") {
			r = e.brig(tc.args...)
			contains(t, r.stderr, tc.want, strings.Join(tc.args, " "))
		} else {
			r = e.brig(tc.args...)
			contains(t, r.stdout+r.stderr, tc.want, strings.Join(tc.args, " "))
		}
		if r.code != tc.code {
			t.Errorf("%v: exit %d, want %d", tc.args, r.code, tc.code)
		}
	}
}

// TestReportDenials: brig run --report-denials names the calls the profile
// denied, and the workload still sees the profile's errno.
func TestReportDenials(t *testing.T) {
	e := newEnv(t, "sh", "-c", "mkdir /tmp/a 2>&1; mkdir /tmp/b 2>&1; echo done")
	e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"})
	e.spec.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: errnoRet(13)}},
	}
	e.write()
	r := e.brig("run", "--report-denials", "--bundle", e.bundle, e.id)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	contains(t, r.stdout, "Permission denied", "the workload sees EACCES")
	contains(t, r.stdout, "done", "the workload goes on")
	if !strings.Contains(r.stderr, "mkdir (EACCES) ×2") && !strings.Contains(r.stderr, "mkdirat (EACCES) ×2") {
		t.Errorf("report: %s", r.stderr)
	}
}

// TestSeccompActions: every action, seen from outside.
func TestSeccompActions(t *testing.T) {
	for _, tc := range []struct {
		action specs.LinuxSeccompAction
		code   int
		stderr string
	}{
		{specs.ActAllow, 0, ""},
		{specs.ActLog, 0, ""},
		{specs.ActErrno, 1, "Operation not permitted"},
		{specs.ActTrace, 1, "Function not implemented"}, // no tracer: ENOSYS
		{specs.ActTrap, 128 + 31, ""},                   // SIGSYS
		{specs.ActKill, 128 + 31, ""},
		{specs.ActKillThread, 128 + 31, ""},
		{specs.ActKillProcess, 128 + 31, ""},
	} {
		t.Run(string(tc.action), func(t *testing.T) {
			e := newEnv(t, "mkdir", "/tmp/x")
			e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"})
			e.spec.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
				Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: tc.action}}}
			r := e.run()
			if r.code != tc.code {
				t.Errorf("exit %d, want %d (stderr %s)", r.code, tc.code, r.stderr)
			}
			if tc.stderr != "" {
				contains(t, r.stderr, tc.stderr, "error seen by the process")
			}
		})
	}
}

// TestSeccompNotifyAgent: a seccomp agent at listenerPath gets runc's
// message (the container process state with the metadata, and the
// listener fd) and answers the calls: here it makes mkdir succeed without
// doing anything, which the workload can see.
func TestSeccompNotifyAgent(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "agent.sock")
	got := make(chan specs.ContainerProcessState, 1)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf, oob := make([]byte, 64<<10), make([]byte, 64)
		n, oobn, _, _, err := c.(*net.UnixConn).ReadMsgUnix(buf, oob)
		if err != nil {
			return
		}
		var st specs.ContainerProcessState
		json.Unmarshal(buf[:n], &st)
		got <- st
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		if len(msgs) == 0 {
			return
		}
		fds, _ := unix.ParseUnixRights(&msgs[0])
		if len(fds) == 0 {
			return
		}
		for {
			req, err := libseccomp.NotifReceive(libseccomp.ScmpFd(fds[0]))
			if err != nil {
				return
			}
			libseccomp.NotifRespond(libseccomp.ScmpFd(fds[0]), &libseccomp.ScmpNotifResp{ID: req.ID, Val: 0, Error: 0})
		}
	}()
	e := newEnv(t, "sh", "-c", "mkdir /tmp/x && echo mkdir-ok; ls /tmp | wc -l")
	e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"})
	e.spec.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: sock, ListenerMetadata: "hello agent",
		Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActNotify}}}
	out := e.mustRun()
	contains(t, out, "mkdir-ok", "the agent's answer")
	contains(t, out, "\n0\n", "the agent emulated mkdir: nothing was created")
	select {
	case st := <-got:
		if st.Metadata != "hello agent" || len(st.Fds) != 1 || st.Fds[0] != specs.SeccompFdName || st.State.ID != e.id || st.Pid <= 0 {
			t.Errorf("agent got %+v", st)
		}
	default:
		t.Error("the agent got no message")
	}
}

// TestSeccompCache: compiled filters are kept under the state root. Twenty
// containers starting at once with the engines' default profile all run
// under it and leave one whole entry; a corrupt entry is never loaded (the
// container still gets its filter, and the entry is replaced); another
// profile is another entry.
func TestSeccompCache(t *testing.T) {
	base := newEnv(t, "sh", "-c", "grep Seccomp: /proc/self/status; mkdir /tmp/d 2>&1; true")
	var def specs.LinuxSeccomp
	r := base.brig("seccomp", "default")
	if err := json.Unmarshal([]byte(r.stdout), &def); err != nil {
		t.Fatalf("brig seccomp default: %v", err)
	}
	cache := filepath.Join(base.root, ".seccomp-cache")
	runAll := func(n int, sc *specs.LinuxSeccomp) []result {
		var wg sync.WaitGroup
		out := make([]result, n)
		for i := range n {
			e := newEnv(t, base.spec.Process.Args...)
			e.root = base.root
			e.spec.Linux.Seccomp = sc
			e.write()
			wg.Add(1)
			go func() { defer wg.Done(); out[i] = e.brig("run", "--bundle", e.bundle, e.id) }()
		}
		wg.Wait()
		return out
	}
	entries := func() []string {
		ents, _ := os.ReadDir(cache)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return names
	}
	for i, r := range runAll(20, &def) {
		if r.code != 0 || !strings.Contains(r.stdout, "Seccomp:\t2") {
			t.Errorf("run %d: exit %d, %q, %s", i, r.code, r.stdout, r.stderr)
		}
	}
	names := entries()
	if len(names) != 1 {
		t.Fatalf("cache entries after 20 first uses: %v", names)
	}
	if fi, err := os.Stat(cache); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("cache directory: %v, %v", fi.Mode(), err)
	}
	// Corrupt the entry: the next container still runs under the profile.
	entry := filepath.Join(cache, names[0])
	// Right key and format, a one-instruction program, a wrong digest:
	// loaded, it would fail the container (the kernel refuses a program
	// without a return).
	os.WriteFile(entry, []byte(`{"key": "`+names[0]+`", "format": "brig-seccomp-cache-1", "program": {"insns": "AAAAAAAAAAA="}, "sum": "x"}`), 0o600)
	for _, r := range runAll(1, &def) {
		if r.code != 0 || !strings.Contains(r.stdout, "Seccomp:\t2") {
			t.Errorf("after a corrupt entry: exit %d, %q, %s", r.code, r.stdout, r.stderr)
		}
	}
	if data, _ := os.ReadFile(entry); strings.Contains(string(data), `"sum": "x"`) || !strings.Contains(string(data), `"format"`) {
		t.Errorf("the corrupt entry was not replaced: %.80s", data)
	}
	// Another profile: its own entry, its own verdicts.
	deny := def
	deny.Syscalls = nil
	for _, sc := range def.Syscalls {
		sc.Names = slices.DeleteFunc(slices.Clone(sc.Names), func(n string) bool { return n == "mkdir" || n == "mkdirat" })
		if len(sc.Names) > 0 {
			deny.Syscalls = append(deny.Syscalls, sc)
		}
	}
	for _, r := range runAll(1, &deny) {
		if r.code != 0 || !strings.Contains(r.stdout, "Operation not permitted") {
			t.Errorf("changed profile: exit %d, %q, %s", r.code, r.stdout, r.stderr)
		}
	}
	if n := len(entries()); n != 2 {
		t.Errorf("cache entries after a second profile: %d", n)
	}
}
