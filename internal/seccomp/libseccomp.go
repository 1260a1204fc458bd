package seccomp

import (
	"errors"
	"fmt"
	"io"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"brig/internal/seccomp/filter"
)

// libseccomp's compilation: for profiles that name an architecture brig's
// compiler doesn't cover, and the oracle brig's compiler is tested
// against. brig's ENOSYS prefix goes in front of its program.

func compileLibseccomp(sc *specs.LinuxSeccomp, only specs.Arch) ([]unix.SockFilter, Warnings, error) {
	f, warn, err := build(sc, 2)
	if err != nil {
		return nil, nil, err
	}
	defer f.Release()
	if only != "" {
		native, err := libseccomp.GetNativeArch()
		if err == nil && archs[only] != native.String() {
			if err := f.RemoveArch(native); err != nil {
				return nil, nil, fmt.Errorf("seccomp: drop native arch: %w", err)
			}
		}
	}
	insns, err := export(f)
	if err != nil {
		return nil, nil, err
	}
	insns = append(enosysPrefix(sc), insns...)
	if len(insns) > 4096 {
		return nil, nil, fmt.Errorf("seccomp: program of %d instructions is over the kernel's 4096", len(insns))
	}
	return insns, warn, nil
}

// export writes the filter's BPF through a memfd (libseccomp 2.5 has no
// in-memory export) and decodes it.
func export(f *libseccomp.ScmpFilter) ([]unix.SockFilter, error) {
	fd, err := unix.MemfdCreate("seccomp-bpf", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("seccomp: memfd: %w", err)
	}
	mf := os.NewFile(uintptr(fd), "seccomp-bpf")
	defer mf.Close()
	if err := f.ExportBPF(mf); err != nil {
		return nil, fmt.Errorf("seccomp: export BPF: %w", err)
	}
	if _, err := mf.Seek(0, 0); err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(mf)
	if err != nil {
		return nil, err
	}
	return filter.DecodeInsns(raw)
}

// build makes the libseccomp filter context.
func build(sc *specs.LinuxSeccomp, optimize int) (*libseccomp.ScmpFilter, Warnings, error) {
	var warn Warnings
	def, err := Action(sc.DefaultAction, sc.DefaultErrnoRet)
	if err != nil {
		return nil, nil, fmt.Errorf("linux.seccomp.defaultAction: %w", err)
	}
	f, err := libseccomp.NewFilter(def)
	if err != nil {
		return nil, nil, fmt.Errorf("seccomp: new filter: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Release()
		}
	}()
	// 2: a binary tree of syscall numbers instead of a linear list; 0:
	// libseccomp's own default (what runc and crun load).
	if optimize != 0 {
		if err := f.SetOptimize(optimize); err != nil {
			return nil, nil, fmt.Errorf("seccomp: optimize: %w", err)
		}
	}
	for i, a := range sc.Architectures {
		name, known := archs[a]
		if !known {
			return nil, nil, fmt.Errorf("linux.seccomp.architectures[%d]: unknown %q", i, a)
		}
		arch, err := libseccomp.GetArchFromString(name)
		if err != nil {
			return nil, nil, fmt.Errorf("linux.seccomp.architectures[%d]: %w", i, err)
		}
		if err := f.AddArch(arch); err != nil && !errors.Is(err, libseccomp.ErrSyscallDoesNotExist) {
			return nil, nil, fmt.Errorf("linux.seccomp.architectures[%d] %s: %w", i, a, err)
		}
	}
	for i, sys := range sc.Syscalls {
		act, err := Action(sys.Action, sys.ErrnoRet)
		if err != nil {
			return nil, nil, fmt.Errorf("linux.seccomp.syscalls[%d].action: %w", i, err)
		}
		if act == def {
			continue // same as the default: no rule needed
		}
		var conds []libseccomp.ScmpCondition
		perArg := map[uint]int{}
		for j, a := range sys.Args {
			perArg[a.Index]++
			op, known := ops[a.Op]
			if !known {
				return nil, nil, fmt.Errorf("linux.seccomp.syscalls[%d].args[%d].op: unknown %q", i, j, a.Op)
			}
			c, err := libseccomp.MakeCondition(a.Index, op, a.Value, a.ValueTwo)
			if err != nil {
				return nil, nil, fmt.Errorf("linux.seccomp.syscalls[%d].args[%d]: %w", i, j, err)
			}
			conds = append(conds, c)
		}
		for _, name := range sys.Names {
			call, err := libseccomp.GetSyscallFromName(name)
			if err != nil {
				warn = append(warn, fmt.Sprintf("linux.seccomp.syscalls[%d]: %q, unknown to this libseccomp, skipped", i, name))
				continue
			}
			switch {
			case len(conds) == 0:
				err = f.AddRule(call, act)
			case sameArgTwice(perArg):
				// libseccomp can't AND two checks of one argument; such
				// profiles (Docker's personality rule) mean OR, as runc
				// reads them: one rule per condition.
				for _, c := range conds {
					if err = f.AddRuleConditional(call, act, []libseccomp.ScmpCondition{c}); err != nil {
						break
					}
				}
			default:
				err = f.AddRuleConditional(call, act, conds)
			}
			if err != nil {
				return nil, nil, fmt.Errorf("linux.seccomp.syscalls[%d] %s: %w", i, name, err)
			}
		}
	}
	ok = true
	return f, warn, nil
}

func sameArgTwice(perArg map[uint]int) bool {
	for _, n := range perArg {
		if n > 1 {
			return true
		}
	}
	return false
}

// CompileWithLibseccomp is libseccomp's program for a profile, at an
// optimize level (0: libseccomp's default, as runc and crun load it), for
// comparisons (tools/seccompbench).
func CompileWithLibseccomp(sc *specs.LinuxSeccomp, optimize int) (*Program, error) {
	f, _, err := build(sc, optimize)
	if err != nil {
		return nil, err
	}
	defer f.Release()
	insns, err := export(f)
	if err != nil {
		return nil, err
	}
	return &Program{Insns: insns}, nil
}
