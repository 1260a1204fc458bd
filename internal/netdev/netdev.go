// Package netdev moves host network devices into a container's network
// namespace and back (linux.netDevices): atomically moved and renamed in
// one RTM_NEWLINK, with the addresses the device had and up if it was
// (moving a device between namespaces drops both).
package netdev

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Moved is a device moved into a container, as state records it for the
// way back.
type Moved struct {
	Host  string   `json:"host"`            // its name on the host
	Name  string   `json:"name"`            // its name in the container
	Index int      `json:"index"`           // its interface index
	Addrs []string `json:"addrs,omitempty"` // its host addresses (CIDR)
	Up    bool     `json:"up,omitempty"`
}

// Exists says whether the host has a network device of that name.
func Exists(name string) error {
	if _, err := netlink.LinkByName(name); err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return fmt.Errorf("the host has no network device %q", name)
		}
		return fmt.Errorf("network device %q: %w", name, err)
	}
	return nil
}

// MoveIn moves the host's device host into the network namespace at
// nsPath, named name there ("" keeps its name), with its addresses, up if
// it was up.
func MoveIn(nsPath, host, name string) (Moved, error) {
	if name == "" {
		name = host
	}
	link, err := netlink.LinkByName(host)
	if err != nil {
		return Moved{}, fmt.Errorf("network device %q: %w", host, err)
	}
	m := Moved{Host: host, Name: name, Index: link.Attrs().Index, Up: link.Attrs().Flags&net.FlagUp != 0}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return Moved{}, fmt.Errorf("network device %q: addresses: %w", host, err)
	}
	for _, a := range addrs {
		if a.IP.IsLinkLocalUnicast() && a.IP.To4() == nil {
			continue // IPv6 link-local: the kernel makes a new one
		}
		m.Addrs = append(m.Addrs, a.IPNet.String())
	}
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return Moved{}, fmt.Errorf("network namespace %s: %w", nsPath, err)
	}
	defer ns.Close()
	if err := move(m.Index, int(ns), name); err != nil {
		return Moved{}, fmt.Errorf("move network device %q into the container as %q: %w", host, name, err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return m, err
	}
	defer h.Close()
	return m, configure(h, name, m.Addrs, m.Up)
}

// MoveOut moves a device back into brig's own network namespace, under its
// host name, with its host addresses. With nsPath "" or gone (the
// container's namespace ended: a physical device is back on the host
// under its container name, a virtual one is gone), it renames the device
// it finds on the host at the same index and container name.
func MoveOut(nsPath string, m Moved) error {
	if nsPath != "" {
		if ns, err := netns.GetFromPath(nsPath); err == nil {
			defer ns.Close()
			h, err := netlink.NewHandleAt(ns)
			if err != nil {
				return err
			}
			defer h.Close()
			link, err := h.LinkByName(m.Name)
			if err == nil {
				self, err := netns.Get()
				if err != nil {
					return err
				}
				defer self.Close()
				if err := moveFrom(ns, self, link.Attrs().Index, m.Host); err != nil {
					return fmt.Errorf("move network device %q back to the host as %q: %w", m.Name, m.Host, err)
				}
				return configure(nil, m.Host, m.Addrs, m.Up)
			}
		}
	}
	link, err := netlink.LinkByIndex(m.Index)
	if err != nil || link.Attrs().Name != m.Name {
		return nil // gone with the namespace (a virtual device)
	}
	if err := netlink.LinkSetName(link, m.Host); err != nil {
		return fmt.Errorf("rename network device %q back to %q: %w", m.Name, m.Host, err)
	}
	return configure(nil, m.Host, m.Addrs, m.Up)
}

// move moves device index of brig's namespace into the namespace of
// nsFD, named name, in one request.
func move(index, nsFD int, name string) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(index)
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFLA_NET_NS_FD, nl.Uint32Attr(uint32(nsFD))))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)))
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// moveFrom is move from namespace from into namespace to: the request
// goes from a thread of its own in from; a thread that can't return to
// brig's namespace ends with its goroutine, never used again.
func moveFrom(from, to netns.NsHandle, index int, name string) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := netns.Get()
		if err != nil {
			done <- err
			return
		}
		defer self.Close()
		if err := netns.Set(from); err != nil {
			done <- err
			return
		}
		merr := move(index, int(to), name)
		if err := netns.Set(self); err != nil {
			done <- fmt.Errorf("return to brig's network namespace: %w", err)
			return // locked: the thread goes with this goroutine
		}
		runtime.UnlockOSThread()
		done <- merr
	}()
	return <-done
}

// configure gives device name (as h sees it; nil: brig's namespace) its
// addresses and sets it up.
func configure(h *netlink.Handle, name string, addrs []string, up bool) error {
	if h == nil {
		var err error
		if h, err = netlink.NewHandle(); err != nil {
			return err
		}
		defer h.Close()
	}
	link, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("network device %q: %w", name, err)
	}
	for _, a := range addrs {
		addr, err := netlink.ParseAddr(a)
		if err != nil {
			return err
		}
		if err := h.AddrAdd(link, addr); err != nil && !errors.Is(err, os.ErrExist) && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("network device %q: address %s: %w", name, a, err)
		}
	}
	if up {
		if err := h.LinkSetUp(link); err != nil {
			return fmt.Errorf("network device %q: up: %w", name, err)
		}
	}
	return nil
}
