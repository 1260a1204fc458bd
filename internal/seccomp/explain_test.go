package seccomp

import (
	"runtime"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestTestExplainDiff(t *testing.T) {
	def := DefaultProfile(nil, runtime.GOARCH, true)
	for _, tc := range []struct {
		arch, name string
		args       [6]uint64
		want       uint32
	}{
		{"x86_64", "read", [6]uint64{}, unix.SECCOMP_RET_ALLOW},
		{"amd64", "getpid", [6]uint64{}, unix.SECCOMP_RET_ALLOW},
		{"x86_64", "unshare", [6]uint64{unix.CLONE_NEWUSER}, unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		{"x86_64", "kexec_load", [6]uint64{}, unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		{"x32", "read", [6]uint64{}, unix.SECCOMP_RET_ALLOW},
		{"x86", "read", [6]uint64{}, unix.SECCOMP_RET_ALLOW},
	} {
		v, err := Test(def, tc.arch, tc.name, tc.args)
		if err != nil || v != tc.want {
			t.Errorf("%s %s%v: %#x, %v; want %#x", tc.arch, tc.name, tc.args, v, err, tc.want)
		}
	}
	if _, err := Test(def, "sparc", "read", [6]uint64{}); err == nil {
		t.Errorf("an unknown architecture was taken")
	}
	var b strings.Builder
	Explain(&b, def)
	for _, want := range []string{"an allow-list", "ENOSYS"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("explain: no %q in %s", want, b.String())
		}
	}
	b.Reset()
	if n, err := Diff(&b, def, def, "a", "b"); err != nil || n != 0 || !strings.Contains(b.String(), "no differences") {
		t.Errorf("diff of a profile with itself: %d, %v, %s", n, err, b.String())
	}
	deny := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno}}}
	allow := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
	b.Reset()
	if n, err := Diff(&b, allow, deny, "allow", "deny"); err != nil || n == 0 || !strings.Contains(b.String(), "mkdir") {
		t.Errorf("diff allow/deny: %d, %v, %s", n, err, b.String())
	}
	if got := CheckRules(&specs.LinuxSeccomp{Syscalls: []specs.LinuxSyscall{
		{Names: []string{"read"}, Action: specs.ActAllow}, {Names: []string{"read"}, Action: specs.ActErrno}}}); len(got) != 1 || !strings.Contains(got[0], "conflicts") {
		t.Errorf("check rules: %q", got)
	}
}
