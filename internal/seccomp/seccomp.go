// Package seccomp compiles a runtime-spec linux.seccomp profile with
// libseccomp and loads it. Loading is the last step before execve.
package seccomp

import (
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"brig/internal/seccomp/filter"
)

// Program is a compiled filter (internal/seccomp/filter owns it: the init
// loads it without linking the compiler or libseccomp).
type Program = filter.Program

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

// actions are the OCI actions brig compiles, each with libseccomp's
// action for a given errno.
var actions = map[specs.LinuxSeccompAction]func(errno int16) libseccomp.ScmpAction{
	specs.ActKill:        func(int16) libseccomp.ScmpAction { return libseccomp.ActKillThread },
	specs.ActKillThread:  func(int16) libseccomp.ScmpAction { return libseccomp.ActKillThread },
	specs.ActKillProcess: func(int16) libseccomp.ScmpAction { return libseccomp.ActKillProcess },
	specs.ActTrap:        func(int16) libseccomp.ScmpAction { return libseccomp.ActTrap },
	specs.ActErrno:       func(e int16) libseccomp.ScmpAction { return libseccomp.ActErrno.SetReturnCode(e) },
	specs.ActTrace:       func(e int16) libseccomp.ScmpAction { return libseccomp.ActTrace.SetReturnCode(e) },
	specs.ActAllow:       func(int16) libseccomp.ScmpAction { return libseccomp.ActAllow },
	specs.ActLog:         func(int16) libseccomp.ScmpAction { return libseccomp.ActLog },
	specs.ActNotify:      func(int16) libseccomp.ScmpAction { return libseccomp.ActNotify },
}

// filterFlags are the OCI seccomp flags brig loads filters with.
var filterFlags = map[specs.LinuxSeccompFlag]uintptr{
	specs.LinuxSeccompFlagLog:              unix.SECCOMP_FILTER_FLAG_LOG,
	specs.LinuxSeccompFlagSpecAllow:        unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW,
	specs.LinuxSeccompFlagWaitKillableRecv: unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
}

// Action translates an OCI action (with its errnoRet) for libseccomp.
func Action(a specs.LinuxSeccompAction, errnoRet *uint) (libseccomp.ScmpAction, error) {
	errno := int16(unix.EPERM)
	if errnoRet != nil {
		errno = int16(*errnoRet)
	}
	if f, ok := actions[a]; ok {
		return f(errno), nil
	}
	return libseccomp.ActInvalid, fmt.Errorf("unknown action %q", a)
}

// Compile builds the filter with libseccomp and exports its BPF.
func Compile(sc *specs.LinuxSeccomp) (*Program, Warnings, error) {
	return compile(sc, "")
}

// CompileArch builds the program for one architecture only (brig seccomp
// compile --arch): the native one is left out unless it is that one.
func CompileArch(sc *specs.LinuxSeccomp, arch specs.Arch) (*Program, Warnings, error) {
	if _, ok := archs[arch]; !ok {
		return nil, nil, fmt.Errorf("unknown architecture %q", arch)
	}
	one := *sc
	one.Architectures = []specs.Arch{arch}
	return compile(&one, arch)
}

func compile(sc *specs.LinuxSeccomp, only specs.Arch) (*Program, Warnings, error) {
	var (
		insns []unix.SockFilter
		warn  Warnings
		err   error
	)
	if _, own := abiOf(only); ownArches(sc) && (only == "" || own) {
		insns, warn, err = compileOwn(sc, only)
	} else {
		insns, warn, err = compileLibseccomp(sc, only)
	}
	if err != nil {
		return nil, nil, err
	}
	// No TSYNC: the filter goes on the calling thread only, the one that
	// then calls execve (which ends every other thread). With TSYNC the Go
	// runtime's own threads (sysmon sleeps in nanosleep, idle Ms wait in
	// futex) would run under the container's profile between load and
	// exec, and a profile that kills such a call would kill brig's init
	// instead of the workload (as the CRI test with a profile that kills
	// nanosleep showed).
	p := &Program{Insns: insns, Notify: UsesNotify(sc)}
	for i, flag := range sc.Flags {
		f, ok := filterFlags[flag]
		if !ok {
			return nil, nil, fmt.Errorf("linux.seccomp.flags[%d]: unknown flag %q", i, flag)
		}
		p.Flags |= f
	}
	if p.Notify {
		p.Flags |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
	} else {
		p.Flags &^= unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
	}
	return p, warn, nil
}

// Summary folds warnings into one line for a container's log.
func (w Warnings) Summary() string {
	if len(w) == 0 {
		return ""
	}
	if len(w) == 1 {
		return w[0]
	}
	var names []string
	for _, x := range w {
		if i := strings.IndexByte(x, '"'); i >= 0 {
			if j := strings.IndexByte(x[i+1:], '"'); j >= 0 {
				names = append(names, x[i+1:i+1+j])
				continue
			}
		}
		names = append(names, x)
	}
	return fmt.Sprintf("linux.seccomp: %d syscall names unknown to this libseccomp skipped: %s", len(w), strings.Join(names, ", "))
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
