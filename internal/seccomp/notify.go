package seccomp

import (
	"errors"
	"slices"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

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
	leave := map[int]bool{}
	keptAllow := map[string]bool{}
	if calls {
		var kept []string
		for _, n := range append(append([]string{}, Kept...), keep...) {
			if !slices.Contains(watch, n) && !slices.Contains(kept, n) {
				kept = append(kept, n)
			}
		}
		leave, keptAllow = keepKernels(sc, kept)
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
	// An allowing default stays, when every call goes to the listener:
	// as a notification it would make the calls above the highest one
	// named ENOSYS (the compiler's rule for newer calls), which the
	// profile allows. Every call the architectures have is named instead,
	// in one notify rule at the end (after the profile's own, which
	// decide first), but the kept ones.
	if calls && (sc.DefaultAction == specs.ActAllow || sc.DefaultAction == specs.ActLog) {
		var names []string
		for _, n := range callNames(sc) {
			if !keptAllow[n] {
				names = append(names, n)
			}
		}
		sc.Syscalls = append(sc.Syscalls, specs.LinuxSyscall{Names: names, Action: specs.ActNotify})
		leave[len(sc.Syscalls)-1] = true
	} else if rewrite(sc.DefaultAction, false) {
		sc.DefaultAction, sc.DefaultErrnoRet = specs.ActNotify, nil
	}
	for i := range sc.Syscalls {
		s := &sc.Syscalls[i]
		if leave[i] {
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

// keepKernels makes the rules that leave the kept calls to the kernel,
// where the profile allows them, and returns the indices of those rules
// (ToNotify leaves them as they are). The compiler's order decides a
// call's verdict: its conditional rules in profile order, then its first
// unconditional rule that isn't the default's action, then the default.
// So:
//   - a kept call's conditional allow and log rules stay the kernel's,
//     where they are (clone without namespace flags);
//   - a kept call whose verdict without conditions is an allow (its first
//     unconditional rule that isn't the default's, or an allowing
//     default) leaves every unconditional rule, and one allow rule at the
//     end gives it that verdict (the only unconditional rule left for
//     it). Splitting rules in place would not do: once the default and
//     the errno rules become notifications, a rule that was the default's
//     (so no rule at all), or one behind an errno rule, would decide;
//   - any other kept call stays as it was, and goes to the listener
//     (a call the profile refuses).
//
// Calls no rule names get an allow rule only where libseccomp knows them
// on this machine (the x86 names are not x86-64's).
func keepKernels(sc *specs.LinuxSeccomp, kept []string) (leave map[int]bool, allowed map[string]bool) {
	isAllow := func(a specs.LinuxSeccompAction) bool { return a == specs.ActAllow || a == specs.ActLog }
	isDefault := func(r specs.LinuxSyscall) bool {
		return len(r.Args) == 0 && r.Action == sc.DefaultAction && errnoEqual(r.ErrnoRet, sc.DefaultErrnoRet)
	}
	verdict := map[string]specs.LinuxSeccompAction{}
	named := map[string]bool{}
	for _, r := range sc.Syscalls {
		for _, n := range r.Names {
			named[n] = true
			if _, ok := verdict[n]; !ok && len(r.Args) == 0 && !isDefault(r) && slices.Contains(kept, n) {
				verdict[n] = r.Action
			}
		}
	}
	allows := func(n string) (specs.LinuxSeccompAction, bool) {
		a, ok := verdict[n]
		if !ok {
			a = sc.DefaultAction
		}
		return a, isAllow(a) && (named[n] || knownNative(n))
	}
	var out []specs.LinuxSyscall
	leave, allowed = map[int]bool{}, map[string]bool{}
	for _, r := range sc.Syscalls {
		var rest, moved []string
		for _, n := range r.Names {
			_, ok := allows(n)
			switch {
			case !slices.Contains(kept, n):
				rest = append(rest, n)
			case len(r.Args) > 0 && isAllow(r.Action):
				moved = append(moved, n)
			case len(r.Args) == 0 && ok:
				// given by the allow rule at the end
			default:
				rest = append(rest, n)
			}
		}
		if len(rest) > 0 {
			r2 := r
			r2.Names = rest
			out = append(out, r2)
		}
		if len(moved) > 0 {
			r2 := r
			r2.Names = moved
			leave[len(out)] = true
			out = append(out, r2)
		}
	}
	for _, act := range []specs.LinuxSeccompAction{specs.ActAllow, specs.ActLog} {
		var names []string
		for _, n := range kept {
			if a, ok := allows(n); ok && a == act && !slices.Contains(names, n) {
				names = append(names, n)
				allowed[n] = true
			}
		}
		if len(names) > 0 {
			leave[len(out)] = true
			out = append(out, specs.LinuxSyscall{Names: names, Action: act})
		}
	}
	sc.Syscalls = out
	return leave, allowed
}

// callNames are the names of every call the profile's architectures
// (and this machine's) have, as libseccomp knows them.
func callNames(sc *specs.LinuxSeccomp) []string {
	libs := []libseccomp.ScmpArch{libseccomp.ArchNative}
	if native, err := libseccomp.GetNativeArch(); err == nil {
		libs[0] = native
	}
	for _, a := range sc.Architectures {
		if x, ok := abiOf(a); ok {
			libs = append(libs, x.lib)
		}
	}
	seen := map[string]bool{}
	var names []string
	for _, lib := range libs {
		for nr := 0; nr < 1024; nr++ {
			if n, err := libseccomp.ScmpSyscall(nr).GetNameByArch(lib); err == nil && !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	return names
}

// errnoEqual says whether two errnoRet fields give the same errno
// (unset is EPERM).
func errnoEqual(a, b *uint) bool {
	v := func(p *uint) uint {
		if p == nil {
			return uint(unix.EPERM)
		}
		return *p
	}
	return v(a) == v(b)
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
