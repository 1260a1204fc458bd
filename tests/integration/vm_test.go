package integration

// Tests that need a kernel this host doesn't have: a pure cgroup v2 host
// and AppArmor. They skip here and run in the VM lane (scripts/vm.sh,
// `make vm`), which boots Debian's kernel with cgroup_no_v1=all and
// AppArmor enabled.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func needV2(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil {
		t.Skip("not a pure cgroup v2 host (the VM lane runs this: make vm)")
	}
}

// needV1 skips tests that read cgroup v1 files (TestV2Resources is their
// v2 counterpart).
func needV1(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.limit_in_bytes"); err != nil {
		t.Skip("no cgroup v1 memory hierarchy")
	}
}

func needAppArmor(t *testing.T) {
	t.Helper()
	data, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	if err != nil || !strings.HasPrefix(string(data), "Y") {
		t.Skip("AppArmor is not enabled on this kernel (the VM lane runs this: make vm)")
	}
	if _, err := exec.LookPath("apparmor_parser"); err != nil {
		t.Skip("apparmor_parser missing")
	}
}

// otherRuntimes lists runc and crun where they can run a container here.
func otherRuntimes(t *testing.T) []string {
	var rts []string
	for _, rt := range []string{"runc", "crun"} {
		if p, err := exec.LookPath(rt); err == nil && works(t, p) {
			rts = append(rts, p)
		}
	}
	return rts
}

func readCgroupFile(t *testing.T, id, file string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/brigtest", id, file))
	if err != nil {
		return "error: " + err.Error()
	}
	return strings.TrimSpace(string(data))
}

// ramDisk is the brd device the lane loads, for io.max and io.weight.
func ramDisk(t *testing.T) (string, int64, int64) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat("/dev/ram0", &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFBLK {
		t.Skip("no /dev/ram0 (the VM lane loads brd)")
	}
	return "/dev/ram0", int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
}

// TestV2Resources sets every linux.resources field that maps to a cgroup v2
// file and reads the files from outside, for brig and for runc and crun.
func TestV2Resources(t *testing.T) {
	needV2(t)
	_, major, minor := ramDisk(t)
	mem, low, swap := int64(64<<20), int64(32<<20), int64(96<<20)
	quota, period, shares := int64(50000), uint64(100000), uint64(512)
	pids := int64(33)
	weight := uint16(300)
	res := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: &mem, Reservation: &low, Swap: &swap},
		CPU:    &specs.LinuxCPU{Quota: &quota, Period: &period, Shares: &shares, Cpus: "1", Mems: "0"},
		Pids:   &specs.LinuxPids{Limit: &pids},
		BlockIO: &specs.LinuxBlockIO{Weight: &weight,
			ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: major, Minor: minor}, Rate: 1 << 20}},
			ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: major, Minor: minor}, Rate: 100}}},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}},
		Unified:        map[string]string{"memory.high": "50000000"},
	}
	files := []string{"memory.max", "memory.low", "memory.swap.max", "memory.high", "cpu.max", "cpu.weight",
		"cpuset.cpus", "cpuset.mems", "pids.max", "io.max", "io.weight", "hugetlb.2MB.max"}
	// cpu.weight from shares: opencontainers/cgroups (as runc 1.3+) maps
	// 1024 shares to the v2 default weight of 100; Debian's runc 1.1 and
	// crun 1.8 use the older linear formula, so only brig is checked.
	want := map[string]string{
		"cpu.weight": strconv.FormatUint(cgroups.ConvertCPUSharesToCgroupV2Value(shares), 10),
		"memory.max": "67108864", "memory.low": "33554432", "memory.swap.max": "33554432",
		"memory.high": "49999872", "cpu.max": "50000 100000", "cpuset.cpus": "1", "cpuset.mems": "0", "pids.max": "33",
		"io.max": fmt.Sprintf("%d:%d rbps=1048576 wbps=max riops=max wiops=100", major, minor), "hugetlb.2MB.max": "4194304",
	}
	got := map[string]map[string]string{}
	for _, bin := range append([]string{brigBin}, otherRuntimes(t)...) {
		e := newEnv(t, "sleep", "60")
		e.bin = bin
		e.spec.Version = "1.0.2"
		e.spec.Linux.Resources.Memory = res.Memory
		e.spec.Linux.Resources.CPU = res.CPU
		e.spec.Linux.Resources.Pids = res.Pids
		e.spec.Linux.Resources.BlockIO = res.BlockIO
		e.spec.Linux.Resources.HugepageLimits = res.HugepageLimits
		e.spec.Linux.Resources.Unified = res.Unified
		running(t, e)
		got[bin] = map[string]string{}
		for _, f := range files {
			got[bin][f] = readCgroupFile(t, e.id, f)
		}
		// The container's own view, through its cgroup namespace.
		if r := e.brig("exec", e.id, "cat", "/sys/fs/cgroup/memory.max"); bin == brigBin && strings.TrimSpace(r.stdout) != "67108864" {
			t.Errorf("memory.max inside: %q %s", r.stdout, r.stderr)
		}
		e.brig("delete", "--force", e.id)
	}
	for f, w := range want {
		if got[brigBin][f] != w {
			t.Errorf("brig: %s = %q, want %q", f, got[brigBin][f], w)
		}
	}
	for bin, g := range got {
		for _, f := range files {
			if f != "cpu.weight" && g[f] != got[brigBin][f] {
				t.Errorf("%s: %s: brig %q, %s %q", f, filepath.Base(bin), got[brigBin][f], filepath.Base(bin), g[f])
			}
		}
	}
}

// TestV2DeviceFilter: on cgroup v2 the device allow-list is an eBPF program;
// a device node made inside can't be opened unless a rule allows it.
func TestV2DeviceFilter(t *testing.T) {
	needV2(t)
	_, major, minor := ramDisk(t)
	probe := fmt.Sprintf("mknod /tmp/rd b %d %d && head -c 4 /tmp/rd >/dev/null 2>/tmp/err; echo rd=$?; cat /tmp/err; echo null >/dev/null && echo null-ok", major, minor)
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprintf("allowed=%v", allow), func(t *testing.T) {
			outs := map[string]string{}
			for _, bin := range append([]string{brigBin}, otherRuntimes(t)...) {
				e := newEnv(t, "sh", "-c", probe)
				e.bin = bin
				e.spec.Version = "1.0.2"
				e.spec.Root.Readonly = false
				e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"dev"}})
				c := e.spec.Process.Capabilities
				c.Bounding, c.Effective, c.Permitted = append(c.Bounding, "CAP_MKNOD"), append(c.Effective, "CAP_MKNOD"), append(c.Permitted, "CAP_MKNOD")
				if allow {
					e.spec.Linux.Resources.Devices = append(e.spec.Linux.Resources.Devices,
						specs.LinuxDeviceCgroup{Allow: true, Type: "b", Major: &major, Minor: &minor, Access: "rwm"})
				}
				outs[bin] = strings.ReplaceAll(e.mustRun(), "\x00", "") // attr/current ends in a NUL
			}
			b := outs[brigBin]
			contains(t, b, "null-ok", "default devices allowed")
			if allow {
				contains(t, b, "rd=0", "allowed device opens")
			} else {
				contains(t, b, "Operation not permitted", "denied device")
			}
			for bin, o := range outs {
				if o != b {
					t.Errorf("brig and %s differ:\n%q\n%q", filepath.Base(bin), b, o)
				}
			}
		})
	}
}

// TestV2FreezeAndKill: pause freezes through cgroup.freeze; kill --all of a
// container without its own PID namespace ends every process, also one that
// keeps forking (cgroup.kill).
func TestV2FreezeAndKill(t *testing.T) {
	needV2(t)
	e := newEnv(t, "sh", "-c", "while true; do sleep 10 & sleep 0.05; done")
	e.dropNamespace(specs.PIDNamespace)
	running(t, e)
	if r := e.brig("pause", e.id); r.code != 0 {
		t.Fatalf("pause: %s", r.stderr)
	}
	if f := readCgroupFile(t, e.id, "cgroup.freeze"); f != "1" {
		t.Errorf("cgroup.freeze = %q after pause", f)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(readCgroupFile(t, e.id, "cgroup.events"), "frozen 1") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	contains(t, readCgroupFile(t, e.id, "cgroup.events"), "frozen 1", "cgroup.events")
	if s := e.status(); s != "paused" {
		t.Errorf("status %s, want paused", s)
	}
	if r := e.brig("resume", e.id); r.code != 0 {
		t.Fatalf("resume: %s", r.stderr)
	}
	contains(t, readCgroupFile(t, e.id, "cgroup.events"), "frozen 0", "cgroup.events after resume")
	time.Sleep(300 * time.Millisecond) // let it fork a few
	if n := len(strings.Fields(readCgroupFile(t, e.id, "cgroup.procs"))); n < 3 {
		t.Fatalf("only %d processes", n)
	}
	if r := e.brig("kill", "--all", e.id, "KILL"); r.code != 0 {
		t.Fatalf("kill --all: %s", r.stderr)
	}
	deadline = time.Now().Add(5 * time.Second)
	for readCgroupFile(t, e.id, "cgroup.procs") != "" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if p := readCgroupFile(t, e.id, "cgroup.procs"); p != "" {
		t.Errorf("processes left after kill --all: %s", p)
	}
}

// TestV2OOM: the memory limit kills, and the kernel counts it.
func TestV2OOM(t *testing.T) {
	needV2(t)
	e := newEnv(t, "sh", "-c", "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done")
	limit := int64(16 << 20)
	e.spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &limit}
	e.create()
	if r := e.brig("start", e.id); r.code != 0 {
		t.Fatalf("start: %s", r.stderr)
	}
	e.waitStatus("stopped")
	contains(t, readCgroupFile(t, e.id, "memory.events"), "oom_kill 1", "memory.events")
}

// TestAppArmorDefaultProfile: with AppArmor and no profile named, brig loads
// brig-default and the container runs under it: mount and writes to
// /proc/sys are denied even with CAP_SYS_ADMIN and no read-only /proc/sys.
func TestAppArmorDefaultProfile(t *testing.T) {
	needAppArmor(t)
	e := newEnv(t, "sh", "-c", "cat /proc/self/attr/current; (cat /proc/sys/vm/overcommit_memory > /proc/sys/vm/overcommit_memory) 2>&1; mount -t tmpfs none /tmp 2>&1; cat /etc/passwd >/dev/null && echo read-ok")
	e.spec.Linux.ReadonlyPaths = nil
	c := e.spec.Process.Capabilities
	c.Bounding, c.Effective, c.Permitted = append(c.Bounding, "CAP_SYS_ADMIN"), append(c.Effective, "CAP_SYS_ADMIN"), append(c.Permitted, "CAP_SYS_ADMIN")
	out := e.run().stdout
	contains(t, out, "brig-default (enforce)", "label")
	contains(t, out, "Permission denied", "write to /proc/sys")
	if strings.Count(out, "Permission denied") < 2 {
		t.Errorf("mount not denied:\n%s", out)
	}
	contains(t, out, "read-ok", "ordinary reads")
	profiles, _ := os.ReadFile("/sys/kernel/security/apparmor/profiles")
	contains(t, string(profiles), "brig-default (enforce)", "loaded profiles")

	// brig run -- gets it too (entered before its execve, so the
	// command still dies with brig: TestSandboxKilledBrigLeavesNothing).
	r := sandbox(t, t.TempDir(), "--", "sh", "-c", "cat /proc/self/attr/current; mount -t tmpfs none /tmp 2>&1")
	contains(t, r.stdout, "brig-default (enforce)", "brig run -- label")

	// A profile loaded early (no no_new_privs) that denies statx and
	// openat2, which brig's verified procfs writes use: the labels are set
	// before such a filter, so the container still starts and is confined.
	early := newEnv(t, "cat", "/proc/self/attr/current")
	early.spec.Process.NoNewPrivileges = false
	early.spec.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"statx", "openat2"}, Action: specs.ActErrno, ErrnoRet: errnoRet(38)}}}
	contains(t, early.mustRun(), "brig-default (enforce)", "label with an early seccomp filter")

	// No /sys in the container: the init must not decide from the
	// container's view that the host has no AppArmor.
	nosys := newEnv(t, "cat", "/proc/self/attr/current")
	nosys.spec.Mounts = withoutMount(withoutMount(nosys.spec.Mounts, "/sys/fs/cgroup"), "/sys")
	contains(t, nosys.mustRun(), "brig-default (enforce)", "label without /sys in the container")

	// "unconfined" names no profile.
	u := newEnv(t, "cat", "/proc/self/attr/current")
	u.spec.Process.ApparmorProfile = "unconfined"
	contains(t, u.mustRun(), "unconfined", "unconfined label")
}

// TestAppArmorNamedProfile: a profile of the test's own, for the container
// and for brig exec --apparmor; a profile that isn't loaded is refused.
func TestAppArmorNamedProfile(t *testing.T) {
	needAppArmor(t)
	dir := t.TempDir()
	prof := filepath.Join(dir, "brigtest-deny")
	os.WriteFile(prof, []byte(`profile brigtest-deny flags=(attach_disconnected,mediate_deleted) {
  file,
  capability,
  network,
  signal,
  deny /etc/group r,
}
`), 0o644)
	if out, err := exec.Command("apparmor_parser", "-Kr", prof).CombinedOutput(); err != nil {
		t.Fatalf("apparmor_parser: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("apparmor_parser", "-R", prof).Run() })

	e := newEnv(t, "sh", "-c", "cat /etc/passwd >/dev/null && echo passwd-ok; cat /etc/group 2>&1; exec sleep 60")
	e.spec.Process.ApparmorProfile = "brigtest-deny"
	pid := running(t, e)
	time.Sleep(200 * time.Millisecond)
	attr, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/attr/current")
	contains(t, string(attr), "brigtest-deny (enforce)", "container label from outside")
	if r := e.brig("exec", e.id, "cat", "/etc/group"); r.code == 0 || !strings.Contains(r.stderr+r.stdout, "Permission denied") {
		t.Errorf("exec under the container's profile read /etc/group: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := e.brig("exec", "--apparmor", "unconfined", e.id, "cat", "/proc/self/attr/current"); !strings.Contains(r.stdout, "unconfined") {
		t.Errorf("exec --apparmor unconfined: %q %s", r.stdout, r.stderr)
	}
	if r := e.brig("exec", "--apparmor", "brigtest-nosuch", e.id, "true"); r.code == 0 || !strings.Contains(r.stderr, "brigtest-nosuch") {
		t.Errorf("exec with a profile not loaded: %d %s", r.code, r.stderr)
	}

	m := newEnv(t, "true")
	m.spec.Process.ApparmorProfile = "brigtest-missing"
	r := m.run()
	if r.code == 0 || !strings.Contains(r.stderr, "process.apparmorProfile") || !strings.Contains(r.stderr, "no profile of that name is loaded") {
		t.Errorf("missing profile: exit %d: %s", r.code, r.stderr)
	}
}

// The SELinux lane's container domain (tests/vm/brig_container.cil).
const (
	seProcess = "system_u:system_r:brig_container_t:s0:c1,c2"
	seFiles   = "system_u:object_r:brig_container_file_t:s0:c1,c2"
)

func needSELinux(t *testing.T) {
	t.Helper()
	if data, err := os.ReadFile("/sys/fs/selinux/enforce"); err != nil || strings.TrimSpace(string(data)) != "1" {
		t.Skip("SELinux is not enforcing on this kernel (the VM lane runs this: scripts/vm.sh -m v2-selinux)")
	}
	if err := os.WriteFile("/sys/fs/selinux/context", []byte(seProcess), 0); err != nil {
		t.Skipf("the policy has no brig_container_t (tests/vm/brig_container.cil): %v", err)
	}
}

// selinuxRootfs is a copy of the busybox rootfs labelled for the
// container (MCS c1,c2), with a file of a type the container domain has
// no rule for and one of its type in another category.
func selinuxRootfs(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rootfs")
	if out, err := exec.Command("cp", "-a", rootfs, dir).CombinedOutput(); err != nil {
		t.Fatalf("copy rootfs: %v %s", err, out)
	}
	os.WriteFile(filepath.Join(dir, "own"), []byte("own-file\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "other-type"), []byte("secret\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "other-category"), []byte("secret\n"), 0o644)
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return unix.Lsetxattr(p, "security.selinux", []byte(seFiles), 0)
	})
	if err != nil {
		t.Fatal(err)
	}
	for f, label := range map[string]string{"other-type": "system_u:object_r:etc_t:s0", "other-category": "system_u:object_r:brig_container_file_t:s0:c3"} {
		if err := unix.Lsetxattr(filepath.Join(dir, f), "security.selinux", []byte(label), 0); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestSELinuxLabels: process.selinuxLabel is the container process's
// context (from inside and from /proc/PID/attr/current outside),
// linux.mountLabel labels its mounts, and the policy is enforced: a file of
// another type and one of another MCS category are unreadable although
// their modes allow it. brig, runc and crun give the same results.
func TestSELinuxLabels(t *testing.T) {
	needSELinux(t)
	dir := selinuxRootfs(t)
	probe := `cat /proc/self/attr/current; echo; cat /own
cat /other-type 2>&1 || echo type-denied
cat /other-category 2>&1 || echo category-denied
echo x > /tmp/made && echo tmp-written
grep ' /tmp ' /proc/self/mountinfo | grep -o 'context="[^"]*"'`
	outs := map[string]string{}
	for _, bin := range append([]string{brigBin}, otherRuntimes(t)...) {
		setup := func(e *env) {
			e.bin = bin
			e.spec.Version = "1.0.2"
			e.spec.Root.Path = dir
			e.spec.Process.SelinuxLabel = seProcess
			e.spec.Linux.MountLabel = seFiles
			e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev"}})
		}
		e := newEnv(t, "sh", "-c", probe)
		setup(e)
		outs[bin] = strings.ReplaceAll(e.mustRun(), "\x00", "") // attr/current ends in a NUL

		// From outside, and brig exec into it.
		e = newEnv(t, "sleep", "60")
		setup(e)
		pid := running(t, e)
		attr, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/attr/current")
		if got := strings.TrimRight(string(attr), "\x00\n"); got != seProcess {
			t.Errorf("%s: /proc/%d/attr/current from outside: %q, want %q", filepath.Base(bin), pid, got, seProcess)
		}
		if bin == brigBin {
			if r := e.brig("exec", e.id, "cat", "/proc/self/attr/current"); strings.TrimRight(r.stdout, "\x00\n") != seProcess {
				t.Errorf("exec: %q %s", r.stdout, r.stderr)
			}
			other := "system_u:system_r:brig_container_t:s0:c1,c2,c5"
			if r := e.brig("exec", "--process-label", other, e.id, "cat", "/proc/self/attr/current"); strings.TrimRight(r.stdout, "\x00\n") != other {
				t.Errorf("exec --process-label: %q %s", r.stdout, r.stderr)
			}
		}
		e.brig("delete", "--force", e.id)
	}
	b := outs[brigBin]
	for _, want := range []string{seProcess + "\n", "own-file\n", "Permission denied\ntype-denied\n", "Permission denied\ncategory-denied\n", "tmp-written\n", `context="` + seFiles + `"`} {
		contains(t, b, want, "brig, SELinux")
	}
	for bin, out := range outs {
		if out != b {
			t.Errorf("%s differs from brig:\n%s\nbrig:\n%s", filepath.Base(bin), out, b)
		}
	}
}

func needSystemd(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		t.Skip("systemd is not PID 1 here (the VM lane runs this: scripts/vm.sh -m v2-systemd)")
	}
}

// TestSystemdCgroupDriver: with --systemd-cgroup and a slice:prefix:name
// cgroupsPath, systemd makes the container a transient scope in that
// slice, with the limits as unit properties and in the cgroup files, and
// delete removes the scope. brig and runc alike.
func TestSystemdCgroupDriver(t *testing.T) {
	needSystemd(t)
	mem, pids := int64(64<<20), int64(50)
	for _, bin := range append([]string{brigBin}, otherRuntimes(t)...) {
		t.Run(filepath.Base(bin), func(t *testing.T) {
			if _, err := os.Stat("/run/dbus/system_bus_socket"); err != nil && filepath.Base(bin) == "crun" {
				t.Skip("crun's systemd driver talks to the D-Bus system bus, which this guest doesn't run (brig and runc use systemd's private socket)")
			}
			e := newEnv(t, "sleep", "60")
			e.bin = bin
			e.spec.Version = "1.0.2"
			unit := "brigtest-" + e.id + ".scope"
			e.spec.Linux.CgroupsPath = "system.slice:brigtest:" + e.id
			e.spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &mem}
			e.spec.Linux.Resources.Pids = &specs.LinuxPids{Limit: &pids}
			e.write()
			if r := e.brig("--systemd-cgroup", "create", "--bundle", e.bundle, e.id); r.code != 0 {
				t.Fatalf("create --systemd-cgroup: exit %d: %s", r.code, r.stderr)
			}
			if r := e.brig("start", e.id); r.code != 0 {
				t.Fatalf("start: %s", r.stderr)
			}
			pid := e.pid()
			dir := "/sys/fs/cgroup/system.slice/" + unit
			own, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
			if got := strings.TrimSpace(string(own)); got != "0::/system.slice/"+unit {
				t.Errorf("the container's cgroup: %q, want the scope %s", got, unit)
			}
			for file, want := range map[string]string{"memory.max": "67108864", "pids.max": "50"} {
				if data, err := os.ReadFile(filepath.Join(dir, file)); err != nil || strings.TrimSpace(string(data)) != want {
					t.Errorf("%s/%s: %q %v, want %s", unit, file, data, err, want)
				}
			}
			// A process exec'd into the container joins the same scope.
			if r := e.brig("exec", e.id, "cat", "/proc/self/cgroup"); r.code != 0 || strings.TrimSpace(r.stdout) != "0::/" {
				t.Errorf("exec: exit %d, cgroup %q (want the container's, rooted at its namespace: 0::/): %s", r.code, r.stdout, r.stderr)
			}
			if r := e.brig("exec", "-d", e.id, "sleep", "30"); r.code != 0 {
				t.Errorf("exec -d: %s", r.stderr)
			} else if procs, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs")); len(strings.Fields(string(procs))) != 2 {
				t.Errorf("the scope's processes after exec -d: %q, want the container's and the exec'd one", procs)
			}
			out, _ := exec.Command("systemctl", "show", unit, "-p", "ActiveState", "-p", "MemoryMax", "-p", "TasksMax").Output()
			for _, want := range []string{"ActiveState=active", "MemoryMax=67108864", "TasksMax=50"} {
				contains(t, string(out), want, "systemctl show "+unit)
			}
			if r := e.brig("delete", "--force", e.id); r.code != 0 {
				t.Fatalf("delete: %s", r.stderr)
			}
			for i := 0; i < 100; i++ {
				if _, err := os.Stat(dir); err != nil {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if _, err := os.Stat(dir); err == nil {
				t.Errorf("the scope's cgroup %s outlived delete", dir)
			}
			out, _ = exec.Command("systemctl", "show", unit, "-p", "ActiveState").Output()
			if strings.Contains(string(out), "=active") {
				t.Errorf("the scope is still active after delete: %s", out)
			}
		})
	}
}
