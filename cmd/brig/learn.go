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
)

func init() {
	register(command{name: "learn", summary: "run a command as `brig run` does and write the least seccomp profile that replays it", run: cmdLearn})
}

const learnUsage = `Usage: brig learn -o PROFILE [--merge FILE]... [brig run flags] -- CMD [ARGS...]

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

Learning again into an existing PROFILE (or with --merge FILE) writes the
union. SIGINT or SIGTERM ends the command and writes what was learned.
Needs root (an eBPF tracepoint, attached only while the command runs).
`

// cmdLearn is `brig learn -o PROFILE [run flags] -- CMD`.
func cmdLearn(g *global, args []string) (int, error) {
	var out string
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
		case "-o", "--o", "--output", "-output", "--merge", "-merge":
			if i+1 >= len(args) {
				return 2, usagef("%s needs a file", a)
			}
			if a == "--merge" || a == "-merge" {
				merge = append(merge, args[i+1])
			} else {
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
