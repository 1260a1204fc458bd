package recorder

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"brig/internal/seccomp"
)

// Listener is brig as the listener of a container's seccomp filter: the
// one recorder both `brig run --report` and `brig learn` without eBPF use.
// Listen rewrites the profile so that the calls it must see are sent to it
// (seccomp.ToNotify), and answers each as the profile before the rewrite
// would (its compiled program, evaluated for the call): an allowed call
// continues, a denied one gets the profile's errno. On the way it keeps
// the denials (which call, how often, by which processes) and, when
// recording calls, every allowed call from the container program's execve
// on, with the argument values the eBPF recorder keeps: the same
// Recording, for an unprivileged brig.
//
// Every call then waits for brig (two context switches and a reply), so a
// recorded workload runs several times slower: it is the fallback where
// eBPF can't be used.
type Listener struct {
	Path     string // the listener socket, for linux.seccomp.listenerPath
	dir      string
	ln       *net.UnixListener
	eval     *seccomp.Evaluator
	calls    bool
	connects func(netip.AddrPort, bool)
	mu       sync.Mutex
	denied   map[string]*denial // by call name
	rec      Recording
	armed    bool
	tasks    map[uint32]bool // the program's tasks seen, by host tid
	// paths: the path-taking calls are watched (ListenOptions.Paths)
	paths          bool
	pathsArmed     bool
	refused        map[pathKey]int
	refusedDropped int
	// files: the files the program uses (ListenOptions.Files)
	files *ListenerFiles
	// root: the container's root, for the lookups of paths and files
	root   *rootDir
	wg     sync.WaitGroup
	closed bool
}

type denial struct {
	errno int
	count int
	comms map[string]bool
}

// ListenOptions say what a Listener records besides denials.
type ListenOptions struct {
	// Calls: every call the profile allows (brig learn).
	Calls bool
	// Connects, when set, is given the destination of each connect(2)
	// the profile allows (x86-64 and x32; IPv4 and IPv6), as it is made,
	// and whether the socket is a TCP (stream) one.
	Connects func(dst netip.AddrPort, stream bool)
	// Files, with Calls: the files the program opens, executes and
	// writes are recorded too (Files; brig learn --profile-out without
	// root, see listenfiles.go).
	Files bool
	// Paths: the path-taking calls the profile allows are looked at too,
	// for a file list without root (PathRefusals; see paths.go).
	Paths bool
}

// Unwatched are the calls the listener leaves to the kernel when it
// records every call (ListenOptions.Calls), besides seccomp.Kept: a
// learned profile allows them whatever it records (learn.RuntimeCalls,
// which every process's start makes: TestUnwatchedAreAlwaysAllowed), so
// seeing them adds nothing. Leaving them out of the listener's way
// matters twice:
//   - they are most of a program's calls (read, write, openat, close,
//     the stats, futex), each a round trip to brig when sent;
//   - a call waiting for the listener, until brig has received it, is
//     interrupted by a signal, and returns EINTR to a handler without
//     SA_RESTART where the kernel would have restarted it or the call
//     never fails so: dash's echo said "I/O error" when a background
//     job ended during its write.
//
// Still sent: execve (the program's arms the recording), exit and
// exit_group (a task first seen there was made by a fork: the forks are
// the kernel's), mmap and prctl (their argument values are kept); and,
// for a file list (Files), the opens; for path refusals (Paths), the
// path-taking calls.
var Unwatched = []string{
	"capget", "capset", "chdir", "close", "dup", "dup2", "dup3", "epoll_ctl", "epoll_pwait", "faccessat2", "fcntl", "fstat", "fstatfs",
	"futex", "getdents64", "getpid", "gettid", "madvise", "munmap", "nanosleep", "newfstatat", "openat", "pipe", "pipe2", "poll",
	"read", "rt_sigsuspend", "sched_yield", "setgid", "setgroups", "setresgid", "setresuid", "setuid", "sigaltstack", "tgkill", "wait4", "waitid", "write",
}

// unwatched are the calls of Unwatched a listener with o leaves to the
// kernel: none unless it records every call; with Files, not the opens
// (they are the file list); with Paths, not the path-taking calls.
func unwatched(o ListenOptions) []string {
	if !o.Calls {
		return nil
	}
	var keep []string
	for _, n := range Unwatched {
		if !(o.Files && opens[n]) && !(o.Paths && slices.Contains(pathCallNames(), n)) {
			keep = append(keep, n)
		}
	}
	return keep
}

// Listen compiles sc as it is, rewrites it in place for the listener
// (seccomp.ToNotify) and starts listening at a socket it names in
// sc.ListenerPath.
func Listen(sc *specs.LinuxSeccomp, o ListenOptions) (*Listener, error) {
	calls := o.Calls
	orig, _, err := seccomp.Compile(sc)
	if err != nil {
		return nil, err
	}
	eval, err := orig.Evaluator()
	if err != nil {
		return nil, err
	}
	var watch []string
	if o.Connects != nil {
		watch = []string{"connect"}
	}
	if o.Paths {
		watch = append(watch, pathCallNames()...)
	}
	// A call waiting for brig's answer is interrupted by a signal and
	// returns EINTR to a handler without SA_RESTART. Once brig has
	// received the call, only a kill ends the wait (Linux 5.19); a call
	// made while a signal is already pending still fails (README, "brig
	// learn": dash's fork).
	if seccomp.KernelAtLeast(5, 19) && !slices.Contains(sc.Flags, specs.LinuxSeccompFlagWaitKillableRecv) {
		sc.Flags = append(sc.Flags, specs.LinuxSeccompFlagWaitKillableRecv)
	}
	if err := seccomp.ToNotify(sc, calls, unwatched(o), watch...); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "brig-seccomp-")
	if err != nil {
		return nil, err
	}
	l := &Listener{Path: filepath.Join(dir, "listener.sock"), dir: dir, eval: eval, calls: calls, connects: o.Connects,
		denied: map[string]*denial{}, rec: Recording{Calls: map[Call]bool{}, Args: map[int]map[uint64]bool{}},
		paths: o.Paths, refused: map[pathKey]int{}, root: newRootDir()}
	if o.Files && calls {
		l.files = newListenerFiles(l.root)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: l.Path, Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	sc.ListenerPath = l.Path
	l.ln = ln
	l.wg.Add(1)
	go l.accept()
	return l, nil
}

// accept takes the filter's notify fds (one per process started with
// the filter: the container's, and each exec's) as runc's agent protocol
// sends them: the state as data, the fd with SCM_RIGHTS.
func (l *Listener) accept() {
	defer l.wg.Done()
	for {
		conn, err := l.ln.AcceptUnix()
		if err != nil {
			return
		}
		buf, oob := make([]byte, 64<<10), make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		conn.Close()
		if err != nil {
			continue
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) == 0 {
			continue
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) == 0 {
			continue
		}
		l.wg.Add(1)
		go l.serve(fds[0])
	}
}

// seccompNotif and seccompNotifResp are the kernel's struct seccomp_notif
// and seccomp_notif_resp (linux/seccomp.h).
type seccompNotif struct {
	ID    uint64
	Pid   uint32
	Flags uint32
	Nr    int32
	Arch  uint32
	IP    uint64
	Args  [6]uint64
}

type seccompNotifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// serve answers notifications until every process using the filter is
// gone.
func (l *Listener) serve(fd int) {
	defer l.wg.Done()
	defer unix.Close(fd)
	// The caller waits for each answer: waking it on this CPU (where the
	// answer is made) saves a migration per call (Linux 6.6 and later;
	// without it, the wake-up is the usual one).
	unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_SET_FLAGS, unix.SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP)
	// Receiving blocks until a call comes: no poll before each one (a
	// system call per call, 9 % of a recorded tar's time). Once no
	// process uses the filter, a recent kernel fails the receive with
	// ENOENT and the fd polls as hung up; an older one leaves it waiting
	// until brig exits.
	for {
		var n seccompNotif
		if err := ioctl(fd, unix.SECCOMP_IOCTL_NOTIF_RECV, unsafe.Pointer(&n)); err != nil {
			switch err {
			case unix.EINTR:
				continue
			case unix.ENOENT:
				// The caller went away meanwhile, or every process did.
				pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
				if _, err := unix.Poll(pfd, 0); err == nil && pfd[0].Revents&unix.POLLHUP != 0 {
					return
				}
				continue
			}
			return
		}
		resp := seccompNotifResp{ID: n.ID}
		v, err := l.eval.Verdict(n.Arch, n.Nr, n.Args)
		switch action := v & unix.SECCOMP_RET_ACTION_FULL; {
		case err != nil:
			resp.Error = -int32(unix.EPERM)
		case action == unix.SECCOMP_RET_ALLOW || action == unix.SECCOMP_RET_LOG:
			if l.calls {
				l.note(fd, &n)
			}
			if l.files != nil && l.Armed() {
				l.files.record(fd, &n)
			}
			if l.connects != nil {
				l.connect(fd, &n)
			}
			if l.paths {
				l.watchPath(fd, &n)
			}
			resp.Flags = unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE
		case action == unix.SECCOMP_RET_ERRNO:
			errno := int(v & unix.SECCOMP_RET_DATA)
			l.deny(&n, errno)
			resp.Error = -int32(errno)
		default:
			// Kill, trap and trace stay the kernel's (ToNotify keeps
			// them), so none is sent here; refuse one all the same.
			resp.Error = -int32(unix.EPERM)
		}
		ioctl(fd, unix.SECCOMP_IOCTL_NOTIF_SEND, unsafe.Pointer(&resp))
	}
}

func ioctl(fd int, req uint, arg unsafe.Pointer) error {
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(arg)); e != 0 {
		return e
	}
	return nil
}

// callOf names a notified call as the eBPF recorder does: its ABI and its
// number within it.
func callOf(n *seccompNotif) Call {
	switch {
	case n.Arch == seccomp.AuditArchI386:
		return Call{Arch: ArchX86, Nr: int(n.Nr)}
	case n.Arch == seccomp.AuditArchX86_64 && n.Nr&x32Bit != 0:
		return Call{Arch: ArchX32, Nr: int(n.Nr &^ x32Bit)}
	}
	return Call{Arch: ArchX86_64, Nr: int(n.Nr)}
}

// note records an allowed call from the container program's execve on,
// and the argument value that decides its risk (x86-64 and x32 calls; the
// value under the x86-64 number, as the eBPF recorder keeps it).
func (l *Listener) note(fd int, n *seccompNotif) {
	c := callOf(n)
	// connect's destination is read from the caller's memory before the
	// lock is taken (a read may wait on the page).
	var dest uint64
	var dest6 netip.AddrPort
	haveDest := false
	if c.Arch != ArchX86 && c.Nr == nrConnect && l.Armed() {
		dest, dest6, haveDest = connectDest(fd, n)
	}
	// A thread may make no call the listener sees (a Go runtime's make
	// only the kernel's: futex, nanosleep, sigaltstack…), so the tasks
	// seen don't tell every thread made. A process's exit_group, which
	// every process that ends by itself makes, does: its other threads
	// are still there (/proc/PID/status's Threads).
	threads := false
	if (c.Arch == ArchX86_64 || c.Arch == ArchX32) && c.Nr == unix.SYS_EXIT_GROUP || c.Arch == ArchX86 && c.Nr == nrX86ExitGroup {
		threads = threadCount(int(n.Pid)) > 1
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.armed {
		// brig's init made the calls before it: only its execve of the
		// program, the first one sent, starts the recording.
		if c.Arch != ArchX86_64 || (c.Nr != unix.SYS_EXECVE && c.Nr != unix.SYS_EXECVEAT) {
			return
		}
		l.armed = true
		l.tasks = map[uint32]bool{n.Pid: true}
	}
	if !l.tasks[n.Pid] || threads {
		// A task not seen before was made by a fork of the program's:
		// the forks stay the kernel's (seccomp.Forks), so they are
		// recorded from here, as a clone without namespace flags (learn
		// allows fork and vfork with it).
		l.tasks[n.Pid] = true
		l.rec.Calls[Call{Arch: ArchX86_64, Nr: nrClone}] = true
		if l.rec.Args[nrClone] == nil {
			l.rec.Args[nrClone] = map[uint64]bool{}
		}
		l.rec.Args[nrClone][0] = true
	}
	if c.Nr > 0x3ff {
		l.rec.Incomplete = appendOnce(l.rec.Incomplete, fmt.Sprintf("%s call %d (above 1023)", c.Arch, c.Nr))
		return
	}
	l.rec.Calls[c] = true
	if c.Arch == ArchX86 {
		return // a 32-bit task's arguments: not kept (learn leaves such calls out)
	}
	nr := c.Nr
	if c.Arch == ArchX32 && nr == nrX32Ioctl {
		nr = nrIoctl
	}
	a := n.Args
	var v uint64
	switch nr {
	case nrSocket:
		v = a[0]<<32 | a[1]&0xf
	case nrIoctl:
		v = a[1] & 0xffffffff
	case nrPrctl, nrPersonality, nrUnshare:
		v = a[0]
	case nrClone:
		v = a[0] & CloneNSFlags
	case nrMmap, nrMprotect:
		v = a[2] & unix.PROT_EXEC
	case nrConnect:
		if !haveDest {
			return
		}
		if dest6.IsValid() {
			if l.rec.Dests6 == nil {
				l.rec.Dests6 = map[netip.AddrPort]bool{}
			}
			l.rec.Dests6[dest6] = true
			return
		}
		v = dest
	default:
		return
	}
	if l.rec.Args[nr] == nil {
		l.rec.Args[nr] = map[uint64]bool{}
	}
	l.rec.Args[nr][v] = true
}

// nrX86ExitGroup is exit_group's number for 32-bit x86.
const nrX86ExitGroup = 252

// threadCount is the number of threads of the process pid belongs to,
// 0 if it can't be read.
func threadCount(pid int) int {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// connect gives l.connects the destination of a connect(2) call.
func (l *Listener) connect(fd int, n *seccompNotif) {
	if c := callOf(n); c.Arch == ArchX86 || c.Nr != nrConnect {
		return
	}
	v4, v6, ok := connectDest(fd, n)
	if !ok {
		return
	}
	stream := socketType(n) == unix.SOCK_STREAM
	if v6.IsValid() {
		l.connects(netip.AddrPortFrom(v6.Addr().Unmap(), v6.Port()), stream)
		return
	}
	var b [8]byte
	binary.NativeEndian.PutUint64(b[:], v4)
	l.connects(netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), uint16(b[2])<<8|uint16(b[3])), stream)
}

// socketType is the type of the socket connect(2) was called on (its first
// argument), taken from the caller with pidfd_getfd; -1 if it can't be.
func socketType(n *seccompNotif) int {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", n.Pid))
	if err != nil {
		return -1
	}
	var tgid int
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "Tgid:"); ok {
			tgid, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	pidfd, err := unix.PidfdOpen(tgid, 0)
	if err != nil {
		return -1
	}
	defer unix.Close(pidfd)
	sock, err := unix.PidfdGetfd(pidfd, int(n.Args[0]), 0)
	if err != nil {
		return -1
	}
	defer unix.Close(sock)
	t, err := unix.GetsockoptInt(sock, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return -1
	}
	return t
}

// connectDest reads connect(2)'s address from the caller's memory, as the
// eBPF recorder keeps it: for IPv4 its first 8 bytes (family, port,
// address) as one value, for IPv6 the address and port; other families
// are not kept. The read is trusted only if the call is still the one
// notified (the caller can't have gone away and its pid been reused
// meanwhile).
func connectDest(fd int, n *seccompNotif) (uint64, netip.AddrPort, bool) {
	size := min(n.Args[2], 24)
	if size < 8 {
		return 0, netip.AddrPort{}, false
	}
	mem, err := os.Open(fmt.Sprintf("/proc/%d/mem", n.Pid))
	if err != nil {
		return 0, netip.AddrPort{}, false
	}
	defer mem.Close()
	var b [24]byte
	if _, err := mem.ReadAt(b[:size], int64(n.Args[1])); err != nil {
		return 0, netip.AddrPort{}, false
	}
	id := n.ID
	if ioctl(fd, unix.SECCOMP_IOCTL_NOTIF_ID_VALID, unsafe.Pointer(&id)) != nil {
		return 0, netip.AddrPort{}, false
	}
	port := uint16(b[2])<<8 | uint16(b[3])
	switch binary.NativeEndian.Uint16(b[:2]) {
	case unix.AF_INET:
		return binary.NativeEndian.Uint64(b[:8]), netip.AddrPort{}, true
	case unix.AF_INET6:
		if size < 24 {
			return 0, netip.AddrPort{}, false
		}
		return 0, netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])), port), true
	}
	return 0, netip.AddrPort{}, false
}

func appendOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// deny records a call the profile denied, and who made it.
func (l *Listener) deny(n *seccompNotif, errno int) {
	name := callName(n)
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", n.Pid))
	l.mu.Lock()
	defer l.mu.Unlock()
	d := l.denied[name]
	if d == nil {
		d = &denial{errno: errno, comms: map[string]bool{}}
		l.denied[name] = d
	}
	d.count++
	if c := strings.TrimSpace(string(comm)); c != "" {
		d.comms[c] = true
	}
}

// callName is the call's name for its architecture ("syscall N" for one
// this libseccomp doesn't know).
func callName(n *seccompNotif) string {
	arch := libseccomp.ArchAMD64
	switch {
	case n.Arch == seccomp.AuditArchI386:
		arch = libseccomp.ArchX86
	case n.Arch == seccomp.AuditArchX86_64 && n.Nr&x32Bit != 0:
		arch = libseccomp.ArchX32
	case n.Arch == seccomp.AuditArchAArch64:
		arch = libseccomp.ArchARM64
	case n.Arch == seccomp.AuditArchARM:
		arch = libseccomp.ArchARM
	}
	name, err := libseccomp.ScmpSyscall(n.Nr).GetNameByArch(arch)
	if err != nil || name == "" {
		return fmt.Sprintf("syscall %d", n.Nr)
	}
	return name
}

// Armed says whether the container's program has started (its execve was
// seen): before, there is nothing to learn.
func (l *Listener) Armed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.armed
}

// Snapshot is what was recorded so far; recording goes on.
func (l *Listener) Snapshot() (*Recording, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.calls {
		return nil, errors.New("this listener records denials only")
	}
	out := &Recording{Calls: map[Call]bool{}, Args: map[int]map[uint64]bool{}, Incomplete: append([]string(nil), l.rec.Incomplete...)}
	for d := range l.rec.Dests6 {
		if out.Dests6 == nil {
			out.Dests6 = map[netip.AddrPort]bool{}
		}
		out.Dests6[d] = true
	}
	for c := range l.rec.Calls {
		out.Calls[c] = true
	}
	for nr, vs := range l.rec.Args {
		out.Args[nr] = map[uint64]bool{}
		for v := range vs {
			out.Args[nr][v] = true
		}
	}
	return out, nil
}

// Close stops taking new listener fds; the filters' fds close once their
// processes are gone.
func (l *Listener) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	l.ln.Close()
	l.root.close()
	os.RemoveAll(l.dir)
}

// Denial is one call the profile denied: how often, with which errno, by
// which processes.
type Denial struct {
	Name      string
	Errno     string
	Count     int
	Processes []string
}

// Denials stops listening and returns the denials, by name.
func (l *Listener) Denials() []Denial {
	l.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Denial
	for n, d := range l.denied {
		x := Denial{Name: n, Errno: unix.ErrnoName(unix.Errno(d.errno)), Count: d.count}
		for p := range d.comms {
			x.Processes = append(x.Processes, p)
		}
		sort.Strings(x.Processes)
		out = append(out, x)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Report stops listening and returns the denials, most frequent first:
// "mkdir (EACCES) ×3, keyctl (EPERM) ×1".
func (l *Listener) Report() string {
	ds := l.Denials()
	sort.SliceStable(ds, func(i, j int) bool { return ds[i].Count > ds[j].Count })
	var parts []string
	for _, d := range ds {
		parts = append(parts, fmt.Sprintf("%s (%s) ×%d", d.Name, d.Errno, d.Count))
	}
	return strings.Join(parts, ", ")
}
