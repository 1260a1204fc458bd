package main

import (
	_ "embed"
	"fmt"
	"os"

	"brig/internal/cli"
	"brig/internal/container"
	"brig/internal/learn"
	"brig/internal/sandbox"
)

func init() {
	register(command{name: "learn", summary: "run a command as `brig run` does and write the least seccomp profile that replays it", run: cmdLearn})
}

//go:embed help/learn.txt
var learnUsage string

// cmdLearn is `brig learn -o PROFILE [run flags] -- CMD`.
func cmdLearn(g *global, args []string) (int, error) {
	o, rest, help, err := learn.SplitArgs(args)
	if err != nil {
		return 2, err
	}
	if help {
		fmt.Print(learnUsage)
		return 0, nil
	}
	if len(o.Command) == 0 {
		fmt.Fprint(os.Stderr, learnUsage)
		return 2, cli.Usagef("no command: brig learn -o PROFILE -- CMD [ARGS...]")
	}
	o.Version, o.DefaultRO, o.Warn, o.Error = version, sandbox.SystemDirs, g.logw.Warn, g.logw.Error
	o.Home, _ = os.UserHomeDir()
	run, err := learn.Start(o)
	if err != nil {
		return 2, err
	}
	code, err := runSandbox(g, "learn", rest, recording{
		observe: func(c *container.Created) (func(int), error) { return run.Observe(c.CgroupV2Dir(), c.Pid) },
		calls:   run.RecordCalls(),
		files:   run.RecordFiles(),
		names:   run.NamesFrom})
	if err := run.Finish(err); err != nil {
		return code, err
	}
	return code, nil
}
