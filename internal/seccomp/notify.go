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
// keep, with calls, names more calls whose allow rules stay the
// kernel's, besides Kept: what a recording needn't see (a learned
// profile allows them whatever it records).
//
// watch names calls the listener must see even when allowed (a denial
// report's connect, whose refusal by Landlock's port rule no layer
// reports): their allow and log rules are split out as notify rules.
func ToNotify(sc *specs.LinuxSeccomp, calls bool, keep []string, watch ...string) error {
	if UsesNotify(sc) {
		return errors.New("linux.seccomp sends calls to its own agent (SCMP_ACT_NOTIFY): brig can't be the listener too")
	}
	if !calls && len(watch) > 0 {
		splitWatched(sc, watch)
	}
	var kept []string
	if calls {
		for _, n := range append(append([]string{}, Kept...), keep...) {
			if !slices.Contains(watch, n) && !slices.Contains(kept, n) {
				kept = append(kept, n)
			}
		}
		keepKernels(sc, kept)
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
		if calls && onlyKept(*s, kept) {
			continue // keepKernels: the kernel's
		}
		if rewrite(s.Action, len(s.Args) > 0) {
			s.Action, s.ErrnoRet = specs.ActNotify, nil
		}
	}
	return nil
}

// Kept are the calls whose allow rules stay the kernel's when every
// call goes to the listener (ToNotify with calls). A call waiting for
// the listener, until the listener has received it, is interrupted by
// a signal: in a handler without SA_RESTART it returns EINTR without
// having run. Programs expect that of few calls, and of these not at
// all:
//   - the forks (Forks): dash's and busybox's SIGCHLD handlers made
//     "Cannot fork" while learning, where the kernel would restart a
//     fork. The listener learns of them from the tasks they make.
//   - the signal mask and the return from a handler, made exactly
//     where signals are expected: busybox sh blocks every signal with
//     sigprocmask, saving the mask it had, before it waits for a child
//     in sigsuspend with that mask. A sigprocmask answered EINTR left
//     the saved mask "every signal", and the shell waited for ever.
//     A sigreturn answered EINTR would go on past the handler's
//     trampoline. Learned profiles allow these always (learn's
//     RuntimeCalls), so the recording loses nothing.
var Kept = append(append([]string{}, Forks...), "rt_sigprocmask", "rt_sigreturn", "sigprocmask", "sigreturn")

// Forks are the forking calls among Kept.
var Forks = []string{"clone", "fork", "vfork"}

// keepKernels splits kept out of the allow and log rules that name them,
// so ToNotify leaves those as they are.
// Where the default allows, those no rule names get an allow rule of
// their own (the default becomes the listener's).
func keepKernels(sc *specs.LinuxSeccomp, kept []string) {
	sc.Syscalls = splitAllows(sc.Syscalls, kept, func(r *specs.LinuxSyscall) {})
	if sc.DefaultAction != specs.ActAllow && sc.DefaultAction != specs.ActLog {
		return
	}
	var free []string
	for _, n := range kept {
		if !slices.ContainsFunc(sc.Syscalls, func(r specs.LinuxSyscall) bool { return slices.Contains(r.Names, n) }) {
			free = append(free, n)
		}
	}
	if len(free) > 0 {
		sc.Syscalls = append(sc.Syscalls, specs.LinuxSyscall{Names: free, Action: sc.DefaultAction})
	}
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

// onlyKept says whether every name of an allow or log rule is in kept.
func onlyKept(r specs.LinuxSyscall, kept []string) bool {
	if r.Action != specs.ActAllow && r.Action != specs.ActLog || len(r.Names) == 0 {
		return false
	}
	for _, n := range r.Names {
		if !slices.Contains(kept, n) {
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
