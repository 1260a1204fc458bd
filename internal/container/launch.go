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
	"brig/internal/plan"
	"brig/internal/protocol"
)

// What create and exec decide before they touch anything — the init's
// bootstrap (namespaces, id maps, session), the config it is sent, and the
// fds it inherits, in order — is a launch: pure data from the plan and the
// flags, table-tested without any privilege (launch_test.go). Create and
// Exec then carry it out: open each fd slot, start the bootstrap, serve
// the init.

// fdKind is what an inherited fd is.
type fdKind int

const (
	fdPreserved fdKind = iota // one of the caller's --preserve-fds (N: its number)
	fdParent                  // a pidfd of this brig (die with parent)
	fdTree                    // the host-side tree of mounts[N]
	fdConsole                 // the --console-socket connection
)

// fdSlot is one fd the init inherits, from 3 up.
type fdSlot struct {
	Kind fdKind
	N    int
}

// launch is a decided start of an init.
type launch struct {
	Boot bootstrap.Options // without the files, streams and cgroup placement
	Cfg  *protocol.Config  // with its fd numbers filled in
	FDs  []fdSlot          // fd 3+i is FDs[i]
}

// add appends a slot and gives its fd number in the init.
func (l *launch) add(s fdSlot) int {
	l.FDs = append(l.FDs, s)
	return 3 + len(l.FDs) - 1
}

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
	l.Cfg.SetProcess(&p.Process)
	// The caller's preserved fds keep their numbers: they come first.
	for i := 0; i < o.PreserveFDs; i++ {
		l.add(fdSlot{fdPreserved, 3 + i})
	}
	if o.DieWithParent {
		l.Cfg.ParentFD = l.add(fdSlot{Kind: fdParent})
	}
	// Bind sources the host clones, by mount index.
	idx := make([]int, 0, len(p.HostTrees))
	for _, t := range p.HostTrees {
		idx = append(idx, t.Index)
	}
	sort.Ints(idx)
	for _, i := range idx {
		if l.Cfg.TreeFDs == nil {
			l.Cfg.TreeFDs = map[int]int{}
		}
		l.Cfg.TreeFDs[i] = l.add(fdSlot{fdTree, i})
	}
	if s.Process.Terminal {
		l.Cfg.ConsoleFD = l.add(fdSlot{Kind: fdConsole})
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
	l.Cfg.SetProcess(&ep.Process)
	for i := 0; i < o.PreserveFDs; i++ {
		l.add(fdSlot{fdPreserved, 3 + i})
	}
	if o.Process.Terminal {
		l.Cfg.ConsoleFD = l.add(fdSlot{Kind: fdConsole})
	}
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

// open makes the files of the launch's fd slots, in order: the preserved
// fds as they are, a pidfd of this brig, the trees cloned for the mounts,
// a connection to the console socket. closeAll closes what open made.
func (l *launch) open(trees map[int]*os.File, consoleSocket string) (files []*os.File, closeAll func(), err error) {
	var made []*os.File
	closeAll = func() {
		for _, f := range made {
			f.Close()
		}
	}
	for _, slot := range l.FDs {
		var f *os.File
		switch slot.Kind {
		case fdPreserved:
			f = os.NewFile(uintptr(slot.N), "preserved-"+strconv.Itoa(slot.N))
		case fdParent:
			// The init checks it after its last parent-death signal is
			// set (credential changes clear the signal, and in a PID
			// namespace getppid can't tell).
			fd, err := unix.PidfdOpen(os.Getpid(), 0)
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("pidfd: %w", err)
			}
			f = os.NewFile(uintptr(fd), "brig-pidfd")
			made = append(made, f)
		case fdTree:
			if f = trees[slot.N]; f == nil {
				closeAll()
				return nil, nil, fmt.Errorf("mounts[%d]: no tree was made for it", slot.N)
			}
		case fdConsole:
			sock, err := console.Dial(consoleSocket)
			if err != nil {
				closeAll()
				return nil, nil, err
			}
			f = sock
			made = append(made, f)
		}
		files = append(files, f)
	}
	return files, closeAll, nil
}
