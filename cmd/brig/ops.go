package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"brig/internal/cli"
	"brig/internal/container"
)

func init() {
	register(command{name: "pause", summary: "freeze every process of a container", run: idCommand("pause", func(g *global, id string) error { return container.Pause(g.store(), id) })})
	register(command{name: "resume", summary: "thaw a paused container", run: idCommand("resume", func(g *global, id string) error { return container.Resume(g.store(), id) })})
	register(command{name: "ps", summary: "list a container's processes", run: cmdPs})
	register(command{name: "update", summary: "change a container's resource limits", run: cmdUpdate})
	register(command{name: "events", summary: "print a container's stats and events as JSON lines", run: cmdEvents})
	register(command{name: "features", summary: "print what this brig supports (runtime-spec features JSON)", run: cmdFeatures})
}

func cmdPs(g *global, args []string) (int, error) {
	fs := cli.NewFlags("ps", "[--format table|json] ID [PS_ARGS...]")
	format := fs.String("format", "table", "table (runs ps) or json (host pids)")
	fs.StringVar(format, "f", "table", "short for --format")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	if fs.NArg() < 1 {
		return 2, cli.Usagef("want a container id")
	}
	if err := cli.OneOf("format", *format, "table", "json"); err != nil {
		return 2, err
	}
	if *format == "json" {
		pids, err := container.Pids(g.store(), fs.Arg(0))
		if err != nil {
			return 1, err
		}
		if pids == nil {
			pids = []int{}
		}
		return 0, cli.PrintJSON(pids, false)
	}
	out, err := container.Ps(g.store(), fs.Arg(0), fs.Args()[1:])
	if err != nil {
		return 1, err
	}
	fmt.Print(out)
	return 0, nil
}

func cmdUpdate(g *global, args []string) (int, error) {
	fs := cli.NewFlags("update", "[--resources FILE|-] [flags] ID")
	resources := fs.String("resources", "", "JSON linux.resources from a file, or - for stdin")
	fs.StringVar(resources, "r", "", "short for --resources")
	values := map[string]*string{}
	for _, f := range container.ResourceFlags {
		values[f.Name] = fs.String(f.Name, "", f.Usage)
	}
	fs.StringVar(values["cpu-shares"], "cpu-share", "", "same as --cpu-shares (runc's spelling)")
	rdt := "Intel RDT %s schema (not supported: brig applies linux.intelRdt at create only)"
	l3, mb := fs.String("l3-cache-schema", "", fmt.Sprintf(rdt, "L3 cache")), fs.String("mem-bw-schema", "", fmt.Sprintf(rdt, "memory bandwidth"))
	id, err := fs.ParseID(args)
	if err != nil {
		return 2, err
	}
	if *l3 != "" || *mb != "" {
		return 2, cli.Usagef("--l3-cache-schema, --mem-bw-schema: brig applies linux.intelRdt when it creates a container, and can't change it afterwards")
	}
	r := &specs.LinuxResources{}
	if *resources != "" {
		if err := cli.ReadJSON("resources", *resources, r); err != nil {
			return 1, err
		}
	}
	vs := map[string]string{}
	for k, v := range values {
		vs[k] = *v
	}
	r, err = container.Resources(r, vs, cli.ParseBytes)
	if err != nil {
		return 2, cli.Usagef("%v", err)
	}
	return 0, container.Update(g.store(), id, r)
}

func cmdEvents(g *global, args []string) (int, error) {
	fs := cli.NewFlags("events", "[--stats] [--interval 5s] ID")
	stats := fs.Bool("stats", false, "print one stats event and exit")
	interval := fs.Duration("interval", 5*time.Second, "time between stats events")
	id, err := fs.ParseID(args)
	if err != nil {
		return 2, err
	}
	if *interval <= 0 {
		return 2, cli.Usagef("--interval must be positive")
	}
	enc := json.NewEncoder(os.Stdout)
	if *stats {
		ev, err := container.StatsEvent(g.store(), id)
		if err != nil {
			return 1, err
		}
		return 0, enc.Encode(ev)
	}
	return 0, container.Events(g.store(), id, *interval, func(ev *container.Event) error { return enc.Encode(ev) })
}

func cmdFeatures(g *global, args []string) (int, error) {
	if err := cli.NewFlags("features", "").Parse(args); err != nil {
		return 2, err
	}
	return 0, cli.PrintJSON(container.Features(), true)
}
