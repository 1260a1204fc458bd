package main

import (
	"fmt"
	"os"

	"brig/internal/container"
	"brig/internal/learn"
	"brig/internal/sandbox"
)

func init() {
	register(command{name: "learn", summary: "run a command as `brig run` does and write the least seccomp profile that replays it", run: cmdLearn})
}

const learnUsage = `Usage: brig learn -o PROFILE [--profile-out SANDBOX.yaml] [--merge FILE]... [--recorder ebpf|seccomp] [brig run flags] -- CMD [ARGS...]

Runs CMD exactly as 'brig run' would (same sandbox, same base profile: brig's
default, or --security-opt seccomp=FILE) while recording every system call it
and its descendants make after brig starts it, then writes PROFILE: a seccomp
allow-list (deny by default) with argument rules where arguments decide the
risk — socket family and type, clone and unshare namespace flags, ioctl
requests, prctl options, personality, executable mappings — allowing the
values seen and no others. A call the base profile denies is never learned.

PROFILE is what --security-opt seccomp=, Docker, Podman, a Kubernetes
Localhost profile and an OCI config's linux.seccomp take:

  brig learn -o app.json -- ./app --selftest
  brig run --security-opt seccomp=app.json -- ./app

--profile-out SANDBOX.yaml also writes a 'brig run --profile' file: PROFILE
as its seccomp profile, and the host paths CMD read, executed and wrote
(among those the run showed it: give them with --ro, --rw or --home) as
--ro and --rw entries, as tight as files; a directory only where it was
listed, where a file was created in it, or where more than 8 of its files
were used — never / nor a parent of the home directory. Replay with:

  brig learn -o app.json --profile-out app.yaml --rw . -- make test
  brig run --profile app.yaml -- make test

Learning again into an existing PROFILE (or with --merge FILE) writes the
union. SIGINT or SIGTERM ends the command and writes what was learned.

--recorder ebpf|seccomp chooses how the calls are recorded. ebpf (the
default as root) is an eBPF tracepoint attached only while the command
runs: it costs about 10 %. seccomp (the default without root) makes brig
the listener of the command's seccomp filter: every system call waits for
brig's answer, so a syscall-heavy command runs several times slower, but
any user can learn. --profile-out needs root either way (fanotify).
`

// cmdLearn is `brig learn -o PROFILE [run flags] -- CMD`.
func cmdLearn(g *global, args []string) (int, error) {
	var out, filesOut, rec string
	var merge []string
	var rest, command []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			command = args[i+1:]
			break
		}
		switch a {
		case "-o", "--o", "--output", "-output", "--merge", "-merge", "--profile-out", "-profile-out", "--recorder", "-recorder":
			if i+1 >= len(args) {
				return 2, usagef("%s needs a value", a)
			}
			switch a {
			case "--merge", "-merge":
				merge = append(merge, args[i+1])
			case "--profile-out", "-profile-out":
				filesOut = args[i+1]
			case "--recorder", "-recorder":
				rec = args[i+1]
			default:
				out = args[i+1]
			}
			i++
		case "-h", "--help", "-help":
			fmt.Print(learnUsage)
			return 0, nil
		default:
			rest = append(rest, a)
		}
	}
	if len(command) == 0 {
		fmt.Fprint(os.Stderr, learnUsage)
		return 2, usagef("no command: brig learn -o PROFILE -- CMD [ARGS...]")
	}
	o := learn.Options{Output: out, Merge: merge, FilesOut: filesOut, Recorder: rec, Command: command, Version: version,
		DefaultRO: sandbox.SystemDirs, Warn: g.logw.Warn, Error: g.logw.Error}
	o.Home, _ = os.UserHomeDir()
	run, err := learn.Start(o)
	if err != nil {
		return 2, err
	}
	code, err := runSandbox(g, "learn", rest, recording{
		observe: func(c *container.Created) (func(int), error) { return run.Observe(c.CgroupV2Dir(), c.Pid) },
		calls:   run.RecordCalls(),
		names:   run.NamesFrom})
	if err := run.Finish(err); err != nil {
		if code == 0 {
			code = 1
		}
		return code, err
	}
	return code, nil
}
