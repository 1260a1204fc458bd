// Package learn turns what a workload did (a recorder.Recording) into the
// least seccomp profile that lets it do that again: an allow-list of the
// calls it made, with argument rules where the arguments decide the risk
// (socket family and type, clone and unshare namespace flags, ioctl
// request, prctl option, personality, executable mappings), the values it
// used and no others. Profiles merge (a test suite's run and a
// production run give one profile), and one this package wrote reads back
// into the same Set.
//
// The profile is the runtime-spec's linux.seccomp object, which is also
// what Docker, Podman and a Kubernetes Localhost profile take (no archMap
// or includes, which the OCI form lacks), plus one key of brig's own,
// "brigLearned", that runtimes ignore.
package learn

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"brig/internal/recorder"
)

// argRule says how a call's recorded values become argument rules.
type argRule struct {
	rule func(v uint64) []specs.LinuxSeccompArg
	back func(args []specs.LinuxSeccompArg) (uint64, bool)
}

func eq(i uint) argRule {
	return argRule{
		rule: func(v uint64) []specs.LinuxSeccompArg {
			return []specs.LinuxSeccompArg{{Index: i, Op: specs.OpEqualTo, Value: v}}
		},
		back: func(a []specs.LinuxSeccompArg) (uint64, bool) {
			if len(a) != 1 || a[0].Index != i || a[0].Op != specs.OpEqualTo {
				return 0, false
			}
			return a[0].Value, true
		},
	}
}

func masked(i uint, mask uint64) argRule {
	return argRule{
		rule: func(v uint64) []specs.LinuxSeccompArg {
			return []specs.LinuxSeccompArg{{Index: i, Op: specs.OpMaskedEqual, Value: mask, ValueTwo: v & mask}}
		},
		back: func(a []specs.LinuxSeccompArg) (uint64, bool) {
			if len(a) != 1 || a[0].Index != i || a[0].Op != specs.OpMaskedEqual || a[0].Value != mask {
				return 0, false
			}
			return a[0].ValueTwo, true
		},
	}
}

// argRules are the calls whose arguments decide risk, by name; the values
// are what internal/recorder keeps for each.
var argRules = map[string]argRule{
	// family, and the socket's type without its flags
	"socket": {
		rule: func(v uint64) []specs.LinuxSeccompArg {
			return []specs.LinuxSeccompArg{
				{Index: 0, Op: specs.OpEqualTo, Value: v >> 32},
				{Index: 1, Op: specs.OpMaskedEqual, Value: 0xf, ValueTwo: v & 0xf},
			}
		},
		back: func(a []specs.LinuxSeccompArg) (uint64, bool) {
			if len(a) != 2 || a[0].Index != 0 || a[0].Op != specs.OpEqualTo || a[1].Index != 1 || a[1].Op != specs.OpMaskedEqual || a[1].Value != 0xf {
				return 0, false
			}
			return a[0].Value<<32 | a[1].ValueTwo, true
		},
	},
	// the request; the kernel reads it as 32 bits
	"ioctl":       masked(1, 0xffffffff),
	"prctl":       eq(0),
	"personality": eq(0),
	"unshare":     eq(0),
	// the namespace flags only: a new namespace is what makes clone risky
	"clone": masked(0, recorder.CloneNSFlags),
	// executable mappings: with or without PROT_EXEC
	"mmap":     masked(2, unix.PROT_EXEC),
	"mprotect": masked(2, unix.PROT_EXEC),
}

// RuntimeCalls are what an OCI runtime's init does between loading the
// filter and the execve of the workload, which the recorder (armed by
// that execve) does not see: without them a learned profile could not
// start. brig loads the filter on its init's exec thread only, so its
// part is that one thread's work: the parent-death signal and the check
// that brig is still there (prctl PR_SET_PDEATHSIG, poll), the Go
// runtime's own (futex, signal returns, yields and sleeps, memory, signal
// masks), an error message (write) and exit, and execve. runc 1.1 loads
// it before it closes the fds it doesn't pass on (openat and getdents64
// of /proc/self/fd, fstatfs to check that is procfs, fcntl, close, and
// epoll_ctl for fds its Go runtime polls). Without no_new_privs (Docker's
// and Podman's default) a filter needs CAP_SYS_ADMIN, so both load it
// before they set the user and the process's capabilities: setgroups,
// setgid, setresgid, setuid, setresuid (which need CAP_SETGID and
// CAP_SETUID anyway), capget and capset, the prctl options for the
// bounding, keep-caps and ambient sets, then chdir (and runc reads its sync
// pipe and looks the program up with faccessat2). TestLearnPortable and
// TestLearnEngines run learned profiles with runc, brig, Docker and
// Podman.
var RuntimeCalls = []string{
	"capget", "capset", "chdir", "close", "epoll_ctl", "epoll_pwait", "execve", "exit", "exit_group",
	"faccessat2", "fcntl", "fstat", "fstatfs", "futex", "getdents64", "getpid", "gettid", "madvise",
	"mmap", "munmap", "nanosleep", "newfstatat", "openat", "poll", "prctl", "read", "rt_sigprocmask",
	"rt_sigreturn", "sched_yield", "setgid", "setgroups", "setresgid", "setresuid", "setuid",
	"sigaltstack", "tgkill", "write",
}

// PlumbingCalls are the file-descriptor and child-process plumbing that
// shells and libcs make around every job: learned profiles allow them
// whatever was recorded, as the engines' default profiles do (none
// reaches anything but the caller's own fds and children). The reason
// is the seccomp recorder (no root): a call waiting for its listener is
// interrupted by a signal until the listener has received it, and
// returns EINTR to a handler without SA_RESTART; a shell's SIGCHLD
// handler has none, and its jobs end while it makes these very calls
// ("Pipe call failed", a redirection's dup2 failing and the echo after
// it writing to a closed fd). So the listener leaves them to the kernel
// (recorder.Unwatched), and a profile can't depend on having seen them.
//
// rt_sigsuspend, a shell's wait for its jobs (the wait builtin), is one
// too: whether a run makes it depends on whether a job is still running
// when the script waits, so a learned profile without it made a replay
// spin, refused, where the learning runs had found every job done.
var PlumbingCalls = []string{"dup", "dup2", "dup3", "pipe", "pipe2", "rt_sigsuspend", "wait4", "waitid"}

// runtimeValues are the argument values those calls use.
var runtimeValues = map[string][]uint64{
	"prctl": {unix.PR_SET_PDEATHSIG, unix.PR_GET_KEEPCAPS, unix.PR_SET_KEEPCAPS, unix.PR_CAPBSET_READ,
		unix.PR_CAPBSET_DROP, unix.PR_CAP_AMBIENT},
	"mmap": {0},
}

// Set is a learned least privilege: calls allowed whatever their
// arguments, and calls allowed only with the values seen.
type Set struct {
	Calls  map[string]bool
	Values map[string]map[uint64]bool
	Archs  map[recorder.Arch]bool
	// Unnamed are calls made that the profile can't name.
	Unnamed []string
}

// NewSet is an empty set.
func NewSet() *Set {
	return &Set{Calls: map[string]bool{}, Values: map[string]map[uint64]bool{}, Archs: map[recorder.Arch]bool{}}
}

func (s *Set) addValue(name string, v uint64) {
	if s.Values[name] == nil {
		s.Values[name] = map[uint64]bool{}
	}
	s.Values[name][v] = true
}

// FromRecording names the recorded calls, and adds what brig's init needs
// to start the workload.
func FromRecording(rec *recorder.Recording) (*Set, error) {
	s := NewSet()
	s.Archs[recorder.ArchX86_64] = true
	// Values are kept under the x86-64 number, for x32 calls too.
	values := map[string]map[uint64]bool{}
	for nr, vs := range rec.Args {
		if name, err := libseccomp.ScmpSyscall(nr).GetNameByArch(libseccomp.ArchAMD64); err == nil {
			values[name] = vs
		}
	}
	for c := range rec.Calls {
		var arch libseccomp.ScmpArch
		nr := c.Nr
		switch c.Arch {
		case recorder.ArchX32:
			arch, nr = libseccomp.ArchX32, c.Nr|0x40000000
		case recorder.ArchX86:
			arch = libseccomp.ArchX86
		default:
			arch = libseccomp.ArchAMD64
		}
		name, err := libseccomp.ScmpSyscall(nr).GetNameByArch(arch)
		if err != nil || name == "" {
			// A call newer than this libseccomp: the profile can't name
			// it (a runtime answers it with ENOSYS); say so.
			s.Unnamed = append(s.Unnamed, fmt.Sprintf("%s call %d (unknown to this libseccomp)", c.Arch, c.Nr))
			continue
		}
		s.Archs[c.Arch] = true
		if _, ok := argRules[name]; !ok {
			s.Calls[name] = true
			continue
		}
		if c.Arch == recorder.ArchX86 {
			// A 32-bit task's arguments are in other registers and aren't
			// kept: rather than lift the rule for every ABI, the call is
			// left out, and said so.
			s.Unnamed = append(s.Unnamed, fmt.Sprintf("x86 (32-bit) %s: its arguments are not recorded, so it is not allowed", name))
			continue
		}
		for v := range values[name] {
			s.addValue(name, v)
		}
		if len(s.Values[name]) == 0 {
			s.Unnamed = append(s.Unnamed, fmt.Sprintf("%s %s: made, but no argument value was kept, so it is not allowed", c.Arch, name))
		}
	}
	if s.Calls["clone3"] {
		// clone3's flags are in memory seccomp can't read: allowing it
		// would let any namespace through. It is answered ENOSYS (libc
		// falls back to clone, whose flags the learned rule checks), and
		// clone is allowed for threads and forks.
		s.addValue("clone", 0)
	}
	if s.Calls["fork"] || s.Calls["vfork"] || s.Values["clone"][0] {
		// A fork is a fork: fork, vfork and clone without namespace
		// flags make the same process, and libcs choose between them.
		// Both recorders learn the three together (the seccomp one sees
		// only the tasks they make: seccomp.Forks).
		s.Calls["fork"], s.Calls["vfork"] = true, true
		s.addValue("clone", 0)
	}
	s.AddRuntime()
	sort.Strings(s.Unnamed)
	return s, nil
}

// AddRuntime adds RuntimeCalls and PlumbingCalls, and where 32-bit x86
// calls were made, that ABI's own signal mask and handler return
// (sigprocmask, sigreturn: the seccomp recorder leaves them to the
// kernel, as it does rt_sigprocmask and rt_sigreturn).
func (s *Set) AddRuntime() {
	for _, n := range PlumbingCalls {
		s.Calls[n] = true
	}
	if s.Archs[recorder.ArchX86] {
		s.Calls["sigprocmask"], s.Calls["sigreturn"] = true, true
	}
	for _, n := range RuntimeCalls {
		if vs, ok := runtimeValues[n]; ok {
			for _, v := range vs {
				s.addValue(n, v)
			}
			continue
		}
		s.Calls[n] = true
	}
}

// Merge adds o to s: the union of both.
func (s *Set) Merge(o *Set) {
	for n := range o.Calls {
		s.Calls[n] = true
	}
	for n, vs := range o.Values {
		for v := range vs {
			s.addValue(n, v)
		}
	}
	for a := range o.Archs {
		s.Archs[a] = true
	}
}

// Meta describes a learned profile; runtimes ignore it.
type Meta struct {
	Command []string `json:"command"`
	Brig    string   `json:"brig"`
	Kernel  string   `json:"kernel"`
	Date    string   `json:"date"`
	// Runs is how many recordings were merged into the profile.
	Runs int `json:"runs"`
	// Incomplete names what a recording could not keep.
	Incomplete []string `json:"incomplete,omitempty"`
	Note       string   `json:"note,omitempty"`
}

// Profile is the file learn writes.
type Profile struct {
	specs.LinuxSeccomp
	Learned *Meta `json:"brigLearned,omitempty"`
}

var archNames = map[recorder.Arch]specs.Arch{recorder.ArchX86_64: specs.ArchX86_64, recorder.ArchX32: specs.ArchX32,
	recorder.ArchX86: specs.ArchX86}

// Profile writes the set as a profile: deny by default with EPERM (brig,
// runc and crun answer calls newer than any the profile names with
// ENOSYS, so libc falls back), the calls allowed, each argument rule as
// its own entry (entries for one call are alternatives).
func (s *Set) Profile(m *Meta) *Profile {
	eperm := uint(unix.EPERM)
	p := &Profile{Learned: m}
	p.DefaultAction, p.DefaultErrnoRet = specs.ActErrno, &eperm
	for _, a := range slices.Sorted(maps.Keys(s.Archs)) {
		p.Architectures = append(p.Architectures, archNames[a])
	}
	var plain []string
	for n := range s.Calls {
		if n != "clone3" {
			plain = append(plain, n)
		}
	}
	sort.Strings(plain)
	if len(plain) > 0 {
		p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: plain, Action: specs.ActAllow})
	}
	if s.Calls["clone3"] {
		enosys := uint(unix.ENOSYS)
		p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys})
	}
	for _, n := range slices.Sorted(maps.Keys(s.Values)) {
		if s.Calls[n] {
			continue // allowed whole already
		}
		if vs := s.Values[n]; (n == "mmap" || n == "mprotect") && vs[0] && vs[unix.PROT_EXEC] {
			// Mapped both ways: the rule would allow everything.
			if len(p.Syscalls) == 0 || len(p.Syscalls[0].Args) > 0 {
				p.Syscalls = slices.Insert(p.Syscalls, 0, specs.LinuxSyscall{Action: specs.ActAllow})
			}
			p.Syscalls[0].Names = append(p.Syscalls[0].Names, n)
			sort.Strings(p.Syscalls[0].Names)
			continue
		}
		r := argRules[n]
		for _, v := range slices.Sorted(maps.Keys(s.Values[n])) {
			p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: []string{n}, Action: specs.ActAllow, Args: r.rule(v)})
		}
	}
	return p
}

// ErrNotLearned is a profile learn can't read back into a Set.
var ErrNotLearned = errors.New("not a profile brig learn wrote")

// Read reads a profile learn wrote (for --merge).
func Read(path string) (*Set, *Meta, error) { return read(path, false) }

// ReadInput reads a profile to merge: one learn wrote, or a plain
// allow-list another recorder wrote (oci-seccomp-bpf-hook's, which Podman
// users pass as `if:`): deny by default, every rule an unconditional
// allow. Anything else (a profile with other rules, such as Docker's
// default) is refused: its union with what was learned means nothing.
func ReadInput(path string) (*Set, *Meta, error) { return read(path, true) }

func read(path string, plainToo bool) (*Set, *Meta, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var p Profile
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, nil, fmt.Errorf("%s: %w (%v)", path, ErrNotLearned, err)
	}
	if p.Learned == nil && !(plainToo && plainAllowList(&p.LinuxSeccomp)) {
		return nil, nil, fmt.Errorf("%s: %w (no brigLearned block)", path, ErrNotLearned)
	}
	if p.Learned == nil {
		p.Learned = &Meta{Runs: 1, Note: "a plain allow-list, merged"}
	}
	s := NewSet()
	for _, a := range p.Architectures {
		for k, v := range archNames {
			if v == a {
				s.Archs[k] = true
			}
		}
	}
	for i, sc := range p.Syscalls {
		if len(sc.Names) == 1 && sc.Names[0] == "clone3" && sc.Action == specs.ActErrno && sc.ErrnoRet != nil && *sc.ErrnoRet == uint(unix.ENOSYS) {
			s.Calls["clone3"] = true
			continue
		}
		if sc.Action != specs.ActAllow {
			return nil, nil, fmt.Errorf("%s: syscalls[%d]: %w (action %s)", path, i, ErrNotLearned, sc.Action)
		}
		for _, n := range sc.Names {
			if len(sc.Args) == 0 {
				s.Calls[n] = true
				continue
			}
			r, ok := argRules[n]
			v, ok2 := r.back(sc.Args)
			if !ok || !ok2 {
				return nil, nil, fmt.Errorf("%s: syscalls[%d] (%s): %w (an argument rule of another shape)", path, i, n, ErrNotLearned)
			}
			s.addValue(n, v)
		}
	}
	return s, p.Learned, nil
}

// plainAllowList: deny by default, every rule an unconditional allow.
func plainAllowList(sc *specs.LinuxSeccomp) bool {
	switch sc.DefaultAction {
	case specs.ActErrno, specs.ActKill, specs.ActKillProcess, specs.ActKillThread, specs.ActTrap:
	default:
		return false
	}
	for _, r := range sc.Syscalls {
		if r.Action != specs.ActAllow || len(r.Args) > 0 {
			return false
		}
	}
	return len(sc.Syscalls) > 0
}

// Write writes the profile to path atomically: a temporary file beside
// it, synced, then renamed, so a reader sees the old profile or the new
// one, never a part.
func Write(path string, p *Profile) error {
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, append(data, '\n'))
}

// WriteFileAtomic writes data to path through a temporary file beside it.
func WriteFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// CheckWritable says, before anything runs, whether a profile can be
// written to path: its directory exists and takes a new file.
func CheckWritable(path string) error {
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%s: the directory %s: %w", path, dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: %s is not a directory", path, dir)
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("%s: is a directory", path)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("%s: can't write there: %w", path, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// Summary is one line about a set, as its profile has it.
func (s *Set) Summary() string {
	p := s.Profile(&Meta{})
	names := map[string]bool{}
	conds := map[string]int{}
	for _, sc := range p.Syscalls {
		if sc.Action != specs.ActAllow {
			continue
		}
		for _, n := range sc.Names {
			names[n] = true
			if len(sc.Args) > 0 {
				conds[n]++
			}
		}
	}
	var cond []string
	for _, n := range slices.Sorted(maps.Keys(conds)) {
		cond = append(cond, fmt.Sprintf("%s (%d)", n, conds[n]))
	}
	return fmt.Sprintf("%d system calls allowed; argument rules: %s", len(names), strings.Join(cond, ", "))
}

// Session is one `brig learn`: where the profile goes, what it merges
// with, and the recorder while the workload runs.
type Session struct {
	Output  string
	Command []string
	Version string
	prior   *Set // merged profiles and the output's earlier runs
	runs    int
	notes   []string
	rec     source
	pid     int
	// FilesOut, when set, is where the `brig run --profile` file goes:
	// the files used, as --ro and --rw entries (files.go). DefaultRO are
	// the directories the sandbox shows anyway; Home the caller's.
	FilesOut  string
	DefaultRO []string
	Home      string
	files     fileRecord
	// names are the sandbox's DNS answers, by address (nil: none).
	names func() map[netip.Addr][]string
	// LandlockOut, when set (learning by annotation), is where the
	// brig.landlock rule set for the files used goes; root is a handle on
	// the container's root, where those paths are looked up.
	LandlockOut string
	root        *os.File
	closed      bool // written for the last time: later Writes do nothing
	mu          sync.Mutex
}

// fileRecord is what records the files a run uses: fanotify's
// recorder.Files as root, the seccomp listener's recorder.ListenerFiles
// without.
type fileRecord interface {
	Snapshot() (map[string]recorder.Access, bool)
	Start() time.Time
	Close()
}

// source records the calls: the eBPF recorder (recorder.Recorder), or,
// where eBPF can't be used, brig's seccomp listener (recorder.Listener).
type source interface {
	Armed() bool
	Snapshot() (*recorder.Recording, error)
}

// ErrNothingLearned is a Write before the command ran: there is nothing
// to write, and an existing profile is left as it is.
var ErrNothingLearned = errors.New("nothing was learned: the command never started")

// NewSession checks everything that can be checked before the workload
// runs: the recorder can work here, the output can be written, every
// profile to merge is one learn wrote. An output that exists already is
// merged into (it must be a learned profile too).
//
// flag names the output in messages: "-o" on the command line, the
// annotation for an OCI container.
func NewSession(flag, output string, merge []string, command []string, version string) (*Session, error) {
	if output == "" {
		return nil, fmt.Errorf("%s PROFILE: where to write the learned profile is missing", flag)
	}
	if err := CheckWritable(output); err != nil {
		return nil, fmt.Errorf("%s %w", flag, err)
	}
	s := &Session{Output: output, Command: command, Version: version, prior: NewSet()}
	add := func(path, flag string) error {
		read := Read
		if flag == "--merge" {
			read = ReadInput
		}
		set, meta, err := read(path)
		if err != nil {
			return fmt.Errorf("%s %w", flag, err)
		}
		s.prior.Merge(set)
		s.runs += max(meta.Runs, 1)
		return nil
	}
	if _, err := os.Stat(output); err == nil {
		if err := add(output, flag); err != nil {
			return nil, fmt.Errorf("%w: choose another file, or remove it", err)
		}
		s.notes = append(s.notes, "merged into the existing "+output)
	}
	for _, m := range merge {
		if err := add(m, "--merge"); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Attach starts recording the container's cgroup (v2 directory) before
// its process pid starts.
func (s *Session) Attach(cgroupDir string, pid int) error {
	if cgroupDir == "" {
		return errors.New("learn: the container has no cgroup v2 directory to record")
	}
	r, err := recorder.Attach(cgroupDir)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.rec, s.pid = r, pid
	s.mu.Unlock()
	return nil
}

// Listen records through brig's seccomp listener of the container, l
// (made before the container, with the calls recorded), instead of eBPF;
// pid is the container's process once created.
func (s *Session) Listen(l *recorder.Listener) {
	s.mu.Lock()
	s.rec = l
	s.mu.Unlock()
}

// NamesFrom gives the session the sandbox's record of its DNS answers,
// so destinations reached by name are written as names.
func (s *Session) NamesFrom(f func() map[netip.Addr][]string) {
	s.mu.Lock()
	s.names = f
	s.mu.Unlock()
}

// SetPid names the container's process (for the signal handling of Run).
func (s *Session) SetPid(pid int) {
	s.mu.Lock()
	s.pid = pid
	s.mu.Unlock()
}

// AttachFiles starts recording the files the container (init pid, not yet
// started) uses through its mounts.
func (s *Session) AttachFiles(pid int) error {
	f, err := recorder.WatchFiles(pid)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.files = f
	s.mu.Unlock()
	return nil
}

// listenerFiles is the file record of the seccomp listener the session
// learns through, if it keeps one.
func (s *Session) listenerFiles() *recorder.ListenerFiles {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.rec.(*recorder.Listener); ok {
		return l.Files()
	}
	return nil
}

// FilesFrom has the session take the files used from the seccomp
// listener's record (brig learn --profile-out without root).
func (s *Session) FilesFrom(f *recorder.ListenerFiles) {
	s.mu.Lock()
	s.files = f
	s.mu.Unlock()
}

// AttachRoot keeps a handle on the root directory of the container whose
// init is pid, for Write to look up the paths it saw.
func (s *Session) AttachRoot(pid int) error {
	f, err := os.OpenFile(fmt.Sprintf("/proc/%d/root", pid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("learn: the container's root: %w", err)
	}
	s.mu.Lock()
	s.root = f
	s.mu.Unlock()
	return nil
}

// Pid is the container process's pid once attached (0 before).
func (s *Session) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pid
}

// Write writes what has been learned so far (the recorder goes on), and
// returns a one-line summary.
func (s *Session) Write() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", nil
	}
	if s.rec == nil || !s.rec.Armed() {
		return "", ErrNothingLearned
	}
	set := NewSet()
	set.Merge(s.prior)
	var incomplete []string
	var connects []netip.AddrPort
	runs := s.runs
	{
		rec, err := s.rec.Snapshot()
		if err != nil {
			return "", err
		}
		learned, err := FromRecording(rec)
		if err != nil {
			return "", err
		}
		set.Merge(learned)
		incomplete = append(rec.Incomplete, learned.Unnamed...)
		connects = rec.Connects()
		runs++
	}
	// Others may learn into the same profile at once (replicas with one
	// annotation): with the directory locked, what is there now is merged
	// in, so no run is lost.
	dir, err := os.Open(filepath.Dir(s.Output))
	if err != nil {
		return "", err
	}
	defer dir.Close()
	if err := unix.Flock(int(dir.Fd()), unix.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", dir.Name(), err)
	}
	defer unix.Flock(int(dir.Fd()), unix.LOCK_UN)
	if now, meta, err := Read(s.Output); err == nil {
		set.Merge(now)
		runs = max(runs, meta.Runs+1)
	}
	var uts unix.Utsname
	unix.Uname(&uts)
	meta := &Meta{Command: s.Command, Brig: s.Version, Kernel: unix.ByteSliceToString(uts.Release[:]),
		Date: time.Now().UTC().Format(time.RFC3339), Runs: runs, Incomplete: incomplete,
		Note: "learned by brig learn: the calls made after the execve of the command, by it and its descendants, plus what an OCI runtime's init needs to start it"}
	if err := Write(s.Output, set.Profile(meta)); err != nil {
		return "", err
	}
	sum := set.Summary()
	if s.FilesOut != "" && s.files != nil {
		use, lost := s.files.Snapshot()
		rules := Rules(use, s.DefaultRO, s.Home, s.files.Start())
		var names map[netip.Addr][]string
		if s.names != nil {
			names = s.names()
		}
		rules.AllowNet = Destinations(connects, names)
		if err := WriteSandbox(s.FilesOut, s.Output, rules); err != nil {
			return "", err
		}
		sum += fmt.Sprintf("; %s: %d read-only and %d writable paths, %d destinations", s.FilesOut, len(rules.RO), len(rules.RW), len(rules.AllowNet))
		if lost {
			sum += " (file events were lost: the queue overflowed; learn again to complete it)"
		}
	}
	if s.LandlockOut != "" && s.files != nil && s.root != nil {
		use, lost := s.files.Snapshot()
		root := fmt.Sprintf("/proc/self/fd/%d", s.root.Fd())
		rules := RulesIn(root, use, nil, "", s.files.Start())
		if err := WriteLandlock(s.LandlockOut, LandlockRuleSet(root, rules)); err != nil {
			return "", err
		}
		sum += fmt.Sprintf("; %s: %d read-only and %d writable paths", s.LandlockOut, len(rules.RO), len(rules.RW))
		if lost {
			sum += " (file events were lost: the queue overflowed; learn again to complete it)"
		}
	}
	if len(s.notes) > 0 {
		sum += " (" + strings.Join(s.notes, "; ") + ")"
	}
	return sum, nil
}

// Close detaches the recorder; Writes after it do nothing.
func (s *Session) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if r, ok := s.rec.(*recorder.Recorder); ok {
		r.Close() // the listener closes with the container's run
	}
	s.rec = nil
	if s.files != nil {
		s.files.Close()
		s.files = nil
	}
	if s.root != nil {
		s.root.Close()
		s.root = nil
	}
}
