package container

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"brig/internal/bootstrap"
	"brig/internal/cgroup"
	"brig/internal/console"
	"brig/internal/plan"
	"brig/internal/protocol"
	"brig/internal/recorder"
	"brig/internal/resctrl"
	"brig/internal/spec"
	"brig/internal/state"
)

// Run is create, start and wait; the container is deleted when its process
// exits. With detach it returns after start. The exit code is the
// process's (128+n for a signal n).
func Run(store state.Store, o CreateOptions, detach bool) (int, error) {
	sigs := catchSignals()
	defer sigs.release()
	proxy, err := consoleProxy(&o, detach)
	if err != nil {
		return -1, err
	}
	if proxy != nil {
		defer proxy.Close()
	}
	var rec *recorder.Listener
	if o.ReportDenials || o.RecordCalls != nil {
		if o.Spec.Linux == nil || o.Spec.Linux.Seccomp == nil {
			if o.RecordCalls != nil {
				return -1, errors.New("brig learn --recorder seccomp: the sandbox has no seccomp profile to record through (not with --security-opt seccomp=unconfined)")
			}
			return -1, errors.New("--report-denials: the config has no linux.seccomp profile")
		}
		if rec, err = recorder.Listen(o.Spec.Linux.Seccomp, recorder.ListenOptions{Calls: o.RecordCalls != nil, Files: o.RecordFiles, Connects: o.OnConnect,
			Paths: o.WatchPaths != nil && o.ReportDenials}); err != nil {
			return -1, fmt.Errorf("seccomp listener: %w", err)
		}
		defer rec.Close()
		if o.RecordCalls != nil {
			o.RecordCalls(rec)
		}
		if o.WatchPaths != nil && o.ReportDenials {
			o.WatchPaths(rec)
		}
	}
	if o.ReportDenials {
		defer func() {
			if o.OnDenials != nil {
				o.OnDenials(rec.Denials())
				return
			}
			if r := rec.Report(); r != "" {
				fmt.Fprintln(os.Stderr, "brig: seccomp denied:", r)
			} else {
				fmt.Fprintln(os.Stderr, "brig: seccomp denied nothing")
			}
		}()
	}
	cr, err := Create(store, o)
	if err != nil {
		return -1, err
	}
	done := func(int) {}
	if o.Observe != nil {
		if done, err = o.Observe(cr); err != nil {
			Delete(store, o.ID, true, o.Warn)
			return -1, err
		}
	}
	if proxy != nil {
		proxy.Attach(os.Stdin, os.Stdout)
	}
	// Signals that reach brig from here on are passed on to the process.
	sigs.wait()
	// Start and delete use the container create made (and saved): its
	// state isn't read back.
	if err := locked(store, o.ID, func() error { return cr.start(o.Warn) }); err != nil {
		done(-1)
		locked(store, o.ID, func() error { return cr.delete(true, o.Warn) })
		return -1, err
	}
	if detach {
		done(0)
		return 0, nil
	}
	code := waitForward(cr.Pid, sigs.wait())
	done(code)
	if o.Keep {
		return code, nil // state says stopped; delete removes it
	}
	if err := locked(store, o.ID, func() error { return cr.delete(true, o.Warn) }); err != nil {
		return code, err
	}
	return code, nil
}

// locked runs f with the container's state locked.
func locked(store state.Store, id string, f func() error) error {
	lock, err := store.Lock(id)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	return f()
}

// consoleProxy makes brig its own console socket when the process wants a
// terminal and no --console-socket was given (an interactive run).
// It loads the spec for Create, so config.json is read once.
func consoleProxy(o *CreateOptions, detach bool) (*console.Proxy, error) {
	if o.Spec == nil {
		bundle, err := filepath.Abs(o.Bundle)
		if err != nil {
			return nil, err
		}
		if o.Spec, err = spec.Load(bundle); err != nil {
			return nil, err
		}
	}
	if o.ConsoleSocket != "" || detach || o.Spec.Process == nil || !o.Spec.Process.Terminal {
		return nil, nil
	}
	p, err := console.NewProxy()
	if err != nil {
		return nil, err
	}
	o.ConsoleSocket = p.Path
	return p, nil
}

// signals are the signals brig catches to pass on to the container's
// process.
type signals struct {
	c     chan os.Signal
	ready chan struct{}
}

// catchSignals starts catching every signal, in the background: the Go
// runtime registers each one with a round trip to its signal thread, about
// 2 ms for all of them, which overlaps with creating the container this
// way. wait returns once all are caught.
func catchSignals() *signals {
	s := &signals{c: make(chan os.Signal, 64), ready: make(chan struct{})}
	go func() {
		signal.Notify(s.c)
		close(s.ready)
	}()
	return s
}

func (s *signals) wait() chan os.Signal {
	<-s.ready
	return s.c
}

// release stops catching, in the background too: the process is about to
// exit, and a signal that arrives meanwhile is simply not passed on.
func (s *signals) release() {
	go func() {
		<-s.ready
		signal.Stop(s.c)
	}()
}

// waitForward waits for pid, a child of ours, forwarding the signals brig
// receives to it.
func waitForward(pid int, sigs chan os.Signal) int {
	done := make(chan int, 1)
	go func() {
		for {
			var ws unix.WaitStatus
			_, err := unix.Wait4(pid, &ws, 0, nil)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				done <- 255
				return
			}
			if ws.Signaled() {
				done <- 128 + int(ws.Signal())
			} else {
				done <- ws.ExitStatus()
			}
			return
		}
	}()
	for {
		select {
		case code := <-done:
			return code
		case s := <-sigs:
			sig, ok := s.(unix.Signal)
			if !ok || sig == unix.SIGCHLD || sig == unix.SIGURG || sig == unix.SIGPIPE {
				continue
			}
			unix.Kill(pid, sig)
		}
	}
}

// EnvInit set to "go" makes brig exec run the Go init even where the C
// init program could (internal/initprog): for comparing the two.
const EnvInit = "BRIG_INIT"

// ExecOptions are exec's inputs.
type ExecOptions struct {
	ID            string
	Process       *specs.Process
	PidFile       string
	ConsoleSocket string
	Detach        bool
	PreserveFDs   int
	Stdin         io.Reader
	Stdout        io.Writer
	Stderr        io.Writer
	// Debug, if set, is told which init runs the process, and why.
	Debug func(string)
}

// Exec runs a new process in a running container and, unless detached,
// waits for it and returns its exit code.
func Exec(store state.Store, o ExecOptions) (int, error) {
	c, err := Load(store, o.ID)
	if err != nil {
		return -1, err
	}
	switch st := c.Status(); st {
	case specs.StateRunning, specs.StateCreated:
	default:
		return -1, fmt.Errorf("container %q is %s: cannot exec in it", o.ID, st)
	}
	if o.Process.ExecCPUAffinity == nil && c.Spec.Process != nil {
		// The container's own setting is every exec'd process's default.
		o.Process.ExecCPUAffinity = c.Spec.Process.ExecCPUAffinity
	}
	ep, err := plan.BuildExec(c.Spec, o.Process, c.Pid, host(store))
	if err != nil {
		return -1, err
	}
	if err := checkPreserved(o.PreserveFDs); err != nil {
		return -1, err
	}
	// ep.Warnings are not said again: create said them for the same
	// profile and capabilities of this host.
	var proxy *console.Proxy
	if o.Process.Terminal && o.ConsoleSocket == "" && !o.Detach {
		if proxy, err = console.NewProxy(); err != nil {
			return -1, err
		}
		defer proxy.Close()
		o.ConsoleSocket = proxy.Path
	}
	l, err := decideExec(ep, c.Spec, c.ID, c.Bundle, o, o.ConsoleSocket)
	if err != nil {
		return -1, err
	}
	if os.Getenv(EnvInit) == "go" {
		l.Program, l.Boot.Program, l.GoInit = nil, false, fmt.Errorf("%s=go", EnvInit)
	}
	if o.Debug != nil {
		if l.Program != nil {
			o.Debug(fmt.Sprintf("exec: the C init runs a program of %d bytes", len(l.Program)))
		} else {
			o.Debug(fmt.Sprintf("exec: the Go init runs the process (%v)", l.GoInit))
		}
	}
	bo := l.Boot
	bo.Stdin, bo.Stdout, bo.Stderr = o.Stdin, o.Stdout, o.Stderr
	cfg := l.Cfg
	inherited, passed, closeFiles, err := l.open(nil, o.ConsoleSocket)
	if err != nil {
		return -1, err
	}
	defer closeFiles()
	bo.ExtraFiles = inherited
	// The exec'd process enters the container's cgroup as it starts, as
	// the container's own did; with either driver (the cgroup exists).
	bo.JoinCgroups, bo.CgroupDir = cgroup.JoinDirs(c.CgroupPaths)
	var sigs *signals
	if !o.Detach {
		sigs = catchSignals()
		defer sigs.release()
	}
	proc, err := bootstrap.Start(bo)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", o.ID, err)
	}
	if sigs != nil {
		sigs.wait() // before the process can run: its signals are passed on
	}
	if c.Resctrl != nil {
		if err := resctrl.Join(*c.Resctrl, proc.Pid); err != nil {
			proc.Kill()
			return -1, err
		}
	}
	if l.Program != nil {
		// The C init runs the program; it says nothing more unless it fails.
		err = proc.SendProgram(l.Program)
	} else if err = protocol.SendFiles(proc, passed); err == nil {
		err = proc.Send(cfg)
	}
	if err != nil {
		proc.Kill()
		return -1, err
	}
	// The init closes the socket by exec'ing; a message means it failed.
	err = protocol.Serve(proc, map[protocol.Kind]protocol.Handler{
		protocol.KindCgroup: func(protocol.Message) (protocol.Reply, error) { return protocol.Reply{}, proc.Placed() },
		protocol.KindSeccomp: func(m protocol.Message) (protocol.Reply, error) {
			return protocol.Reply{}, c.sendSeccompListener(proc.Pid, m.Files, c.Spec)
		},
	}, true)
	if err != nil {
		proc.Kill()
		return -1, err
	}
	proc.Close()
	if proc.Cmd.Process.Pid != proc.Pid {
		proc.Cmd.Wait()
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, proc.Pid); err != nil {
			return -1, err
		}
	}
	if o.Detach {
		return 0, nil
	}
	if proxy != nil {
		proxy.Attach(os.Stdin, os.Stdout)
	}
	return waitForward(proc.Pid, sigs.wait()), nil
}
