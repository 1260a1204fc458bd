package seccomp

import (
	"fmt"
	"testing"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
)

var dockerCaps = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}

var allCaps = append(append([]string(nil), dockerCaps...), "CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_MODULE", "CAP_SYS_BOOT",
	"CAP_SYS_PACCT", "CAP_SYS_RAWIO", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_SYS_NICE", "CAP_SYSLOG", "CAP_BPF", "CAP_PERFMON",
	"CAP_DAC_READ_SEARCH")

// TestDefaultMatchesDocker is the differential test of the built-in
// profile: for every syscall libseccomp knows on x86_64, i386 and x32, with
// argument values that matter to the conditional rules, brig's compiled
// default gives the same verdict as Docker's default profile (moby/profiles)
// compiled the same way, for three bounding sets.
func TestDefaultMatchesDocker(t *testing.T) {
	for name, caps := range map[string][]string{"docker default caps": dockerCaps, "all caps": allCaps, "no caps": nil} {
		t.Run(name, func(t *testing.T) {
			spec := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}}
			docker, err := mobyseccomp.GetDefaultProfile(spec)
			if err != nil {
				t.Fatal(err)
			}
			ours := DefaultProfile(caps, "amd64", true)
			dp, _, err := Compile(docker)
			if err != nil {
				t.Fatal(err)
			}
			op, _, err := Compile(ours)
			if err != nil {
				t.Fatal(err)
			}
			argSets := [][6]uint64{{}, {8}, {0xffffffff}, {0x20008}, {10}, {40}, {3}, {0x10000000}, {0x00011200}, {1, 0x7E020000}}
			mismatches := 0
			seen := map[string]bool{}
			for _, arch := range []struct {
				name  string
				audit uint32
				lib   libseccomp.ScmpArch
			}{{"x86_64", AuditArchX86_64, libseccomp.ArchAMD64}, {"x86", AuditArchI386, libseccomp.ArchX86}, {"x32", AuditArchX86_64, libseccomp.ArchX32}} {
				for nr := int32(0); nr < 1100; nr++ {
					call := libseccomp.ScmpSyscall(nr)
					sysName, err := call.GetNameByArch(arch.lib)
					if err != nil {
						continue
					}
					realNr := nr
					if arch.name == "x32" {
						realNr = nr | 0x40000000
					}
					for _, args := range argSets {
						want, err1 := dp.Verdict(arch.audit, realNr, args)
						got, err2 := op.Verdict(arch.audit, realNr, args)
						if err1 != nil || err2 != nil {
							t.Fatalf("verdict: %v %v", err1, err2)
						}
						key := arch.name + " " + sysName
						if want != got && !seen[key] && mismatches < 200 {
							seen[key] = true
							mismatches++
							t.Errorf("%s %s(%#x): docker %s, brig %s", arch.name, sysName, args[0], ActionName(want), ActionName(got))
						}
					}
				}
			}
		})
	}
}

func ExampleActionName() {
	fmt.Println(ActionName(0x7fff0000), ActionName(0x00050001))
	// Output: allow errno 1 (EPERM)
}

func TestNewerSyscallsGetENOSYS(t *testing.T) {
	p := DefaultProfile(dockerCaps, "amd64", true)
	prog, _, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		arch uint32
		nr   int32
		want string
	}{
		{AuditArchX86_64, 999, "errno 38 (ENOSYS)"},            // newer than the profile
		{AuditArchX86_64, 0x40000000 | 999, "errno 1 (EPERM)"}, // x32 has no such rule
		{AuditArchX86_64, 246, "errno 1 (EPERM)"},              // kexec_load: known, denied
		{AuditArchX86_64, 0, "allow"},                          // read
		{AuditArchX86_64, 435, "errno 38 (ENOSYS)"},            // clone3 without CAP_SYS_ADMIN
		{AuditArchI386, 2000, "errno 38 (ENOSYS)"},             // i386 too
		{AuditArchI386, 3, "allow"},                            // i386 read
	} {
		v, err := prog.Verdict(tc.arch, tc.nr, [6]uint64{})
		if err != nil {
			t.Fatal(err)
		}
		if got := ActionName(v); got != tc.want {
			t.Errorf("arch %#x nr %d: %s, want %s", tc.arch, tc.nr, got, tc.want)
		}
	}
	// An allow-by-default profile gets no prefix.
	deny, _, err := Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno}}})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := deny.Verdict(AuditArchX86_64, 999, [6]uint64{}); ActionName(v) != "allow" {
		t.Errorf("allow-default profile: unknown call %s", ActionName(v))
	}
}

// TestDefaultRefusesTerminalInjection: the built-in profile refuses ioctl
// TIOCSTI and TIOCLINUX (whatever the request's upper 32 bits, which the
// kernel ignores) on every ABI, while other requests pass: the only
// place it is stricter than Docker's.
func TestDefaultRefusesTerminalInjection(t *testing.T) {
	p, _, err := Compile(DefaultProfile(dockerCaps, "amd64", true))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range probeArches {
		if a.audit != AuditArchX86_64 && a.audit != AuditArchI386 {
			continue
		}
		ab, _ := abiOf(specArch(a.name))
		nr := int32(numbers(ab, "ioctl")[0].nr) | a.bit
		for _, tc := range []struct {
			req  uint64
			want string
		}{{0x5412, "errno 1 (EPERM)"}, {0x100005412, "errno 1 (EPERM)"}, {0x541c, "errno 1 (EPERM)"}, {0x5413, "allow"}, {0x5401, "allow"}, {0x5411, "allow"}} {
			v, err := p.Verdict(a.audit, nr, [6]uint64{0, tc.req})
			if err != nil {
				t.Fatal(err)
			}
			if got := ActionName(v); got != tc.want {
				t.Errorf("%s ioctl(0, %#x): %s, want %s", a.name, tc.req, got, tc.want)
			}
		}
	}
}
