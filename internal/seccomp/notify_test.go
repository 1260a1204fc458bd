package seccomp

import (
	"testing"

	libseccomp "github.com/seccomp/libseccomp-golang"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ToNotify sends a listener what it must see and nothing else: denials
// for a report (conditional ones keep their errno), every allowed and
// denied call for learning; kill and trap stay the kernel's. The rewritten
// profile still compiles, and its verdicts are "notify" exactly where the
// listener is asked. The forks and the signal mask stay the kernel's when
// learning (a call waiting for the listener fails with EINTR under a
// pending signal), with their conditions: clone with a namespace flag is
// still not allowed. Where the default allows, they stay allowed.
func TestToNotify(t *testing.T) {
	errno := uint(unix.EACCES)
	base := func() *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{
			DefaultAction: specs.ActErrno,
			Architectures: []specs.Arch{specs.ArchX86_64},
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"read", "fork", "rt_sigprocmask", "write"}, Action: specs.ActAllow},
				{Names: []string{"clone"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: unix.CLONE_NEWNS, Op: specs.OpMaskedEqual}}},
				{Names: []string{"mkdir"}, Action: specs.ActErrno, ErrnoRet: &errno},
				{Names: []string{"personality"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 8, Op: specs.OpEqualTo}}},
				{Names: []string{"getpid"}, Action: specs.ActLog},
				{Names: []string{"kexec_load"}, Action: specs.ActKillProcess},
				{Names: []string{"uname"}, Action: specs.ActTrap},
			},
		}
	}
	const notify = unix.SECCOMP_RET_USER_NOTIF
	for _, tc := range []struct {
		name  string
		calls bool
		want  map[string]uint32 // call → verdict's action, with 8 as the first argument
	}{
		{"report", false, map[string]uint32{
			"read": unix.SECCOMP_RET_ALLOW, "mkdir": notify, "personality": unix.SECCOMP_RET_ERRNO,
			"getpid": unix.SECCOMP_RET_LOG, "kexec_load": unix.SECCOMP_RET_KILL_PROCESS, "uname": unix.SECCOMP_RET_TRAP,
			"chroot": notify, "fork": unix.SECCOMP_RET_ALLOW, "clone": notify}},
		{"learn", true, map[string]uint32{
			"read": notify, "mkdir": notify, "personality": notify, "fork": unix.SECCOMP_RET_ALLOW,
			"rt_sigprocmask": unix.SECCOMP_RET_ALLOW, "clone": notify, "clone without a namespace flag": unix.SECCOMP_RET_ALLOW,
			"getpid": notify, "kexec_load": unix.SECCOMP_RET_KILL_PROCESS, "uname": unix.SECCOMP_RET_TRAP,
			"chroot": notify}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := base()
			if err := ToNotify(sc, tc.calls, nil); err != nil {
				t.Fatal(err)
			}
			p, _, err := Compile(sc)
			if err != nil {
				t.Fatal(err)
			}
			if !p.Notify {
				t.Fatal("the rewritten profile doesn't load with a listener")
			}
			e, err := p.Evaluator()
			if err != nil {
				t.Fatal(err)
			}
			nrs := map[string]int32{"read": unix.SYS_READ, "mkdir": unix.SYS_MKDIR, "personality": unix.SYS_PERSONALITY,
				"getpid": unix.SYS_GETPID, "kexec_load": unix.SYS_KEXEC_LOAD, "uname": unix.SYS_UNAME, "chroot": unix.SYS_CHROOT,
				"fork": unix.SYS_FORK, "rt_sigprocmask": unix.SYS_RT_SIGPROCMASK, "clone": unix.SYS_CLONE, "clone without a namespace flag": unix.SYS_CLONE}
			for call, want := range tc.want {
				arg := uint64(8)
				if call == "clone" {
					arg = unix.CLONE_NEWNS
				} else if call == "clone without a namespace flag" {
					arg = 0
				}
				v, err := e.Verdict(AuditArchX86_64, nrs[call], [6]uint64{arg})
				if err != nil {
					t.Fatal(err)
				}
				if got := v & unix.SECCOMP_RET_ACTION_FULL; got != want {
					t.Errorf("%s: %s, want %s", call, ActionName(v), ActionName(want))
				}
			}
		})
	}
	// Where the default allows, the kept calls are the kernel's too; the
	// rest goes to the listener.
	// So are those the caller keeps (write), unless watched (connect).
	sc := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno}}}
	if err := ToNotify(sc, true, []string{"write", "connect"}, "connect"); err != nil {
		t.Fatal(err)
	}
	p, _, err := Compile(sc)
	if err != nil {
		t.Fatal(err)
	}
	e, err := p.Evaluator()
	if err != nil {
		t.Fatal(err)
	}
	for nr, want := range map[int32]uint32{unix.SYS_RT_SIGPROCMASK: unix.SECCOMP_RET_ALLOW, unix.SYS_RT_SIGRETURN: unix.SECCOMP_RET_ALLOW,
		unix.SYS_VFORK: unix.SECCOMP_RET_ALLOW, unix.SYS_READ: notify, unix.SYS_MKDIR: notify,
		unix.SYS_WRITE: unix.SECCOMP_RET_ALLOW, unix.SYS_CONNECT: notify} {
		if v, err := e.Verdict(AuditArchX86_64, nr, [6]uint64{}); err != nil || v&unix.SECCOMP_RET_ACTION_FULL != want {
			t.Errorf("default allow, call %d: %s (%v), want %s", nr, ActionName(v), err, ActionName(want))
		}
	}
	// A profile with an agent of its own can't have brig as its listener.
	sc = base()
	sc.Syscalls[0].Action = specs.ActNotify
	if err := ToNotify(sc, true, nil); err == nil {
		t.Error("a profile that notifies an agent of its own was rewritten")
	}
}

// A watched call is sent to the listener even where the profile allows
// it — split out of a rule that allows it with others, or added where the
// default allows — and everything else keeps its action.
func TestToNotifyWatch(t *testing.T) {
	for _, tc := range []struct {
		name string
		sc   specs.LinuxSeccomp
	}{
		{"in an allow rule with others", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86_64},
			Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "connect", "write"}, Action: specs.ActAllow}}}},
		{"allowed by the default", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86_64},
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := tc.sc
			if err := ToNotify(&sc, false, nil, "connect"); err != nil {
				t.Fatal(err)
			}
			p, _, err := Compile(&sc)
			if err != nil {
				t.Fatal(err)
			}
			e, err := p.Evaluator()
			if err != nil {
				t.Fatal(err)
			}
			for nr, want := range map[int32]uint32{unix.SYS_CONNECT: unix.SECCOMP_RET_USER_NOTIF, unix.SYS_READ: unix.SECCOMP_RET_ALLOW, unix.SYS_WRITE: unix.SECCOMP_RET_ALLOW} {
				v, err := e.Verdict(AuditArchX86_64, nr, [6]uint64{})
				if err != nil {
					t.Fatal(err)
				}
				if got := v & unix.SECCOMP_RET_ACTION_FULL; got != want {
					t.Errorf("call %d: %s, want %s", nr, ActionName(v), ActionName(want))
				}
			}
		})
	}
}

// Whatever ToNotify keeps, the kernel answers a call as the profile did,
// or sends it to the listener (which answers as the profile did): never
// otherwise. Checked over every call number below 460 with a few
// argument values, for profiles where rule order decides (an allow rule
// that was the default's, so no rule, before an errno rule; an errno rule
// before an allow rule; conditional rules), a default allow and a default
// errno, and brig's default profile; and the kept calls the profile
// allows are the kernel's allow.
func TestToNotifyKeepsVerdicts(t *testing.T) {
	eacces := uint(unix.EACCES)
	arches := []specs.Arch{specs.ArchX86_64}
	keep := []string{"write", "read", "dup2", "pipe2", "close", "wait4"}
	for _, tc := range []struct {
		name    string
		sc      *specs.LinuxSeccomp
		allowed []string // kept calls the kernel must allow
	}{
		{"default allow, its allow rule before an errno rule", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: arches,
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"write", "read"}, Action: specs.ActAllow},
				{Names: []string{"write", "mkdir"}, Action: specs.ActErrno},
			}}, []string{"read", "close", "wait4"}},
		{"default errno, an errno rule before an allow rule", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: arches,
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"write"}, Action: specs.ActErrno, ErrnoRet: &eacces},
				{Names: []string{"write", "read", "close"}, Action: specs.ActAllow},
				{Names: []string{"dup2"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 1, Value: 2, Op: specs.OpLessEqual}}},
				{Names: []string{"pipe2"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 1, Value: 8, Op: specs.OpEqualTo}}},
				{Names: []string{"pipe2", "wait4"}, Action: specs.ActLog},
			}}, []string{"read", "close", "wait4"}},
		{"brig's default profile", DefaultProfile(nil, "amd64", true), []string{"read", "write", "close", "dup2", "pipe2", "wait4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig, _, err := Compile(tc.sc)
			if err != nil {
				t.Fatal(err)
			}
			oe, err := orig.Evaluator()
			if err != nil {
				t.Fatal(err)
			}
			sc := *tc.sc
			sc.Syscalls = append([]specs.LinuxSyscall(nil), tc.sc.Syscalls...)
			if err := ToNotify(&sc, true, keep); err != nil {
				t.Fatal(err)
			}
			p, _, err := Compile(&sc)
			if err != nil {
				t.Fatal(err)
			}
			e, err := p.Evaluator()
			if err != nil {
				t.Fatal(err)
			}
			for nr := int32(0); nr < 460; nr++ {
				for _, a := range []uint64{0, 1, 2, 3, 8} {
					args := [6]uint64{a, a, a}
					want, err1 := oe.Verdict(AuditArchX86_64, nr, args)
					got, err2 := e.Verdict(AuditArchX86_64, nr, args)
					if err1 != nil || err2 != nil {
						t.Fatal(err1, err2)
					}
					if got != want && got&unix.SECCOMP_RET_ACTION_FULL != unix.SECCOMP_RET_USER_NOTIF {
						t.Errorf("call %d, arguments %d: %s, the profile said %s", nr, a, ActionName(got), ActionName(want))
					}
				}
			}
			for _, n := range tc.allowed {
				nr, err := libseccomp.GetSyscallFromName(n)
				if err != nil {
					t.Fatal(err)
				}
				if v, _ := e.Verdict(AuditArchX86_64, int32(nr), [6]uint64{}); v&unix.SECCOMP_RET_ACTION_FULL != unix.SECCOMP_RET_ALLOW && v&unix.SECCOMP_RET_ACTION_FULL != unix.SECCOMP_RET_LOG {
					t.Errorf("%s, kept and allowed by the profile: %s", n, ActionName(v))
				}
			}
		})
	}
}
