package integration

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// vethDevice makes a network device on the host — one end of a veth pair
// (this kernel has no dummy driver) — up, with an address, and removes it
// (or what is left of it) at the end.
func vethDevice(t *testing.T, name, addr string) {
	t.Helper()
	for _, c := range [][]string{{"link", "add", name, "type", "veth", "peer", "name", name + "p"}, {"addr", "add", addr, "dev", name}, {"link", "set", name, "up"}} {
		if out, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
			exec.Command("ip", "link", "del", name).Run()
			if strings.Contains(string(out), "Operation not supported") {
				t.Skipf("this kernel can't make a veth device here (the VM lane's loads no modules): %s", out)
			}
			t.Fatalf("ip %v: %v: %s", c, err, out)
		}
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", name).Run() })
}

// hostDevice is `ip -o addr show dev name` on the host ("" when absent).
func hostDevice(name string) string {
	out, err := exec.Command("ip", "-o", "addr", "show", "dev", name).Output()
	if err != nil {
		return ""
	}
	return string(out)
}

// linux.netDevices (runtime-spec 1.3, as runc 1.4 and crun do it; the
// runc 1.1.5 here predates it): a host device moves into the container's
// network namespace, renamed as asked, with its address and up; it is not
// on the host meanwhile; and delete moves it back, with its address, from
// a namespace joined by path or from a created container's own. A virtual
// device in a namespace that ended is gone with it, as the kernel does.
func TestNetDevices(t *testing.T) {
	show := "ip -o addr show dev ctr0; ip -o link show dev ctr0"

	t.Run("own namespace, renamed", func(t *testing.T) {
		vethDevice(t, "brigtnd0", "169.254.169.13/32")
		e := newEnv(t, "sh", "-c", show)
		e.spec.Linux.NetDevices = map[string]specs.LinuxNetDevice{"brigtnd0": {Name: "ctr0"}}
		out := e.mustRun()
		if !strings.Contains(out, "inet 169.254.169.13/32") || !strings.Contains(out, "UP") {
			t.Errorf("inside: %q, want ctr0 with its address, up", out)
		}
		// The namespace ended with the container: a virtual device goes
		// with it (a physical one would come back, renamed by delete).
		if h := hostDevice("brigtnd0"); h != "" {
			t.Errorf("after the run the host still has brigtnd0: %q", h)
		}
		if h := hostDevice("brigtnd0p"); h != "" {
			t.Errorf("after the run the host still has its peer: %q", h)
		}
	})

	t.Run("joined namespace, back on delete", func(t *testing.T) {
		vethDevice(t, "brigtnd1", "169.254.169.14/32")
		ns := fmt.Sprintf("brigtnd-%d", os.Getpid())
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add: %v: %s", err, out)
		}
		defer exec.Command("ip", "netns", "del", ns).Run()
		e := newEnv(t, "sh", "-c", show)
		e.setNamespace(specs.NetworkNamespace, "/var/run/netns/"+ns)
		e.spec.Linux.NetDevices = map[string]specs.LinuxNetDevice{"brigtnd1": {Name: "ctr0"}}
		out := e.mustRun()
		if !strings.Contains(out, "inet 169.254.169.14/32") {
			t.Errorf("inside: %q, want ctr0 with its address", out)
		}
		h := hostDevice("brigtnd1")
		if !strings.Contains(h, "inet 169.254.169.14/32") {
			t.Errorf("after delete the host has brigtnd1 as %q, want it back with its address", h)
		}
		if out, _ := exec.Command("ip", "-n", ns, "link", "show", "ctr0").CombinedOutput(); !strings.Contains(string(out), "does not exist") {
			t.Errorf("the joined namespace still has ctr0: %s", out)
		}
	})

	t.Run("created, then deleted", func(t *testing.T) {
		vethDevice(t, "brigtnd2", "169.254.169.15/32")
		e := newEnv(t, "sleep", "30")
		e.spec.Linux.NetDevices = map[string]specs.LinuxNetDevice{"brigtnd2": {}}
		e.create()
		if h := hostDevice("brigtnd2"); h != "" {
			t.Errorf("created: the host still has brigtnd2: %q", h)
		}
		inside, err := exec.Command("nsenter", "-t", fmt.Sprint(e.pid()), "-n", "ip", "-o", "addr", "show", "dev", "brigtnd2").CombinedOutput()
		if err != nil || !strings.Contains(string(inside), "169.254.169.15/32") {
			t.Errorf("in the container's namespace: %v %s", err, inside)
		}
		if r := e.brig("delete", e.id); r.code != 0 {
			t.Fatalf("delete: %s", r.stderr)
		}
		if h := hostDevice("brigtnd2"); !strings.Contains(h, "inet 169.254.169.15/32") {
			t.Errorf("after delete the host has brigtnd2 as %q, want it back with its address", h)
		}
	})
}
