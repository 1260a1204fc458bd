package seccomp

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/net/bpf"
)

// This file reads profiles for people: brig seccomp explain, test, diff
// and check.

// Arch is one architecture a call can come through, by every name the
// command line takes, with its runtime-spec name, the audit number the
// kernel gives a filter, and libseccomp's name. It is the one table of
// them the CLI uses.
type Arch struct {
	Spec  specs.Arch
	Audit uint32
	Lib   libseccomp.ScmpArch
	// X32: the x32 ABI, x86-64 numbers with bit 30 set.
	X32 bool
}

// Arches are the architectures brig's tools take, by name.
var Arches = map[string]Arch{
	"x86_64": {specs.ArchX86_64, AuditArchX86_64, libseccomp.ArchAMD64, false},
	"amd64":  {specs.ArchX86_64, AuditArchX86_64, libseccomp.ArchAMD64, false},
	"x86":    {specs.ArchX86, AuditArchI386, libseccomp.ArchX86, false},
	"i386":   {specs.ArchX86, AuditArchI386, libseccomp.ArchX86, false},
	"x32":    {specs.ArchX32, AuditArchX86_64, libseccomp.ArchX32, true},
}

// Nr is the number the filter sees for a call on this architecture.
func (a Arch) Nr(call libseccomp.ScmpSyscall) int32 {
	if a.X32 {
		return int32(call) | 0x40000000
	}
	return int32(call)
}

// HighRisk are calls that widen the kernel's attack surface or let a
// process escape its confinement; explain lists those a profile allows.
var HighRisk = []string{
	"mount", "umount2", "ptrace", "bpf", "keyctl", "add_key", "request_key", "unshare", "setns", "kexec_load",
	"kexec_file_load", "init_module", "finit_module", "delete_module", "open_by_handle_at", "perf_event_open",
	"userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register", "clone3", "pivot_root", "chroot",
	"move_mount", "open_tree", "fsopen", "fsmount", "process_vm_writev", "iopl", "ioperm", "swapon", "reboot",
	"acct", "lookup_dcookie", "name_to_handle_at", "personality", "syslog", "vm86", "vm86old", "quotactl",
}

// CheckRules finds duplicate and conflicting rules.
func CheckRules(sc *specs.LinuxSeccomp) []string {
	var out []string
	type seen struct {
		i   int
		act specs.LinuxSeccompAction
	}
	plain := map[string]seen{}
	for i, s := range sc.Syscalls {
		if len(s.Args) > 0 {
			continue
		}
		for _, n := range s.Names {
			if prev, ok := plain[n]; ok {
				if prev.act == s.Action {
					out = append(out, fmt.Sprintf("syscalls[%d]: %s is already in syscalls[%d]", i, n, prev.i))
				} else {
					out = append(out, fmt.Sprintf("syscalls[%d]: %s conflicts with syscalls[%d] (%s vs %s)", i, n, prev.i, s.Action, prev.act))
				}
				continue
			}
			plain[n] = seen{i, s.Action}
		}
	}
	return out
}

// Explain writes what a profile allows and denies, in words.
func Explain(w io.Writer, sc *specs.LinuxSeccomp) {
	def := string(sc.DefaultAction)
	if sc.DefaultErrnoRet != nil {
		def += fmt.Sprintf(" (errno %d)", *sc.DefaultErrnoRet)
	}
	allowDefault := sc.DefaultAction == specs.ActAllow || sc.DefaultAction == specs.ActLog
	kind := "an allow-list: only the calls named below are allowed"
	if allowDefault {
		kind = "a deny-list: every call is allowed except those named below"
	}
	fmt.Fprintf(w, "Default action: %s — %s.\n", def, kind)
	if len(sc.Architectures) > 0 {
		fmt.Fprintf(w, "Architectures: %s.\n", strings.Trim(fmt.Sprint(sc.Architectures), "[]"))
	}
	allowed, denied := map[string]bool{}, map[string]bool{}
	var conds []string
	for _, s := range sc.Syscalls {
		allow := s.Action == specs.ActAllow || s.Action == specs.ActLog
		for _, n := range s.Names {
			if len(s.Args) > 0 {
				conds = append(conds, fmt.Sprintf("%s is %s when %s", n, actionWord(s.Action), argWords(s.Args)))
				if allow {
					allowed[n] = true
				}
				continue
			}
			if allow {
				allowed[n] = true
			} else {
				denied[n] = true
			}
		}
	}
	fmt.Fprintf(w, "Named: %d calls allowed, %d denied, %d argument conditions.\n", len(allowed), len(denied), len(conds))
	var risky []string
	for _, n := range HighRisk {
		if (allowDefault && !denied[n]) || (!allowDefault && allowed[n]) {
			risky = append(risky, n)
		}
	}
	if len(risky) > 0 {
		fmt.Fprintf(w, "High-risk calls it allows (at least in some cases): %s.\n", strings.Join(risky, ", "))
	} else {
		fmt.Fprintln(w, "High-risk calls it allows: none.")
	}
	sort.Strings(conds)
	for _, c := range conds {
		fmt.Fprintln(w, "  -", c)
	}
	if !allowDefault {
		fmt.Fprintln(w, "Calls newer than the profile's newest named call fail with ENOSYS, so libc falls back.")
	}
}

func actionWord(a specs.LinuxSeccompAction) string {
	switch a {
	case specs.ActAllow:
		return "allowed"
	case specs.ActLog:
		return "allowed and logged"
	case specs.ActErrno:
		return "denied with an error"
	case specs.ActNotify:
		return "sent to the notify agent"
	case specs.ActTrace:
		return "sent to a tracer"
	case specs.ActTrap:
		return "trapped (SIGSYS)"
	}
	return "killed"
}

func argWords(args []specs.LinuxSeccompArg) string {
	var parts []string
	for _, a := range args {
		var w string
		switch a.Op {
		case specs.OpEqualTo:
			w = fmt.Sprintf("argument %d is %#x", a.Index, a.Value)
		case specs.OpNotEqual:
			w = fmt.Sprintf("argument %d is not %#x", a.Index, a.Value)
		case specs.OpLessThan:
			w = fmt.Sprintf("argument %d is below %#x", a.Index, a.Value)
		case specs.OpLessEqual:
			w = fmt.Sprintf("argument %d is at most %#x", a.Index, a.Value)
		case specs.OpGreaterThan:
			w = fmt.Sprintf("argument %d is above %#x", a.Index, a.Value)
		case specs.OpGreaterEqual:
			w = fmt.Sprintf("argument %d is at least %#x", a.Index, a.Value)
		case specs.OpMaskedEqual:
			w = fmt.Sprintf("argument %d masked with %#x is %#x", a.Index, a.Value, a.ValueTwo)
		}
		parts = append(parts, w)
	}
	return strings.Join(parts, " and ")
}

// Diff writes the calls one profile's filter allows and the other's
// denies: every call libseccomp knows, per architecture, with all
// arguments zero. It returns how many differ.
func Diff(w io.Writer, a, b *specs.LinuxSeccomp, an, bn string) (int, error) {
	pa, _, err := Compile(a)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", an, err)
	}
	pb, _, err := Compile(b)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", bn, err)
	}
	n := 0
	for _, archName := range []string{"x86_64", "x86", "x32"} {
		arch := Arches[archName]
		for nr := int32(0); nr < 1100; nr++ {
			call := libseccomp.ScmpSyscall(nr)
			name, err := call.GetNameByArch(arch.Lib)
			if err != nil {
				continue
			}
			va, err1 := pa.Verdict(arch.Audit, arch.Nr(call), [6]uint64{})
			vb, err2 := pb.Verdict(arch.Audit, arch.Nr(call), [6]uint64{})
			if err := errors.Join(err1, err2); err != nil {
				return n, err
			}
			if va != vb {
				fmt.Fprintf(w, "%-7s %-24s %s: %-22s %s: %s\n", archName, name, an, ActionName(va), bn, ActionName(vb))
				n++
			}
		}
	}
	if n == 0 {
		fmt.Fprintln(w, "no differences")
	}
	return n, nil
}

// Test is the compiled filter's verdict for one call.
func Test(sc *specs.LinuxSeccomp, arch, name string, args [6]uint64) (uint32, error) {
	a, ok := Arches[arch]
	if !ok {
		return 0, fmt.Errorf("architecture %q: want x86_64, x86 or x32", arch)
	}
	call, err := libseccomp.GetSyscallFromNameByArch(name, a.Lib)
	if err != nil {
		return 0, fmt.Errorf("unknown syscall %q on %s", name, arch)
	}
	p, _, err := Compile(sc)
	if err != nil {
		return 0, err
	}
	return p.Verdict(a.Audit, a.Nr(call), args)
}

// CheckReport writes what `brig seccomp check` says of a profile named name:
// the compiler's warnings and the rules' problems, one per line, then
// whether it is valid. The error is the compiler's.
func CheckReport(w io.Writer, name string, sc *specs.LinuxSeccomp) error {
	_, warns, err := Compile(sc)
	for _, x := range warns {
		fmt.Fprintln(w, "warning:", x)
	}
	if err != nil {
		return err
	}
	problems := CheckRules(sc)
	for _, p := range problems {
		fmt.Fprintln(w, "warning:", p)
	}
	_, err = fmt.Fprintf(w, "%s: valid (%d rules, %d warnings)\n", name, len(sc.Syscalls), len(warns)+len(problems))
	return err
}

// Disassembly writes the program the profile compiles to (for arch
// only, if not ""): its size and load flags, and with dump every
// instruction.
func Disassembly(w io.Writer, sc *specs.LinuxSeccomp, arch specs.Arch, dump bool) error {
	p, _, err := Compile(sc)
	if arch != "" {
		p, _, err = CompileArch(sc, arch)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%d instructions, load flags %#x\n", len(p.Insns), p.Flags)
	if dump {
		for i, in := range p.Insns {
			fmt.Fprintf(w, "%4d  %v\n", i, bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}.Disassemble())
		}
	}
	return nil
}
