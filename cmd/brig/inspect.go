package main

import (
	"errors"
	"os"

	"golang.org/x/term"

	"brig/internal/cli"
	"brig/internal/container"
	"brig/internal/inspect"
)

func init() {
	register(command{name: "inspect", summary: "report a container's effective isolation, layer by layer (--self: this process's)", run: cmdInspect})
}

func cmdInspect(g *global, args []string) (int, error) {
	fs := cli.NewFlags("inspect", "[--format text|json] ID | --self")
	self := fs.Bool("self", false, "inspect this process (from inside any container)")
	format := fs.String("format", "text", "text or json")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	if err := cli.OneOf("format", *format, "text", "json"); err != nil {
		return 2, err
	}
	var r *inspect.Report
	var err error
	if *self {
		if fs.NArg() != 0 {
			return 2, cli.Usagef("--self takes no container id")
		}
		r, err = inspect.Of(os.Getpid(), false)
	} else {
		if fs.NArg() != 1 {
			return 2, cli.Usagef("want exactly one container id, got %d arguments", fs.NArg())
		}
		if r, err = container.Inspect(g.store(), fs.Arg(0)); errors.Is(err, container.ErrNothingToInspect) {
			return 2, cli.Usagef("%v", err)
		}
	}
	if err != nil {
		return 1, err
	}
	if *format == "json" {
		return 0, cli.PrintJSON(r, true)
	}
	os.Stdout.WriteString(r.Text(term.IsTerminal(int(os.Stdout.Fd()))))
	return 0, nil
}
