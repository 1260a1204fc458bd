package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"brig/internal/container"
	"brig/internal/learn"
	"brig/internal/seccomp"
	"brig/internal/spec"
	"brig/internal/state"
)

func specVersion() string { return specs.Version }

func init() {
	register(command{name: "spec", summary: "write a default config.json", run: cmdSpec})
	register(command{name: "create", summary: "create a container (its process waits for start)", run: cmdCreate})
	register(command{name: "start", summary: "start a created container", run: cmdStart})
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
	fs := newFlags("spec", "[--rootless] [--bundle DIR]")
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
		return 2, usagef("--seccomp %q: want default or unconfined", *sc)
	}
	if *rootless {
		s.Linux.UIDMappings[0].HostID = uint32(os.Geteuid())
		s.Linux.GIDMappings[0].HostID = uint32(os.Getegid())
	}
	path := filepath.Join(*bundle, spec.ConfigName)
	if _, err := os.Stat(path); err == nil {
		return 1, fmt.Errorf("%s exists already: remove it first", path)
	}
	data, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		return 1, err
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return 1, err
	}
	return 0, nil
}

type createFlags struct {
	bundle, pidFile, consoleSocket string
	noPivot, noNewKeyring          bool
	preserveFDs                    int
}

func addCreateFlags(fs interface {
	StringVar(*string, string, string, string)
	BoolVar(*bool, string, bool, string)
	IntVar(*int, string, int, string)
}, f *createFlags) {
	fs.StringVar(&f.bundle, "bundle", ".", "bundle directory (holds config.json)")
	fs.StringVar(&f.bundle, "b", ".", "short for --bundle")
	fs.StringVar(&f.pidFile, "pid-file", "", "write the container process's pid to this file")
	fs.StringVar(&f.consoleSocket, "console-socket", "", "unix socket to send the pty master to (process.terminal)")
	fs.BoolVar(&f.noPivot, "no-pivot", false, "use MS_MOVE and chroot instead of pivot_root (for an initramfs root)")
	fs.BoolVar(&f.noNewKeyring, "no-new-keyring", false, "keep the caller's session keyring")
	fs.IntVar(&f.preserveFDs, "preserve-fds", 0, "pass this many fds after stdio (3, 4, ...) to the container")
}

func (g *global) createOptions(id string, f *createFlags) container.CreateOptions {
	return container.CreateOptions{
		ID: id, Bundle: f.bundle, PidFile: f.pidFile, ConsoleSocket: f.consoleSocket,
		NoPivot: f.noPivot, NoNewKeyring: f.noNewKeyring, PreserveFDs: f.preserveFDs,
		Systemd: g.systemdCgroup, Rootless: g.isRootless(),
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Warn: g.logw.Warn,
	}
}

func cmdCreate(g *global, args []string) (int, error) {
	fs := newFlags("create", "[flags] ID")
	var f createFlags
	addCreateFlags(fs, &f)
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	id, err := oneID(fs)
	if err != nil {
		return 2, err
	}
	if f.preserveFDs < 0 {
		return 2, usagef("--preserve-fds must not be negative")
	}
	c, err := container.Create(g.store(), g.createOptions(id, &f))
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

func cmdStart(g *global, args []string) (int, error) {
	fs := newFlags("start", "ID")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	id, err := oneID(fs)
	if err != nil {
		return 2, err
	}
	return 0, container.Start(g.store(), id, g.logw.Warn)
}

func cmdRun(g *global, args []string) (int, error) {
	for _, a := range args {
		if a == "--" || a == "--check" || a == "-check" {
			return cmdSandbox(g, args)
		}
	}
	fs := newFlags("run", "[flags] ID   (or: brig run [flags] -- CMD, see brig run -- --help)")
	var f createFlags
	addCreateFlags(fs, &f)
	detach := fs.Bool("detach", false, "return after start instead of waiting")
	fs.BoolVar(detach, "d", false, "short for --detach")
	report := fs.Bool("report-denials", false, "at exit, list the calls the seccomp profile denied (brig answers them as the profile would)")
	keep := fs.Bool("keep", false, "keep the container when it ends: state says stopped, delete removes it")
	fs.Bool("no-subreaper", false, "accepted for runc's sake: brig waits for the container's process itself")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	id, err := oneID(fs)
	if err != nil {
		return 2, err
	}
	if *report && *detach {
		return 2, usagef("--report-denials needs run to wait: drop --detach")
	}
	if *keep && *detach {
		return 2, usagef("--keep needs run to wait: drop --detach")
	}
	o := g.createOptions(id, &f)
	o.ReportDenials = *report
	o.Keep = *keep
	o.Observe = func(c *container.Created) (func(int), error) { return func(int) {}, learnByAnnotation(c) }
	code, err := container.Run(g.store(), o, *detach)
	if err != nil {
		return 1, err
	}
	return code, nil
}

func cmdState(g *global, args []string) (int, error) {
	fs := newFlags("state", "ID")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	id, err := oneID(fs)
	if err != nil {
		return 2, err
	}
	c, err := container.Load(g.store(), id)
	if err != nil {
		return 1, err
	}
	return 0, printJSON(c.OCIState(), true)
}

func printJSON(v any, indent bool) error {
	var data []byte
	var err error
	if indent {
		data, err = json.MarshalIndent(v, "", "  ")
	} else {
		data, err = json.Marshal(v)
	}
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(append(data, '\n'))
	return err
}

// ParseSignal accepts a number, a name with or without SIG, any case.
func ParseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("signal %d out of range", n)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	if strings.HasPrefix(name, "SIGRTMIN+") || strings.HasPrefix(name, "SIGRTMAX-") {
		n, err := strconv.Atoi(name[9:])
		if err == nil {
			if name[6] == 'I' && 34+n <= 64 {
				return unix.Signal(34 + n), nil
			}
			if name[6] == 'A' && 64-n >= 34 {
				return unix.Signal(64 - n), nil
			}
		}
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

func cmdKill(g *global, args []string) (int, error) {
	fs := newFlags("kill", "[--all] ID [SIGNAL]")
	all := fs.Bool("all", false, "signal every process in the container")
	fs.BoolVar(all, "a", false, "short for --all")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return 2, usagef("want ID [SIGNAL]")
	}
	sig := unix.SIGTERM
	if fs.NArg() == 2 {
		var err error
		if sig, err = ParseSignal(fs.Arg(1)); err != nil {
			return 2, usagef("%v", err)
		}
	}
	return 0, container.Kill(g.store(), fs.Arg(0), sig, *all)
}

func cmdDelete(g *global, args []string) (int, error) {
	fs := newFlags("delete", "[--force] ID")
	force := fs.Bool("force", false, "kill the container first if it is running")
	fs.BoolVar(force, "f", false, "short for --force")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	id, err := oneID(fs)
	if err != nil {
		return 2, err
	}
	err = container.Delete(g.store(), id, *force, g.logw.Warn)
	if err != nil && *force && errors.Is(err, state.ErrNotExist) {
		// As runc: --force on a container that never finished creating
		// removes whatever is left and succeeds.
		g.store().Remove(id)
		return 0, nil
	}
	return 0, err
}

func cmdList(g *global, args []string) (int, error) {
	fs := newFlags("list", "[--format table|json] [--quiet]")
	format := fs.String("format", "table", "table or json")
	fs.StringVar(format, "f", "table", "short for --format")
	quiet := fs.Bool("quiet", false, "print only ids")
	fs.BoolVar(quiet, "q", false, "short for --quiet")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	store := g.store()
	ids, err := store.List()
	if err != nil {
		return 1, err
	}
	var states []*container.OCIState
	for _, id := range ids {
		c, err := container.Load(store, id)
		if err != nil {
			continue
		}
		states = append(states, c.OCIState())
	}
	switch {
	case *quiet:
		for _, s := range states {
			fmt.Println(s.ID)
		}
	case *format == "json":
		if states == nil {
			states = []*container.OCIState{}
		}
		return 0, printJSON(states, false)
	case *format == "table":
		w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
		fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
		for _, s := range states {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), s.Owner)
		}
		return 0, w.Flush()
	default:
		return 2, usagef("--format %q: want table or json", *format)
	}
	return 0, nil
}
