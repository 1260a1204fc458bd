package learn

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"brig/internal/cli"
	"brig/internal/recorder"
)

// Options are `brig learn`'s own: what to write, and from what.
type Options struct {
	Output   string   // -o PROFILE
	Merge    []string // --merge FILE
	FilesOut string   // --profile-out SANDBOX.yaml ("": none)
	// Recorder is how the calls are recorded: "ebpf" (root), "seccomp"
	// (brig's seccomp listener: any user, slower), or "": eBPF where it
	// can be used, else seccomp, said with a warning.
	Recorder string
	Command  []string
	Version  string
	// DefaultRO and Home are the sandbox's system directories and the
	// caller's home, for the file rules (files.go).
	DefaultRO []string
	Home      string
	// Warn and Error report what happens after the command started.
	Warn, Error func(string)
}

// Run is `brig learn` around one `brig run`: Observe attaches the
// recorder to the created sandbox, and the profile is written when the
// command ends; SIGINT or SIGTERM write what was learned at once (the
// command gets the signal too, and is killed if it goes on: PID 1 of its
// namespace ignores signals it has no handler for).
type Run struct {
	o       Options
	mode    string // "ebpf" or "seccomp"
	sess    *Session
	sigs    chan os.Signal
	mu      sync.Mutex
	written bool
	summary string
}

// Start checks everything that can be checked before the command runs
// (see NewSession) and starts catching SIGINT and SIGTERM.
func Start(o Options) (*Run, error) {
	mode, err := chooseRecorder(o)
	if err != nil {
		return nil, err
	}
	sess, err := NewSession("-o", o.Output, o.Merge, o.Command, o.Version)
	if err != nil {
		return nil, err
	}
	if o.FilesOut != "" {
		if err := CheckWritable(o.FilesOut); err != nil {
			sess.Close()
			return nil, fmt.Errorf("--profile-out %w", err)
		}
		sess.FilesOut, sess.DefaultRO, sess.Home = o.FilesOut, o.DefaultRO, o.Home
	}
	r := &Run{o: o, mode: mode, sess: sess, sigs: make(chan os.Signal, 1)}
	signal.Notify(r.sigs, unix.SIGINT, unix.SIGTERM)
	go func() {
		for range r.sigs {
			if _, err := sess.Write(); err != nil && !errors.Is(err, ErrNothingLearned) {
				o.Warn("learn: " + err.Error())
			}
			if pid := sess.Pid(); pid > 0 {
				time.AfterFunc(2*time.Second, func() { unix.Kill(pid, unix.SIGKILL) })
			}
		}
	}()
	return r, nil
}

// chooseRecorder checks --recorder against what this process may do.
func chooseRecorder(o Options) (string, error) {
	if runtime.GOARCH != "amd64" {
		// Both recorders number calls and read arguments as x86-64 does.
		return "", fmt.Errorf("learn: recording is built for x86-64, not %s", runtime.GOARCH)
	}
	ebpf := recorder.Supported()
	switch o.Recorder {
	case "":
		if ebpf == nil {
			return "ebpf", nil
		}
		o.Warn(fmt.Sprintf("learn: %v: recording through brig's seccomp listener instead; every system call waits for brig, so the command runs slower", ebpf))
		return "seccomp", nil
	case "ebpf":
		if ebpf != nil {
			return "", fmt.Errorf("--recorder ebpf: %w (--recorder seccomp works without root, slower)", ebpf)
		}
		return "ebpf", nil
	case "seccomp":
		return "seccomp", nil
	}
	return "", fmt.Errorf("--recorder %q: want ebpf or seccomp", o.Recorder)
}

// RecordCalls is what the run hands brig's seccomp listener to, when it
// records the calls (nil with eBPF).
func (r *Run) RecordCalls() func(*recorder.Listener) {
	if r.mode != "seccomp" {
		return nil
	}
	return r.sess.Listen
}

// RecordFiles says whether the listener records the files used (with
// --profile-out and the seccomp recorder, without root: fanotify's mount
// marks need CAP_SYS_ADMIN).
func (r *Run) RecordFiles() bool {
	return r.mode == "seccomp" && r.o.FilesOut != "" && os.Geteuid() != 0
}

// NamesFrom is handed the sandbox's record of its DNS answers (with
// --allow-net names), for the destinations of --profile-out.
func (r *Run) NamesFrom(f func() map[netip.Addr][]string) { r.sess.NamesFrom(f) }

// Observe attaches to a created sandbox (its cgroup v2 directory and its
// init, waiting for start); the function it returns writes the profile
// once the command has ended.
func (r *Run) Observe(cgroupDir string, pid int) (func(code int), error) {
	if r.mode == "seccomp" {
		r.sess.SetPid(pid) // the listener records already
	} else if err := r.sess.Attach(cgroupDir, pid); err != nil {
		return nil, err
	}
	switch {
	case r.o.FilesOut == "":
	case r.RecordFiles():
		if f := r.sess.listenerFiles(); f != nil {
			r.sess.FilesFrom(f)
		}
	default:
		if err := r.sess.AttachFiles(pid); err != nil {
			return nil, err
		}
	}
	return func(int) {
		sum, err := r.sess.Write()
		r.sess.Close()
		if err != nil {
			r.o.Error("learn: " + err.Error())
			return
		}
		r.mu.Lock()
		r.written, r.summary = true, sum
		r.mu.Unlock()
		fmt.Fprintf(os.Stderr, "brig learn: %s: %s\n", r.o.Output, sum)
	}, nil
}

// Finish stops catching signals and closes the recorder; a run that
// ended without error but wrote nothing is an error.
func (r *Run) Finish(runErr error) error {
	signal.Stop(r.sigs)
	r.sess.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	if runErr == nil && !r.written {
		return fmt.Errorf("learn: %s not written", r.o.Output)
	}
	return runErr
}

// SplitArgs takes `brig learn`'s own flags (-o, --merge, --profile-out,
// --recorder, with one dash or two) out of its command line into o; rest
// are brig run's flags with "--" and the command, which is o.Command.
// help: -h or --help came before "--" (the rest is not read). A flag
// without its value is a cli.UsageError.
func SplitArgs(args []string) (o Options, rest []string, help bool, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		switch {
		case a == "--":
			o.Command = args[i+1:]
			return o, append(rest, args[i:]...), false, nil
		case name == a:
			rest = append(rest, a) // not a flag
		case name == "h" || name == "help":
			return o, nil, true, nil
		case name == "o" || name == "output" || name == "merge" || name == "profile-out" || name == "recorder":
			if i+1 >= len(args) {
				return o, nil, false, cli.Usagef("%s needs a value", a)
			}
			i++
			switch name {
			case "merge":
				o.Merge = append(o.Merge, args[i])
			case "profile-out":
				o.FilesOut = args[i]
			case "recorder":
				o.Recorder = args[i]
			default:
				o.Output = args[i]
			}
		default:
			rest = append(rest, a)
		}
	}
	return o, rest, false, nil
}
