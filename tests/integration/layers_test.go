package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// running creates and starts a container that sleeps, and returns its pid.
func running(t *testing.T, e *env) int {
	t.Helper()
	e.create()
	if r := e.brig("start", e.id); r.code != 0 {
		t.Fatalf("start: %s", r.stderr)
	}
	e.waitStatus("running")
	// "running" is said once the exec fifo is read; the init then has
	// its last layers to apply before execve: wait for the command.
	pid := e.pid()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !strings.HasPrefix(string(cmd), "brig\x00init") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the container's process is still brig's init 10 s after start")
		}
	}
	return pid
}

func TestNamespacesAreNew(t *testing.T) {
	e := newEnv(t, "sleep", "60")
	e.setNamespace("user", "")
	e.spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	e.spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	e.setNamespace("time", "")
	pid := running(t, e)
	for _, ns := range []string{"mnt", "pid", "net", "ipc", "uts", "user", "cgroup", "time"} {
		host, err := os.Readlink("/proc/self/ns/" + ns)
		if err != nil {
			t.Fatal(err)
		}
		ctr, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
		if err != nil {
			t.Fatal(err)
		}
		if host == ctr {
			t.Errorf("%s namespace is the host's (%s)", ns, host)
		}
	}
}

func TestNamespaceJoinByPath(t *testing.T) {
	a := newEnv(t, "sleep", "60")
	apid := running(t, a)
	b := newEnv(t, "sh", "-c", "hostname; ls /proc | grep -c '^[0-9]'")
	b.setNamespace(specs.NetworkNamespace, fmt.Sprintf("/proc/%d/ns/net", apid))
	b.setNamespace(specs.UTSNamespace, fmt.Sprintf("/proc/%d/ns/uts", apid))
	b.setNamespace(specs.PIDNamespace, fmt.Sprintf("/proc/%d/ns/pid", apid))
	b.spec.Hostname = ""
	out := b.mustRun()
	lines := strings.Fields(out)
	if len(lines) != 2 || lines[0] != "brig" {
		t.Fatalf("joined uts: hostname output %q", out)
	}
	if n, _ := strconv.Atoi(lines[1]); n < 2 {
		t.Errorf("joined pid namespace should show the other container's process too: %q", out)
	}
}

func TestHostname(t *testing.T) {
	e := newEnv(t, "sh", "-c", "hostname; cat /proc/sys/kernel/domainname")
	e.spec.Hostname = "box1"
	e.spec.Domainname = "example.test"
	out := e.mustRun()
	if strings.Fields(out)[0] != "box1" || strings.Fields(out)[1] != "example.test" {
		t.Errorf("hostname/domainname: %q", out)
	}
}

func TestCapabilitiesAndNoNewPrivs(t *testing.T) {
	// As a non-root user, what survives execve is exactly the ambient set
	// (effective and permitted), with bounding and inheritable as given.
	e := newEnv(t, "sleep", "60")
	e.spec.Process.User = specs.User{UID: 1000, GID: 1000}
	e.spec.Process.Capabilities = &specs.LinuxCapabilities{
		Bounding:    []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"},
		Effective:   []string{"CAP_CHOWN", "CAP_KILL"},
		Permitted:   []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"},
		Inheritable: []string{"CAP_KILL"},
		Ambient:     []string{"CAP_KILL"},
	}
	e.spec.Process.NoNewPrivileges = true
	pid := running(t, e)
	// CHOWN=0, KILL=5, NET_BIND_SERVICE=10
	for field, want := range map[string]string{
		"CapBnd": "0000000000000421", "CapEff": "0000000000000020", "CapPrm": "0000000000000020",
		"CapInh": "0000000000000020", "CapAmb": "0000000000000020", "NoNewPrivs": "1",
	} {
		if got := statusField(t, pid, field); got != want {
			t.Errorf("%s = %s, want %s", field, got, want)
		}
	}
}

func TestRootCapabilitiesFollowBounding(t *testing.T) {
	// Root's effective and permitted sets after execve are its bounding set.
	e := newEnv(t, "sleep", "60")
	e.spec.Process.Capabilities = &specs.LinuxCapabilities{
		Bounding: []string{"CAP_CHOWN", "CAP_KILL"}, Effective: []string{"CAP_CHOWN"}, Permitted: []string{"CAP_CHOWN", "CAP_KILL"},
	}
	pid := running(t, e)
	for _, f := range []string{"CapBnd", "CapEff", "CapPrm"} {
		if got := statusField(t, pid, f); got != "0000000000000021" {
			t.Errorf("%s = %s, want 0000000000000021", f, got)
		}
	}
	if got := statusField(t, pid, "NoNewPrivs"); got != "1" {
		t.Errorf("NoNewPrivs = %s (brig spec sets it)", got)
	}
}

func TestAllCapabilitiesGrantsWhatTheHostHas(t *testing.T) {
	all := append([]string(nil), capNames...)
	e := newEnv(t, "sh", "-c", "grep CapEff /proc/self/status")
	e.spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all}
	r := e.run()
	if r.code != 0 {
		t.Fatalf("all capabilities: exit %d: %s", r.code, r.stderr)
	}
	host := statusField(t, os.Getpid(), "CapBnd")
	contains(t, r.stdout, host, "CapEff equals the host's bounding set")
	// This host's bounding set may lack CAP_SYS_RESOURCE (bit 24): then
	// brig says so.
	if bnd, err := strconv.ParseUint(host, 16, 64); err == nil && bnd&(1<<24) == 0 {
		contains(t, r.stderr, "CAP_SYS_RESOURCE", "warning about capabilities the host can't grant")
	} else {
		notContains(t, r.stderr, "CAP_SYS_RESOURCE", "no warning when the host has them all")
	}
}

var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
	"CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
	"CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
	"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
	"CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

func TestUserProcess(t *testing.T) {
	e := newEnv(t, "sh", "-c", "id; pwd; echo $FOO; umask")
	umask := uint32(0o027)
	e.spec.Process.User = specs.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{5, 6}, Umask: &umask}
	e.spec.Process.Cwd = "/tmp"
	e.spec.Process.Env = append(e.spec.Process.Env, "FOO=bar baz")
	out := e.mustRun()
	contains(t, out, "uid=1000 gid=1001 groups=5,6", "id")
	contains(t, out, "/tmp\n", "cwd")
	contains(t, out, "bar baz\n", "env")
	contains(t, out, "0027", "umask")
}

func TestReadonlyRootMaskedAndReadonlyPaths(t *testing.T) {
	e := newEnv(t, "sh", "-c", `
touch /newfile 2>/dev/null && echo root-writable || echo root-readonly
echo 1 > /proc/sys/kernel/shm_rmid_forced 2>/dev/null && echo procsys-writable || echo procsys-readonly
wc -c < /proc/keys
ls /sys/firmware | wc -l
touch /tmp/x && echo tmp-writable`)
	e.spec.Root.Readonly = true
	e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev"}})
	out := e.mustRun()
	for _, want := range []string{"root-readonly", "procsys-readonly", "tmp-writable"} {
		contains(t, out, want, "filesystem")
	}
	f := strings.Fields(out)
	if len(f) < 5 || f[2] != "0" || f[3] != "0" {
		t.Errorf("masked /proc/keys and /sys/firmware should be empty: %q", out)
	}
}

func TestMountOptionsInMountinfo(t *testing.T) {
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "hello"), []byte("hi\n"), 0o644)
	e := newEnv(t, "sh", "-c", "cat /data/hello; grep -E ' /data | /scratch ' /proc/self/mountinfo; touch /data/x 2>/dev/null || echo data-ro")
	e.spec.Mounts = append(e.spec.Mounts,
		specs.Mount{Destination: "/data", Type: "bind", Source: src, Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"}},
		specs.Mount{Destination: "/scratch", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m", "mode=700", "noexec"}},
	)
	out := e.mustRun()
	contains(t, out, "hi\n", "bind mount content")
	contains(t, out, "data-ro", "ro bind")
	var dataLine, scratchLine string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, " /data ") {
			dataLine = l
		}
		if strings.Contains(l, " /scratch ") {
			scratchLine = l
		}
	}
	for _, o := range []string{"ro", "nosuid", "nodev", "noexec"} {
		if !strings.Contains(strings.Fields(dataLine + " x x x x x x")[5], o) {
			t.Errorf("/data mount options %q lack %s", dataLine, o)
		}
	}
	contains(t, scratchLine, "size=1024k", "tmpfs size")
	contains(t, scratchLine, "mode=700", "tmpfs mode")
}

func TestMountTargetSymlinkStaysInRoot(t *testing.T) {
	// A rootfs whose mount target is a symlink to an absolute host path:
	// the link is resolved inside the rootfs, so the mount lands there and
	// never on the host directory of that name.
	root := t.TempDir()
	copyRootfs(t, root)
	escape := t.TempDir()
	if err := os.Symlink(escape, filepath.Join(root, "evil")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, escape), 0o755); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, "sh", "-c", "touch /evil/made-inside && grep -c ' "+escape+" ' /proc/self/mountinfo")
	e.spec.Root.Path = root
	e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/evil", Type: "tmpfs", Source: "tmpfs"})
	out := e.mustRun()
	contains(t, out, "1", "tmpfs mounted at the link's target inside the container")
	if ents, _ := os.ReadDir(escape); len(ents) != 0 {
		t.Errorf("host dir written through a symlink: %v", ents)
	}
	if data, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(data), escape) {
		t.Errorf("mount escaped to the host path %s", escape)
	}

	// A dangling link to a host path: refused with an error naming the
	// mount, not followed out of the rootfs.
	root2 := t.TempDir()
	copyRootfs(t, root2)
	escape2 := t.TempDir()
	os.Symlink(escape2, filepath.Join(root2, "evil"))
	e2 := newEnv(t, "true")
	e2.spec.Root.Path = root2
	e2.spec.Mounts = append(e2.spec.Mounts, specs.Mount{Destination: "/evil/sub", Type: "tmpfs", Source: "tmpfs"})
	r := e2.run()
	if r.code == 0 {
		if ents, _ := os.ReadDir(escape2); len(ents) != 0 {
			t.Errorf("dangling link followed to the host: %v", ents)
		}
	} else {
		contains(t, r.stderr, "/evil/sub", "error names the mount")
	}
	if ents, _ := os.ReadDir(escape2); len(ents) != 0 {
		t.Errorf("host dir written through a dangling symlink: %v", ents)
	}
}

// copyRootfs makes a private writable rootfs: busybox and its links.
func copyRootfs(t *testing.T, dst string) {
	t.Helper()
	ents, err := os.ReadDir(rootfs)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ents {
		os.MkdirAll(filepath.Join(dst, d.Name()), 0o755)
	}
	bins, _ := os.ReadDir(filepath.Join(rootfs, "bin"))
	for _, b := range bins {
		if b.Name() == "busybox" {
			data, _ := os.ReadFile(filepath.Join(rootfs, "bin", "busybox"))
			os.WriteFile(filepath.Join(dst, "bin", "busybox"), data, 0o755)
		} else {
			os.Symlink("busybox", filepath.Join(dst, "bin", b.Name()))
		}
	}
}

func TestDevices(t *testing.T) {
	e := newEnv(t, "sh", "-c", "ls -l /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty /dev/mydev; readlink /dev/ptmx; readlink /dev/fd; echo x > /dev/null && echo null-ok; head -c 4 /dev/zero | wc -c")
	mode := os.FileMode(0o640)
	uid, gid := uint32(0), uint32(0)
	e.spec.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/mydev", Type: "c", Major: 1, Minor: 9, FileMode: &mode, UID: &uid, GID: &gid}}
	out := e.mustRun()
	contains(t, out, "crw-r-----", "device mode")
	contains(t, out, "1,   9", "device numbers")
	contains(t, out, "pts/ptmx", "/dev/ptmx link")
	contains(t, out, "/proc/self/fd", "/dev/fd link")
	contains(t, out, "null-ok", "/dev/null writable")
	contains(t, out, "\n4\n", "/dev/zero readable")
}

func TestDeviceCgroupDenies(t *testing.T) {
	// A device node that exists (made with mknod inside) but that the
	// device cgroup does not allow can't be opened.
	e := newEnv(t, "sh", "-c", "mknod /tmp/mem c 1 1; head -c1 /tmp/mem >/dev/null 2>&1 && echo mem-open || echo mem-denied")
	e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"})
	out := e.mustRun()
	contains(t, out, "mem-denied", "device cgroup")
}

func TestRlimitsAndSysctl(t *testing.T) {
	e := newEnv(t, "sh", "-c", "ulimit -n; ulimit -Hn; cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shm_rmid_forced")
	e.spec.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 123, Hard: 456}}
	e.spec.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1"}
	out := e.mustRun()
	if f := strings.Fields(out); len(f) != 4 || f[0] != "123" || f[1] != "456" || f[2] != "1" || f[3] != "1" {
		t.Errorf("rlimit/sysctl: %q", out)
	}
}

func TestRlimitAboveHardLimitFailsClearly(t *testing.T) {
	e := newEnv(t, "true")
	e.spec.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1 << 30, Hard: 1 << 30}}
	r := e.run()
	if r.code == 0 {
		t.Fatal("rlimit above the host's hard limit succeeded without CAP_SYS_RESOURCE")
	}
	contains(t, r.stderr, "RLIMIT_NOFILE", "error names the rlimit")
}

func TestUserNamespaceMappings(t *testing.T) {
	e := newEnv(t, "sleep", "60")
	e.setNamespace("user", "")
	e.spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 1000}, {ContainerID: 1000, HostID: 300000, Size: 10}}
	e.spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 1000}}
	e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"})
	// sysfs can't be mounted from a user namespace without its own netns
	// owner; drop the cgroup mount too (v1 hierarchies are host-owned).
	var mounts []specs.Mount
	for _, m := range e.spec.Mounts {
		if m.Destination != "/sys/fs/cgroup" {
			mounts = append(mounts, m)
		}
	}
	e.spec.Mounts = mounts
	pid := running(t, e)
	uidMap, _ := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", pid))
	if f := strings.Fields(string(uidMap)); len(f) != 6 || f[1] != "200000" || f[4] != "300000" {
		t.Errorf("uid_map: %q", uidMap)
	}
	if uid := strings.Fields(statusField(t, pid, "Uid"))[0]; uid != "200000" {
		t.Errorf("container root is host uid %s, want 200000", uid)
	}
	e.brig("kill", e.id, "KILL")
	e.waitStatus("stopped")
	e.brig("delete", e.id)
	e2 := newEnv(t, "sh", "-c", "id -u; touch /tmp/f && stat -c %u /tmp/f")
	args := e2.spec.Process.Args
	e2.spec = e.spec
	e2.spec.Process.Args = args
	e2.spec.Linux.CgroupsPath = "/brigtest/" + e2.id
	out := e2.mustRun()
	if f := strings.Fields(out); len(f) != 2 || f[0] != "0" || f[1] != "0" {
		t.Errorf("inside the user namespace: %q", out)
	}
}

func TestTimeNamespaceOffsets(t *testing.T) {
	e := newEnv(t, "cat", "/proc/uptime")
	e.setNamespace("time", "")
	e.spec.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 86400 * 365}}
	out := e.mustRun()
	up, err := strconv.ParseFloat(strings.Fields(out)[0], 64)
	if err != nil || up < 86400*365 {
		t.Errorf("uptime in a time namespace offset by a year: %q", out)
	}
}

// TestMountTargetIntoKernelFilesystems: an image whose mount target is a
// symbolic link into /proc, /sys or /dev (`/data -> /proc/sys/net/ipv4`)
// can't have a mount land on the kernel's interfaces: the mount is
// refused, naming it, and nothing is left. A bind over an lxcfs-style
// /proc file is allowed, as runc allows it, and a real directory at the
// same place mounts as usual (the control).
func TestMountTargetIntoKernelFilesystems(t *testing.T) {
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "meminfo"), []byte("MemTotal: 1 kB\n"), 0o644)
	for _, tc := range []struct {
		name, link, target string
	}{
		{"absolute link into /proc", "kernel-link", "/proc/sys/net/ipv4"},
		{"relative link into /proc", "kernel-link", "../proc/sys/kernel"},
		{"link into /sys", "kernel-link", "/sys/kernel"},
		{"link into /dev", "kernel-link", "/dev/shm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			copyRootfs(t, root)
			os.RemoveAll(filepath.Join(root, tc.link)) // (copied from the shared rootfs, if another test made it)
			if err := os.Symlink(tc.target, filepath.Join(root, tc.link)); err != nil {
				t.Fatal(err)
			}
			e := newEnv(t, "true")
			e.spec.Root.Path = root
			e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/" + tc.link, Type: "bind", Source: src, Options: []string{"rbind"}})
			r := e.run()
			if r.code == 0 || !strings.Contains(r.stderr, "/"+tc.link) || !strings.Contains(r.stderr, "symbolic link") {
				t.Errorf("exit %d, stderr %q: want a refusal naming /%s", r.code, r.stderr, tc.link)
			}
		})
	}
	t.Run("control: a directory, and an lxcfs-style file", func(t *testing.T) {
		e := newEnv(t, "sh", "-c", "head -1 /proc/meminfo; ls /data")
		e.spec.Mounts = append(e.spec.Mounts,
			specs.Mount{Destination: "/data", Type: "bind", Source: src, Options: []string{"rbind"}},
			specs.Mount{Destination: "/proc/meminfo", Type: "bind", Source: filepath.Join(src, "meminfo"), Options: []string{"bind"}})
		out := e.mustRun()
		contains(t, out, "MemTotal: 1 kB\nmeminfo\n", "the bind over /proc/meminfo and at /data")
	})
	t.Run("a bind over another /proc file", func(t *testing.T) {
		e := newEnv(t, "true")
		e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/proc/sys/kernel/core_pattern", Type: "bind", Source: filepath.Join(src, "meminfo"), Options: []string{"bind"}})
		if r := e.run(); r.code == 0 || !strings.Contains(r.stderr, "/proc/sys/kernel/core_pattern") {
			t.Errorf("exit %d, stderr %q: want a refusal", r.code, r.stderr)
		}
	})
}

// TestMemoryPolicy: linux.memoryPolicy (runtime-spec 1.3) is applied: the
// container's process has the policy get_mempolicy(2) reports (a static
// probe the test builds, in a root of its own); brig features lists the
// modes.
func TestMemoryPolicy(t *testing.T) {
	if _, err := os.Stat("/proc/self/numa_maps"); err != nil {
		t.Skip("no NUMA support in this kernel")
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("no gcc to build the probe")
	}
	root := t.TempDir()
	copyRootfs(t, root)
	src := filepath.Join(t.TempDir(), "mp.c")
	os.WriteFile(src, []byte(`#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(void) {
	int mode = -1; unsigned long mask[16] = {0};
	if (syscall(SYS_get_mempolicy, &mode, mask, 1024, 0, 0) != 0) { perror("get_mempolicy"); return 1; }
	printf("mode=%d mask=%lx\n", mode & 0xff, mask[0]);
	return 0;
}
`), 0o644)
	if out, err := exec.Command("gcc", "-static", "-O2", "-o", filepath.Join(root, "bin", "mempolicy"), src).CombinedOutput(); err != nil {
		t.Skipf("building the probe: %v: %s", err, out)
	}
	for _, tc := range []struct {
		mode  specs.MemoryPolicyModeType
		nodes string
		want  string
	}{{specs.MpolBind, "0", "mode=2 mask=1"}, {specs.MpolInterleave, "0", "mode=3 mask=1"}, {specs.MpolDefault, "", "mode=0 mask=0"}} {
		e := newEnv(t, "/bin/mempolicy")
		e.spec.Root.Path = root
		e.spec.Linux.MemoryPolicy = &specs.LinuxMemoryPolicy{Mode: tc.mode, Nodes: tc.nodes}
		contains(t, e.mustRun(), tc.want, string(tc.mode))
	}
	out, _ := exec.Command(brigBin, "features").Output()
	contains(t, string(out), "MPOL_WEIGHTED_INTERLEAVE", "brig features")
	// brig inspect shows it: the config's for a container, the kernel's
	// own answer for --self.
	r := newEnv(t, "sleep", "60")
	r.spec.Linux.MemoryPolicy = &specs.LinuxMemoryPolicy{Mode: specs.MpolBind, Nodes: "0"}
	running(t, r)
	contains(t, r.brig("inspect", r.id).stdout, "memory policy: MPOL_BIND nodes 0", "brig inspect")
	self := exec.Command(brigBin, "inspect", "--self")
	self.Stdout = &strings.Builder{}
	self.Run()
	contains(t, self.Stdout.(*strings.Builder).String(), "memory policy: MPOL_DEFAULT", "brig inspect --self")
}
