package main

import (
	"fmt"
	"os"
	"runtime"
	"text/tabwriter"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"brig/internal/cli"
	"brig/internal/container"
	"brig/internal/learn"
	"brig/internal/seccomp"
	"brig/internal/spec"
)

func specVersion() string { return specs.Version }

func init() {
	register(command{name: "spec", summary: "write a default config.json", run: cmdSpec})
	register(command{name: "create", summary: "create a container (its process waits for start)", run: cmdCreate})
	register(command{name: "start", summary: "start a created container", run: idCommand("start", func(g *global, id string) error {
		return container.Start(g.store(), id, g.logw.Warn)
	})})
	register(command{name: "run", summary: "create, start and wait for a container", run: cmdRun})
	register(command{name: "state", summary: "print a container's state as JSON", run: cmdState})
	register(command{name: "kill", summary: "send a signal to a container", run: cmdKill})
	register(command{name: "delete", summary: "delete a container", run: cmdDelete})
	register(command{name: "list", summary: "list containers", run: cmdList})
}

func (g *global) isRootless() bool {
	switch g.rootless {
	case "true":
		return true
	case "false":
		return false
	}
	return os.Geteuid() != 0
}

func cmdSpec(g *global, args []string) (int, error) {
	fs := cli.NewFlags("spec", "[--rootless] [--bundle DIR]")
	bundle := fs.String("bundle", ".", "bundle directory to write config.json in")
	fs.StringVar(bundle, "b", ".", "short for --bundle")
	rootless := fs.Bool("rootless", false, "a configuration for rootless containers")
	sc := fs.String("seccomp", "default", "the seccomp profile written into it: default (brig's built-in one, as Docker's) or unconfined")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	s := spec.Default(*rootless)
	switch *sc {
	case "default":
		s.Linux.Seccomp = seccomp.DefaultProfile(s.Process.Capabilities.Bounding, runtime.GOARCH, seccomp.KernelAtLeast(4, 8))
	case "unconfined":
	default:
		return 2, cli.Usagef("--seccomp %q: want default or unconfined", *sc)
	}
	return 0, spec.WriteConfig(*bundle, s)
}

// createFlags defines create's flags (run's too) into o.
func createFlags(fs *cli.Flags, o *container.CreateOptions) {
	fs.StringVar(&o.Bundle, "bundle", ".", "bundle directory (holds config.json)")
	fs.StringVar(&o.Bundle, "b", ".", "short for --bundle")
	fs.StringVar(&o.PidFile, "pid-file", "", "write the container process's pid to this file")
	fs.StringVar(&o.ConsoleSocket, "console-socket", "", "unix socket to send the pty master to (process.terminal)")
	fs.BoolVar(&o.NoPivot, "no-pivot", false, "use MS_MOVE and chroot instead of pivot_root (for an initramfs root)")
	fs.BoolVar(&o.NoNewKeyring, "no-new-keyring", false, "keep the caller's session keyring")
	fs.IntVar(&o.PreserveFDs, "preserve-fds", 0, "pass this many fds after stdio (3, 4, ...) to the container")
}

// createOptions are the options of the container id, flags aside.
func (g *global) createOptions(id string, o container.CreateOptions) container.CreateOptions {
	o.ID, o.Systemd, o.Rootless, o.Warn, o.Debug = id, g.systemdCgroup, g.isRootless(), g.logw.Warn, g.logw.Debug
	o.Stdin, o.Stdout, o.Stderr = os.Stdin, os.Stdout, os.Stderr
	return o
}

func cmdCreate(g *global, args []string) (int, error) {
	fs := cli.NewFlags("create", "[flags] ID")
	var f container.CreateOptions
	createFlags(fs, &f)
	id, err := fs.ParseID(args)
	if err != nil {
		return 2, err
	}
	if f.PreserveFDs < 0 {
		return 2, cli.Usagef("--preserve-fds must not be negative")
	}
	c, err := container.Create(g.store(), g.createOptions(id, f))
	if err != nil {
		return 1, err
	}
	if err := learnByAnnotation(c); err != nil {
		container.Delete(g.store(), id, true, g.logw.Warn)
		return 1, err
	}
	return 0, nil
}

// learnByAnnotation starts the recorder of a container whose annotations
// ask for learning (brig.learn=PATH, or oci-seccomp-bpf-hook's
// io.containers.trace-syscall=of:PATH), while it waits for start.
func learnByAnnotation(c *container.Created) error {
	flag, out, merge, ok, err := learn.FromAnnotations(c.Spec.Annotations)
	if err != nil || !ok {
		return err
	}
	return learn.StartHolder(flag, c.CgroupV2Dir(), c.Pid, out, merge, c.Spec.Process.Args, version)
}

func cmdRun(g *global, args []string) (int, error) {
	for _, a := range args {
		if a == "--" || a == "--check" || a == "-check" {
			return cmdSandbox(g, args)
		}
	}
	fs := cli.NewFlags("run", "[flags] ID   (or: brig run [flags] -- CMD, see brig run -- --help)")
	var f container.CreateOptions
	createFlags(fs, &f)
	detach := fs.Bool("detach", false, "return after start instead of waiting")
	fs.BoolVar(detach, "d", false, "short for --detach")
	report := fs.Bool("report-denials", false, "at exit, list the calls the seccomp profile denied (brig answers them as the profile would)")
	keep := fs.Bool("keep", false, "keep the container when it ends: state says stopped, delete removes it")
	fs.Bool("no-subreaper", false, "accepted for runc's sake: brig waits for the container's process itself")
	id, err := fs.ParseID(args)
	if err != nil {
		return 2, err
	}
	if *report && *detach {
		return 2, cli.Usagef("--report-denials needs run to wait: drop --detach")
	}
	if *keep && *detach {
		return 2, cli.Usagef("--keep needs run to wait: drop --detach")
	}
	o := g.createOptions(id, f)
	o.ReportDenials = *report
	o.Keep = *keep
	o.Observe = func(c *container.Created) (func(int), error) { return func(int) {}, learnByAnnotation(c) }
	// As runc: when removing the container fails after its process
	// ended, the error is said and the exit code is still the process's.
	return container.Run(g.store(), o, *detach)
}

func cmdState(g *global, args []string) (int, error) {
	id, err := cli.NewFlags("state", "ID").ParseID(args)
	if err != nil {
		return 2, err
	}
	c, err := container.Load(g.store(), id)
	if err != nil {
		return 1, err
	}
	return 0, cli.PrintJSON(c.OCIState(), true)
}

// idCommand is a command that takes a container's id and nothing else.
func idCommand(name string, do func(*global, string) error) func(*global, []string) (int, error) {
	return func(g *global, args []string) (int, error) {
		id, err := cli.NewFlags(name, "ID").ParseID(args)
		if err != nil {
			return 2, err
		}
		return 0, do(g, id)
	}
}

func cmdKill(g *global, args []string) (int, error) {
	fs := cli.NewFlags("kill", "[--all] ID [SIGNAL]")
	all := fs.Bool("all", false, "signal every process in the container")
	fs.BoolVar(all, "a", false, "short for --all")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return 2, cli.Usagef("want ID [SIGNAL]")
	}
	sig := unix.SIGTERM
	if fs.NArg() == 2 {
		var err error
		if sig, err = cli.ParseSignal(fs.Arg(1)); err != nil {
			return 2, cli.Usagef("%v", err)
		}
	}
	return 0, container.Kill(g.store(), fs.Arg(0), sig, *all)
}

func cmdDelete(g *global, args []string) (int, error) {
	fs := cli.NewFlags("delete", "[--force] ID")
	force := fs.Bool("force", false, "kill the container first if it is running")
	fs.BoolVar(force, "f", false, "short for --force")
	id, err := fs.ParseID(args)
	if err != nil {
		return 2, err
	}
	return 0, container.Delete(g.store(), id, *force, g.logw.Warn)
}

func cmdList(g *global, args []string) (int, error) {
	fs := cli.NewFlags("list", "[--format table|json] [--quiet]")
	format := fs.String("format", "table", "table or json")
	fs.StringVar(format, "f", "table", "short for --format")
	quiet := fs.Bool("quiet", false, "print only ids")
	fs.BoolVar(quiet, "q", false, "short for --quiet")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	if err := cli.OneOf("format", *format, "table", "json"); err != nil && !*quiet {
		return 2, err
	}
	states, err := container.List(g.store())
	if err != nil {
		return 1, err
	}
	switch {
	case *quiet:
		for _, s := range states {
			fmt.Println(s.ID)
		}
	case *format == "json":
		return 0, cli.PrintJSON(states, false)
	default:
		w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
		fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
		for _, s := range states {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), s.Owner)
		}
		return 0, w.Flush()
	}
	return 0, nil
}
