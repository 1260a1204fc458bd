// Package console creates a container's terminal and hands its master side
// to whoever listens on --console-socket, the way runc does: the pty master
// fd travels over the unix socket in an SCM_RIGHTS message.
package console

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/containerd/console"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Dial connects to a console socket (done by the brig command, which then
// passes the connection to init).
func Dial(path string) (*os.File, error) {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return nil, fmt.Errorf("--console-socket %s: %w", path, err)
	}
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		conn.Close()
		return nil, errors.New("--console-socket: not a unix socket")
	}
	f, err := uc.File()
	uc.Close()
	if err != nil {
		return nil, fmt.Errorf("--console-socket: %w", err)
	}
	return f, nil
}

// Setup opens a new pty in the container's devpts (/dev/ptmx), sends the
// master over sock, and makes the slave the calling process's controlling
// terminal and stdio. It returns the slave's path.
func Setup(sock *os.File, size *specs.Box) (string, error) {
	master, slavePath, err := console.NewPty()
	if err != nil {
		return "", fmt.Errorf("create pty: %w", err)
	}
	defer master.Close()
	if size != nil {
		if err := master.Resize(console.WinSize{Height: uint16(size.Height), Width: uint16(size.Width)}); err != nil {
			return "", fmt.Errorf("set console size: %w", err)
		}
	}
	mf := os.NewFile(master.Fd(), "ptmx")
	rights := unix.UnixRights(int(mf.Fd()))
	if err := unix.Sendmsg(int(sock.Fd()), []byte("/dev/ptmx"), rights, nil, 0); err != nil {
		return "", fmt.Errorf("send pty master to console socket: %w", err)
	}
	slave, err := os.OpenFile(slavePath, os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("open pty slave: %w", err)
	}
	defer slave.Close()
	if _, err := unix.Setsid(); err != nil && !errors.Is(err, unix.EPERM) {
		return "", fmt.Errorf("setsid: %w", err)
	}
	if err := unix.IoctlSetInt(int(slave.Fd()), unix.TIOCSCTTY, 0); err != nil {
		return "", fmt.Errorf("set controlling terminal: %w", err)
	}
	for fd := 0; fd < 3; fd++ {
		if err := unix.Dup3(int(slave.Fd()), fd, 0); err != nil {
			return "", fmt.Errorf("dup pty to fd %d: %w", fd, err)
		}
	}
	return slavePath, nil
}

// BindConsole bind-mounts the pty slave onto /dev/console. The target is
// opened once, without following a link, checked, and mounted on through
// that handle (move_mount to the fd), never by its path again: swapping
// /dev/console for a symlink between the check and the mount (the
// /dev/console race, CVE-2025-52565, through a /dev shared with another
// container) can't redirect the mount onto a file of the attacker's
// choosing, such as one under /proc.
func BindConsole(slavePath string) error {
	// Make it if missing (a file to mount on), never through a link.
	if fd, err := unix.Open("/dev/console", unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0o600); err == nil {
		unix.Close(fd)
	} else if !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("create /dev/console: %w", err)
	}
	target, err := unix.Open("/dev/console", unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/console: %w", err)
	}
	defer unix.Close(target)
	var st unix.Stat_t
	if err := unix.Fstat(target, &st); err != nil {
		return fmt.Errorf("stat /dev/console: %w", err)
	}
	if m := st.Mode & unix.S_IFMT; m != unix.S_IFREG && m != unix.S_IFCHR {
		return fmt.Errorf("/dev/console is not a file or a character device (mode %#o): refusing to mount the terminal on it", st.Mode)
	}
	tree, err := unix.OpenTree(unix.AT_FDCWD, slavePath, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("bind %s to /dev/console: %w", slavePath, err)
	}
	defer unix.Close(tree)
	if err := unix.MoveMount(tree, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("bind %s to /dev/console: %w", slavePath, err)
	}
	return nil
}

// Proxy is brig acting as its own console socket, for `run` and `exec`
// with a terminal but no --console-socket: it receives the pty master and
// copies between it and brig's own stdio, with the caller's terminal in raw
// mode and its size forwarded.
type Proxy struct {
	Path     string
	dir      string
	listener *net.UnixListener
	master   chan *os.File
	current  console.Console
	done     chan struct{}
}

// NewProxy listens on a socket in a private temporary directory.
func NewProxy() (*Proxy, error) {
	dir, err := os.MkdirTemp("", "brig-console-")
	if err != nil {
		return nil, err
	}
	path := dir + "/console.sock"
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("console socket: %w", err)
	}
	p := &Proxy{Path: path, dir: dir, listener: l, master: make(chan *os.File, 1), done: make(chan struct{})}
	go p.accept()
	return p, nil
}

func (p *Proxy) accept() {
	defer close(p.master)
	conn, err := p.listener.AcceptUnix()
	if err != nil {
		return
	}
	defer conn.Close()
	buf, oob := make([]byte, 64), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) == 0 {
		return
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) == 0 {
		return
	}
	p.master <- os.NewFile(uintptr(fds[0]), "pty-master")
}

// Attach starts copying once the master has arrived; it returns when the
// copy is set up (or the container never sent one).
func (p *Proxy) Attach(stdin *os.File, stdout io.Writer) {
	m, ok := <-p.master
	if !ok || m == nil {
		return
	}
	if c, err := console.ConsoleFromFile(stdin); err == nil {
		if err := c.SetRaw(); err == nil {
			p.current = c
			if ws, err := c.Size(); err == nil {
				unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: ws.Height, Col: ws.Width})
			}
		}
	}
	go func() { io.Copy(m, stdin) }()
	go func() {
		io.Copy(stdout, m)
		close(p.done)
	}()
}

// Close waits briefly for the output to drain, restores the caller's
// terminal and removes the socket.
func (p *Proxy) Close() {
	select {
	case <-p.done:
	case <-time.After(200 * time.Millisecond):
	}
	if p.current != nil {
		p.current.Reset()
	}
	p.listener.Close()
	os.RemoveAll(p.dir)
}
