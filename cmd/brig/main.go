// Command brig is a secure OCI container runtime with runc's command line.
// This package only parses flags and calls internal/container; it touches
// no kernel interface itself.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"brig/internal/bootstrap"
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
	logw          *logger
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
	fs.StringVar(&g.root, "root", defaultRoot(), "directory for container state")
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
	switch g.logFormat {
	case "text", "json":
	default:
		fmt.Fprintf(stderr, "brig: --log-format %q: want text or json\n", g.logFormat)
		return 2
	}
	switch g.rootless {
	case "auto", "true", "false":
	default:
		fmt.Fprintf(stderr, "brig: --rootless %q: want auto, true or false\n", g.rootless)
		return 2
	}
	lw, err := newLogger(g.log, g.logFormat, g.debug, stderr)
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
				var ue usageError
				if errors.As(err, &ue) {
					lw.Error(fmt.Sprintf("%s: %s", name, ue.msg))
					return 2
				}
				lw.Error(err.Error())
				if code == 0 {
					code = 1
				}
			}
			return code
		}
	}
	fmt.Fprintf(stderr, "brig: unknown command %q (see brig help)\n", name)
	return 2
}

// defaultRoot is /run/brig for root; without root, as runc, the user's
// runtime directory ($XDG_RUNTIME_DIR/brig), else a per-user directory in
// the temporary directory.
func defaultRoot() string {
	if os.Geteuid() == 0 {
		return state.DefaultRoot
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "brig")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("brig-%d", os.Geteuid()))
}

type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

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

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// oneID checks a command got exactly one container id.
func oneID(fs *cmdFlags) (string, error) {
	if fs.NArg() != 1 {
		return "", usagef("want exactly one container id, got %d arguments", fs.NArg())
	}
	return fs.Arg(0), nil
}
