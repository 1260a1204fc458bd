package egress

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The host's loopback, port by port (--allow-net localhost:PORT): the
// holder, inside the sandbox's network namespace, listens on
// 127.0.0.1:PORT (and [::1]:PORT where the namespace has IPv6) and sends
// the listening sockets to brig over a socket pair; brig, in the host's
// namespace, accepts on them and connects each to the host's
// 127.0.0.1:PORT. A socket stays in the namespace it was made in, so no
// thread changes namespace and no NAT or route_localnet is needed.

// sendListeners (in the holder) listens on port and sends the sockets.
func sendListeners(to *os.File, port uint16) error {
	var files []*os.File
	for _, addr := range []string{"127.0.0.1", "::1"} {
		l, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(int(port))))
		if err != nil {
			if addr == "::1" {
				continue // no IPv6 in this namespace: 127.0.0.1 only
			}
			return err
		}
		f, err := l.(*net.TCPListener).File()
		l.Close()
		if err != nil {
			return err
		}
		defer f.Close()
		files = append(files, f)
	}
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	return unix.Sendmsg(int(to.Fd()), []byte{byte(len(fds))}, unix.UnixRights(fds...), nil, 0)
}

// receiveFiles (in brig) takes the sockets of one message.
func receiveFiles(from *os.File) ([]*os.File, error) {
	buf, oob := make([]byte, 1), make([]byte, unix.CmsgSpace(4*4))
	_, oobn, _, _, err := unix.Recvmsg(int(from.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("receiving the sockets: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, errors.New("receiving the sockets: none came")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil {
		return nil, err
	}
	out := make([]*os.File, len(fds))
	for i, fd := range fds {
		out[i] = os.NewFile(uintptr(fd), "socket")
	}
	return out, nil
}

// receiveListeners (in brig) takes one port's listening sockets.
func receiveListeners(from *os.File) ([]net.Listener, error) {
	files, err := receiveFiles(from)
	if err != nil {
		return nil, err
	}
	var out []net.Listener
	for _, f := range files {
		l, err := net.FileListener(f)
		f.Close()
		if err != nil {
			for _, o := range out {
				o.Close()
			}
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// forward serves one port's listeners until closed.
type forward struct {
	ls    []net.Listener
	mu    sync.Mutex
	conns map[net.Conn]bool
	done  bool
}

func startForward(ls []net.Listener, port uint16) *forward {
	fw := &forward{ls: ls, conns: map[net.Conn]bool{}}
	target := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
	for _, l := range ls {
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go fw.relay(c, target)
			}
		}()
	}
	return fw
}

// relay joins a connection from the sandbox to the host's port; when the
// host refuses, so does the sandbox's side (closed at once).
func (fw *forward) relay(in net.Conn, target string) {
	if !fw.track(in) {
		return
	}
	defer fw.untrack(in)
	out, err := net.DialTimeout("tcp", target, 10*time.Second)
	if err != nil {
		return
	}
	if !fw.track(out) {
		return
	}
	defer fw.untrack(out)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(out, in)
	go pipe(in, out)
	<-done
	<-done
}

func (fw *forward) track(c net.Conn) bool {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.done {
		c.Close()
		return false
	}
	fw.conns[c] = true
	return true
}

func (fw *forward) untrack(c net.Conn) {
	fw.mu.Lock()
	delete(fw.conns, c)
	fw.mu.Unlock()
	c.Close()
}

// close stops accepting and ends the connections.
func (fw *forward) close() {
	fw.mu.Lock()
	fw.done = true
	for c := range fw.conns {
		c.Close()
	}
	fw.mu.Unlock()
	for _, l := range fw.ls {
		l.Close()
	}
}

// sendDNSSockets (in the holder) binds DNSAddr:53, UDP and TCP, and sends
// both sockets in one message.
func sendDNSSockets(to *os.File) error {
	pc, err := net.ListenPacket("udp4", DNSAddr+":53")
	if err != nil {
		return err
	}
	defer pc.Close()
	l, err := net.Listen("tcp4", DNSAddr+":53")
	if err != nil {
		return err
	}
	defer l.Close()
	uf, err := pc.(*net.UDPConn).File()
	if err != nil {
		return err
	}
	defer uf.Close()
	tf, err := l.(*net.TCPListener).File()
	if err != nil {
		return err
	}
	defer tf.Close()
	return unix.Sendmsg(int(to.Fd()), []byte{2}, unix.UnixRights(int(uf.Fd()), int(tf.Fd())), nil, 0)
}
