package main

import (
	"fmt"
	"os"

	"golang.org/x/term"

	"brig/internal/container"
	"brig/internal/inspect"
)

func init() {
	register(command{name: "inspect", summary: "report a container's effective isolation, layer by layer (--self: this process's)", run: cmdInspect})
}

func cmdInspect(g *global, args []string) (int, error) {
	fs := newFlags("inspect", "[--format text|json] ID | --self")
	self := fs.Bool("self", false, "inspect this process (from inside any container)")
	format := fs.String("format", "text", "text or json")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	if *format != "text" && *format != "json" {
		return 2, usagef("--format %q: want text or json", *format)
	}
	var r *inspect.Report
	var err error
	if *self {
		if fs.NArg() != 0 {
			return 2, usagef("--self takes no container id")
		}
		r, err = inspect.Of(os.Getpid(), false)
	} else {
		id, uerr := oneID(fs)
		if uerr != nil {
			return 2, uerr
		}
		c, lerr := container.Load(g.store(), id)
		if lerr != nil {
			return 1, lerr
		}
		st := c.OCIState()
		if st.Pid == 0 {
			return 1, usagef("container %q is %s: nothing to inspect", id, st.Status)
		}
		r, err = inspect.Of(st.Pid, true)
		if mp := c.Spec.Linux.MemoryPolicy; err == nil && mp != nil {
			r.MemoryPolicy = fmt.Sprintf("%s nodes %s (as configured: brig sets it before execve)", mp.Mode, mp.Nodes)
		}
	}
	if err != nil {
		return 1, err
	}
	if *format == "json" {
		return 0, printJSON(r, true)
	}
	os.Stdout.WriteString(r.Text(term.IsTerminal(int(os.Stdout.Fd()))))
	return 0, nil
}
