package initproc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"unsafe"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/cyphar/filepath-securejoin/pathrs-lite/procfs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"brig/internal/bootstrap"
	"brig/internal/caps"
	"brig/internal/console"
	"brig/internal/hooks"
	"brig/internal/loopback"
	"brig/internal/lsm"
	"brig/internal/nsenter"
	"brig/internal/protocol"
	"brig/internal/rootfs"
	"brig/internal/seccomp/filter"
	"brig/internal/spec"
)

// init keeps brig's init on the main thread, the thread group leader: an
// init function that locks the thread makes main run on it. The namespaces
// the init makes on its thread (the cgroup namespace), and the credentials
// and filters it sets there, are then the ones /proc/PID shows.
func init() {
	if len(os.Args) > 1 && os.Args[1] == "init" && os.Getenv(bootstrap.EnvBootstrap) != "" {
		runtime.LockOSThread()
	}
}

// Main is the entry point of `brig init`. The C constructor has already
// joined and created the namespaces; Main never returns.
func Main() {
	runtime.LockOSThread() // capabilities, no_new_privs and seccomp are per thread
	p, err := bootstrap.FromInit()
	if err != nil {
		fmt.Fprintln(os.Stderr, "brig init:", err)
		os.Exit(1)
	}
	// The fds brig passes come first, then the config that names them.
	files, err := protocol.RecvFiles(p)
	if err != nil {
		fmt.Fprintln(os.Stderr, "brig init:", err)
		os.Exit(1)
	}
	var cfg protocol.Config
	if err := p.Recv(&cfg); err != nil {
		fmt.Fprintln(os.Stderr, "brig init: read config:", err)
		os.Exit(1)
	}
	if err := cfg.Attach(files); err != nil {
		fmt.Fprintln(os.Stderr, "brig init:", err)
		os.Exit(1)
	}
	if cfg.DieWithParent {
		// As early as possible: a parent killed between here and the
		// execve must take the process with it (inside a PID namespace
		// getppid can't tell that the parent is gone). Credential changes
		// may clear it; it is set again just before execve.
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
			fmt.Fprintln(os.Stderr, "brig init: parent-death signal:", err)
			os.Exit(1)
		}
	}
	if cfg.Exec {
		// process.execCPUAffinity.initial: from the start, until final.
		if err = execAffinity(cfg.Process, false); err == nil {
			err = execLayers(p, &cfg)
		}
	} else {
		err = createLayers(p, &cfg)
	}
	// Only errors come back here: success ends in execve.
	if serr := p.Send(protocol.Message{Type: protocol.KindError, Error: err.Error()}); serr != nil {
		fmt.Fprintln(os.Stderr, "brig init:", err)
	}
	os.Exit(1)
}

// createLayers sets up a new container. The order of the steps is the
// order of docs/ARCHITECTURE.md, and it matters: see the comments.
func createLayers(p *bootstrap.Process, cfg *protocol.Config) error {
	s, proc := cfg.Spec, cfg.Process
	l := s.Linux
	if l == nil {
		l = &specs.Linux{}
	}
	// 1. The cgroup: brig puts this process in it while the Go runtime
	// starts; wait for that, then make the cgroup namespace, rooted there.
	// This thread is the main one (see init), so /proc/PID/ns/cgroup shows
	// it, and execve makes it the whole process's.
	cgroupPaths, err := askCgroup(p)
	if err != nil {
		return err
	}
	if cfg.CgroupNS {
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fmt.Errorf("unshare cgroup namespace: %w", err)
		}
	}
	// A network namespace of its own starts with lo down: up, as runc.
	if newNetNS(s) {
		if err := loopback.Up(); err != nil {
			return err
		}
	}
	// UTS: hostname and domain name (the namespace is new: validated).
	if s.Hostname != "" {
		if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
			return fmt.Errorf("hostname: %w", err)
		}
	}
	if s.Domainname != "" {
		if err := unix.Setdomainname([]byte(s.Domainname)); err != nil {
			return fmt.Errorf("domainname: %w", err)
		}
	}
	// 2. Mounts, while the host's filesystem is still reachable: root
	// propagation, bind of the rootfs, every mounts[] entry, /dev.
	if spec.HasNamespace(l.Namespaces, specs.MountNamespace) {
		rc := &rootfs.Config{
			Root: s.Root.Path, Mounts: cfg.Mounts, Propagation: l.RootfsPropagation,
			Devices: l.Devices, MountLabel: l.MountLabel, InUserNS: cfg.UserNS,
			CgroupNS: cfg.CgroupNS, CgroupPaths: cgroupPaths, Trees: cfg.Trees, Cwd: cfg.Process.Cwd,
		}
		if err := rootfs.Prepare(rc); err != nil {
			return err
		}
	}
	// 3. prestart and createRuntime hooks run in brig's namespaces, by the
	// brig command; createContainer hooks here, before pivot_root.
	if err := ask(p, protocol.Message{Type: protocol.KindHooks}); err != nil {
		return err
	}
	if s.Hooks != nil {
		if err := hooks.Run("createContainer", s.Hooks.CreateContainer, cfg.State); err != nil {
			return err
		}
	}
	// The state directory, opened now: after pivot_root its path is gone.
	// The fifo is opened through it later, with no procfs needed (the
	// container may have none) and no syscall an early seccomp profile
	// might lack.
	stateDir, err := os.OpenFile(filepath.Dir(cfg.FifoPath), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open state dir: %w", err)
	}
	defer stateDir.Close()
	consoleSock := cfg.Console
	// 4. The root: pivot_root (or move + chroot with --no-pivot).
	if spec.HasNamespace(l.Namespaces, specs.MountNamespace) {
		if cfg.NoPivot {
			err = rootfs.MoveRoot(s.Root.Path)
		} else {
			err = rootfs.PivotRoot(s.Root.Path)
		}
		if err != nil {
			return err
		}
		if err := rootfs.SetRootPropagation(l.RootfsPropagation); err != nil {
			return err
		}
	} else if err := unix.Chroot(s.Root.Path); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	// 5. The terminal: a pty from the container's devpts, master to the
	// console socket, slave as stdio and /dev/console.
	if proc.Terminal {
		if consoleSock == nil {
			return errors.New("process.terminal needs --console-socket")
		}
		slave, err := console.Setup(consoleSock, proc.ConsoleSize)
		if err != nil {
			return err
		}
		consoleSock.Close()
		if spec.HasNamespace(l.Namespaces, specs.MountNamespace) {
			if err := console.BindConsole(slave); err != nil {
				return err
			}
		}
	}
	// 6. Kernel parameters, through the container's own procfs.
	if err := writeSysctls(l.Sysctl); err != nil {
		return err
	}
	// 7. Read-only and masked paths, then the read-only root.
	if err := rootfs.ReadonlyPaths(l.ReadonlyPaths); err != nil {
		return err
	}
	if err := rootfs.MaskPaths(l.MaskedPaths, l.MountLabel); err != nil {
		return err
	}
	if s.Root.Readonly && spec.HasNamespace(l.Namespaces, specs.MountNamespace) {
		if err := rootfs.ReadonlyRoot(); err != nil {
			return err
		}
	}
	// 8. A session keyring of the container's own, with the process's
	// SELinux label.
	if !cfg.NoNewKeyring {
		restore, err := lsm.SetSELinuxKeyLabel(cfg.Process.SelinuxLabel)
		if err != nil {
			return err
		}
		_, err = unix.KeyctlJoinSessionKeyring("_ses." + cfg.ID)
		restore()
		if err != nil && !errors.Is(err, unix.ENOSYS) {
			return fmt.Errorf("join session keyring: %w", err)
		}
	}
	if l.Personality != nil {
		if err := setPersonality(l.Personality); err != nil {
			return err
		}
	}
	// 9. The process: everything that can fail is checked before `ready`,
	// so create reports it.
	fp, err := prepare(cfg, proc)
	if err != nil {
		return err
	}
	if err := fp.seccompEarly(p); err != nil {
		return err
	}
	if err := p.Send(protocol.Message{Type: protocol.KindReady}); err != nil {
		return err
	}
	p.Close()
	// 10. Wait for `brig start`: opening the fifo for writing blocks until
	// start opens it for reading.
	wfd, err := unix.Openat(int(stateDir.Fd()), filepath.Base(cfg.FifoPath), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return startError(fmt.Errorf("open exec fifo: %w", err))
	}
	w := os.NewFile(uintptr(wfd), "exec.fifo")
	if _, err := w.Write([]byte("0")); err != nil {
		return startError(fmt.Errorf("write exec fifo: %w", err))
	}
	w.Close()
	stateDir.Close()
	if s.Hooks != nil {
		if err := hooks.Run("startContainer", s.Hooks.StartContainer, cfg.State); err != nil {
			return startError(err)
		}
	}
	// 11. Credentials, capabilities, no_new_privs, LSM labels, seccomp,
	// execve.
	return startError(fp.finish())
}

// startError reports a failure after `ready`: nobody reads the socket any
// more, so it goes to stderr, and init exits.
func startError(err error) error {
	fmt.Fprintln(os.Stderr, "brig init:", err)
	os.Exit(1)
	return err
}

// execLayers runs a new process in a running container (brig exec): the
// namespaces are joined already; only the process layers apply.
func execLayers(p *bootstrap.Process, cfg *protocol.Config) error {
	proc := cfg.Process
	if _, err := askCgroup(p); err != nil {
		return err
	}
	if proc.Terminal {
		if cfg.Console == nil {
			return errors.New("process.terminal needs --console-socket")
		}
		if _, err := console.Setup(cfg.Console, proc.ConsoleSize); err != nil {
			return err
		}
		cfg.Console.Close()
	}
	fp, err := prepare(cfg, proc)
	if err != nil {
		return err
	}
	if err := fp.seccompEarly(p); err != nil {
		return err
	}
	// The socket is close-on-exec: brig exec sees EOF when execve works.
	return fp.finish()
}

// ask sends a message and waits for the brig command's reply.
func ask(p *bootstrap.Process, m protocol.Message) error {
	_, err := askReply(p, m)
	return err
}

func askReply(p *bootstrap.Process, m protocol.Message) (protocol.Reply, error) {
	var r protocol.Reply
	if err := p.Send(m); err != nil {
		return r, err
	}
	if err := p.Recv(&r); err != nil {
		return r, fmt.Errorf("waiting for brig after %q: %w", m.Type, err)
	}
	if r.Error != "" {
		return r, errors.New(r.Error)
	}
	return r, nil
}

// askCgroup waits until the brig command has put this process in the
// container's cgroup, and returns the cgroup's paths.
func askCgroup(p *bootstrap.Process) (map[string]string, error) {
	r, err := askReply(p, protocol.Message{Type: protocol.KindCgroup})
	return r.CgroupPaths, err
}

func writeSysctls(sysctl map[string]string) error {
	if len(sysctl) == 0 {
		return nil
	}
	proc, err := procfs.OpenProcRoot()
	if err != nil {
		return fmt.Errorf("sysctl: open procfs: %w", err)
	}
	defer proc.Close()
	for k, v := range sysctl {
		rel := "sys/" + strings.ReplaceAll(k, ".", "/")
		h, err := proc.OpenRoot(rel)
		if err != nil {
			return fmt.Errorf("linux.sysctl.%s: %w", k, err)
		}
		f, err := pathrs.Reopen(h, unix.O_WRONLY|unix.O_CLOEXEC)
		h.Close()
		if err != nil {
			return fmt.Errorf("linux.sysctl.%s: %w", k, err)
		}
		_, err = f.WriteString(v)
		f.Close()
		if err != nil {
			return fmt.Errorf("linux.sysctl.%s=%s: %w", k, v, err)
		}
	}
	return nil
}

func setPersonality(p *specs.LinuxPersonality) error {
	var persona int
	switch p.Domain {
	case specs.PerLinux:
		persona = 0x0000
	case specs.PerLinux32:
		persona = 0x0008
	default:
		return fmt.Errorf("linux.personality.domain: unknown %q", p.Domain)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_PERSONALITY, uintptr(persona), 0, 0); e != 0 {
		return fmt.Errorf("personality: %w", e)
	}
	return nil
}

// finalProcess is a process ready for its last steps.
type finalProcess struct {
	cfg      *protocol.Config
	proc     *specs.Process
	path     string   // resolved executable
	env      []string // process.env, with HOME where it has none
	caps     *caps.Sets
	filter   *seccompFilter
	landlock *lsm.Landlock
	labelled bool // exec labels already set (before an early filter)
	// addressSpace is process.rlimits' RLIMIT_AS, set last of all: the
	// Go runtime may need to grow its heap until then, and under a low
	// limit (brig run --memory without a cgroup) it ran out of memory.
	addressSpace []specs.POSIXRlimit
}

// setExecLabels sets the AppArmor and SELinux labels the execve enters.
// It runs before an early seccomp filter (as runc orders it), since the
// profile may deny what the writes through procfs need (statx, openat2).
func (fp *finalProcess) setExecLabels() error {
	if fp.labelled {
		return nil
	}
	fp.labelled = true
	if !fp.cfg.DieWithParent {
		if err := lsm.SetAppArmorExec(fp.proc.ApparmorProfile); err != nil {
			return err
		}
	}
	return lsm.SetSELinuxExec(fp.proc.SelinuxLabel)
}

// prepare checks and resolves what the last steps need, so errors surface
// before create reports ready: the executable, the capabilities, rlimits
// and I/O priority and scheduler (set now, inherited across execve).
func prepare(cfg *protocol.Config, proc *specs.Process) (*finalProcess, error) {
	fp := &finalProcess{cfg: cfg, proc: proc, caps: cfg.Caps, landlock: cfg.Landlock}
	if fp.caps == nil {
		fp.caps = &caps.Sets{}
	}
	if cfg.Seccomp != nil {
		fp.filter = &seccompFilter{prog: cfg.Seccomp, notify: cfg.Seccomp.Notify}
	}
	var err error
	if cfg.Exec {
		if err := execAffinity(proc, true); err != nil {
			return nil, err
		}
	}
	if cfg.Exec && !proc.Terminal && !cfg.Bare { // brig run's lesser mode made a session
		// A process group of its own, inside the container's pid
		// namespace (brig exec's would be outside it: getpgrp 0), as runc.
		if err := unix.Setpgid(0, 0); err != nil {
			return nil, fmt.Errorf("setpgid: %w", err)
		}
	}
	if err := setIOPriority(proc.IOPriority); err != nil {
		return nil, err
	}
	if err := setScheduler(proc.Scheduler); err != nil {
		return nil, err
	}
	if !cfg.Exec && cfg.Spec.Linux != nil {
		if err := setMemoryPolicy(cfg.Spec.Linux.MemoryPolicy); err != nil {
			return nil, err
		}
	}
	// chdir now, as root: a cwd outside the container (a leaked host
	// directory fd, CVE-2024-21626) is caught here.
	if err := chdirInside(proc.Cwd); err != nil {
		return nil, err
	}
	if fp.path, err = lookPath(proc); err != nil {
		return nil, err
	}
	// HOME from the container's passwd now: Landlock and seccomp, later,
	// may not let /etc/passwd be read.
	fp.env = withHome(proc.Env, proc.User.UID)
	// rlimits after everything that allocates; the address space's last
	// (finish).
	var others []specs.POSIXRlimit
	for _, r := range proc.Rlimits {
		if r.Type == "RLIMIT_AS" {
			fp.addressSpace = append(fp.addressSpace, r)
		} else {
			others = append(others, r)
		}
	}
	if err := setRlimits(others); err != nil {
		return nil, err
	}
	// Every fd but stdio and the preserved ones closes at execve. Done here,
	// before any seccomp filter that might not allow close_range.
	if err := unix.CloseRange(uint(3+cfg.PreserveFDs), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return nil, fmt.Errorf("mark fds close-on-exec: %w", err)
	}
	return fp, nil
}

func chdirInside(cwd string) error {
	if err := unix.Chdir(cwd); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("process.cwd %q: does not exist in the container", cwd)
		}
		return fmt.Errorf("process.cwd %q: %w", cwd, err)
	}
	wd, err := os.Getwd()
	if err != nil || !strings.HasPrefix(wd, "/") {
		return fmt.Errorf("process.cwd %q: working directory is outside the container", cwd)
	}
	return nil
}

// lookPath resolves args[0] with the container's PATH, inside the
// container's root.
func lookPath(proc *specs.Process) (string, error) {
	name := proc.Args[0]
	check := func(p string) error {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return unix.EISDIR
		}
		if st.Mode&0o111 == 0 {
			return unix.EACCES
		}
		return nil
	}
	if strings.Contains(name, "/") {
		if err := check(name); err != nil {
			return "", fmt.Errorf("process.args[0] %q: %w", name, err)
		}
		return name, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range proc.Env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if check(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("process.args[0] %q: executable file not found in $PATH", name)
}

// seccompEarly loads the filter before `ready` when it can't wait: a
// NOTIFY profile (brig hands the listener fd to the agent) or one loaded
// without no_new_privs (which needs CAP_SYS_ADMIN, still held now).
func (fp *finalProcess) seccompEarly(p *bootstrap.Process) error {
	if fp.filter == nil || (!fp.filter.notify && fp.proc.NoNewPrivileges) {
		return nil
	}
	if err := fp.setExecLabels(); err != nil {
		return err
	}
	if !fp.filter.notify {
		_, err := fp.filter.load()
		return err
	}
	return handOffListener(p, fp.filter.load)
}

// handOffListener loads a NOTIFY filter on this thread and has brig take
// its listener fd. From the load on, any call this thread makes may be
// sent to the listener and wait for an answer (brig's learning listener
// is sent every call) — but no one can answer before brig has the fd, and
// sending it takes calls. So another thread, one without the filter,
// sends it, and this one makes no call at all until it has:
//   - the sender is running, spinning on a variable, before the filter is
//     loaded: waking a parked one would take a call from this thread;
//   - this thread blocks every signal over the load (a handler returns
//     through rt_sigreturn, a call), sets the variable, and then spins
//     too until the fd is sent: parking would go through the scheduler,
//     which may start a thread or grow the heap (calls, under locks the
//     sender needs);
//   - nothing stops the world meanwhile, which would wait for this
//     thread: the garbage collector is off, and GOMAXPROCS is set by
//     hand, which ends the runtime's own updates of it;
//   - the sender has a processor of its own: at least two.
func handOffListener(p *bootstrap.Process, load func() (int, error)) error {
	runtime.GOMAXPROCS(max(2, runtime.GOMAXPROCS(0)))
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	var listener atomic.Int64
	listener.Store(-2) // -2: not loaded yet; -1: the load failed
	var done atomic.Bool
	var sendErr error
	spinning := make(chan struct{})
	go func() {
		close(spinning)
		fd := listener.Load()
		for ; fd == -2; fd = listener.Load() {
			runtime.Gosched()
		}
		if fd >= 0 {
			f := os.NewFile(uintptr(fd), "seccomp-listener")
			sendErr = protocol.SendFiles(p, []*os.File{f})
			f.Close()
			if sendErr == nil {
				sendErr = ask(p, protocol.Message{Type: protocol.KindSeccomp})
			}
		}
		done.Store(true)
	}()
	<-spinning
	var all, old unix.Sigset_t
	for i := range all.Val {
		all.Val[i] = ^uint64(0)
	}
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, &all, &old); err != nil {
		listener.Store(-1)
		return fmt.Errorf("seccomp: block signals: %w", err)
	}
	fd, err := load()
	if err != nil {
		fd = -1
	}
	listener.Store(int64(fd))
	for !done.Load() {
	}
	unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	if err != nil {
		return err
	}
	return sendErr
}

// finish is the last stretch: after it there is only execve.
func (fp *finalProcess) finish() error {
	proc := fp.proc
	if err := fp.caps.ApplyBounding(); err != nil {
		return err
	}
	if err := setUser(proc.User, fp.cfg.UserNS, fp.cfg.Bare); err != nil {
		return err
	}
	if err := fp.caps.Apply(); err != nil {
		return err
	}
	// Again, now as the user: a directory root could enter but the user
	// can't fails here, as with runc.
	if err := unix.Chdir(proc.Cwd); err != nil {
		return fmt.Errorf("process.cwd %q: %w", proc.Cwd, err)
	}
	if proc.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("no_new_privs: %w", err)
		}
	}
	enterAppArmor := func() error { return nil }
	if fp.cfg.DieWithParent {
		var err error
		if enterAppArmor, err = lsm.PrepareAppArmorChange(proc.ApparmorProfile); err != nil {
			return err
		}
	}
	if err := fp.setExecLabels(); err != nil {
		return err
	}
	// Landlock: after the labels, before seccomp (which may not allow the
	// landlock syscalls); it sets no_new_privs, as Landlock requires.
	if fp.landlock != nil {
		if err := fp.landlock.Enforce(fp.cfg.LandlockABI); err != nil {
			return err
		}
	}
	// A process that dies with its parent enters its profile only now
	// (lsm.PrepareAppArmorChange says why).
	if err := enterAppArmor(); err != nil {
		return err
	}
	// execve's arguments are made now: nothing allocates after the
	// address-space limit.
	argv0, err := unix.BytePtrFromString(fp.path)
	if err != nil {
		return fmt.Errorf("exec %s: %w", fp.path, err)
	}
	argv, err := syscall.SlicePtrFromStrings(proc.Args)
	if err != nil {
		return fmt.Errorf("process.args: %w", err)
	}
	envv, err := syscall.SlicePtrFromStrings(fp.env)
	if err != nil {
		return fmt.Errorf("process.env: %w", err)
	}
	// Before the filter, which may not allow prlimit64.
	if err := setRlimits(fp.addressSpace); err != nil {
		return err
	}
	if err := restoreNofile(proc.Rlimits); err != nil {
		return err
	}
	if fp.filter != nil && !fp.filter.loaded {
		if _, err := fp.filter.load(); err != nil {
			return err
		}
	}
	if fp.cfg.DieWithParent {
		// Set after the credential changes, which would clear it; kept
		// across this execve.
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
			return fmt.Errorf("parent-death signal: %w", err)
		}
		// brig may have died while the signal was cleared: its pidfd
		// is readable once it has exited.
		if fp.cfg.Parent != nil {
			pfd := []unix.PollFd{{Fd: int32(fp.cfg.Parent.Fd()), Events: unix.POLLIN}}
			if n, err := unix.Poll(pfd, 0); err == nil && n > 0 {
				return errors.New("brig exited before the command started")
			}
		}
	}
	_, _, errno := unix.Syscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(argv0)), uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&envv[0])))
	return fmt.Errorf("exec %s: %w", fp.path, errno)
}

// restoreNofile gives the process back the RLIMIT_NOFILE the init
// started with, where process.rlimits doesn't set it: the Go runtime
// raised the soft limit to the hard one at start-up, and syscall.Exec
// would have restored it, not the execve made here. (The C init never
// raises it; TestSandboxInitProgram compares the two.)
func restoreNofile(limits []specs.POSIXRlimit) error {
	for _, r := range limits {
		if r.Type == "RLIMIT_NOFILE" {
			return nil
		}
	}
	cur, max, ok := nsenter.OriginalNofile()
	if !ok {
		return nil
	}
	lim := unix.Rlimit{Cur: cur, Max: max}
	if err := unix.Prlimit(0, unix.RLIMIT_NOFILE, &lim, nil); err != nil {
		return fmt.Errorf("restore RLIMIT_NOFILE: %w", err)
	}
	return nil
}

type seccompFilter struct {
	prog   *filter.Program
	notify bool
	loaded bool
}

func (s *seccompFilter) load() (int, error) {
	s.loaded = true
	return s.prog.Load()
}

// newNetNS says whether the container has a network namespace of its own
// (new, not joined).
func newNetNS(s *specs.Spec) bool {
	if s.Linux == nil {
		return false
	}
	for _, n := range s.Linux.Namespaces {
		if n.Type == specs.NetworkNamespace {
			return n.Path == ""
		}
	}
	return false
}

// withHome adds HOME where process.env has none, as runc and crun do: the
// user's home in the container's /etc/passwd (read inside the container,
// after pivot_root), else /.
func withHome(env []string, uid uint32) []string {
	for _, e := range env {
		if strings.HasPrefix(e, "HOME=") {
			return env
		}
	}
	return append(append([]string{}, env...), "HOME="+homeOf(uid))
}

func homeOf(uid uint32) string {
	data, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return "/"
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Split(l, ":")
		if len(f) >= 6 && f[2] == strconv.FormatUint(uint64(uid), 10) && strings.HasPrefix(f[5], "/") {
			return f[5]
		}
	}
	return "/"
}

// execAffinity sets process.execCPUAffinity's initial or final CPU list
// (an exec'd process's: runtime-spec), where given.
func execAffinity(proc *specs.Process, final bool) error {
	a := proc.ExecCPUAffinity
	if a == nil {
		return nil
	}
	list, field := a.Initial, "initial"
	if final {
		list, field = a.Final, "final"
	}
	if list == "" {
		return nil
	}
	set, err := spec.ParseCPUList(list)
	if err == nil {
		err = unix.SchedSetaffinity(0, set)
	}
	if err != nil {
		return fmt.Errorf("process.execCPUAffinity.%s %q: %w", field, list, err)
	}
	return nil
}
