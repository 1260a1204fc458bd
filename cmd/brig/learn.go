package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"time"

	"golang.org/x/sys/unix"

	"brig/internal/container"
	"brig/internal/learn"
	"brig/internal/sandbox"
)

func init() {
	register(command{name: "learn", summary: "run a command as `brig run` does and write the least seccomp profile that replays it", run: cmdLearn})
}

const learnUsage = `Usage: brig learn -o PROFILE [--profile-out SANDBOX.yaml] [--merge FILE]... [brig run flags] -- CMD [ARGS...]

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
Needs root (an eBPF tracepoint, attached only while the command runs).
`

// cmdLearn is `brig learn -o PROFILE [run flags] -- CMD`.
func cmdLearn(g *global, args []string) (int, error) {
	var out, filesOut string
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
		case "-o", "--o", "--output", "-output", "--merge", "-merge", "--profile-out", "-profile-out":
			if i+1 >= len(args) {
				return 2, usagef("%s needs a file", a)
			}
			switch a {
			case "--merge", "-merge":
				merge = append(merge, args[i+1])
			case "--profile-out", "-profile-out":
				filesOut = args[i+1]
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
	sess, err := learn.NewSession("-o", out, merge, command, version)
	if err != nil {
		return 2, err
	}
	defer sess.Close()
	if filesOut != "" {
		if err := learn.CheckWritable(filesOut); err != nil {
			return 2, fmt.Errorf("--profile-out %w", err)
		}
		sess.FilesOut, sess.DefaultRO = filesOut, sandbox.SystemDirs
		sess.Home, _ = os.UserHomeDir()
	}
	// SIGINT/SIGTERM: the command gets the signal (run passes it on); what
	// was learned is written at once, and a command that goes on (PID 1 of
	// its namespace ignores signals it has no handler for) is killed.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		for range sigs {
			if _, err := sess.Write(); err != nil && !errors.Is(err, learn.ErrNothingLearned) {
				g.logw.Warn("learn: " + err.Error())
			}
			if pid := sess.Pid(); pid > 0 {
				time.AfterFunc(2*time.Second, func() { unix.Kill(pid, unix.SIGKILL) })
			}
		}
	}()
	written := false
	code, err := runSandbox(g, "learn", rest, func(c *container.Created) (func(int), error) {
		if err := sess.Attach(c.CgroupV2Dir(), c.Pid); err != nil {
			return nil, err
		}
		if filesOut != "" {
			if err := sess.AttachFiles(c.Pid); err != nil {
				return nil, err
			}
		}
		return func(int) {
			sum, werr := sess.Write()
			sess.Close()
			if werr != nil {
				g.logw.Error("learn: " + werr.Error())
				return
			}
			written = true
			fmt.Fprintf(os.Stderr, "brig learn: %s: %s\n", out, sum)
		}, nil
	})
	if err == nil && !written {
		return 1, fmt.Errorf("learn: %s not written", out)
	}
	return code, err
}
