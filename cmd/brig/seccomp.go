package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
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
	for i, c := range bounding {
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
			bounding[i] = c
		}
		if _, ok := spec.CapabilityByName(c); !ok {
			return 2, usagef("--caps: unknown capability %q", c)
		}
	}
	load := func(path string) (*specs.LinuxSeccomp, error) { return seccomp.LoadFile(path, bounding) }
	switch sub {
	case "default":
		if fs.NArg() != 0 {
			return 2, usagef("default takes no profile (it prints the built-in one)")
		}
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
		problems := seccomp.CheckRules(sc)
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
			a, ok := seccomp.Arches[*arch]
			if !ok {
				return 2, usagef("--arch %q: want x86_64, x86 or x32", *arch)
			}
			p, _, err = seccomp.CompileArch(sc, a.Spec)
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
		seccomp.Explain(os.Stdout, sc)
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
		if _, ok := seccomp.Arches[*arch]; !ok {
			return 2, usagef("--arch %q: want x86_64, x86 or x32", *arch)
		}
		argStrs := fs.Args()[2:]
		if len(argStrs) > 6 {
			return 2, usagef("at most 6 arguments")
		}
		var args [6]uint64
		for i, a := range argStrs {
			v, err := strconv.ParseUint(a, 0, 64)
			if err != nil {
				return 2, usagef("argument %d %q: want a number (0x.. for hex)", i, a)
			}
			args[i] = v
		}
		v, err := seccomp.Test(sc, *arch, fs.Arg(1), args)
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
		n, err := seccomp.Diff(os.Stdout, a, b, fs.Arg(0), fs.Arg(1))
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
