package container

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"

	"golang.org/x/sys/unix"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"brig/internal/bootstrap"
	"brig/internal/console"
	"brig/internal/initprog"
	"brig/internal/plan"
	"brig/internal/protocol"
)

// What create and exec decide before they touch anything — the init's
// bootstrap (namespaces, id maps, session), the config it is sent, and the
// fds it is passed, in order — is a launch: pure data from the plan and the
// flags, table-tested without any privilege (launch_test.go). Create and
// Exec then carry it out: open the fds, start the bootstrap, pass the fds
// and the config, serve the init.

// launch is a decided start of an init.
type launch struct {
	Boot bootstrap.Options // without the files, streams and cgroup placement
	Cfg  *protocol.Config  // Cfg.FDs: the fds passed to it, in order
	// Preserve is how many of the caller's fds (3, 4, ...) the init
	// inherits, keeping their numbers: the only fds it inherits but stdio.
	Preserve int
	// Program is the init program (internal/initprog) the C init runs
	// instead of the Go init, where Cfg can be one; GoInit says why not.
	Program []byte
	GoInit  error
}

// pass appends an fd to those passed with the config.
func (l *launch) pass(fd protocol.FD) { l.Cfg.FDs = append(l.Cfg.FDs, fd) }

// decideCreate is create's launch for plan p of spec s, with its exec
// fifo at fifo.
func decideCreate(p *plan.Plan, s *specs.Spec, o CreateOptions, bundle, fifo string) (*launch, error) {
	switch {
	case s.Process.Terminal && o.ConsoleSocket == "":
		return nil, errors.New("process.terminal is true: --console-socket is required")
	case !s.Process.Terminal && o.ConsoleSocket != "":
		return nil, errors.New("--console-socket given but process.terminal is false")
	}
	l := &launch{
		Boot: bootstrap.Options{
			Args: []string{"init"},
			// Without a terminal of its own, a new session: no controlling
			// terminal to push input into.
			Setsid:      o.NewSession && !s.Process.Terminal,
			UIDMappings: s.Linux.UIDMappings, GIDMappings: s.Linux.GIDMappings,
			CloneFlags: p.Namespaces.CloneFlags, TimeOffsets: p.Namespaces.TimeOffsets,
			Join: joins(p.Namespaces.Join),
		},
		Cfg: &protocol.Config{
			ID: o.ID, Bundle: bundle, Spec: forInit(s), Process: s.Process, NoPivot: o.NoPivot,
			NoNewKeyring: o.NoNewKeyring, FifoPath: fifo, PreserveFDs: o.PreserveFDs,
			DieWithParent: o.DieWithParent, Mounts: p.Mounts,
			UserNS: p.Namespaces.UserNS, CgroupNS: p.Namespaces.CgroupNS,
		},
	}
	setProcess(l.Cfg, &p.Process)
	l.Preserve = o.PreserveFDs
	if o.DieWithParent {
		l.pass(protocol.FD{Kind: protocol.FDParent})
	}
	// Bind sources the host clones, by mount index.
	idx := make([]int, 0, len(p.HostTrees))
	for _, t := range p.HostTrees {
		idx = append(idx, t.Index)
	}
	sort.Ints(idx)
	for _, i := range idx {
		l.pass(protocol.FD{Kind: protocol.FDTree, Mount: i})
	}
	if s.Process.Terminal {
		l.pass(protocol.FD{Kind: protocol.FDConsole})
	}
	return l, nil
}

// decideExec is exec's launch: it joins the container's namespaces (no
// new ones, no id maps, no session of its own, no trees: the container's
// mounts exist), and has a console only with a terminal. consoleSocket
// is the socket exec will use (its own proxy's, unless given or detached).
func decideExec(ep *plan.Exec, c *specs.Spec, id, bundle string, o ExecOptions, consoleSocket string) (*launch, error) {
	if o.Process.Terminal && consoleSocket == "" {
		return nil, errors.New("process.terminal is true: --console-socket is required with --detach")
	}
	l := &launch{
		Boot: bootstrap.Options{Args: []string{"init"}, Join: joins(ep.Namespaces.Join)},
		Cfg: &protocol.Config{Exec: true, ID: id, Bundle: bundle, Spec: forInit(c), PreserveFDs: o.PreserveFDs,
			UserNS: ep.Namespaces.UserNS},
	}
	setProcess(l.Cfg, &ep.Process)
	l.Preserve = o.PreserveFDs
	if o.Process.Terminal {
		l.pass(protocol.FD{Kind: protocol.FDConsole})
	}
	l.Program, l.GoInit = initprog.Compile(l.Cfg)
	l.Boot.Program = l.Program != nil
	return l, nil
}

// forInit is the spec as the init reads it: without the seccomp profile,
// which it gets compiled (a profile's few hundred names would be encoded
// and decoded again on every start).
func forInit(s *specs.Spec) *specs.Spec {
	if s.Linux == nil || s.Linux.Seccomp == nil {
		return s
	}
	c, l := *s, *s.Linux
	l.Seccomp = nil
	c.Linux = &l
	return &c
}

// open makes the launch's files: the preserved fds as they are
// (inherited), then those passed with the config, in Cfg.FDs's order: a
// pidfd of this brig, the trees cloned for the mounts, a connection to the
// console socket. closeAll closes what open made.
func (l *launch) open(trees map[int]*os.File, consoleSocket string) (inherited, passed []*os.File, closeAll func(), err error) {
	var made []*os.File
	closeAll = func() {
		for _, f := range made {
			f.Close()
		}
	}
	for i := 0; i < l.Preserve; i++ {
		inherited = append(inherited, os.NewFile(uintptr(3+i), "preserved-"+strconv.Itoa(3+i)))
	}
	for _, fd := range l.Cfg.FDs {
		var f *os.File
		switch fd.Kind {
		case protocol.FDParent:
			// The init checks it after its last parent-death signal is
			// set (credential changes clear the signal, and in a PID
			// namespace getppid can't tell).
			pfd, err := unix.PidfdOpen(os.Getpid(), 0)
			if err != nil {
				closeAll()
				return nil, nil, nil, fmt.Errorf("pidfd: %w", err)
			}
			f = os.NewFile(uintptr(pfd), "brig-pidfd")
			made = append(made, f)
		case protocol.FDTree:
			if f = trees[fd.Mount]; f == nil {
				closeAll()
				return nil, nil, nil, fmt.Errorf("mounts[%d]: no tree was made for it", fd.Mount)
			}
		case protocol.FDConsole:
			sock, err := console.Dial(consoleSocket)
			if err != nil {
				closeAll()
				return nil, nil, nil, err
			}
			f = sock
			made = append(made, f)
		default:
			closeAll()
			return nil, nil, nil, fmt.Errorf("unknown fd kind %q", fd.Kind)
		}
		passed = append(passed, f)
	}
	return inherited, passed, closeAll, nil
}

// setProcess puts the process, and what the plan decided for it, into the
// init's configuration.
func setProcess(c *protocol.Config, p *plan.Process) {
	c.Process, c.Caps, c.Seccomp = p.Spec, p.Caps, p.Seccomp
	c.Landlock, c.LandlockABI = p.Landlock, p.LandlockABI
}
