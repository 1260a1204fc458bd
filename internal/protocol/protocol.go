// Package protocol is what the brig command and its init say to each
// other over the bootstrap socket, once the C constructor is done with it
// (its own half, the text bootstrap message, is described in
// internal/nsenter/nsenter.c and written by internal/bootstrap):
//
//	brig → init   fds               (SendFiles: one-byte messages with SCM_RIGHTS)
//	brig → init   Config            (one: the plan's parts the init applies; FDs names the fds)
//	init → brig   Message{cgroup}   → Reply{cgroupPaths}   (in its cgroup? where?)
//	init → brig   Message{hooks}    → Reply                (prestart, createRuntime run)
//	init → brig   Message{seccomp}  → Reply                (the listener fd, to the agent)
//	init → brig   Message{ready}                           (create: waits for start)
//	init → brig   Message{error}                           (and exits)
//
// Each message is one line of JSON. Before the Config, the fds it names in
// Config.FDs travel with SCM_RIGHTS (SendFiles, RecvFiles): the init
// inherits only stdio, the caller's --preserve-fds and the socket, and
// what it receives is close-on-exec, so nothing brig opened can reach the
// container's process by mistake. An exec'd process's socket is
// close-on-exec too, so brig exec sees EOF when the execve worked. Serve
// is the one loop that answers the init, for create and exec alike.
package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"brig/internal/caps"
	"brig/internal/lsm"
	"brig/internal/seccomp/filter"
	"brig/internal/spec"
)

// Config is sent by the brig command to init, as the first JSON message
// after the namespaces exist.
type Config struct {
	// Exec: join a running container and run Process (brig exec);
	// otherwise set up a new container from Spec.
	Exec         bool           `json:"exec,omitempty"`
	ID           string         `json:"id"`
	Bundle       string         `json:"bundle"`
	Spec         *specs.Spec    `json:"spec"`
	Process      *specs.Process `json:"process"`
	NoPivot      bool           `json:"noPivot,omitempty"`
	NoNewKeyring bool           `json:"noNewKeyring,omitempty"`
	FifoPath     string         `json:"fifoPath,omitempty"`
	UserNS       bool           `json:"userNS,omitempty"`   // in a user namespace of its own (new or joined)
	CgroupNS     bool           `json:"cgroupNS,omitempty"` // a new cgroup namespace
	PreserveFDs  int            `json:"preserveFDs,omitempty"`
	// FDs say what each fd passed before the Config is, in order; Attach
	// sets Parent, Console and Trees from them.
	FDs     []FD             `json:"fds,omitempty"`
	Parent  *os.File         `json:"-"`               // a pidfd of the brig command (with DieWithParent)
	Console *os.File         `json:"-"`               // the --console-socket connection
	Trees   map[int]*os.File `json:"-"`               // mounts[i] → its source's tree, cloned by brig
	State   *specs.State     `json:"state,omitempty"` // for createContainer/startContainer hooks
	// Bare: no namespace of its own (brig run's lesser mode, where none
	// can be made): the caller's user keeps its groups where it may not
	// set them.
	Bare bool `json:"bare,omitempty"`
	// DieWithParent: the container's process is killed when the brig
	// command that runs it dies (brig run -- CMD leaves nothing behind).
	DieWithParent bool `json:"dieWithParent,omitempty"`
	// LandlockABI is the host's, as the brig command found it.
	LandlockABI int `json:"landlockABI,omitempty"`
	// Caps are process.capabilities resolved against the host by brig.
	Caps *caps.Sets `json:"caps,omitempty"`
	// Mounts are the spec's mounts[], parsed by the plan (Spec.Mounts is
	// not sent).
	Mounts []spec.Mount `json:"mounts,omitempty"`
	// Seccomp is the filter the plan compiled from linux.seccomp (the
	// profile itself is not sent).
	Seccomp *filter.Program `json:"seccomp,omitempty"`
	// Landlock is the rule set the plan parsed from the annotation.
	Landlock *lsm.Landlock `json:"landlock,omitempty"`
	// ApparmorAvailable and SelinuxEnabled are what the host has.
	Debug bool `json:"debug,omitempty"`
}

// Kind is what a Message says.
type Kind string

// The kinds of Message.
const (
	// KindCgroup asks whether the process is in its cgroup yet (systemd
	// may still be moving it), and where that is.
	KindCgroup Kind = "cgroup"
	// KindHooks asks brig to run the prestart and createRuntime hooks.
	KindHooks Kind = "hooks"
	// KindSeccomp hands brig the seccomp listener for
	// linux.seccomp.listenerPath: the fd comes just before the message,
	// with SCM_RIGHTS (SendFiles), in Message.Files. (pidfd_getfd can't
	// take it from a rootless init, which is not dumpable.)
	KindSeccomp Kind = "seccomp"
	// KindReady: everything that can fail has been done; create is over.
	KindReady Kind = "ready"
	// KindError: the init failed, and exits.
	KindError Kind = "error"
)

// Message is what init sends back.
type Message struct {
	Type  Kind   `json:"type"`
	Error string `json:"error,omitempty"`
	// Files are the fds that came with the message (a Conn that keeps
	// them: FileConn).
	Files []*os.File `json:"-"`
}

// FileConn is a Conn that keeps the fds passed to it with SCM_RIGHTS
// (bootstrap.Process): TakeFiles returns those received so far, once.
type FileConn interface {
	TakeFiles() []*os.File
}

// Reply is the brig command's answer to a KindCgroup, KindHooks or
// KindSeccomp message.
type Reply struct {
	Error string `json:"error,omitempty"`
	// CgroupPaths answer "cgroup": the container's cgroups by controller
	// ("" for v2), none when it has none.
	CgroupPaths map[string]string `json:"cgroupPaths,omitempty"`
}

// Config.Spec travels to the init as initSpec: the parts of the spec the
// init reads. Decoding JSON into a type makes encoding/json build the
// codecs of every type reachable from it, the first time in a process, and
// for the whole specs.Spec (linux.resources, and the Windows, Solaris, VM
// and z/OS parts) that took about 1 ms on this host, twice the time for
// these parts alone: the init pays it on every start, the brig command
// once for config.json either way.
type initSpec struct {
	Version    string         `json:"ociVersion"`
	Process    *specs.Process `json:"process,omitempty"`
	Root       *specs.Root    `json:"root,omitempty"`
	Hostname   string         `json:"hostname,omitempty"`
	Domainname string         `json:"domainname,omitempty"`
	Hooks      *specs.Hooks   `json:"hooks,omitempty"`
	Linux      *initLinux     `json:"linux,omitempty"`
}

// initLinux is the init's part of specs.Linux: no resources (brig writes
// the cgroup), no id mappings or namespace paths to act on (the C
// constructor and brig did), only which namespaces there are; no mounts,
// seccomp profile or annotations (Config carries them as the plan decided
// them).
type initLinux struct {
	Namespaces        []specs.LinuxNamespace   `json:"namespaces,omitempty"`
	Devices           []specs.LinuxDevice      `json:"devices,omitempty"`
	Sysctl            map[string]string        `json:"sysctl,omitempty"`
	RootfsPropagation string                   `json:"rootfsPropagation,omitempty"`
	MaskedPaths       []string                 `json:"maskedPaths,omitempty"`
	ReadonlyPaths     []string                 `json:"readonlyPaths,omitempty"`
	MountLabel        string                   `json:"mountLabel,omitempty"`
	Personality       *specs.LinuxPersonality  `json:"personality,omitempty"`
	MemoryPolicy      *specs.LinuxMemoryPolicy `json:"memoryPolicy,omitempty"`
}

func toInitSpec(s *specs.Spec) *initSpec {
	if s == nil {
		return nil
	}
	w := &initSpec{
		Version: s.Version, Process: s.Process, Root: s.Root, Hostname: s.Hostname,
		Domainname: s.Domainname, Hooks: s.Hooks,
	}
	if l := s.Linux; l != nil {
		w.Linux = &initLinux{
			Namespaces: l.Namespaces, Devices: l.Devices, Sysctl: l.Sysctl,
			RootfsPropagation: l.RootfsPropagation, MaskedPaths: l.MaskedPaths,
			ReadonlyPaths: l.ReadonlyPaths, MountLabel: l.MountLabel, Personality: l.Personality,
			MemoryPolicy: l.MemoryPolicy,
		}
	}
	return w
}

func (w *initSpec) spec() *specs.Spec {
	if w == nil {
		return nil
	}
	s := &specs.Spec{
		Version: w.Version, Process: w.Process, Root: w.Root, Hostname: w.Hostname,
		Domainname: w.Domainname, Hooks: w.Hooks,
	}
	if l := w.Linux; l != nil {
		s.Linux = &specs.Linux{
			Namespaces: l.Namespaces, Devices: l.Devices, Sysctl: l.Sysctl,
			RootfsPropagation: l.RootfsPropagation, MaskedPaths: l.MaskedPaths,
			ReadonlyPaths: l.ReadonlyPaths, MountLabel: l.MountLabel, Personality: l.Personality,
			MemoryPolicy: l.MemoryPolicy,
		}
	}
	return s
}

// configAlias has Config's fields without its JSON methods.
type configAlias Config

// wireConfig is Config as it travels: its Spec field shadows the
// embedded one.
type wireConfig struct {
	configAlias
	Spec *initSpec `json:"spec"`
}

// MarshalJSON sends the spec as initSpec.
func (c Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(wireConfig{configAlias(c), toInitSpec(c.Spec)})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (c *Config) UnmarshalJSON(data []byte) error {
	var w wireConfig
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*c = Config(w.configAlias)
	c.Spec = w.Spec.spec()
	return nil
}

// Conn is the parent's end of the socket (bootstrap.Process).
type Conn interface {
	Send(v any) error
	Recv(v any) error
}

// Handler answers one request of the init; an error is sent back as the
// reply's error and ends Serve.
type Handler func(Message) (Reply, error)

// Serve answers the init's requests until it reports ready. With exec
// (the init of brig exec never reports ready), the socket closing means
// the execve worked.
func Serve(c Conn, handlers map[Kind]Handler, exec bool) error {
	for {
		var m Message
		if err := c.Recv(&m); err != nil {
			if errors.Is(err, io.EOF) {
				if exec {
					return nil
				}
				return errors.New("container init exited before it was ready")
			}
			return err
		}
		if fc, ok := c.(FileConn); ok {
			m.Files = fc.TakeFiles()
		}
		switch m.Type {
		case KindReady:
			return nil
		case KindError:
			return errors.New(m.Error)
		}
		h, ok := handlers[m.Type]
		if !ok {
			return fmt.Errorf("container init: unexpected message %q", m.Type)
		}
		r, herr := h(m)
		for _, f := range m.Files {
			f.Close() // a handler keeps a dup of what it needs
		}
		if herr != nil {
			r.Error = herr.Error()
		}
		if err := c.Send(r); err != nil {
			return err
		}
		if herr != nil {
			return herr
		}
	}
}

// FDKind is what a passed fd is.
type FDKind string

// The kinds of FD.
const (
	FDParent  FDKind = "parent"  // a pidfd of the brig command
	FDTree    FDKind = "tree"    // the host-side tree of mounts[Mount]
	FDConsole FDKind = "console" // the --console-socket connection
)

// FD is one fd passed to the init.
type FD struct {
	Kind  FDKind `json:"kind"`
	Mount int    `json:"mount,omitempty"` // with FDTree
}

// Attach gives the received files their roles, as c.FDs lists them. The
// files must be exactly as many; each role but a tree is had once.
func (c *Config) Attach(files []*os.File) error {
	if len(files) != len(c.FDs) {
		return fmt.Errorf("config names %d fds, %d arrived", len(c.FDs), len(files))
	}
	for i, fd := range c.FDs {
		f := files[i]
		switch fd.Kind {
		case FDParent:
			if c.Parent != nil {
				return errors.New("config names two parent fds")
			}
			c.Parent = f
		case FDConsole:
			if c.Console != nil {
				return errors.New("config names two console fds")
			}
			c.Console = f
		case FDTree:
			if c.Trees == nil {
				c.Trees = map[int]*os.File{}
			}
			if fd.Mount < 0 || c.Trees[fd.Mount] != nil {
				return fmt.Errorf("config names a bad or second tree for mounts[%d]", fd.Mount)
			}
			c.Trees[fd.Mount] = f
		default:
			return fmt.Errorf("config names an fd of unknown kind %q", fd.Kind)
		}
	}
	return nil
}

// maxRights is how many fds the kernel passes in one message (SCM_MAX_FD).
const maxRights = 253

// SendFiles passes files over sock (a connected unix stream socket) in
// messages of one byte each, so that a reader never takes a message's fds
// with another's data: '+' when more messages follow, '.' for the last.
// With no files, one '.' is sent.
func SendFiles(sock syscall.Conn, files []*os.File) error {
	rc, err := sock.SyscallConn()
	if err != nil {
		return err
	}
	for {
		n := min(len(files), maxRights)
		fds := make([]int, n)
		for i, f := range files[:n] {
			fds[i] = int(f.Fd())
		}
		mark := []byte{'.'}
		if n < len(files) {
			mark[0] = '+'
		}
		var oob []byte
		if n > 0 {
			oob = unix.UnixRights(fds...)
		}
		var serr error
		if err := rc.Write(func(fd uintptr) bool {
			serr = unix.Sendmsg(int(fd), mark, oob, nil, 0)
			return serr != unix.EAGAIN
		}); err != nil {
			return err
		}
		for _, f := range files[:n] {
			runtime.KeepAlive(f)
		}
		if serr != nil {
			return fmt.Errorf("pass fds: %w", serr)
		}
		files = files[n:]
		if mark[0] == '.' {
			return nil
		}
	}
}

// RecvFiles reads what SendFiles sent; the files are close-on-exec. It
// reads one byte at a time, so it must come before any buffered read of
// the socket.
func RecvFiles(sock syscall.Conn) (files []*os.File, err error) {
	rc, err := sock.SyscallConn()
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			files = nil
		}
	}()
	oob := make([]byte, unix.CmsgSpace(maxRights*4))
	for {
		var mark [1]byte
		var n, oobn, flags int
		var rerr error
		if err := rc.Read(func(fd uintptr) bool {
			n, oobn, flags, _, rerr = unix.Recvmsg(int(fd), mark[:], oob, unix.MSG_CMSG_CLOEXEC)
			return rerr != unix.EAGAIN
		}); err != nil {
			return files, err
		}
		if rerr != nil {
			return files, fmt.Errorf("receive fds: %w", rerr)
		}
		if n == 0 {
			return files, io.ErrUnexpectedEOF
		}
		if oobn > 0 {
			msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil {
				return files, fmt.Errorf("receive fds: %w", err)
			}
			for _, m := range msgs {
				fds, err := unix.ParseUnixRights(&m)
				if err != nil {
					return files, fmt.Errorf("receive fds: %w", err)
				}
				for _, fd := range fds {
					files = append(files, os.NewFile(uintptr(fd), "passed-fd"))
				}
			}
		}
		if flags&unix.MSG_CTRUNC != 0 {
			return files, errors.New("receive fds: more fds than one message holds")
		}
		switch mark[0] {
		case '.':
			return files, nil
		case '+':
		default:
			return files, fmt.Errorf("receive fds: unexpected byte %q", mark[0])
		}
	}
}
