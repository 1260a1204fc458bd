package main

import (
	_ "embed"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"brig/internal/cli"
	"brig/internal/seccomp"
	"brig/internal/spec"
)

func init() {
	register(command{name: "seccomp", summary: "inspect seccomp profiles: default, check, compile, explain, test, diff", run: cmdSeccomp})
}

//go:embed help/seccomp.txt
var seccompUsage string

// seccompArgs are how many arguments each subcommand takes, and what it
// says when it gets another number.
var seccompArgs = map[string]struct {
	min, max int
	want     string
}{
	"default": {0, 0, "default takes no profile (it prints the built-in one)"}, "check": {1, 1, "check wants one profile"},
	"compile": {1, 1, "compile wants one profile"}, "explain": {1, 1, "explain wants one profile"},
	"test": {2, 8, "test wants a profile and a syscall"}, "diff": {2, 2, "diff wants two profiles"},
}

func cmdSeccomp(g *global, args []string) (int, error) {
	if len(args) == 0 || args[0] == "help" || args[0] == "--help" || args[0] == "-h" {
		fmt.Print(seccompUsage)
		if len(args) == 0 {
			return 2, cli.Usagef("want a seccomp command")
		}
		return 0, nil
	}
	sub := args[0]
	fs := cli.NewFlags("seccomp "+sub, "PROFILE")
	caps := fs.String("caps", strings.Join(spec.DefaultCapabilities, ","), "bounding set the profile's includes/excludes test")
	dump := fs.Bool("dump", false, "compile: print the disassembly")
	arch := fs.String("arch", "", "test: architecture of the call (default x86_64); compile: build for this architecture only (x86_64, x86, x32)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2, err
	}
	var bounding []string
	for _, c := range strings.Split(*caps, ",") {
		if c = strings.TrimSpace(c); c == "" {
			continue
		}
		c = strings.ToUpper(c)
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		if _, ok := spec.CapabilityByName(c); !ok {
			return 2, cli.Usagef("--caps: unknown capability %q", c)
		}
		bounding = append(bounding, c)
	}
	n, ok := seccompArgs[sub]
	switch {
	case !ok:
		return 2, cli.Usagef("unknown seccomp command %q (see brig seccomp help)", sub)
	case fs.NArg() > n.max && sub == "test":
		return 2, cli.Usagef("at most 6 arguments")
	case fs.NArg() < n.min || fs.NArg() > n.max:
		return 2, cli.Usagef("%s", n.want)
	}
	a, ok := seccomp.Arches[*arch]
	if *arch != "" && !ok && (sub == "compile" || sub == "test") {
		return 2, cli.Usagef("--arch %q: want x86_64, x86 or x32", *arch)
	}
	if sub == "default" {
		return 0, cli.PrintJSON(seccomp.DefaultProfile(bounding, runtime.GOARCH, seccomp.KernelAtLeast(4, 8)), true)
	}
	var callArgs [6]uint64
	for i, s := range fs.Args()[min(2, fs.NArg()):] {
		v, err := strconv.ParseUint(s, 0, 64)
		if err != nil {
			return 2, cli.Usagef("argument %d %q: want a number (0x.. for hex)", i, s)
		}
		callArgs[i] = v
	}
	profiles := fs.Args()[:1]
	if sub == "diff" {
		profiles = fs.Args()
	}
	var scs []*specs.LinuxSeccomp
	for _, p := range profiles {
		sc, err := seccomp.LoadFile(p, bounding)
		if err != nil {
			return 1, err
		}
		scs = append(scs, sc)
	}
	switch sub {
	case "check":
		return 0, seccomp.CheckReport(os.Stdout, fs.Arg(0), scs[0])
	case "compile":
		return 0, seccomp.Disassembly(os.Stdout, scs[0], a.Spec, *dump)
	case "explain":
		seccomp.Explain(os.Stdout, scs[0])
		return 0, nil
	case "test":
		if *arch == "" {
			*arch = "x86_64"
		}
		v, err := seccomp.Test(scs[0], *arch, fs.Arg(1), callArgs)
		if err != nil {
			return 1, err
		}
		fmt.Printf("%s(%s) on %s: %s\n", fs.Arg(1), strings.Join(fs.Args()[2:], ", "), *arch, seccomp.ActionName(v))
		return 0, nil
	}
	d, err := seccomp.Diff(os.Stdout, scs[0], scs[1], fs.Arg(0), fs.Arg(1))
	if err != nil || d == 0 {
		return 0, err
	}
	return 1, nil // like diff(1): differences exit 1
}
