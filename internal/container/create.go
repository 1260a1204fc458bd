package container

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"brig/internal/bootstrap"
	"brig/internal/cgroup"
	"brig/internal/hooks"
	"brig/internal/idmap"
	"brig/internal/initprog"
	"brig/internal/plan"
	"brig/internal/protocol"
	"brig/internal/recorder"
	"brig/internal/seccomp"
	"brig/internal/spec"
	"brig/internal/state"
)

// CreateOptions are create's flags.
type CreateOptions struct {
	ID            string
	Bundle        string
	PidFile       string
	ConsoleSocket string
	NoPivot       bool
	NoNewKeyring  bool
	PreserveFDs   int
	Systemd       bool
	Rootless      bool
	Stdin         io.Reader
	Stdout        io.Writer
	Stderr        io.Writer
	// Spec, when set, is used instead of reading Bundle/config.json
	// (brig's own front end builds it in memory).
	Spec *specs.Spec
	// Warn receives warnings (capabilities the host can't grant...).
	Warn func(string)
	// Debug, if set, is told which init sets the container up, and why.
	Debug func(string)
	// ReportDenials makes run report the calls seccomp denied (see
	// recorder.Listener).
	ReportDenials bool
	// OnDenials, with ReportDenials, receives the denials instead of
	// their being printed (brig run --report puts them in its report).
	OnDenials func([]recorder.Denial)
	// OnConnect, with ReportDenials, is given the destination of each
	// connect(2) the profile allows, as it is made, and whether the
	// socket is TCP.
	OnConnect func(dst netip.AddrPort, stream bool)
	// WatchPaths, with ReportDenials, makes the listener look at the
	// path-taking calls too (a file list without root: recorder's
	// PathRefusals), and is given it before the container is created.
	WatchPaths func(*recorder.Listener)
	// RecordCalls, with run, makes brig's seccomp listener record every
	// call the profile allows too (brig learn without eBPF), and is given
	// that listener before the container is created.
	RecordCalls func(*recorder.Listener)
	// RecordFiles, with RecordCalls, has the listener record the files
	// the program uses too (brig learn --profile-out without root).
	RecordFiles bool
	// DieWithParent kills the container's process if this brig dies.
	DieWithParent bool
	// Keep: run leaves the container when it ends (runc run --keep).
	Keep bool
	// CpusetIfLimited: in cgroup v1, the cpuset hierarchy is joined only
	// for cpuset limits (cgroup.Options).
	CpusetIfLimited bool
	// NewSession: without a terminal of its own, the container's process
	// starts a session, so it has no controlling terminal: it can't push
	// input into the caller's with TIOCSTI (CVE-2017-5226's class).
	NewSession bool
	// OptionalLimits: without root and without a cgroup this user can
	// write, run without the limits (and say so) instead of failing.
	OptionalLimits bool
	// QuietNoCgroup: going on without a cgroup when no limits were asked
	// for is not warned about (the caller says it elsewhere).
	QuietNoCgroup bool
	// Observe, with run, is called once the container is created and
	// before it starts (its init waits at the exec fifo, in its cgroup),
	// e.g. to attach a recorder to the cgroup; done is called with the
	// exit code once the process has ended, before the container is
	// deleted.
	Observe func(c *Created) (done func(code int), err error)
}

// Created is a container whose init waits for start.
type Created struct {
	*Container
}

// Create creates a container: on success its init is waiting for start,
// and on failure nothing is left (no state, cgroup or process).
func Create(store state.Store, o CreateOptions) (created *Created, err error) {
	if err := state.ValidateID(o.ID); err != nil {
		return nil, err
	}
	s := o.Spec
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, err
	}
	if s == nil {
		if s, err = spec.Load(bundle); err != nil {
			return nil, err
		}
	}
	// Every decision, and every refusal, before anything exists.
	p, err := plan.Build(s, host(store), plan.Options{Bundle: bundle, Rootless: o.Rootless})
	if err != nil {
		return nil, err
	}
	if o.Warn != nil {
		for _, w := range p.Warnings {
			o.Warn(w)
		}
	}
	if err := checkPreserved(o.PreserveFDs); err != nil {
		return nil, err
	}
	fifo := filepath.Join(store.Dir(o.ID), state.FifoName)
	l, err := decideCreate(p, s, o, bundle, fifo)
	if err != nil {
		return nil, err
	}
	return carryOut(machine{store}, store, p, s, l, o, bundle)
}

// carryOut makes the container of plan p as launch l decided it, over the
// machine's effects: on success its init waits for start; on failure
// what was made is undone (the init killed, the cgroup and its default
// parents removed, the state directory gone).
func carryOut(fx effects, store state.Store, p *plan.Plan, s *specs.Spec, l *launch, o CreateOptions, bundle string) (created *Created, err error) {
	unlock, err := fx.lockState(o.ID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	c := &Container{store: store, State: &state.State{
		ID: o.ID, Bundle: bundle, Spec: s, Annotations: s.Annotations, Created: time.Now().UTC(),
		Systemd: o.Systemd, Rootless: o.Rootless, Owner: owner(),
	}}
	var cg cgroupEffects
	var proc initEffects
	defer func() {
		if err == nil {
			return
		}
		if proc != nil {
			if len(c.NetDevices) > 0 {
				fx.returnNetDevices(fmt.Sprintf("/proc/%d/ns/net", c.Pid), c.NetDevices)
			}
			proc.Kill()
		}
		if c.Resctrl != nil {
			fx.leaveResctrl(*c.Resctrl)
		}
		if cg != nil {
			cg.destroy()
			if s.Linux.CgroupsPath == "" {
				fx.removeDefaultParents(o.ID) // a failed start leaves nothing
			}
		}
		fx.removeState(o.ID)
	}()

	// The container's root opens the fifo: it is the mapped root's, as
	// with runc.
	if err := fx.mkfifo(l.Cfg.FifoPath, p.MappedRoot); err != nil {
		return nil, fmt.Errorf("create exec fifo: %w", err)
	}
	if cg, err = fx.newCgroup(o.ID, s.Linux.CgroupsPath, s.Linux.Resources, cgroup.Options{Systemd: o.Systemd, Rootless: o.Rootless, CpusetIfLimited: o.CpusetIfLimited}); err != nil {
		return nil, err
	}
	cg.AllowDevices(s.Linux.Devices)

	bo := l.Boot
	bo.Stdin, bo.Stdout, bo.Stderr = o.Stdin, o.Stdout, o.Stderr
	cfg := l.Cfg
	// Bind-mount sources of a container with a user namespace of its own
	// are cloned here, with the host's privileges (and id-mapped where
	// asked), and attached by the init.
	trees, err := fx.trees(p.HostTrees)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, t := range trees {
			t.Close()
		}
	}()
	inherited, passed, closeFiles, err := fx.open(l, trees, o.ConsoleSocket)
	if err != nil {
		return nil, err
	}
	defer closeFiles()
	bo.ExtraFiles = inherited
	// The container's process enters its cgroup as it starts: born in the
	// v2 cgroup and moving itself into the v1 ones, or, where systemd
	// places it, moved by brig beside the init's start-up. The init waits
	// for that before it makes a cgroup namespace (rooted there) or
	// anything else of the container. Limits are written once init is
	// ready, as runc does, so they bind the container's process and not
	// brig's own set-up (a pids limit below the Go runtime's thread count
	// would kill init).
	noCgroup := false
	settle := func(err error) error {
		skip, warning, err := cgroupFailure(err, o.Rootless, p.WantsLimits, o.OptionalLimits)
		if skip {
			noCgroup = true
			if o.Warn != nil && !(o.QuietNoCgroup && !p.WantsLimits) {
				o.Warn(warning)
			}
		}
		return err
	}
	if v1, v2, ok := cg.SelfJoin(); ok {
		if err := settle(cg.Create()); err != nil {
			return nil, err
		}
		if !noCgroup {
			bo.JoinCgroups, bo.CgroupDir = v1, v2
		}
	} else {
		bo.Place = func(pid int) error { return settle(cg.Apply(pid)) }
	}
	// The C init sets the container up where it can: no Go runtime starts
	// in it. It doesn't ask whether it is in its cgroup, so not where
	// brig places it after the start.
	var prog []byte
	goInit := errors.New("the cgroup is placed after the start")
	if bo.Place == nil {
		prog, goInit = createProgram(fx, cfg, cg, noCgroup)
	}
	bo.Program = prog != nil
	if prog != nil {
		// The C init inherits brig's pidfd (initprog.ParentFD), the only
		// fd it can be passed, rather than receiving it.
		bo.ExtraFiles = append(append([]*os.File(nil), inherited...), passed...)
	}
	if o.Debug != nil {
		if prog != nil {
			o.Debug(fmt.Sprintf("create: the C init runs a program of %d bytes", len(prog)))
		} else {
			o.Debug(fmt.Sprintf("create: the Go init sets the container up (%v)", goInit))
		}
	}
	if proc, err = fx.start(bo); err != nil {
		return nil, fmt.Errorf("create %s: %w", o.ID, err)
	}
	c.Pid = proc.pid()
	c.PidStart = proc.startTime()
	cfg.State = c.specState(specs.StateCreating)
	if s.Process.OOMScoreAdj != nil {
		if err := fx.oomScoreAdj(c.Pid, *s.Process.OOMScoreAdj); err != nil {
			return nil, err
		}
	}
	if r := s.Linux.IntelRdt; r != nil {
		g, err := fx.joinResctrl(o.ID, r, c.Pid)
		if err != nil {
			return nil, err
		}
		c.Resctrl = &g
	}
	if prog != nil {
		if err := proc.sendProgram(prog); err != nil {
			return nil, err
		}
	} else {
		if err := proc.sendFiles(passed); err != nil {
			return nil, err
		}
		if err := proc.Send(cfg); err != nil {
			return nil, err
		}
	}
	go state.WarmUp() // while this waits for the init
	placed := func() (map[string]string, error) {
		if err := proc.Placed(); err != nil {
			return nil, err
		}
		c.CgroupPaths = cg.Paths()
		if noCgroup {
			c.CgroupPaths = map[string]string{}
		}
		return c.CgroupPaths, nil
	}
	// Host network devices go into the container's network namespace
	// before the prestart and createRuntime hooks run (they may set them
	// up further).
	moveDevices := func() error {
		if len(s.Linux.NetDevices) == 0 {
			return nil
		}
		moved, err := fx.moveNetDevices(fmt.Sprintf("/proc/%d/ns/net", c.Pid), s.Linux.NetDevices)
		c.NetDevices = moved
		return err
	}
	if err := protocol.Serve(proc, c.handlers(c.Pid, s, placed, moveDevices), false); err != nil {
		return nil, err
	}
	if _, err := placed(); err != nil {
		return nil, err
	}
	if !noCgroup {
		if err := cg.Limit(); err != nil {
			return nil, err
		}
	}
	if err := fx.saveState(c.State); err != nil {
		return nil, err
	}
	if o.PidFile != "" {
		if err := fx.writePidFile(o.PidFile, c.Pid); err != nil {
			return nil, err
		}
	}
	proc.done()
	return &Created{Container: c}, nil
}

// createProgram compiles the C init's program for cfg, or says why the
// Go init must set the container up.
func createProgram(fx effects, cfg *protocol.Config, cg cgroupEffects, noCgroup bool) ([]byte, error) {
	if os.Getenv(EnvInit) == "go" {
		return nil, fmt.Errorf("%s=go", EnvInit)
	}
	hier, err := fx.cgroupLayout()
	if err != nil {
		return nil, fmt.Errorf("cgroup layout: %w", err)
	}
	paths := cg.Paths()
	if noCgroup {
		paths = map[string]string{}
	}
	return initprog.CompileCreate(cfg, initprog.Host{Hierarchies: hier, CgroupPaths: paths})
}

// handlers answer the init's requests until it is ready. placed waits
// until the process is in its cgroup and gives the cgroup's paths.
func (c *Container) handlers(pid int, s *specs.Spec, placed func() (map[string]string, error), beforeHooks func() error) map[protocol.Kind]protocol.Handler {
	return map[protocol.Kind]protocol.Handler{
		protocol.KindHooks: func(protocol.Message) (protocol.Reply, error) {
			if err := beforeHooks(); err != nil {
				return protocol.Reply{}, err
			}
			if s.Hooks == nil {
				return protocol.Reply{}, nil
			}
			st := c.specState(specs.StateCreating)
			//lint:ignore SA1019 prestart is deprecated but still part of the spec
			if err := hooks.Run("prestart", s.Hooks.Prestart, st); err != nil {
				return protocol.Reply{}, err
			}
			return protocol.Reply{}, hooks.Run("createRuntime", s.Hooks.CreateRuntime, st)
		},
		protocol.KindCgroup: func(protocol.Message) (protocol.Reply, error) {
			paths, err := placed()
			return protocol.Reply{CgroupPaths: paths}, err
		},
		protocol.KindSeccomp: func(m protocol.Message) (protocol.Reply, error) {
			return protocol.Reply{}, c.sendSeccompListener(pid, m.Files, s)
		},
	}
}

// cgroupFailure decides what a failure to make or join the container's
// cgroup means: without root and without a delegated cgroup (EPERM) the
// container runs in the caller's cgroup when no limit was asked for, or
// when the caller lets the limits go (--allow-degraded cgroup), saying so;
// otherwise it is an error naming linux.resources. Any other failure is
// an error as it is.
func cgroupFailure(err error, rootless, wantsLimits, optional bool) (skip bool, warning string, _ error) {
	// EROFS: the cgroup filesystem is mounted read-only (inside a
	// container), which is the same answer.
	if err == nil || !rootless || !(errors.Is(err, os.ErrPermission) || errors.Is(err, unix.EROFS)) {
		return false, "", err
	}
	switch {
	case !wantsLimits:
		return true, "no cgroup: this user has no delegated cgroup here, so the container runs in the caller's cgroup without limits", nil
	case optional:
		return true, "no cgroup: this user has no delegated cgroup here, so the limits asked for are left out", nil
	}
	return false, "", fmt.Errorf("linux.resources: limits need a cgroup this user can write (run as root, or delegate a cgroup): %w", err)
}

// sourceTrees clones the bind sources the plan gives to the host: as
// detached trees, id-mapped where asked (through a user namespace per
// mapping).
func sourceTrees(ts []plan.HostTree) (map[int]*os.File, error) {
	trees := map[int]*os.File{}
	fail := func(err error) (map[int]*os.File, error) {
		for _, t := range trees {
			t.Close()
		}
		return nil, err
	}
	for _, t := range ts {
		if t.IDMap == nil {
			f, err := idmap.Clone(t.Source, t.Recursive)
			if err != nil {
				return fail(fmt.Errorf("mounts[%d] (bind on %s): %w", t.Index, t.Destination, err))
			}
			trees[t.Index] = f
			continue
		}
		ns, err := idmap.UserNS(t.IDMap.UIDs, t.IDMap.GIDs)
		if err != nil {
			return fail(fmt.Errorf("mounts[%d]: %w", t.Index, err))
		}
		f, err := idmap.Tree(t.Source, ns, t.Recursive, t.IDMap.Recursive)
		if err != nil {
			return fail(fmt.Errorf("mounts[%d] (bind on %s): %w", t.Index, t.Destination, err))
		}
		trees[t.Index] = f
	}
	return trees, nil
}

// host is the machine as plans see it, with the compiled seccomp filters
// cached under the state root.
func host(store state.Store) plan.System {
	return plan.System{SeccompCache: &seccomp.Cache{Dir: filepath.Join(store.Root, seccomp.CacheDirName)}}
}

// joins are the plan's namespace joins for the C constructor.
func joins(js []plan.Join) []bootstrap.Namespace {
	var out []bootstrap.Namespace
	for _, j := range js {
		out = append(out, bootstrap.Namespace{Type: j.Type, Path: j.Path})
	}
	return out
}

// addDefaultDeviceRules completes the device allow-list as runc does: the
// spec's rules, then the default devices, then linux.devices.
// checkPreserved says which of the --preserve-fds fds (3, 4, ...) isn't
// open, before anything is made.
func checkPreserved(n int) error {
	for i := 0; i < n; i++ {
		var st unix.Stat_t
		if err := unix.Fstat(3+i, &st); err != nil {
			return fmt.Errorf("--preserve-fds %d: fd %d (preserved fd %d of %d) is not open: %w", n, 3+i, i+1, n, err)
		}
	}
	return nil
}

func writeOOMScoreAdj(pid, v int) error {
	err := os.WriteFile(fmt.Sprintf("/proc/%d/oom_score_adj", pid), []byte(strconv.Itoa(v)), 0)
	if err != nil {
		if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
			return fmt.Errorf("process.oomScoreAdj %d: lowering it needs CAP_SYS_RESOURCE, which brig does not hold: %w", v, err)
		}
		return fmt.Errorf("process.oomScoreAdj %d: %w", v, err)
	}
	return nil
}

func writePidFile(path string, pid int) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(abs), "."+filepath.Base(abs)+".tmp")
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("--pid-file: %w", err)
	}
	return os.Rename(tmp, abs)
}

func owner() string {
	return strconv.Itoa(os.Getuid())
}
