package container

import (
	"fmt"
	"io"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"brig/internal/bootstrap"
	"brig/internal/plan"
	"brig/internal/protocol"
	"brig/internal/state"
)

// BareOptions are RunBare's streams.
type BareOptions struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Warn           func(string)
}

// RunBare runs spec s's process with no namespace and no cgroup of its
// own: only the layers a process can take on itself — rlimits, user,
// capabilities, no_new_privs, Landlock, seccomp — applied by brig's init
// in the order brig exec applies them. It is brig run's lesser mode where
// namespaces can't be made (inside an unprivileged container); s must
// name no namespace and no mount. It waits for the process, passing
// signals on, and gives its exit code.
func RunBare(store state.Store, s *specs.Spec, o BareOptions) (int, error) {
	if s.Linux != nil && (len(s.Linux.Namespaces) > 0 || len(s.Mounts) > 0) {
		return -1, fmt.Errorf("run without namespaces: the spec names namespaces or mounts")
	}
	ep, err := plan.BuildExec(s, s.Process, 0, host(store))
	if err != nil {
		return -1, err
	}
	if o.Warn != nil {
		for _, w := range ep.Warnings {
			o.Warn(w)
		}
	}
	l := &launch{
		// Without a terminal, a session of its own: no controlling
		// terminal to push input into (the default profile refuses
		// TIOCSTI too, for the -t case, where it keeps the caller's).
		Boot: bootstrap.Options{Args: []string{"init"}, Setsid: !s.Process.Terminal,
			Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr},
		Cfg: &protocol.Config{Exec: true, Bare: true, ID: "bare", Spec: forInit(s), DieWithParent: true},
	}
	setProcess(l.Cfg, &ep.Process)
	l.pass(protocol.FD{Kind: protocol.FDParent})
	_, passed, closeFiles, err := l.open(nil, "")
	if err != nil {
		return -1, err
	}
	defer closeFiles()
	sigs := catchSignals()
	defer sigs.release()
	proc, err := bootstrap.Start(l.Boot)
	if err != nil {
		return -1, fmt.Errorf("run: %w", err)
	}
	c := sigs.wait()
	err = protocol.SendFiles(proc, passed)
	if err == nil {
		err = proc.Send(l.Cfg)
	}
	if err == nil {
		// The init closes the socket by exec'ing; a message means it failed.
		err = protocol.Serve(proc, map[protocol.Kind]protocol.Handler{
			protocol.KindCgroup: func(protocol.Message) (protocol.Reply, error) { return protocol.Reply{}, nil },
		}, true)
	}
	if err != nil {
		proc.Kill()
		return -1, err
	}
	proc.Close()
	return waitForward(proc.Pid, c), nil
}
