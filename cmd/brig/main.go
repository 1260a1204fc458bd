// Command brig is a secure OCI container runtime with runc's command line,
// and `brig run -- CMD`'s sandbox. This package is the command line only:
// each command's flags, help and output, over internal/container (the OCI
// lifecycle), internal/sandbox, internal/learn and internal/seccomp; the
// flag kit and the log are internal/cli. It touches no kernel interface.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"brig/internal/bootstrap"
	"brig/internal/cli"
	"brig/internal/egress"
	"brig/internal/idmap"
	"brig/internal/initproc"
	"brig/internal/learn"
	_ "brig/internal/nsenter" // the C constructor that enters namespaces
	"brig/internal/sandbox"
	"brig/internal/state"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// global holds the flags that come before the command.
type global struct {
	root          string
	log           string
	logFormat     string
	debug         bool
	systemdCgroup bool
	rootless      string
	logw          *cli.Logger
}

func (g *global) store() state.Store { return state.Store{Root: g.root} }

type command struct {
	name    string
	summary string
	run     func(g *global, args []string) (int, error)
}

var commands []command

func register(c command) { commands = append(commands, c) }

// reexec are brig's own processes, started from its binary with a first
// argument no user types. Each never returns.
var reexec = map[string]func(){
	// the container's init, after the C constructor (internal/nsenter)
	// has joined and made its namespaces
	"init": initproc.Main,
	// holds the fenced network namespace of brig run --allow-net
	egress.HolderArg: egress.HolderMain,
	// holds a user namespace an id-mapped mount is made through
	idmap.HolderArg: idmap.HolderMain,
	// records an OCI container that asks for learning, until it ends
	learn.HolderArg: learn.HolderMain,
	// tries, in new namespaces, what the sandbox's init must do there
	// (brig run decides whether it can make a sandbox here)
	sandbox.ProbeArg: sandbox.ProbeMain,
}

func main() {
	if len(os.Args) > 1 {
		if run, ok := reexec[os.Args[1]]; ok {
			run()
		}
	}
	os.Exit(realMain(os.Args[1:], os.Stderr))
}

func realMain(args []string, stderr io.Writer) int {
	g := &global{}
	fs := flag.NewFlagSet("brig", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&g.root, "root", state.UserRoot(), "directory for container state")
	fs.StringVar(&g.log, "log", "", "log file (default: stderr)")
	fs.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&g.debug, "debug", false, "log debug messages")
	fs.BoolVar(&g.systemdCgroup, "systemd-cgroup", false, "use systemd to manage cgroups (cgroupsPath is slice:prefix:name)")
	fs.StringVar(&g.rootless, "rootless", "auto", "rootless mode: auto, true or false")
	fs.String("criu", "criu", "accepted for runc's sake: brig has no checkpoint/restore")
	showVersion := fs.Bool("version", false, "print the version")
	fs.BoolVar(showVersion, "v", false, "print the version")
	fs.Usage = func() { usage(stderr) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVersion {
		printVersion(os.Stdout)
		return 0
	}
	for _, err := range []error{cli.OneOf("log-format", g.logFormat, "text", "json"), cli.OneOf("rootless", g.rootless, "auto", "true", "false")} {
		if err != nil {
			fmt.Fprintln(stderr, "brig:", err)
			return 2
		}
	}
	lw, err := cli.NewLogger(g.log, g.logFormat, g.debug, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "brig:", err)
		return 1
	}
	defer lw.Close()
	g.logw = lw
	rest := fs.Args()
	if len(rest) == 0 {
		usage(stderr)
		return 2
	}
	name := rest[0]
	if name == "help" {
		usage(os.Stdout)
		return 0
	}
	if name == "version" {
		printVersion(os.Stdout)
		return 0
	}
	for _, c := range commands {
		if c.name == name {
			code, err := c.run(g, rest[1:])
			if err != nil {
				if errors.Is(err, flag.ErrHelp) {
					return 0
				}
				var ue cli.UsageError
				if errors.As(err, &ue) {
					lw.Error(fmt.Sprintf("%s: %s", name, ue.Msg))
					return 2
				}
				lw.Error(err.Error())
				if code <= 0 {
					code = 1
				}
			}
			return code
		}
	}
	fmt.Fprintf(stderr, "brig: unknown command %q (see brig help)\n", name)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "brig %s: a secure OCI container runtime\n\n", version)
	fmt.Fprintln(w, "Usage: brig [global flags] COMMAND [flags] [args]")
	fmt.Fprintln(w, "\nGlobal flags:\n  --root DIR  --log FILE  --log-format text|json  --debug  --systemd-cgroup  --rootless auto|true|false  --version")
	fmt.Fprintln(w, "\nCommands:")
	cs := append([]command(nil), commands...)
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	for _, c := range cs {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'brig COMMAND --help' for a command's flags.")
}

func printVersion(w io.Writer) {
	fmt.Fprintf(w, "brig version %s\nspec: %s\ninit: %s\n", version, specVersion(), bootstrap.InitBinary())
}
