package main

import (
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/net/bpf"

	"brig/internal/seccomp"
	"brig/internal/spec"
)

func init() {
	register(command{name: "seccomp", summary: "inspect seccomp profiles: default, check, compile, explain, test, diff", run: cmdSeccomp})
}

const seccompUsage = `Usage: brig seccomp COMMAND [flags] PROFILE...

PROFILE is a file in the runtime-spec (linux.seccomp) or Docker/Moby
format (Kubernetes Localhost profiles are the latter), or "default" for
brig's built-in profile.

  default                    print the built-in profile (OCI JSON)
  check PROFILE              validate; every problem with its JSON path
  compile [--dump] PROFILE   the BPF program: instruction count, disassembly
  explain PROFILE            what the profile allows and denies, in words
  test PROFILE SYSCALL [ARG...]
                             the compiled filter's verdict for that call
  diff A B                   calls one profile allows and the other denies

Flags: --caps CAP,CAP...  the container's bounding set for includes/excludes
       (default: Docker's default set); --arch x86_64|x86|x32 for test.
`

// highRisk are calls that widen the kernel's attack surface or let a
// process escape its confinement; explain lists those a profile allows.
var highRisk = []string{
	"mount", "umount2", "ptrace", "bpf", "keyctl", "add_key", "request_key", "unshare", "setns", "kexec_load",
	"kexec_file_load", "init_module", "finit_module", "delete_module", "open_by_handle_at", "perf_event_open",
	"userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register", "clone3", "pivot_root", "chroot",
	"move_mount", "open_tree", "fsopen", "fsmount", "process_vm_writev", "iopl", "ioperm", "swapon", "reboot",
	"acct", "lookup_dcookie", "name_to_handle_at", "personality", "syslog", "vm86", "vm86old", "quotactl",
}

func cmdSeccomp(g *global, args []string) (int, error) {
	if len(args) == 0 || args[0] == "help" || args[0] == "--help" || args[0] == "-h" {
		fmt.Print(seccompUsage)
		if len(args) == 0 {
			return 2, usagef("want a seccomp command")
		}
		return 0, nil
	}
	sub := args[0]
	fs := newFlags("seccomp "+sub, "PROFILE")
	caps := fs.String("caps", strings.Join(spec.DefaultCapabilities, ","), "bounding set the profile's includes/excludes test")
	dump := fs.Bool("dump", false, "compile: print the disassembly")
	arch := fs.String("arch", "", "test: architecture of the call (default x86_64); compile: build for this architecture only (x86_64, x86, x32)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2, err
	}
	bounding := splitList(*caps)
	load := func(path string) (*specs.LinuxSeccomp, error) { return seccomp.LoadFile(path, bounding) }
	switch sub {
	case "default":
		return 0, printJSON(seccomp.DefaultProfile(bounding, runtime.GOARCH, seccomp.KernelAtLeast(4, 8)), true)
	case "check":
		if fs.NArg() != 1 {
			return 2, usagef("check wants one profile")
		}
		sc, err := load(fs.Arg(0))
		if err != nil {
			return 1, err
		}
		_, warns, err := seccomp.Compile(sc)
		for _, w := range warns {
			fmt.Println("warning:", w)
		}
		if err != nil {
			return 1, err
		}
		problems := checkRules(sc)
		for _, p := range problems {
			fmt.Println("warning:", p)
		}
		fmt.Printf("%s: valid (%d rules, %d warnings)\n", fs.Arg(0), len(sc.Syscalls), len(warns)+len(problems))
		return 0, nil
	case "compile":
		if fs.NArg() != 1 {
			return 2, usagef("compile wants one profile")
		}
		sc, err := load(fs.Arg(0))
		if err != nil {
			return 1, err
		}
		p, _, err := seccomp.Compile(sc)
		if *arch != "" {
			sa, ok := specArch[*arch]
			if !ok {
				return 2, usagef("--arch %q: want x86_64, x86 or x32", *arch)
			}
			p, _, err = seccomp.CompileArch(sc, sa)
		}
		if err != nil {
			return 1, err
		}
		fmt.Printf("%d instructions, load flags %#x\n", len(p.Insns), p.Flags)
		if *dump {
			for i, in := range p.Insns {
				ins := bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}.Disassemble()
				fmt.Printf("%4d  %v\n", i, ins)
			}
		}
		return 0, nil
	case "explain":
		if fs.NArg() != 1 {
			return 2, usagef("explain wants one profile")
		}
		sc, err := load(fs.Arg(0))
		if err != nil {
			return 1, err
		}
		explain(sc)
		return 0, nil
	case "test":
		if fs.NArg() < 2 {
			return 2, usagef("test wants a profile and a syscall")
		}
		sc, err := load(fs.Arg(0))
		if err != nil {
			return 1, err
		}
		if *arch == "" {
			*arch = "x86_64"
		}
		v, err := verdict(sc, *arch, fs.Arg(1), fs.Args()[2:])
		if err != nil {
			return 1, err
		}
		fmt.Printf("%s(%s) on %s: %s\n", fs.Arg(1), strings.Join(fs.Args()[2:], ", "), *arch, seccomp.ActionName(v))
		return 0, nil
	case "diff":
		if fs.NArg() != 2 {
			return 2, usagef("diff wants two profiles")
		}
		a, err := load(fs.Arg(0))
		if err != nil {
			return 1, err
		}
		b, err := load(fs.Arg(1))
		if err != nil {
			return 1, err
		}
		n, err := diff(a, b, fs.Arg(0), fs.Arg(1))
		if err != nil {
			return 1, err
		}
		if n > 0 {
			return 1, nil // like diff(1): differences exit 1
		}
		return 0, nil
	}
	return 2, usagef("unknown seccomp command %q (see brig seccomp help)", sub)
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, strings.ToUpper(f))
		}
	}
	return out
}

var specArch = map[string]specs.Arch{
	"x86_64": specs.ArchX86_64, "amd64": specs.ArchX86_64, "x86": specs.ArchX86, "i386": specs.ArchX86, "x32": specs.ArchX32,
}

var archByName = map[string]struct {
	audit uint32
	lib   libseccomp.ScmpArch
	x32   bool
}{
	"x86_64": {seccomp.AuditArchX86_64, libseccomp.ArchAMD64, false},
	"amd64":  {seccomp.AuditArchX86_64, libseccomp.ArchAMD64, false},
	"x86":    {seccomp.AuditArchI386, libseccomp.ArchX86, false},
	"i386":   {seccomp.AuditArchI386, libseccomp.ArchX86, false},
	"x32":    {seccomp.AuditArchX86_64, libseccomp.ArchX32, true},
}

func verdict(sc *specs.LinuxSeccomp, arch, name string, argStrs []string) (uint32, error) {
	a, ok := archByName[arch]
	if !ok {
		return 0, usagef("--arch %q: want x86_64, x86 or x32", arch)
	}
	call, err := libseccomp.GetSyscallFromNameByArch(name, a.lib)
	if err != nil {
		return 0, fmt.Errorf("unknown syscall %q on %s", name, arch)
	}
	if len(argStrs) > 6 {
		return 0, usagef("at most 6 arguments")
	}
	var args [6]uint64
	for i, s := range argStrs {
		v, err := strconv.ParseUint(s, 0, 64)
		if err != nil {
			return 0, usagef("argument %d %q: want a number (0x.. for hex)", i, s)
		}
		args[i] = v
	}
	p, _, err := seccomp.Compile(sc)
	if err != nil {
		return 0, err
	}
	nr := int32(call)
	if a.x32 {
		nr |= 0x40000000
	}
	return p.Verdict(a.audit, nr, args)
}

// checkRules finds duplicate and conflicting rules.
func checkRules(sc *specs.LinuxSeccomp) []string {
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

func explain(sc *specs.LinuxSeccomp) {
	def := string(sc.DefaultAction)
	if sc.DefaultErrnoRet != nil {
		def += fmt.Sprintf(" (errno %d)", *sc.DefaultErrnoRet)
	}
	allowDefault := sc.DefaultAction == specs.ActAllow || sc.DefaultAction == specs.ActLog
	kind := "an allow-list: only the calls named below are allowed"
	if allowDefault {
		kind = "a deny-list: every call is allowed except those named below"
	}
	fmt.Printf("Default action: %s — %s.\n", def, kind)
	if len(sc.Architectures) > 0 {
		fmt.Printf("Architectures: %s.\n", strings.Trim(fmt.Sprint(sc.Architectures), "[]"))
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
	fmt.Printf("Named: %d calls allowed, %d denied, %d argument conditions.\n", len(allowed), len(denied), len(conds))
	var risky []string
	for _, n := range highRisk {
		if (allowDefault && !denied[n]) || (!allowDefault && allowed[n]) {
			risky = append(risky, n)
		}
	}
	if len(risky) > 0 {
		fmt.Printf("High-risk calls it allows (at least in some cases): %s.\n", strings.Join(risky, ", "))
	} else {
		fmt.Println("High-risk calls it allows: none.")
	}
	sort.Strings(conds)
	for _, c := range conds {
		fmt.Println("  -", c)
	}
	if !allowDefault {
		fmt.Println("Calls newer than the profile's newest named call fail with ENOSYS, so libc falls back.")
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

// diff compares the two compiled filters on every call libseccomp knows,
// per architecture, with all arguments zero and with a few values the
// common conditional rules test.
func diff(a, b *specs.LinuxSeccomp, an, bn string) (int, error) {
	pa, _, err := seccomp.Compile(a)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", an, err)
	}
	pb, _, err := seccomp.Compile(b)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", bn, err)
	}
	n := 0
	for _, archName := range []string{"x86_64", "x86", "x32"} {
		arch := archByName[archName]
		for nr := int32(0); nr < 1100; nr++ {
			name, err := libseccomp.ScmpSyscall(nr).GetNameByArch(arch.lib)
			if err != nil {
				continue
			}
			real := nr
			if arch.x32 {
				real |= 0x40000000
			}
			va, err1 := pa.Verdict(arch.audit, real, [6]uint64{})
			vb, err2 := pb.Verdict(arch.audit, real, [6]uint64{})
			if err := errors.Join(err1, err2); err != nil {
				return n, err
			}
			if va != vb {
				fmt.Printf("%-7s %-24s %s: %-22s %s: %s\n", archName, name, an, seccomp.ActionName(va), bn, seccomp.ActionName(vb))
				n++
			}
		}
	}
	if n == 0 {
		fmt.Println("no differences")
	}
	return n, nil
}
