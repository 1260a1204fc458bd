package main

import (
	_ "embed"
	"fmt"
	"io"
	"net/netip"
	"os"

	"brig/internal/cli"
	"brig/internal/container"
	"brig/internal/recorder"
	"brig/internal/sandbox"
)

//go:embed help/run.txt
var sandboxUsage string

// sandboxFlags are the flags of `brig run --` (and brig learn), which
// internal/sandbox defines: they are its profile files' settings too.
func sandboxFlags(cmdName string) (*cli.Flags, *sandbox.Flags) {
	v := &sandbox.Flags{}
	fs := cli.NewFlags(cmdName, "[flags] -- CMD [ARGS...]")
	fs.Usage = func(w io.Writer) { fmt.Fprint(w, sandboxUsage) }
	v.Define(fs.FlagSet)
	return fs, v
}

// cmdSandbox is `brig run [flags] -- CMD`.
func cmdSandbox(g *global, args []string) (int, error) {
	return runSandbox(g, "run", args, recording{})
}

// recording is brig learn's hooks into the run (none for brig run):
// observe is called between create and start, calls is handed brig's
// seccomp listener when it records the calls.
type recording struct {
	observe func(*container.Created) (func(int), error)
	calls   func(*recorder.Listener)
	files   bool // with calls: the listener records the files used too
	names   func(func() map[netip.Addr][]string)
}

// runSandbox runs CMD confined; rec.observe, when set, is called between
// create and start (brig learn attaches its recorder there).
func runSandbox(g *global, cmdName string, args []string, rec recording) (int, error) {
	fs, v := sandboxFlags(cmdName)
	args, err := sandbox.WithProfile(args, func(k string) bool { return fs.Lookup(k) != nil })
	if err != nil {
		return 2, err
	}
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	if a := fs.Args(); len(a) == 1 && (a[0] == "--help" || a[0] == "-h" || a[0] == "-help") {
		// brig run -- --help: no program is called that.
		fs.PrintHelp(os.Stdout)
		return 0, nil
	}
	if v.Check {
		for _, l := range sandbox.Check() {
			fmt.Println(l)
		}
		return 0, nil
	}
	o, runOpts, err := v.Options(fs.Args())
	if err != nil {
		return 0, err
	}
	runOpts.Warn, runOpts.Observe, runOpts.RecordCalls, runOpts.AnsweredNames = g.logw.Warn, rec.observe, rec.calls, rec.names
	runOpts.RecordFiles, runOpts.Debug = rec.files, g.logw.Debug
	return sandbox.Run(g.store(), o, runOpts)
}
