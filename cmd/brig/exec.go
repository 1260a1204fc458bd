package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"brig/internal/container"
	"brig/internal/spec"
)

func init() {
	register(command{name: "exec", summary: "run a new process in a running container", run: cmdExec})
}

func cmdExec(g *global, args []string) (int, error) {
	fs := newFlags("exec", "[flags] ID [COMMAND [ARG...]]")
	processFile := fs.String("process", "", "JSON file with the process (runtime-spec process object)")
	fs.StringVar(processFile, "p", "", "short for --process")
	tty := fs.Bool("tty", false, "allocate a pseudo-terminal")
	fs.BoolVar(tty, "t", false, "short for --tty")
	detach := fs.Bool("detach", false, "do not wait for the process")
	fs.BoolVar(detach, "d", false, "short for --detach")
	pidFile := fs.String("pid-file", "", "write the process's pid to this file")
	consoleSocket := fs.String("console-socket", "", "unix socket to send the pty master to")
	var env, capsAdd, gids stringList
	fs.Var(&env, "env", "set an environment variable (repeatable)")
	fs.Var(&env, "e", "short for --env")
	fs.Var(&capsAdd, "cap", "add a capability (repeatable)")
	fs.Var(&capsAdd, "c", "short for --cap")
	fs.Var(&gids, "additional-gids", "add a supplementary gid (repeatable)")
	fs.Var(&gids, "g", "short for --additional-gids")
	cwd := fs.String("cwd", "", "working directory in the container")
	user := fs.String("user", "", "UID[:GID] to run as")
	fs.StringVar(user, "u", "", "short for --user")
	noNewPrivs := fs.Bool("no-new-privs", false, "set no_new_privs")
	apparmor := fs.String("apparmor", "", "AppArmor profile for the process")
	label := fs.String("process-label", "", "SELinux label for the process")
	preserve := fs.Int("preserve-fds", 0, "pass this many fds after stdio to the process")
	fs.Bool("ignore-paused", false, "accepted for runc compatibility")
	fs.String("cgroup", "", "accepted for runc compatibility (sub-cgroup)")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	if fs.NArg() < 1 {
		return 2, usagef("want a container id")
	}
	id := fs.Arg(0)
	c, err := container.Load(g.store(), id)
	if err != nil {
		return 1, err
	}
	var proc *specs.Process
	if *processFile != "" {
		data, err := os.ReadFile(*processFile)
		if err != nil {
			return 1, fmt.Errorf("--process: %w", err)
		}
		proc = &specs.Process{}
		if err := json.Unmarshal(data, proc); err != nil {
			return 1, fmt.Errorf("--process %s: %w", *processFile, err)
		}
	} else {
		if fs.NArg() < 2 {
			return 2, usagef("want a command to run, or --process FILE")
		}
		// The container's process is the template, as with runc.
		base := c.Spec.Process
		proc = &specs.Process{}
		if base != nil {
			cp := *base
			proc = &cp
		}
		proc.Args = fs.Args()[1:]
		proc.Terminal = *tty
		proc.ConsoleSize = nil
	}
	proc.Env = append(proc.Env, env...)
	if *cwd != "" {
		proc.Cwd = *cwd
	}
	if proc.Cwd == "" {
		proc.Cwd = "/"
	}
	if *user != "" {
		uid, gid, err := parseUser(*user)
		if err != nil {
			return 2, usagef("--user: %v", err)
		}
		proc.User.UID, proc.User.GID = uid, gid
	}
	for _, gs := range gids {
		n, err := strconv.ParseUint(gs, 10, 32)
		if err != nil {
			return 2, usagef("--additional-gids %q: %v", gs, err)
		}
		proc.User.AdditionalGids = append(proc.User.AdditionalGids, uint32(n))
	}
	if len(capsAdd) > 0 {
		if proc.Capabilities == nil {
			proc.Capabilities = &specs.LinuxCapabilities{}
		}
		for _, cp := range capsAdd {
			name := strings.ToUpper(cp)
			if !strings.HasPrefix(name, "CAP_") {
				name = "CAP_" + name
			}
			if _, ok := spec.CapabilityByName(name); !ok {
				return 2, usagef("--cap %q: unknown capability", cp)
			}
			pc := proc.Capabilities
			pc.Bounding = append(pc.Bounding, name)
			pc.Effective = append(pc.Effective, name)
			pc.Permitted = append(pc.Permitted, name)
			pc.Inheritable = append(pc.Inheritable, name)
			pc.Ambient = append(pc.Ambient, name)
		}
	}
	if *noNewPrivs {
		proc.NoNewPrivileges = true
	}
	if *apparmor != "" {
		proc.ApparmorProfile = *apparmor
	}
	if *label != "" {
		proc.SelinuxLabel = *label
	}
	code, err := container.Exec(g.store(), container.ExecOptions{
		ID: id, Process: proc, PidFile: *pidFile, ConsoleSocket: *consoleSocket, Detach: *detach,
		PreserveFDs: *preserve, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
	})
	if err != nil {
		return 1, err
	}
	return code, nil
}

// parseUser reads UID[:GID] (numbers only: names would need the
// container's /etc/passwd, which the caller resolves).
func parseUser(s string) (uint32, uint32, error) {
	us, gs, hasG := strings.Cut(s, ":")
	uid, err := strconv.ParseUint(us, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("uid %q is not a number", us)
	}
	gid := uint64(0)
	if hasG {
		if gid, err = strconv.ParseUint(gs, 10, 32); err != nil {
			return 0, 0, fmt.Errorf("gid %q is not a number", gs)
		}
	}
	return uint32(uid), uint32(gid), nil
}
