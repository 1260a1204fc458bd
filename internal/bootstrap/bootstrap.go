// Package bootstrap is the parent's half of starting a process inside a
// container's namespaces: it starts brig's own binary (from a read-only
// mount, so the container can never write to it), feeds the C constructor
// in internal/nsenter the namespaces to join and create, writes uid/gid
// maps, and learns the pid of the container process. After that the same
// socket carries JSON messages between brig and its init.
package bootstrap

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// EnvBootstrap names the fd of the bootstrap socket in the child.
const EnvBootstrap = "_BRIG_BOOTSTRAP"

// envExeFD names the fd init was executed through (closed at once).
const envExeFD = "_BRIG_EXEFD"

// Namespace to join: its type (as in /proc/PID/ns) and path.
type Namespace struct {
	Type string
	Path string
}

// Options say how to start the process.
type Options struct {
	Args       []string // brig's arguments in the child, e.g. {"init"}
	Join       []Namespace
	CloneFlags uintptr
	// TimeOffsets are lines for /proc/self/timens_offsets.
	TimeOffsets []string
	UIDMappings []specs.LinuxIDMapping
	GIDMappings []specs.LinuxIDMapping
	Stdin       io.Reader
	Stdout      io.Writer
	Stderr      io.Writer
	// ExtraFiles become fds 3, 4, ... in the child; the bootstrap socket
	// comes after them.
	ExtraFiles []*os.File
	Env        []string
	// CgroupDir is a cgroup v2 directory the child is born in (clone3
	// with CLONE_INTO_CGROUP).
	CgroupDir string
	// JoinCgroups are cgroup v1 directories the child moves itself into,
	// in the C constructor, before anything else, while it is single-threaded.
	JoinCgroups []string
	// Place puts the container's process into its cgroup, where brig
	// can't have it born there (the systemd driver: systemd moves it). It
	// runs as soon as the process's pid is known, beside its Go start-up
	// (moving another process waits for an RCU grace period);
	// Process.Placed waits for it.
	Place func(pid int) error
	// Setsid makes the child a session leader (for terminals).
	Setsid bool
	// Program: the child runs the init program SendProgram sends
	// (internal/initprog) in C, and no Go runtime starts in it.
	Program bool
}

// Process is a started container process.
type Process struct {
	Cmd    *exec.Cmd // the child brig started (may be an intermediate)
	Pid    int       // the container process, as the host sees it
	conn   *os.File
	r      *bufio.Reader
	files  []*os.File // received with SCM_RIGHTS, for TakeFiles
	placed chan error // Options.Place's result, once
	perr   error
}

// Placed waits until Options.Place has returned and gives its error
// (nil without a Place).
func (p *Process) Placed() error {
	if p.placed != nil {
		p.perr = <-p.placed
		p.placed = nil
	}
	return p.perr
}

// Start starts the process and returns once its namespaces exist and its
// pid is known. On error nothing is left running.
func Start(o Options) (p *Process, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("bootstrap socketpair: %w", err)
	}
	parent := os.NewFile(uintptr(fds[0]), "bootstrap-parent")
	child := os.NewFile(uintptr(fds[1]), "bootstrap-child")
	defer child.Close()

	exe, err := Executable()
	if err != nil {
		parent.Close()
		return nil, err
	}
	// The binary travels as the child's last fd and is executed through
	// it: a dup to a high fd number here would grow this multi-threaded
	// process's fd table, which waits for an RCU grace period (~10 ms).
	cmd := &exec.Cmd{Args: append([]string{"brig"}, o.Args...)}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = o.Stdin, o.Stdout, o.Stderr
	cmd.ExtraFiles = append(append([]*os.File(nil), o.ExtraFiles...), child)
	bootFD := 3 + len(o.ExtraFiles)
	cmd.Env = append([]string{EnvBootstrap + "=" + strconv.Itoa(bootFD)}, o.Env...)
	if exe.file != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, exe.file)
		cmd.Path = "/proc/self/fd/" + strconv.Itoa(bootFD+1)
		cmd.Env = append(cmd.Env, envExeFD+"="+strconv.Itoa(bootFD+1))
	} else {
		cmd.Path = exe.path
	}
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: o.Setsid}
	if o.CgroupDir != "" {
		fd, err := unix.Open(o.CgroupDir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			parent.Close()
			return nil, fmt.Errorf("open cgroup %s: %w", o.CgroupDir, err)
		}
		defer unix.Close(fd)
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, fd
	}
	if err := cmd.Start(); err != nil {
		parent.Close()
		if o.CgroupDir != "" {
			return nil, fmt.Errorf("start init in cgroup %s: %w", o.CgroupDir, err)
		}
		return nil, fmt.Errorf("start init: %w", err)
	}
	p = &Process{Cmd: cmd, conn: parent}
	p.r = bufio.NewReader(fileReader{p})
	defer func() {
		if err != nil {
			p.Kill()
		}
	}()
	child.Close()

	var msg strings.Builder
	for _, dir := range o.JoinCgroups {
		fmt.Fprintf(&msg, "cgroup %s\n", dir)
	}
	for _, j := range o.Join {
		fmt.Fprintf(&msg, "join %s %s\n", j.Type, j.Path)
	}
	fmt.Fprintf(&msg, "clone %d\n", o.CloneFlags)
	for _, t := range o.TimeOffsets {
		fmt.Fprintf(&msg, "timeoff %s\n", t)
	}
	if o.Program {
		msg.WriteString("program\n")
	}
	msg.WriteString("end\n")
	if _, err := io.WriteString(parent, fmt.Sprintf("size %d\n", msg.Len())+msg.String()); err != nil {
		return p, fmt.Errorf("send bootstrap message: %w", childError(p, err))
	}
	for {
		line, err := p.r.ReadString('\n')
		if err != nil {
			return p, fmt.Errorf("bootstrap: %w", childError(p, err))
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "U":
			if err := writeIDMaps(cmd.Process.Pid, o.UIDMappings, o.GIDMappings); err != nil {
				return p, err
			}
			if _, err := io.WriteString(parent, "u\n"); err != nil {
				return p, fmt.Errorf("bootstrap: %w", err)
			}
		case strings.HasPrefix(line, "P "):
			pid, err := strconv.Atoi(line[2:])
			if err != nil || pid <= 0 {
				return p, fmt.Errorf("bootstrap: bad pid line %q", line)
			}
			p.Pid = pid
			if o.Place != nil {
				p.placed = make(chan error, 1)
				go func() { p.placed <- o.Place(pid) }()
			}
			return p, nil
		case strings.HasPrefix(line, "E "):
			return p, errors.New(line[2:])
		default:
			return p, fmt.Errorf("bootstrap: unexpected %q", line)
		}
	}
}

// childError adds the child's exit status to a read or write error.
func childError(p *Process, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, unix.EPIPE) {
		if werr := p.Cmd.Wait(); werr != nil {
			return fmt.Errorf("init exited early: %w", werr)
		}
		return errors.New("init exited early")
	}
	return err
}

func writeIDMaps(pid int, uids, gids []specs.LinuxIDMapping) error {
	format := func(ms []specs.LinuxIDMapping) string {
		var b strings.Builder
		for _, m := range ms {
			fmt.Fprintf(&b, "%d %d %d\n", m.ContainerID, m.HostID, m.Size)
		}
		return b.String()
	}
	if os.Geteuid() == 0 {
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/uid_map", pid), []byte(format(uids)), 0); err != nil {
			return fmt.Errorf("write uid_map (linux.uidMappings): %w", err)
		}
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/gid_map", pid), []byte(format(gids)), 0); err != nil {
			return fmt.Errorf("write gid_map (linux.gidMappings): %w", err)
		}
		return nil
	}
	// Unprivileged: a process may map its own uid and gid (gid only after
	// setgroups is denied); anything more takes the setuid helpers
	// newuidmap and newgidmap, as with runc.
	if ownOnly(uids, os.Geteuid()) && ownOnly(gids, os.Getegid()) {
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/setgroups", pid), []byte("deny"), 0); err != nil {
			return fmt.Errorf("deny setgroups: %w", err)
		}
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/uid_map", pid), []byte(format(uids)), 0); err != nil {
			return fmt.Errorf("write uid_map (linux.uidMappings): %w", err)
		}
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/gid_map", pid), []byte(format(gids)), 0); err != nil {
			return fmt.Errorf("write gid_map (linux.gidMappings): %w", err)
		}
		return nil
	}
	for _, h := range []struct {
		tool, field string
		maps        []specs.LinuxIDMapping
	}{{"newuidmap", "linux.uidMappings", uids}, {"newgidmap", "linux.gidMappings", gids}} {
		path, err := exec.LookPath(h.tool)
		if err != nil {
			return fmt.Errorf("%s: mapping more than your own id without root needs %s (Debian package uidmap)", h.field, h.tool)
		}
		args := []string{strconv.Itoa(pid)}
		for _, m := range h.maps {
			args = append(args, strconv.FormatUint(uint64(m.ContainerID), 10), strconv.FormatUint(uint64(m.HostID), 10), strconv.FormatUint(uint64(m.Size), 10))
		}
		if out, err := exec.Command(path, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %s: %v: %s", h.field, h.tool, err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

func ownOnly(ms []specs.LinuxIDMapping, id int) bool {
	return len(ms) == 1 && ms[0].Size == 1 && int(ms[0].HostID) == id
}

// Send writes one JSON message.
func (p *Process) Send(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if _, err := p.conn.Write(data); err != nil {
		return fmt.Errorf("send to init: %w", err)
	}
	return nil
}

// SendProgram sends the init program to a child started with
// Options.Program: its length (u32, little-endian), then its bytes.
func (p *Process) SendProgram(prog []byte) error {
	b := binary.LittleEndian.AppendUint32(make([]byte, 0, 4+len(prog)), uint32(len(prog)))
	if _, err := p.conn.Write(append(b, prog...)); err != nil {
		return fmt.Errorf("send init program: %w", err)
	}
	return nil
}

// SyscallConn is the socket's, for passing fds (protocol.SendFiles).
func (p *Process) SyscallConn() (syscall.RawConn, error) { return p.conn.SyscallConn() }

// Recv reads one JSON message. io.EOF means the child closed the socket
// (it exec'd, or died).
func (p *Process) Recv(v any) error {
	line, err := p.r.ReadBytes('\n')
	if err != nil {
		if errors.Is(err, io.EOF) && len(line) == 0 {
			return io.EOF
		}
		return fmt.Errorf("read from init: %w", err)
	}
	return json.Unmarshal(line, v)
}

// Close closes brig's end of the socket, and any fd received and not
// taken.
func (p *Process) Close() error {
	for _, f := range p.TakeFiles() {
		f.Close()
	}
	return p.conn.Close()
}

// TakeFiles returns the fds the init has passed (protocol.SendFiles) since
// the last call.
func (p *Process) TakeFiles() []*os.File {
	fs := p.files
	p.files = nil
	return fs
}

// fileReader reads brig's end of the socket with recvmsg, so that fds the
// init passes reach TakeFiles: protocol.SendFiles' one-byte marks are
// taken out of the stream, and their SCM_RIGHTS kept. The init waits for
// each reply, so a mark is always the first byte a read finds, and the
// kernel ends a read after the message that carries fds.
type fileReader struct{ p *Process }

func (r fileReader) Read(b []byte) (int, error) {
	rc, err := r.p.conn.SyscallConn()
	if err != nil {
		return 0, err
	}
	oob := make([]byte, unix.CmsgSpace(16*4))
	for {
		var n, oobn, flags int
		var rerr error
		if err := rc.Read(func(fd uintptr) bool {
			n, oobn, flags, _, rerr = unix.Recvmsg(int(fd), b, oob, unix.MSG_CMSG_CLOEXEC)
			return rerr != unix.EAGAIN
		}); err != nil {
			return 0, err
		}
		if rerr != nil {
			return 0, rerr
		}
		if flags&unix.MSG_CTRUNC != 0 {
			return 0, errors.New("fds from init: more than brig takes at once")
		}
		if oobn > 0 {
			msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil {
				return 0, fmt.Errorf("fds from init: %w", err)
			}
			for i := range msgs {
				fds, err := unix.ParseUnixRights(&msgs[i])
				if err != nil {
					continue
				}
				for _, fd := range fds {
					r.p.files = append(r.p.files, os.NewFile(uintptr(fd), "from-init"))
				}
			}
			// The mark that carried them ends the read (the kernel
			// stops after a message with fds); it isn't part of the
			// JSON lines.
			if n > 0 && (b[n-1] == '.' || b[n-1] == '+') {
				n--
			}
			if n == 0 {
				continue // the message follows
			}
		}
		if n == 0 {
			return 0, io.EOF
		}
		return n, nil
	}
}

// Kill kills the container process and the intermediate child, and reaps
// the child.
func (p *Process) Kill() {
	p.Placed() // the caller may remove the cgroup next: not while it is joined
	if p.Pid > 0 {
		unix.Kill(p.Pid, unix.SIGKILL)
	}
	if p.Cmd.Process != nil {
		p.Cmd.Process.Kill()
		p.Cmd.Wait()
	}
	if p.Pid > 0 && p.Pid != p.Cmd.Process.Pid {
		// CLONE_PARENT made it our child too.
		var ws unix.WaitStatus
		unix.Wait4(p.Pid, &ws, 0, nil)
	}
	p.Close()
}

// exe is brig's binary as init is started from it.
type exe struct {
	file *os.File // a handle (on a read-only mount where it can be), or nil
	path string   // where it is; executed by path when file is nil
}

// InitName is the slim init's file name, beside brig's own binary.
const InitName = "brig-init"

// initBuildID is the Go build ID of the brig-init built together with this
// brig (the Makefile sets it: -X brig/internal/bootstrap.initBuildID=...).
// Empty: there is none, and the init is brig's own binary.
var initBuildID string

var executable = sync.OnceValues(func() (exe, error) {
	if e, ok := slimInit(); ok {
		return e, nil
	}
	return readOnly("/proc/self/exe"), nil
})

// readOnly opens path on a private read-only clone of its mount; where
// the kernel or the caller's privileges don't allow that, it gives path
// itself.
func readOnly(path string) exe {
	fd, err := unix.OpenTree(unix.AT_FDCWD, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return exe{path: path}
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		unix.Close(fd)
		return exe{path: path}
	}
	return exe{file: os.NewFile(uintptr(fd), "brig-ro"), path: path}
}

// slimInit is brig-init beside brig's binary, when it is the one built
// with this brig: a binary with only the init's packages, whose Go
// runtime starts in about half the time brig's does (fewer packages to
// initialise, fewer pages to fault in). The check reads the Go build ID
// note in the file's first page, through the handle the init is then
// executed from.
func slimInit() (exe, bool) {
	if initBuildID == "" {
		return exe{}, false
	}
	self, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return exe{}, false
	}
	e := readOnly(filepath.Join(filepath.Dir(self), InitName))
	if e.file == nil {
		// Without a read-only clone (no privilege for it): an O_PATH
		// handle, so what is checked is what runs.
		fd, err := unix.Open(e.path, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return exe{}, false
		}
		e.file = os.NewFile(uintptr(fd), InitName)
	}
	id, err := buildIDOf(e.file)
	if err != nil || id != initBuildID {
		e.file.Close()
		return exe{}, false
	}
	return e, true
}

// buildIDOf reads the Go build ID of the ELF file h is a handle (O_PATH
// or a mount's) on.
func buildIDOf(h *os.File) (string, error) {
	f, err := os.Open("/proc/self/fd/" + strconv.Itoa(int(h.Fd())))
	if err != nil {
		return "", err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return "", err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Mode&0o022 != 0 {
		return "", fmt.Errorf("%s: not a regular file writable only by its owner", h.Name())
	}
	buf := make([]byte, 4096)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return "", err
	}
	return goBuildID(buf[:n])
}

// goBuildID finds the Go build ID note (owner "Go", type 4, which the Go
// linker puts in the first page) in the start of a 64-bit little-endian
// ELF file.
func goBuildID(b []byte) (string, error) {
	le := binary.LittleEndian
	if len(b) < 64 || string(b[:4]) != "\x7fELF" || b[4] != 2 || b[5] != 1 {
		return "", errors.New("not a 64-bit little-endian ELF file")
	}
	n := uint64(len(b))
	phoff, phsize, phnum := le.Uint64(b[32:]), uint64(le.Uint16(b[54:])), uint64(le.Uint16(b[56:]))
	if phsize < 56 {
		return "", errors.New("bad ELF program header size")
	}
	if phoff > n {
		return "", errors.New("the program headers are not in the first page")
	}
	for i := uint64(0); i < phnum; i++ {
		ph := phoff + i*phsize // phoff ≤ n and i*phsize < 2³²: no overflow
		if ph > n || n-ph < 56 {
			break
		}
		if le.Uint32(b[ph:]) != 4 { // PT_NOTE
			continue
		}
		off, size := le.Uint64(b[ph+8:]), le.Uint64(b[ph+32:])
		if off > n || size > n-off {
			continue
		}
		notes := b[off : off+size]
		for len(notes) >= 12 {
			namesz, descsz, typ := uint64(le.Uint32(notes)), uint64(le.Uint32(notes[4:])), le.Uint32(notes[8:])
			name, desc := uint64(12), 12+(namesz+3)&^3
			end := desc + (descsz+3)&^3
			if end > uint64(len(notes)) || desc+descsz > uint64(len(notes)) {
				break
			}
			if typ == 4 && namesz == 4 && string(notes[name:name+3]) == "Go\x00" {
				return string(notes[desc : desc+descsz]), nil
			}
			notes = notes[end:]
		}
	}
	return "", errors.New("no Go build ID note in the first page")
}

// Executable returns the binary the init is started from: brig-init
// beside brig when it is the one built with it, otherwise brig's own
// binary; on a private read-only mount (a detached clone made with
// open_tree and mount_setattr), so a container process that reaches the
// binary through /proc/PID/exe can't write to it (CVE-2019-5736), and
// nothing is copied. Where the kernel or the caller's privileges don't
// allow the clone, it falls back to the path (/proc/self/exe for brig's
// own).
func Executable() (exe, error) { return executable() }

// InitBinary says which binary the init is started from, for --version.
func InitBinary() string {
	e, _ := executable()
	if e.path == "/proc/self/exe" {
		return "brig itself (no " + InitName + " from this build beside it)"
	}
	return e.path
}

// FromInit is the child's side: the socket the C constructor used.
func FromInit() (*Process, error) {
	v := os.Getenv(EnvBootstrap)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("init: bad %s %q", EnvBootstrap, v)
	}
	os.Unsetenv(EnvBootstrap)
	unix.CloseOnExec(fd)
	// The binary we were executed from, if it came as an fd.
	if n, err := strconv.Atoi(os.Getenv(envExeFD)); err == nil && n > 2 {
		unix.Close(n)
	}
	os.Unsetenv(envExeFD)
	f := os.NewFile(uintptr(fd), "bootstrap")
	return &Process{conn: f, r: bufio.NewReader(f)}, nil
}
