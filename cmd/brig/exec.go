package main

import (
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"brig/internal/cli"
	"brig/internal/container"
)

func init() {
	register(command{name: "exec", summary: "run a new process in a running container", run: cmdExec})
}

func cmdExec(g *global, args []string) (int, error) {
	fs := cli.NewFlags("exec", "[flags] ID [COMMAND [ARG...]]")
	var ch container.ProcessChanges
	var env, caps, gids cli.StringList
	processFile := fs.String("process", "", "JSON file with the process (runtime-spec process object)")
	fs.StringVar(processFile, "p", "", "short for --process")
	fs.BoolVar(&ch.Terminal, "tty", false, "allocate a pseudo-terminal")
	fs.BoolVar(&ch.Terminal, "t", false, "short for --tty")
	detach := fs.Bool("detach", false, "do not wait for the process")
	fs.BoolVar(detach, "d", false, "short for --detach")
	pidFile := fs.String("pid-file", "", "write the process's pid to this file")
	consoleSocket := fs.String("console-socket", "", "unix socket to send the pty master to")
	fs.Var(&env, "env", "set an environment variable (repeatable)")
	fs.Var(&env, "e", "short for --env")
	fs.Var(&caps, "cap", "add a capability (repeatable)")
	fs.Var(&caps, "c", "short for --cap")
	fs.Var(&gids, "additional-gids", "add a supplementary gid (repeatable)")
	fs.Var(&gids, "g", "short for --additional-gids")
	fs.StringVar(&ch.Cwd, "cwd", "", "working directory in the container")
	user := fs.String("user", "", "UID[:GID] to run as")
	fs.StringVar(user, "u", "", "short for --user")
	fs.BoolVar(&ch.NoNewPrivs, "no-new-privs", false, "set no_new_privs")
	fs.StringVar(&ch.AppArmor, "apparmor", "", "AppArmor profile for the process")
	fs.StringVar(&ch.SELinuxLabel, "process-label", "", "SELinux label for the process")
	preserve := fs.Int("preserve-fds", 0, "pass this many fds after stdio to the process")
	fs.Bool("ignore-paused", false, "accepted for runc compatibility")
	fs.String("cgroup", "", "accepted for runc compatibility (sub-cgroup)")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	if fs.NArg() < 1 {
		return 2, cli.Usagef("want a container id")
	}
	id := fs.Arg(0)
	c, err := container.Load(g.store(), id)
	if err != nil {
		return 1, err
	}
	var given *specs.Process
	if *processFile != "" {
		given = &specs.Process{}
		if err := cli.ReadJSON("process", *processFile, given); err != nil {
			return 1, err
		}
	}
	if *user != "" {
		uid, gid, err := cli.ParseUser(*user)
		if err != nil {
			return 2, cli.Usagef("--user: %v", err)
		}
		ch.UID, ch.GID = &uid, &gid
	}
	ch.Args, ch.Env, ch.Caps, ch.AdditionalGids = fs.Args()[1:], env, caps, gids
	proc, err := container.ExecProcess(c.Spec.Process, given, ch)
	if err != nil {
		return 2, cli.Usagef("%v", err)
	}
	return container.Exec(g.store(), container.ExecOptions{
		ID: id, Process: proc, PidFile: *pidFile, ConsoleSocket: *consoleSocket, Detach: *detach,
		PreserveFDs: *preserve, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		Debug: g.logw.Debug,
	})
}
