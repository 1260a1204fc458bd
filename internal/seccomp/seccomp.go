// Package seccomp compiles a runtime-spec linux.seccomp profile with
// libseccomp and loads it. Loading is the last step before execve.
package seccomp

import (
	"errors"
	"fmt"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Warnings are problems that don't stop the filter from loading (syscall
// names this libseccomp doesn't know are skipped, as runc does).
type Warnings []string

var archs = map[specs.Arch]string{
	specs.ArchX86: "x86", specs.ArchX86_64: "amd64", specs.ArchX32: "x32",
	specs.ArchARM: "arm", specs.ArchAARCH64: "arm64", specs.ArchMIPS: "mips",
	specs.ArchMIPS64: "mips64", specs.ArchMIPS64N32: "mips64n32", specs.ArchMIPSEL: "mipsel",
	specs.ArchMIPSEL64: "mipsel64", specs.ArchMIPSEL64N32: "mipsel64n32", specs.ArchPPC: "ppc",
	specs.ArchPPC64: "ppc64", specs.ArchPPC64LE: "ppc64le", specs.ArchS390: "s390",
	specs.ArchS390X: "s390x", specs.ArchRISCV64: "riscv64", specs.ArchLOONGARCH64: "loong64",
}

var ops = map[specs.LinuxSeccompOperator]libseccomp.ScmpCompareOp{
	specs.OpNotEqual: libseccomp.CompareNotEqual, specs.OpLessThan: libseccomp.CompareLess,
	specs.OpLessEqual: libseccomp.CompareLessOrEqual, specs.OpEqualTo: libseccomp.CompareEqual,
	specs.OpGreaterEqual: libseccomp.CompareGreaterEqual, specs.OpGreaterThan: libseccomp.CompareGreater,
	specs.OpMaskedEqual: libseccomp.CompareMaskedEqual,
}

// Action translates an OCI action (with its errnoRet) for libseccomp.
func Action(a specs.LinuxSeccompAction, errnoRet *uint) (libseccomp.ScmpAction, error) {
	errno := int16(unix.EPERM)
	if errnoRet != nil {
		errno = int16(*errnoRet)
	}
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return libseccomp.ActKillThread, nil
	case specs.ActKillProcess:
		return libseccomp.ActKillProcess, nil
	case specs.ActTrap:
		return libseccomp.ActTrap, nil
	case specs.ActErrno:
		return libseccomp.ActErrno.SetReturnCode(errno), nil
	case specs.ActTrace:
		return libseccomp.ActTrace.SetReturnCode(errno), nil
	case specs.ActAllow:
		return libseccomp.ActAllow, nil
	case specs.ActLog:
		return libseccomp.ActLog, nil
	case specs.ActNotify:
		return libseccomp.ActNotify, nil
	}
	return libseccomp.ActInvalid, fmt.Errorf("unknown action %q", a)
}

// Compile builds the filter. It does not load it.
func Compile(sc *specs.LinuxSeccomp) (*libseccomp.ScmpFilter, Warnings, error) {
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
	// libseccomp loads on every thread (TSYNC) already; no_new_privs is
	// the spec's to set, not libseccomp's.
	if err := f.SetNoNewPrivsBit(false); err != nil {
		return nil, nil, fmt.Errorf("seccomp: %w", err)
	}
	for _, flag := range sc.Flags {
		switch flag {
		case specs.LinuxSeccompFlagLog:
			err = f.SetLogBit(true)
		case specs.LinuxSeccompFlagSpecAllow:
			err = f.SetSSB(true)
		case specs.LinuxSeccompFlagWaitKillableRecv:
			err = f.SetWaitKill(true)
		default:
			err = fmt.Errorf("unknown flag %q", flag)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("linux.seccomp.flags %s: %w", flag, err)
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
				warn = append(warn, fmt.Sprintf("linux.seccomp.syscalls[%d]: unknown syscall %q skipped", i, name))
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

// UsesNotify reports whether the profile has SCMP_ACT_NOTIFY anywhere.
func UsesNotify(sc *specs.LinuxSeccomp) bool {
	if sc.DefaultAction == specs.ActNotify {
		return true
	}
	for _, s := range sc.Syscalls {
		if s.Action == specs.ActNotify {
			return true
		}
	}
	return false
}

// Load loads the filter on every thread. If the profile uses NOTIFY, it
// returns the listener fd.
func Load(f *libseccomp.ScmpFilter, notify bool) (*os.File, error) {
	if err := f.Load(); err != nil {
		return nil, fmt.Errorf("load seccomp filter: %w", err)
	}
	if !notify {
		return nil, nil
	}
	fd, err := f.GetNotifFd()
	if err != nil {
		return nil, fmt.Errorf("seccomp notify fd: %w", err)
	}
	return os.NewFile(uintptr(fd), "seccomp-notify"), nil
}

// Summary is a short description for logs.
func Summary(sc *specs.LinuxSeccomp) string {
	n := 0
	for _, s := range sc.Syscalls {
		n += len(s.Names)
	}
	return fmt.Sprintf("default %s, %d syscall rules, arches %s", sc.DefaultAction, n, strings.Trim(fmt.Sprint(sc.Architectures), "[]"))
}
