package integration

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Servers for the --allow-net tests: a network namespace held by a
// process the test starts, joined to the host by a veth (host side
// 10.215.0.1), with busybox httpd on 8080 and 9090 at two addresses.
const (
	srvA = "10.215.0.2"
	srvB = "10.215.0.3"
	// The same servers' IPv6 addresses (host side fd15:215::1).
	srvA6 = "fd15:215::2"
	srvB6 = "fd15:215::3"
)

func egressServers(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("slirp4netns"); err != nil {
		t.Skip("slirp4netns is not installed (make deps installs it)")
	}
	holder := exec.Command("unshare", "--net", "--", "sleep", "600")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	hostIf := fmt.Sprintf("bteg%d", os.Getpid()%100000)
	t.Cleanup(func() {
		holder.Process.Kill()
		holder.Wait()
		exec.Command("ip", "link", "del", hostIf).Run() // gone with the namespace already
		if exec.Command("ip", "link", "show", hostIf).Run() == nil {
			t.Errorf("veth %s left", hostIf)
		}
	})
	pid := strconv.Itoa(holder.Process.Pid)
	var nsReady bool
	for i := 0; i < 100 && !nsReady; i++ {
		a, _ := os.Readlink("/proc/self/ns/net")
		b, _ := os.Readlink("/proc/" + pid + "/ns/net")
		nsReady = b != "" && a != b
		if !nsReady {
			time.Sleep(10 * time.Millisecond)
		}
	}
	in := func(args ...string) []string { return append([]string{"nsenter", "-t", pid, "-n"}, args...) }
	setup := [][]string{
		{"ip", "link", "add", hostIf, "type", "veth", "peer", "name", "srv0", "netns", pid},
		{"ip", "addr", "add", "10.215.0.1/24", "dev", hostIf},
		{"ip", "link", "set", hostIf, "up"},
		in("ip", "addr", "add", srvA+"/24", "dev", "srv0"),
		in("ip", "addr", "add", srvB+"/24", "dev", "srv0"),
		in("ip", "link", "set", "srv0", "up"),
	}
	addrs := []string{srvA, srvB}
	if hostIPv6() {
		setup = append(setup,
			[]string{"ip", "-6", "addr", "add", "fd15:215::1/64", "dev", hostIf, "nodad"},
			in("ip", "-6", "addr", "add", srvA6+"/64", "dev", "srv0", "nodad"),
			in("ip", "-6", "addr", "add", srvB6+"/64", "dev", "srv0", "nodad"))
		addrs = append(addrs, srvA6, srvB6)
	}
	for _, c := range setup {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", c, err, out)
		}
	}
	www := t.TempDir()
	os.Chmod(www, 0o755)
	for _, addr := range addrs {
		for _, port := range []string{"8080", "9090"} {
			os.WriteFile(filepath.Join(www, "id"), []byte("server\n"), 0o644)
			sub := filepath.Join(www, strings.ReplaceAll(addr, ":", "_")+"_"+port)
			os.Mkdir(sub, 0o755)
			hostPort := net.JoinHostPort(addr, port)
			os.WriteFile(filepath.Join(sub, "id"), []byte(hostPort+"\n"), 0o644)
			c := in("busybox", "httpd", "-f", "-p", hostPort, "-h", sub)
			srv := exec.Command(c[0], c[1:]...)
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
		}
	}
	// The servers answer the host before any sandbox asks.
	answering := []string{srvA + ":8080", srvA + ":9090", srvB + ":8080", srvB + ":9090"}
	if hostIPv6() {
		answering = append(answering, "["+srvA6+"]:8080", "["+srvB6+"]:8080")
	}
	for _, u := range answering {
		var out []byte
		for i := 0; i < 100; i++ {
			if out, _ = exec.Command("sh", "-c", strings.TrimSuffix(fetch(u), "; ")).Output(); strings.HasSuffix(string(out), ": "+u+"\n") {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if string(out) != u+": "+u+"\n" {
			t.Fatalf("server %s not answering the host: %q", u, out)
		}
	}
}

// hostIPv6 says whether the host's stack does IPv6.
func hostIPv6() bool {
	b, err := os.ReadFile("/proc/sys/net/ipv6/conf/all/disable_ipv6")
	return err == nil && strings.TrimSpace(string(b)) == "0"
}

// fetch is a shell line printing "HOST:PORT: body" or "HOST:PORT: the
// error" (busybox nc: the static busybox's wget crashes on this host).
func fetch(hostPort string) string {
	h, p, err := net.SplitHostPort(hostPort)
	if err != nil {
		h, p, _ = strings.Cut(hostPort, ":")
	}
	return fmt.Sprintf(`echo "%s: $(printf 'GET /id HTTP/1.0\r\n\r\n' | busybox nc -w 3 %s %s 2>&1 | tail -n 1)"; `, hostPort, h, p)
}

// tunForUsers gives /dev/net/tun Debian's default mode (0666) for the
// test, as slirp4netns needs it without root, and restores the mode.
func tunForUsers(t *testing.T) {
	fi, err := os.Stat("/dev/net/tun")
	if err != nil {
		t.Skip("no /dev/net/tun")
	}
	if fi.Mode().Perm() == 0o666 {
		return
	}
	old := fi.Mode().Perm()
	// Without it brig says what is missing.
	if r := sandboxAs(t, rootlessUID, "/", "--allow-net", srvA+":8080", "--", "true"); r.code == 0 || !strings.Contains(r.stderr, "/dev/net/tun") {
		t.Errorf("rootless --allow-net without tun access: exit %d, %s", r.code, r.stderr)
	}
	if err := os.Chmod("/dev/net/tun", 0o666); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod("/dev/net/tun", old) })
}

// TestSandboxAllowNet: only the allowed destinations answer; the address
// rule (nftables) and the port rule (Landlock) each hold on their own;
// the command can't open the raw or packet sockets that would bypass the
// output hook. As root and without root.
func TestSandboxAllowNet(t *testing.T) {
	egressServers(t)
	asRootAndUser(t, func(t *testing.T, uid int) {
		dir, err := os.MkdirTemp(workDir, "rw-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		os.Chown(dir, uid, uid)
		r := sandboxAs(t, uid, "/", "--allow-net", srvA+":8080", "--rw", dir, "--", "sh", "-c",
			fetch(srvA+":8080")+fetch(srvA+":9090")+fetch(srvB+":8080")+
				`busybox httpd -p 127.0.0.1:9999 -h /tmp; `+fetch("127.0.0.1:9999")+
				`echo "arping: $(busybox arping -c 1 -w 1 -I tap0 10.0.2.2 2>&1)"; `+
				`echo "fds: $(ls /proc/self/fd | tr '\n' ' ')"; grep CapEff /proc/self/status`)
		if r.code != 0 {
			t.Fatalf("exit %d: %s %s", r.code, r.stdout, r.stderr)
		}
		contains(t, r.stdout, srvA+":8080: "+srvA+":8080\n", "the allowed destination answers")
		// 9090 is refused by Landlock before any packet leaves.
		contains(t, r.stdout, srvA+":9090: nc: can't connect to remote host ("+srvA+"): Permission denied", "another port of the allowed host")
		// 8080 on another address passes Landlock; nftables resets it.
		contains(t, r.stdout, srvB+":8080: nc: can't connect to remote host ("+srvB+"): Connection refused", "the allowed port on another host")
		// Loopback passes nftables; Landlock's port rule holds.
		contains(t, r.stdout, "127.0.0.1:9999: nc: can't connect to remote host (127.0.0.1): Permission denied", "a local port not allowed")
		contains(t, r.stdout, "not permitted", "a packet socket (arping)")
		contains(t, r.stdout, "fds: 0 1 2 3 \n", "no fd of brig's (holder pipes, pidfd, mount trees) in the command")
		if f := strings.Fields(r.stdout[strings.LastIndex(r.stdout, "CapEff:"):]); len(f) < 2 {
			t.Fatalf("no CapEff in %q", r.stdout)
		} else if v, _ := strconv.ParseUint(f[1], 16, 64); v&(1<<12|1<<13) != 0 {
			t.Errorf("CAP_NET_ADMIN or CAP_NET_RAW held with --allow-net: %s", f[1])
		}

		// A host with no port: every port of it, nothing else; no
		// Landlock port rule, so loopback works.
		r = sandboxAs(t, uid, "/", "--allow-net", srvB, "--", "sh", "-c",
			fetch(srvB+":9090")+fetch(srvB+":8080")+fetch(srvA+":8080")+
				`busybox httpd -p 127.0.0.1:9999 -h /etc; busybox nc -w 3 127.0.0.1 9999 </dev/null && echo local-ok`)
		contains(t, r.stdout, srvB+":9090: "+srvB+":9090\n", "a host allowed on every port")
		contains(t, r.stdout, srvB+":8080: "+srvB+":8080\n", "a host allowed on every port")
		contains(t, r.stdout, srvA+":8080: nc: can't connect to remote host ("+srvA+"): Connection refused", "a host not allowed")
		contains(t, r.stdout, "local-ok", "loopback without a port rule")
	})
	// The same from a --profile file.
	prof := filepath.Join(t.TempDir(), "net.yaml")
	os.WriteFile(prof, []byte("allow-net: [\""+srvA+":9090\"]\n"), 0o644)
	r := sandbox(t, "/", "--profile", prof, "--", "sh", "-c", fetch(srvA+":9090")+fetch(srvA+":8080"))
	contains(t, r.stdout, srvA+":9090: "+srvA+":9090\n", "allow-net from a profile")
	contains(t, r.stdout, srvA+":8080: nc: can't connect", "allow-net from a profile")
}

// TestSandboxAllowNetIPv6: IPv6 destinations, by address (in brackets
// with a port, bare for every port) and by name (the DNS responder's AAAA
// answers), pass the fence and nothing else does; a refused one is in the
// report, in brackets. As root and without root.
func TestSandboxAllowNetIPv6(t *testing.T) {
	if !hostIPv6() {
		t.Skip("the host's IPv6 is off")
	}
	egressServers(t)
	dns := zone(t, map[string][]string{"v6.test": {srvA6}, "other6.test": {srvB6}})
	a8080, a9090, b8080 := "["+srvA6+"]:8080", "["+srvA6+"]:9090", "["+srvB6+"]:8080"
	asRootAndUser(t, func(t *testing.T, uid int) {
		r := sandboxAs(t, uid, "/", "--report", "--allow-net", a8080, "--", "sh", "-c", fetch(a8080)+fetch(a9090)+fetch(b8080))
		if r.code != 0 {
			t.Fatalf("exit %d: %s %s", r.code, r.stdout, r.stderr)
		}
		contains(t, r.stdout, a8080+": "+a8080+"\n", "the allowed IPv6 destination answers")
		contains(t, r.stdout, a9090+": nc: can't connect to remote host: Permission denied", "another port (Landlock)")
		contains(t, r.stdout, b8080+": nc: can't connect to remote host: Connection refused", "the port on another IPv6 host (nftables)")
		contains(t, r.stderr, "network  "+b8080, "the report names the refused IPv6 destination")
		contains(t, r.stderr, "allow: --allow-net "+b8080, "and the flag that allows it")

		// Bare: every port of it; the IPv4 side stays shut.
		r = sandboxAs(t, uid, "/", "--allow-net", srvA6, "--", "sh", "-c", fetch(a9090)+fetch(b8080)+fetch(srvA+":8080"))
		contains(t, r.stdout, a9090+": "+a9090+"\n", "an IPv6 host allowed on every port")
		contains(t, r.stdout, b8080+": nc: can't connect", "another IPv6 host")
		contains(t, r.stdout, srvA+":8080: nc: can't connect", "an IPv4 host not allowed")

		// By name: the AAAA answer lets the address out, on the rule's port.
		r = sandboxAs(t, uid, "/", "--dns-upstream", dns, "--allow-net", "v6.test:8080", "--", "sh", "-c",
			fetch("v6.test:8080")+fetch("v6.test:9090")+fetch("other6.test:8080"))
		contains(t, r.stdout, "v6.test:8080: "+a8080+"\n", "an allowed name with only an IPv6 address")
		contains(t, r.stdout, "v6.test:9090: nc: can't connect", "the name on another port")
		contains(t, r.stdout, "other6.test:8080: nc: bad address 'other6.test'", "a name not allowed")
	})
}

// TestSandboxReportLandlockPort: Landlock's port rule refuses a TCP
// connect before any packet leaves, so the fence can't see it; --report
// lists it all the same (brig's listener is sent each connect), with the
// flag that allows it — not the allowed port, nor a UDP connect, which the
// rule doesn't cover. As root and without root.
func TestSandboxReportLandlockPort(t *testing.T) {
	egressServers(t)
	asRootAndUser(t, func(t *testing.T, uid int) {
		r := sandboxAs(t, uid, "/", "--report", "--allow-net", srvA+":8080", "--", "sh", "-c",
			fetch(srvA+":8080")+fetch(srvA+":9090")+fetch("127.0.0.1:7777")+
				`echo x | busybox nc -u -w 1 `+srvA+` 5555 2>/dev/null; echo udp-done`)
		if r.code != 0 {
			t.Fatalf("exit %d: %s %s", r.code, r.stdout, r.stderr)
		}
		contains(t, r.stdout, srvA+":8080: "+srvA+":8080\n", "the allowed destination")
		contains(t, r.stdout, srvA+":9090: nc: can't connect to remote host ("+srvA+"): Permission denied", "a port Landlock refuses")
		contains(t, r.stdout, "udp-done", "the UDP probe")
		contains(t, r.stderr, "network  "+srvA+":9090 (Landlock: a port not allowed)", "the report")
		contains(t, r.stderr, "allow: --allow-net "+srvA+":9090", "the flag for it")
		contains(t, r.stderr, "network  127.0.0.1:7777 (Landlock: a port not allowed)", "a loopback port")
		contains(t, r.stderr, "allow: --allow-net localhost:7777", "the flag for a loopback port")
		notContains(t, r.stderr, ":8080", "the allowed destination in the report")
		notContains(t, r.stderr, ":5555", "a UDP connect in the report")
	})
}

// TestSandboxAllowNetBadValues: each bad value is named, exit 2, nothing
// started or left.
func TestSandboxAllowNetBadValues(t *testing.T) {
	if _, err := exec.LookPath("slirp4netns"); err != nil {
		t.Skip("slirp4netns is not installed")
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--allow-net", "10.1.2.3:99999"}, `"10.1.2.3:99999": port "99999"`},
		{[]string{"--allow-net", "127.0.0.1"}, "port by port"},
		{[]string{"--allow-net", "127.0.0.5:80"}, "loopback"},
		{[]string{"--allow-net", "10.0.2.7:80"}, "overlaps the sandbox's own network"},
		{[]string{"--allow-net", "[fe80::1]:443"}, "not a destination"},
		{[]string{"--allow-net", "[fd00::3]:53"}, "overlaps the sandbox's own network fd00::/64"},
		{[]string{"--allow-net", "[2001:db8::1]443"}, "after ] comes :PORT"},
		{[]string{"--allow-net", "no-such-host.invalid", "--dns-upstream", zone(t, nil)}, `resolving no-such-host.invalid`},
		{[]string{"--allow-net", "*.com"}, "a wildcard is"},
		{[]string{"--allow-net", "x.test", "--dns-upstream", "nowhere"}, `--dns-upstream "nowhere"`},
		{[]string{"--allow-net", "bad_host!:80"}, "neither an IP address nor a host name"},
		{[]string{"--allow-net", "10.1.2.3", "--net", "host"}, "--net host and --allow-net"},
		{[]string{"--allow-net", "10.1.2.3", "--cap-add", "NET_ADMIN"}, "--cap-add NET_ADMIN: not with --allow-net"},
	} {
		r := sandbox(t, "/", append(tc.args, "--", "true")...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, want 2 and %q in: %s", tc.args, r.code, tc.want, r.stderr)
		}
	}
}

// TestSandboxAllowNetKilledBrig: the holder and slirp4netns die with a
// killed brig.
func TestSandboxAllowNetKilledBrig(t *testing.T) {
	if _, err := exec.LookPath("slirp4netns"); err != nil {
		t.Skip("slirp4netns is not installed")
	}
	root := sandboxRoot(t)
	cmd := exec.Command(brigBin, "--root", root, "run", "--name", "egress-victim", "--allow-net", srvA+":80", "--", "sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var kids []int
	for i := 0; i < 300; i++ {
		time.Sleep(20 * time.Millisecond)
		out, _ := exec.Command(brigBin, "--root", root, "state", "egress-victim").Output()
		if strings.Contains(string(out), `"running"`) {
			kids = children(cmd.Process.Pid) // holder, slirp4netns, the container's init
			break
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	if len(kids) < 3 {
		t.Fatalf("brig run --allow-net started %v, want the holder, slirp4netns and the command", kids)
	}
	for _, pid := range kids {
		if !gone(pid) {
			t.Errorf("pid %d (%s) outlived its killed brig", pid, comm(pid))
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if out, err := exec.Command(brigBin, "--root", root, "run", "--", "true").CombinedOutput(); err != nil {
		t.Fatalf("next run: %v %s", err, out)
	}
	if ents := leftIn(root); len(ents) != 0 {
		t.Errorf("leftovers after the next run: %v", ents)
	}
}

// children lists the PIDs whose parent is ppid.
func children(ppid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(data)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(ppid) {
			out = append(out, pid)
		}
	}
	return out
}

func comm(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(data))
}

// TestSandboxAllowNetHostLoopback: --allow-net localhost:PORT reaches
// exactly that port of the host's loopback (a dev server, a database),
// by name or address; another port of the host's loopback stays out of
// reach, whether Landlock restricts ports or not. The control: the test,
// outside, reaches both.
func TestSandboxAllowNetHostLoopback(t *testing.T) {
	if _, err := exec.LookPath("slirp4netns"); err != nil {
		t.Skip("slirp4netns is not installed (make deps installs it)")
	}
	serve := func(body string) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, body) })}
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
		return l.Addr().String()
	}
	allowed, other := serve("host-dev-server"), serve("host-other-service")
	_, port, _ := net.SplitHostPort(allowed)
	_, otherPort, _ := net.SplitHostPort(other)
	for _, addr := range []string{allowed, other} {
		if resp, err := http.Get("http://" + addr + "/id"); err != nil {
			t.Fatalf("control: %s unreachable from the host: %v", addr, err)
		} else {
			resp.Body.Close()
		}
	}
	asRootAndUser(t, func(t *testing.T, uid int) {
		// Every destination names a port: Landlock refuses the other.
		r := sandboxAs(t, uid, "/", "--allow-net", "localhost:"+port, "--", "sh", "-c",
			fetch("127.0.0.1:"+port)+fetch("localhost:"+port)+fetch("127.0.0.1:"+otherPort))
		if r.code != 0 {
			t.Fatalf("exit %d: %s %s", r.code, r.stdout, r.stderr)
		}
		contains(t, r.stdout, "127.0.0.1:"+port+": host-dev-server\n", "the allowed port of the host's loopback")
		contains(t, r.stdout, "localhost:"+port+": host-dev-server\n", "the same by name")
		contains(t, r.stdout, "127.0.0.1:"+otherPort+": nc: can't connect", "another port of the host's loopback")
		// A destination without a port lifts Landlock's port rule: the
		// other port is still the sandbox's own loopback, not the host's.
		r = sandboxAs(t, uid, "/", "--allow-net", "localhost:"+port, "--allow-net", "192.0.2.1", "--", "sh", "-c",
			fetch("127.0.0.1:"+port)+fetch("127.0.0.1:"+otherPort))
		contains(t, r.stdout, "127.0.0.1:"+port+": host-dev-server\n", "the allowed port, no port rule")
		contains(t, r.stdout, "127.0.0.1:"+otherPort+": nc: can't connect to remote host (127.0.0.1): Connection refused", "another port, no port rule")
		notContains(t, r.stdout, "host-other-service", "the host's other service")
	})
	if r := sandbox(t, "/", "--allow-net", "localhost", "--", "true"); r.code != 2 || !strings.Contains(r.stderr, "port by port") {
		t.Errorf("--allow-net localhost without a port: exit %d: %s", r.code, r.stderr)
	}
}

// asRootAndUser runs f as root and as the test user, each a subtest,
// /dev/net/tun usable by the user where slirp4netns needs it.
func asRootAndUser(t *testing.T, f func(t *testing.T, uid int)) {
	for _, tc := range []struct {
		name string
		uid  int
	}{{"root", 0}, {"rootless", rootlessUID}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.uid != 0 {
				tunForUsers(t)
			}
			f(t, tc.uid)
		})
	}
}
