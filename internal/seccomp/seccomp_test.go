package seccomp

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestCompile(t *testing.T) {
	one := uint(1)
	for _, tc := range []struct {
		name    string
		sc      specs.LinuxSeccomp
		wantErr string
		flags   uintptr
		warn    bool
	}{
		{name: "deny list", sc: specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno, ErrnoRet: &one}}},
			flags: 0},
		{name: "allow list with args", sc: specs.LinuxSeccomp{DefaultAction: specs.ActErrno,
			Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
			Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "write"}, Action: specs.ActAllow},
				{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
					{Index: 0, Value: 0, Op: specs.OpEqualTo}, {Index: 0, Value: 8, Op: specs.OpEqualTo}}}}},
			flags: 0},
		{name: "log flag", sc: specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog}},
			flags: unix.SECCOMP_FILTER_FLAG_LOG},
		{name: "notify", sc: specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/x",
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActNotify}}},
			flags: unix.SECCOMP_FILTER_FLAG_NEW_LISTENER},
		{name: "unknown syscall warns", sc: specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"nosuchcall"}, Action: specs.ActErrno}}},
			flags: 0, warn: true},
		{name: "bad action", sc: specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_NOPE"}, wantErr: "defaultAction"},
		{name: "bad arch", sc: specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{"SCMP_ARCH_Z80"}}, wantErr: "architectures[0]"},
		{name: "bad op", sc: specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"},
			Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Op: "NOPE"}}}}}, wantErr: "args[0].op"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, warn, err := Compile(&tc.sc)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Insns) < 4 {
				t.Errorf("program has %d instructions", len(p.Insns))
			}
			// A seccomp program starts by loading the arch field (offset 4).
			if p.Insns[0].Code != unix.BPF_LD|unix.BPF_W|unix.BPF_ABS || p.Insns[0].K != 4 {
				t.Errorf("first instruction %+v is not ld [arch]", p.Insns[0])
			}
			if p.Flags != tc.flags {
				t.Errorf("flags %#x, want %#x", p.Flags, tc.flags)
			}
			if (len(warn) > 0) != tc.warn {
				t.Errorf("warnings %v", warn)
			}
		})
	}
}
