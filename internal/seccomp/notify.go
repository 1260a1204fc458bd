package seccomp

import (
	"errors"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ToNotify rewrites sc in place so that the calls a listener of brig's
// must see reach it (SCMP_ACT_NOTIFY) instead of being answered by the
// kernel: for a denial report, the default errno and every errno rule
// without argument conditions; with calls (learning), every allow, log
// and errno action, the default's and every rule's, whatever its
// conditions. Kill, trap and trace actions stay the kernel's. The
// listener answers each call as the profile before the rewrite would
// (Evaluator on its compiled program), so the workload sees no
// difference but the time the answer takes.
func ToNotify(sc *specs.LinuxSeccomp, calls bool) error {
	if UsesNotify(sc) {
		return errors.New("linux.seccomp sends calls to its own agent (SCMP_ACT_NOTIFY): brig can't be the listener too")
	}
	rewrite := func(a specs.LinuxSeccompAction, conditional bool) bool {
		switch a {
		case specs.ActErrno:
			return calls || !conditional
		case specs.ActAllow, specs.ActLog:
			return calls
		}
		return false
	}
	if rewrite(sc.DefaultAction, false) {
		sc.DefaultAction, sc.DefaultErrnoRet = specs.ActNotify, nil
	}
	for i := range sc.Syscalls {
		s := &sc.Syscalls[i]
		if rewrite(s.Action, len(s.Args) > 0) {
			s.Action, s.ErrnoRet = specs.ActNotify, nil
		}
	}
	return nil
}
