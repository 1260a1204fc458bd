package seccomp

import (
	"errors"
	"slices"

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
//
// watch names calls the listener must see even when allowed (a denial
// report's connect, whose refusal by Landlock's port rule no layer
// reports): their allow and log rules are split out as notify rules.
func ToNotify(sc *specs.LinuxSeccomp, calls bool, watch ...string) error {
	if UsesNotify(sc) {
		return errors.New("linux.seccomp sends calls to its own agent (SCMP_ACT_NOTIFY): brig can't be the listener too")
	}
	if !calls && len(watch) > 0 {
		splitWatched(sc, watch)
	}
	if calls {
		keepForks(sc)
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
		if calls && onlyForks(*s) {
			continue // keepForks: the kernel's
		}
		if rewrite(s.Action, len(s.Args) > 0) {
			s.Action, s.ErrnoRet = specs.ActNotify, nil
		}
	}
	return nil
}

// Forks are the calls whose allow rules stay the kernel's when every
// call goes to the listener (ToNotify with calls): a call waiting for the
// listener fails with EINTR when a signal is pending as it is made, in a
// handler without SA_RESTART, where the kernel would restart a fork
// (dash's and busybox's SIGCHLD handlers: "Cannot fork" while
// learning). The listener learns of them from the tasks they make.
var Forks = []string{"clone", "fork", "vfork"}

// keepForks splits Forks out of the allow and log rules that name them,
// so ToNotify leaves those as they are.
func keepForks(sc *specs.LinuxSeccomp) {
	sc.Syscalls = splitAllows(sc.Syscalls, Forks, func(r *specs.LinuxSyscall) {})
}

// splitAllows splits the names in names out of the allow and log rules
// that name them with others, into a rule of their own that change
// changes; the other rules stay as they are.
func splitAllows(rules []specs.LinuxSyscall, names []string, change func(*specs.LinuxSyscall)) []specs.LinuxSyscall {
	var out []specs.LinuxSyscall
	for _, r := range rules {
		if r.Action != specs.ActAllow && r.Action != specs.ActLog {
			out = append(out, r)
			continue
		}
		var keep, moved []string
		for _, n := range r.Names {
			if slices.Contains(names, n) {
				moved = append(moved, n)
			} else {
				keep = append(keep, n)
			}
		}
		if len(keep) > 0 {
			r2 := r
			r2.Names = keep
			out = append(out, r2)
		}
		if len(moved) > 0 {
			r2 := r
			r2.Names = moved
			change(&r2)
			out = append(out, r2)
		}
	}
	return out
}

// onlyForks says whether every name of an allow or log rule is a fork.
func onlyForks(r specs.LinuxSyscall) bool {
	if r.Action != specs.ActAllow && r.Action != specs.ActLog || len(r.Names) == 0 {
		return false
	}
	for _, n := range r.Names {
		if !slices.Contains(Forks, n) {
			return false
		}
	}
	return true
}

// splitWatched makes the watched calls' allow and log rules notify rules,
// and, where the default allows, adds one.
func splitWatched(sc *specs.LinuxSeccomp, watch []string) {
	allows := func(a specs.LinuxSeccompAction) bool { return a == specs.ActAllow || a == specs.ActLog }
	named := map[string]bool{}
	for _, r := range sc.Syscalls {
		for _, n := range r.Names {
			if slices.Contains(watch, n) {
				named[n] = true
			}
		}
	}
	out := splitAllows(sc.Syscalls, watch, func(r *specs.LinuxSyscall) { r.Action, r.ErrnoRet = specs.ActNotify, nil })
	if allows(sc.DefaultAction) {
		for _, n := range watch {
			if !named[n] {
				out = append(out, specs.LinuxSyscall{Names: []string{n}, Action: specs.ActNotify})
			}
		}
	}
	sc.Syscalls = out
}
