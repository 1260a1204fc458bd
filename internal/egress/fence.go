package egress

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"brig/internal/loopback"
)

// HolderArg is the hidden command that makes brig the namespace holder.
const HolderArg = "egress-holder"

// Fence is a running egress fence: the holder process, whose network
// namespace (and, without root, user namespace) the sandbox joins, and
// slirp4netns, its only way out.
type Fence struct {
	holder, slirp *exec.Cmd
	holderIn      io.WriteCloser
	exitW         *os.File
	slirpErr      *bytes.Buffer
	closed        bool
	forwards      []*forward
	// The holder takes set changes on stdin and answers on stdout.
	cmdMu     sync.Mutex
	holderOut *bufio.Reader
	dns       *responder
}

// Config is what a fence lets out.
type Config struct {
	Allows   []Allow    // addresses and prefixes, by port
	Loopback []uint16   // ports of the host's loopback (localhost:PORT)
	Names    []NameRule // names and wildcards: answered by the DNS responder
	// Upstream are the resolvers brig asks for allowed names (HOST:PORT),
	// from the host's network namespace.
	Upstream []string
	Rootless bool
	UID, GID int
}

// holderConfig is what the holder reads on its stdin.
type holderConfig struct {
	Allows []Allow `json:"allows"`
	// Loopback: ports of the host's loopback to forward; the holder
	// listens on them inside and hands the listeners to brig.
	Loopback []uint16 `json:"loopback,omitempty"`
	// DNS: the holder listens on DNSAddr:53 (UDP and TCP) inside and
	// hands the sockets to brig's responder.
	DNS bool `json:"dns,omitempty"`
}

// DNSAddr is where the sandbox's resolver is (its /etc/resolv.conf).
const DNSAddr = "127.0.0.53"

// holderCmd changes the DNS-fed sets; the holder answers "ok" or
// "error: ...".
type holderCmd struct {
	Add   bool   `json:"add"`
	Elems []Elem `json:"elems"`
	// List: answer with the refused set's elements, as a JSON line.
	List bool `json:"list,omitempty"`
	// IPv6: give tap0 its IPv6 address and route (slirp4netns is up).
	IPv6 bool `json:"ipv6,omitempty"`
}

// Available says whether this host has what the fence needs.
func Available() error {
	if _, err := exec.LookPath("slirp4netns"); err != nil {
		return errors.New("--allow-net needs slirp4netns for the sandbox's network (Debian: apt-get install slirp4netns)")
	}
	return nil
}

// Start makes the namespace, installs the rules, and connects it to the
// host's network through slirp4netns. Without root the namespace is owned
// by a new user namespace mapping uid and gid to root; the sandbox joins
// that too. With root the namespace belongs to the host's user namespace,
// so the sandbox's root (root only in its own user namespace) holds no
// capability over it at all.
//
// loopback are ports of the host's loopback (--allow-net localhost:PORT):
// the holder listens on 127.0.0.1:PORT (and ::1) inside and passes the
// listening sockets to brig, which lives in the host's network namespace
// and forwards each connection to the host's 127.0.0.1:PORT. Nothing else
// of the host's loopback is reachable (slirp4netns runs with
// --disable-host-loopback).
func Start(cfg Config) (*Fence, error) {
	allows, loopback, rootless, uid, gid := cfg.Allows, cfg.Loopback, cfg.Rootless, cfg.UID, cfg.GID
	if err := Available(); err != nil {
		return nil, err
	}
	if rootless {
		// slirp4netns opens the tap device as the caller.
		if err := unix.Access("/dev/net/tun", unix.R_OK|unix.W_OK); err != nil {
			mode := ""
			if fi, serr := os.Stat("/dev/net/tun"); serr == nil {
				mode = fmt.Sprintf(" (it is mode %04o here; Debian's udev rules make it 0666)", fi.Mode().Perm())
			}
			return nil, fmt.Errorf("--allow-net without root needs /dev/net/tun readable and writable by you%s: %w", mode, err)
		}
	}
	f := &Fence{}
	ok := false
	defer func() {
		if !ok {
			f.Close()
		}
	}()
	h := exec.Command("/proc/self/exe", HolderArg)
	h.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	h.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if rootless {
		h.SysProcAttr.Cloneflags |= unix.CLONE_NEWUSER
		h.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}}
		h.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: gid, Size: 1}}
		h.SysProcAttr.GidMappingsEnableSetgroups = false
	}
	var herr bytes.Buffer
	h.Stderr = &herr
	// The listeners come back over a socket pair (fd 3 in the holder).
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("--allow-net: %w", err)
	}
	fdsIn, fdsOut := os.NewFile(uintptr(sp[0]), "listeners"), os.NewFile(uintptr(sp[1]), "listeners-holder")
	defer fdsIn.Close()
	h.ExtraFiles = []*os.File{fdsOut}
	in, err := h.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := h.StdoutPipe()
	if err != nil {
		return nil, err
	}
	err = h.Start()
	fdsOut.Close()
	if err != nil {
		return nil, fmt.Errorf("--allow-net: starting the network namespace holder: %w", err)
	}
	f.holder, f.holderIn = h, in
	if err := json.NewEncoder(in).Encode(holderConfig{Allows: allows, Loopback: loopback, DNS: true}); err != nil {
		return nil, fmt.Errorf("--allow-net: holder: %w", err)
	}
	f.holderOut = bufio.NewReader(out)
	line, _ := f.holderOut.ReadString('\n')
	if line != "ready\n" {
		f.Close() // its stderr is complete once it has been waited for
		msg := strings.TrimSpace(strings.TrimPrefix(line, "error: "))
		if msg == "" {
			msg = strings.TrimSpace(herr.String())
		}
		return nil, fmt.Errorf("--allow-net: setting up the network namespace: %s", msg)
	}
	for _, port := range loopback {
		ls, err := receiveListeners(fdsIn)
		if err != nil {
			return nil, fmt.Errorf("--allow-net localhost:%d: %w", port, err)
		}
		f.forwards = append(f.forwards, startForward(ls, port))
	}
	{
		// The sandbox's resolver, with or without names to answer (it
		// refuses the rest at once, and says which).
		socks, err := receiveFiles(fdsIn)
		if err != nil {
			return nil, fmt.Errorf("--allow-net: the DNS responder: %w", err)
		}
		if f.dns, err = startResponder(cfg.Names, cfg.Upstream, f.change, socks); err != nil {
			return nil, fmt.Errorf("--allow-net: the DNS responder: %w", err)
		}
	}

	// slirp4netns joins the holder's namespaces by its PID (the holder is
	// our unwaited child, so the PID can't be reused), configures tap0
	// (10.0.2.100, gateway 10.0.2.2) and reports on the ready fd; closing
	// the exit fd (or our death) ends it.
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer readyR.Close()
	exitR, exitW, err := os.Pipe()
	if err != nil {
		readyW.Close()
		return nil, err
	}
	f.exitW = exitW
	args := []string{"--configure", "--mtu=65520", "--disable-host-loopback", "--enable-sandbox", "--enable-seccomp", "--ready-fd=3", "--exit-fd=4"}
	ipv6 := HostIPv6()
	if ipv6 {
		// slirp4netns connects to IPv6 destinations from the host's
		// stack; the holder gives tap0 its address and route once it is
		// up (slirp4netns would leave that to router advertisements and
		// address checks, a second or more after the command started).
		args = append(args, "--enable-ipv6")
	}
	s := exec.Command("slirp4netns", append(args, strconv.Itoa(h.Process.Pid), "tap0")...)
	s.ExtraFiles = []*os.File{readyW, exitR}
	f.slirpErr = &bytes.Buffer{}
	s.Stderr = f.slirpErr
	s.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = s.Start()
	readyW.Close()
	exitR.Close()
	if err != nil {
		return nil, fmt.Errorf("--allow-net: starting slirp4netns: %w", err)
	}
	f.slirp = s
	ready := make(chan error, 1)
	go func() {
		b := make([]byte, 1)
		_, err := readyR.Read(b)
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("--allow-net: slirp4netns failed: %s", strings.TrimSpace(f.slirpErr.String()))
		}
	case <-time.After(10 * time.Second):
		return nil, errors.New("--allow-net: slirp4netns did not come up within 10s")
	}
	if ipv6 {
		if err := f.command(holderCmd{IPv6: true}); err != nil {
			return nil, fmt.Errorf("--allow-net: the sandbox's IPv6 network: %w", err)
		}
	}
	ok = true
	return f, nil
}

// command sends the holder one command and waits for its "ok".
func (f *Fence) command(c holderCmd) error {
	f.cmdMu.Lock()
	defer f.cmdMu.Unlock()
	if err := json.NewEncoder(f.holderIn).Encode(c); err != nil {
		return err
	}
	line, err := f.holderOut.ReadString('\n')
	if err != nil {
		return fmt.Errorf("the egress holder: %w", err)
	}
	if line != "ok\n" {
		return errors.New(strings.TrimSpace(strings.TrimPrefix(line, "error: ")))
	}
	return nil
}

// change adds or deletes elements of the DNS-fed sets, through the holder.
func (f *Fence) change(elems []Elem, add bool) error {
	return f.command(holderCmd{Add: add, Elems: elems})
}

// RefusedDestinations are the addresses and ports the fence rejected
// (TCP and UDP), as far as the holder still has them.
func (f *Fence) RefusedDestinations() ([]Elem, error) {
	f.cmdMu.Lock()
	defer f.cmdMu.Unlock()
	if f.closed {
		return nil, errors.New("the fence is closed")
	}
	if err := json.NewEncoder(f.holderIn).Encode(holderCmd{List: true}); err != nil {
		return nil, err
	}
	line, err := f.holderOut.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("the egress holder: %w", err)
	}
	data, ok := strings.CutPrefix(strings.TrimSpace(line), "ok ")
	if !ok {
		return nil, errors.New(strings.TrimSpace(strings.TrimPrefix(line, "error: ")))
	}
	var els []Elem
	if err := json.Unmarshal([]byte(data), &els); err != nil {
		return nil, err
	}
	return els, nil
}

// Answered are the names the DNS responder answered, by the addresses it
// gave for them (brig learn writes a destination reached this way as its
// name).
func (f *Fence) Answered() map[netip.Addr][]string {
	if f.dns == nil {
		return nil
	}
	return f.dns.answeredNames()
}

// Refused are the names the DNS responder refused, with how often.
func (f *Fence) Refused() map[string]int {
	if f.dns == nil {
		return nil
	}
	return f.dns.refusedNames()
}

// NetNS is the path of the namespace the sandbox joins.
func (f *Fence) NetNS() string { return fmt.Sprintf("/proc/%d/ns/net", f.holder.Process.Pid) }

// UserNS is the holder's user namespace (the sandbox joins it without root).
func (f *Fence) UserNS() string { return fmt.Sprintf("/proc/%d/ns/user", f.holder.Process.Pid) }

// Close stops slirp4netns and the holder and waits for both; again, it
// does nothing.
func (f *Fence) Close() {
	if f.closed {
		return
	}
	f.closed = true
	if f.dns != nil {
		f.dns.close()
	}
	for _, fw := range f.forwards {
		fw.close()
	}
	if f.exitW != nil {
		f.exitW.Close()
	}
	if f.holderIn != nil {
		f.holderIn.Close()
	}
	for _, c := range []*exec.Cmd{f.slirp, f.holder} {
		if c == nil || c.Process == nil {
			continue
		}
		done := make(chan struct{})
		go func() { c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			c.Process.Kill()
			<-done
		}
	}
}

// HolderMain is the holder: it runs in the new namespaces, reads the
// rules on stdin, brings lo up, installs the rules, says "ready" and then
// holds the namespaces until its stdin closes (brig ended or died).
func HolderMain() {
	r := bufio.NewReader(os.Stdin)
	fail := func(err error) {
		fmt.Printf("error: %v\n", err)
		os.Exit(1)
	}
	var cfg holderConfig
	line, err := r.ReadBytes('\n')
	if err != nil {
		fail(fmt.Errorf("reading the rules: %w", err))
	}
	if err := json.Unmarshal(line, &cfg); err != nil {
		fail(fmt.Errorf("reading the rules: %w", err))
	}
	if err := loopback.Up(); err != nil {
		fail(err)
	}
	if err := install(cfg.Allows); err != nil {
		fail(err)
	}
	back := os.NewFile(3, "listeners")
	for _, port := range cfg.Loopback {
		if err := sendListeners(back, port); err != nil {
			fail(fmt.Errorf("localhost:%d: %w", port, err))
		}
	}
	if cfg.DNS {
		if err := sendDNSSockets(back); err != nil {
			fail(fmt.Errorf("the DNS responder's sockets at %s:53: %w", DNSAddr, err))
		}
	}
	back.Close()
	fmt.Println("ready")
	// Set changes from brig's DNS responder, until brig closes stdin.
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			os.Exit(0)
		}
		var c holderCmd
		if err := json.Unmarshal(line, &c); err != nil {
			fmt.Printf("error: %v\n", err)
			continue
		}
		if c.IPv6 {
			if err := tapIPv6(); err != nil {
				fmt.Printf("error: %v\n", err)
				continue
			}
			fmt.Println("ok")
			continue
		}
		if c.List {
			els, err := refusedElems()
			if err != nil {
				fmt.Printf("error: %v\n", err)
				continue
			}
			data, _ := json.Marshal(els)
			fmt.Printf("ok %s\n", data)
			continue
		}
		if err := changeElems(c.Elems, c.Add); err != nil {
			fmt.Printf("error: %v\n", err)
			continue
		}
		fmt.Println("ok")
	}
}

// HostIPv6 says whether the host's stack does IPv6 at all (slirp4netns
// connects from it); without it the sandbox gets no IPv6 route, and an
// allowed IPv6 destination fails at once as unreachable.
func HostIPv6() bool {
	b, err := os.ReadFile("/proc/sys/net/ipv6/conf/all/disable_ipv6")
	return err == nil && strings.TrimSpace(string(b)) == "0"
}

// The sandbox's IPv6 address on slirp4netns's network, and slirp4netns's
// own (its gateway).
var (
	sandboxIPv6 = netip.MustParsePrefix("fd00::100/64")
	gatewayIPv6 = netip.MustParseAddr("fd00::2")
)

// tapIPv6 gives tap0 its IPv6 address, without duplicate address
// detection (nothing else is on slirp4netns's network), and the default
// route through slirp4netns.
func tapIPv6() error {
	link, err := netlink.LinkByName("tap0")
	if err != nil {
		return fmt.Errorf("tap0: %w", err)
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: sandboxIPv6.Addr().AsSlice(), Mask: net.CIDRMask(sandboxIPv6.Bits(), 128)}, Flags: unix.IFA_F_NODAD}
	if err := netlink.AddrAdd(link, a); err != nil {
		return fmt.Errorf("tap0: address %s: %w", sandboxIPv6, err)
	}
	// Replace: a router advertisement may have made one already.
	if err := netlink.RouteReplace(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: gatewayIPv6.AsSlice(), Family: unix.AF_INET6}); err != nil {
		return fmt.Errorf("tap0: default route via %s: %w", gatewayIPv6, err)
	}
	return nil
}
