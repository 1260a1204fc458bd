package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestExec(t *testing.T) {
	e := newEnv(t, "sleep", "60")
	e.setNamespace(specs.UserNamespace, "")
	e.spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	e.spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	e.spec.Mounts = withoutMount(e.spec.Mounts, "/sys/fs/cgroup")
	pid := running(t, e)

	r := e.brig("exec", "--env", "X=1", "--cwd", "/tmp", e.id, "sh", "-c", "echo $X; pwd; hostname; id -u; cat /proc/1/comm; exit 4")
	if r.code != 4 {
		t.Fatalf("exec exit %d, want 4: %s", r.code, r.stderr)
	}
	for _, want := range []string{"1\n", "/tmp\n", "brig\n", "0\n", "sleep\n"} {
		contains(t, r.stdout, want, "exec output")
	}
	// The exec'd process shares every namespace with the container's init.
	pidFile := filepath.Join(t.TempDir(), "exec.pid")
	r = e.brig("exec", "-d", "--pid-file", pidFile, e.id, "sleep", "30")
	if r.code != 0 {
		t.Fatalf("exec -d: %s", r.stderr)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	epid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	for _, ns := range []string{"mnt", "pid", "net", "ipc", "uts", "user", "cgroup"} {
		a, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
		b, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", epid, ns))
		if a == "" || a != b {
			t.Errorf("exec'd process %s namespace %q, init's %q", ns, b, a)
		}
	}
	// ...and its cgroup.
	ic, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	ec, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", epid))
	if string(ic) != string(ec) {
		t.Errorf("exec'd process cgroups differ:\n%s\nvs\n%s", ec, ic)
	}
	// ps sees it.
	r = e.brig("ps", "--format", "json", e.id)
	var pids []int
	json.Unmarshal([]byte(r.stdout), &pids)
	found := false
	for _, p := range pids {
		found = found || p == epid
	}
	if !found {
		t.Errorf("ps %v lacks exec'd pid %d", pids, epid)
	}
}

func TestExecProcessFileAndUser(t *testing.T) {
	e := newEnv(t, "sleep", "60")
	running(t, e)
	proc := specs.Process{
		Args: []string{"sh", "-c", "id; grep -E 'CapEff|NoNewPrivs' /proc/self/status"},
		Cwd:  "/", Env: []string{"PATH=/bin"},
		User:            specs.User{UID: 1000, GID: 1000},
		NoNewPrivileges: true,
	}
	data, _ := json.Marshal(proc)
	pf := filepath.Join(t.TempDir(), "process.json")
	os.WriteFile(pf, data, 0o644)
	r := e.brig("exec", "--process", pf, e.id)
	if r.code != 0 {
		t.Fatalf("exec --process: %s", r.stderr)
	}
	contains(t, r.stdout, "uid=1000 gid=1000", "user")
	contains(t, r.stdout, "CapEff:\t0000000000000000", "no capabilities for a non-root process without ambient")
	contains(t, r.stdout, "NoNewPrivs:\t1", "nnp")
}

func TestExecErrors(t *testing.T) {
	e := newEnv(t, "sleep", "60")
	running(t, e)
	if r := e.brig("exec", e.id, "/no/such/binary"); r.code == 0 || !strings.Contains(r.stderr, "/no/such/binary") {
		t.Errorf("exec of a missing binary: exit %d, %s", r.code, r.stderr)
	}
	if r := e.brig("exec", "nosuchcontainer", "true"); r.code == 0 || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("exec in a missing container: exit %d, %s", r.code, r.stderr)
	}
	e.brig("kill", e.id, "KILL")
	e.waitStatus("stopped")
	if r := e.brig("exec", e.id, "true"); r.code == 0 || !strings.Contains(r.stderr, "stopped") {
		t.Errorf("exec in a stopped container: exit %d, %s", r.code, r.stderr)
	}
}

func withoutMount(ms []specs.Mount, dest string) []specs.Mount {
	var out []specs.Mount
	for _, m := range ms {
		if m.Destination != dest {
			out = append(out, m)
		}
	}
	return out
}

// cgroupFile reads a v1 controller file of the container's cgroup, found
// from /proc/PID/cgroup.
func cgroupFile(t *testing.T, pid int, controller, file string) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 {
			continue
		}
		for _, c := range strings.Split(f[1], ",") {
			if c == controller {
				v, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", controller, f[2], file))
				if err != nil {
					t.Fatal(err)
				}
				return strings.TrimSpace(string(v))
			}
		}
	}
	t.Fatalf("no %s cgroup for %d", controller, pid)
	return ""
}

// blkioWeights: this kernel's v1 blkio hierarchy has weight files.
func blkioWeights() bool {
	for _, f := range []string{"blkio.weight", "blkio.bfq.weight"} {
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/blkio", f)); err == nil {
			return true
		}
	}
	return false
}

func TestCgroupResources(t *testing.T) {
	needV1(t)
	e := newEnv(t, "sleep", "60")
	limit, res, swap := int64(64<<20), int64(32<<20), int64(128<<20)
	shares, quota, period := uint64(512), int64(50000), uint64(100000)
	pids := int64(42)
	weight := uint16(300)
	e.spec.Linux.Resources = &specs.LinuxResources{
		Devices: e.spec.Linux.Resources.Devices,
		Memory:  &specs.LinuxMemory{Limit: &limit, Reservation: &res, Swap: &swap},
		CPU:     &specs.LinuxCPU{Shares: &shares, Quota: &quota, Period: &period, Cpus: "0", Mems: "0"},
		Pids:    &specs.LinuxPids{Limit: &pids},
		BlockIO: &specs.LinuxBlockIO{Weight: &weight},
	}
	if !blkioWeights() {
		// A kernel without BFQ (or CFQ) has no weights: the weight is
		// refused, by name, and the rest is tested without it.
		e.write()
		r := e.brig("create", "--bundle", e.bundle, e.id)
		if r.code == 0 || !strings.Contains(r.stderr, "linux.resources.blockIO.weight") {
			t.Fatalf("a weight without weights: exit %d, %q", r.code, r.stderr)
		}
		e.spec.Linux.Resources.BlockIO = nil
	}
	pid := running(t, e)
	for _, c := range []struct{ ctl, file, want string }{
		{"memory", "memory.limit_in_bytes", strconv.FormatInt(limit, 10)},
		{"memory", "memory.soft_limit_in_bytes", strconv.FormatInt(res, 10)},
		{"cpu", "cpu.shares", "512"},
		{"cpu", "cpu.cfs_quota_us", "50000"},
		{"cpu", "cpu.cfs_period_us", "100000"},
		{"cpuset", "cpuset.cpus", "0"},
		{"pids", "pids.max", "42"},
	} {
		if got := cgroupFile(t, pid, c.ctl, c.file); got != c.want {
			t.Errorf("%s = %q, want %q", c.file, got, c.want)
		}
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"); err == nil {
		if got := cgroupFile(t, pid, "memory", "memory.memsw.limit_in_bytes"); got != strconv.FormatInt(swap, 10) {
			t.Errorf("memsw = %s", got)
		}
	}
	if _, err := os.Stat("/sys/fs/cgroup/blkio/blkio.weight"); err == nil {
		if got := cgroupFile(t, pid, "blkio", "blkio.weight"); got != "300" {
			t.Errorf("blkio.weight = %s", got)
		}
	} else if _, err := os.Stat("/sys/fs/cgroup/blkio/blkio.bfq.weight"); err == nil {
		if got := cgroupFile(t, pid, "blkio", "blkio.bfq.weight"); !strings.Contains(got, "300") {
			t.Errorf("blkio.bfq.weight = %s", got)
		}
	}
	// update changes them on the running container.
	if r := e.brig("update", "--memory", "96m", "--pids-limit", "7", "--cpu-shares", "256", e.id); r.code != 0 {
		t.Fatalf("update: %s", r.stderr)
	}
	if got := cgroupFile(t, pid, "memory", "memory.limit_in_bytes"); got != strconv.Itoa(96<<20) {
		t.Errorf("after update memory.limit_in_bytes = %s", got)
	}
	if got := cgroupFile(t, pid, "pids", "pids.max"); got != "7" {
		t.Errorf("after update pids.max = %s", got)
	}
	r := e.brigIn([]byte(`{"pids":{"limit":9}}`), "update", "--resources", "-", e.id)
	if r.code != 0 {
		t.Fatalf("update --resources -: %s", r.stderr)
	}
	if got := cgroupFile(t, pid, "pids", "pids.max"); got != "9" {
		t.Errorf("after update --resources pids.max = %s", got)
	}
	// events --stats reports the cgroup.
	r = e.brig("events", "--stats", e.id)
	var ev map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &ev); err != nil || ev["type"] != "stats" {
		t.Errorf("events --stats: %s (%v)", r.stdout, err)
	}
}

func TestPidsLimitEnforced(t *testing.T) {
	e := newEnv(t, "sh", "-c", "for i in 1 2 3 4 5 6 7 8; do sleep 5 & done 2>&1; wait; echo done")
	n := int64(4)
	e.spec.Linux.Resources.Pids = &specs.LinuxPids{Limit: &n}
	r := e.run()
	contains(t, r.stdout+r.stderr, "can't fork", "forks beyond pids.max fail")
}

func TestCgroupRemovedOnDelete(t *testing.T) {
	e := newEnv(t, "sleep", "60")
	pid := running(t, e)
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if !strings.Contains(string(data), "/brigtest/"+e.id) {
		t.Fatalf("container not in its cgroup: %s", data)
	}
	if r := e.brig("delete", "-f", e.id); r.code != 0 {
		t.Fatal(r.stderr)
	}
	for _, ctl := range []string{"memory", "pids", "cpu", "cpuset", "devices", "freezer", "blkio"} {
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", ctl, "brigtest", e.id)); err == nil {
			t.Errorf("%s cgroup remains after delete", ctl)
		}
	}
}

func TestMemoryLimitOOMKills(t *testing.T) {
	e := newEnv(t, "sh", "-c", "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done")
	limit := int64(16 << 20)
	e.spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
	r := e.run()
	if r.code != 137 {
		t.Errorf("exceeding memory.limit: exit %d, want 137 (SIGKILL by the OOM killer)", r.code)
	}
}

func TestHugetlbLimit(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/mm/hugepages/hugepages-2048kB"); err != nil {
		t.Skip("no 2MB huge pages on this kernel")
	}
	e := newEnv(t, "sleep", "60")
	e.spec.Linux.Resources.HugepageLimits = []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}}
	pid := running(t, e)
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	var file string
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[1] == "hugetlb" {
			file = filepath.Join("/sys/fs/cgroup/hugetlb", f[2], "hugetlb.2MB.limit_in_bytes")
		}
		if f[0] == "0" && f[1] == "" && file == "" {
			// hybrid or v2: hugetlb lives on the v2 hierarchy
			base := "/sys/fs/cgroup/unified"
			if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
				base = "/sys/fs/cgroup"
			}
			file = filepath.Join(base, f[2], "hugetlb.2MB.max")
		}
	}
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("hugetlb limit file: %v", err)
	}
	if strings.TrimSpace(string(got)) != strconv.Itoa(4<<20) {
		t.Errorf("%s = %s, want %d", file, got, 4<<20)
	}
}

func TestEventsReportOOM(t *testing.T) {
	e := newEnv(t, "sh", "-c", "sleep 0.5; x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done & sleep 60")
	limit := int64(16 << 20)
	e.spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
	running(t, e)
	outf := filepath.Join(t.TempDir(), "events")
	f, _ := os.Create(outf)
	defer f.Close()
	cmd := exec.Command(e.bin, "--root", e.root, "events", "--interval", "1s", e.id)
	cmd.Stdout = f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		data, _ := os.ReadFile(outf)
		if strings.Contains(string(data), `"type":"oom"`) {
			contains(t, string(data), `"type":"stats"`, "stats events too")
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	data, _ := os.ReadFile(outf)
	t.Errorf("no oom event: %s", data)
}

// TestCreatedInitInItsCgroup: the move into the container's cgroup runs
// beside the init's start-up, and the init makes the cgroup namespace once
// it is placed. Before start, every thread of the waiting init is in the
// container's cgroup in every hierarchy, /proc/PID/ns/cgroup is the new
// namespace, and a process exec'd into the created container sees that
// namespace rooted at the container's cgroup. Both inits: the Go init's
// threads are all placed; the C init has one thread (no Go runtime).
func TestCreatedInitInItsCgroup(t *testing.T) {
	for _, mode := range []string{"c", "go"} {
		t.Run(mode, func(t *testing.T) { createdInitInItsCgroup(t, mode) })
	}
}

func createdInitInItsCgroup(t *testing.T, mode string) {
	e := newEnv(t, "sleep", "60")
	e.extra = []string{"BRIG_INIT=" + mode}
	e.create()
	pid := e.pid()
	host, _ := os.Readlink("/proc/self/ns/cgroup")
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/cgroup", pid))
	if err != nil || ns == host {
		t.Errorf("created init's cgroup namespace %q (host %q, %v)", ns, host, err)
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	switch {
	case err != nil:
		t.Fatal(err)
	case mode == "go" && len(tasks) < 2:
		t.Fatalf("the Go init's threads: %d; a Go runtime has several", len(tasks))
	case mode == "c" && len(tasks) != 1:
		t.Fatalf("the C init's threads: %d; it runs no Go runtime", len(tasks))
	}
	for _, task := range tasks {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/cgroup", pid, task.Name()))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Fields(string(data))
		if len(lines) == 0 {
			t.Fatalf("thread %s: empty /proc cgroup file", task.Name())
		}
		for _, l := range lines {
			f := strings.SplitN(l, ":", 3)
			if len(f) != 3 {
				continue
			}
			if !strings.HasSuffix(f[2], "/brigtest/"+e.id) {
				t.Errorf("thread %s of the created init: %s, want the container's cgroup", task.Name(), l)
			}
		}
	}
	r := e.brig("exec", e.id, "cat", "/proc/self/cgroup")
	if r.code != 0 {
		t.Fatalf("exec in the created container: %s", r.stderr)
	}
	for _, l := range strings.Fields(r.stdout) {
		if f := strings.SplitN(l, ":", 3); len(f) == 3 && f[2] != "/" {
			t.Errorf("inside the container's cgroup namespace: %s, want it rooted at its cgroup (/)", l)
		}
	}
}

// TestDeviceRulesInListedOrder: on cgroup v1 the device rules are applied
// as listed (runtime-spec: "in the listed order"), so devices.list starts
// with the container's own rules, in order, before the defaults; the
// rules bind (a listed device opens, an unlisted one doesn't). runc
// 1.1.5 lists them in the library's own order (runtime-tools'
// linux_cgroups_devices fails for it).
func TestDeviceRulesInListedOrder(t *testing.T) {
	needV1(t)
	e := newEnv(t, "sleep", "60")
	n := func(v int64) *int64 { return &v }
	e.spec.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: n(10), Minor: n(229), Access: "rwm"},
		{Allow: true, Type: "b", Major: n(8), Minor: n(20), Access: "rw"},
		{Allow: true, Type: "b", Major: n(10), Minor: n(200), Access: "r"},
	}
	pid := running(t, e)
	lines := strings.Split(cgroupFile(t, pid, "devices", "devices.list"), "\n")
	want := []string{"c 10:229 rwm", "b 8:20 rw", "b 10:200 r"}
	if len(lines) < len(want)+1 || !reflect.DeepEqual(lines[:3], want) {
		t.Fatalf("devices.list starts %q, want %q", lines, want)
	}
	// The defaults follow: /dev/null is usable, an unlisted device is not.
	if r := e.brig("exec", e.id, "sh", "-c", "echo x > /dev/null && echo ok"); r.code != 0 || !strings.Contains(r.stdout, "ok") {
		t.Errorf("/dev/null: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	if r := e.brig("exec", e.id, "sh", "-c", "mknod /tmp/sda b 8 0 && head -c1 /tmp/sda"); r.code == 0 {
		t.Errorf("an unlisted block device opened: %s", r.stdout)
	}
}

// process.execCPUAffinity (runtime-spec 1.2; the runc 1.1.5 here predates
// it): an exec'd process runs on the final CPU list, the config's by
// default, its own process.json's when given; the container's own process
// is not affected; a bad list is refused naming the field.
func TestExecCPUAffinity(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("needs two CPUs")
	}
	e := newEnv(t, "sleep", "60")
	e.spec.Process.ExecCPUAffinity = &specs.CPUAffinity{Initial: "0", Final: "1"}
	pid := running(t, e)
	cpus := func(status string) string {
		for _, l := range strings.Split(status, "\n") {
			if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
				return strings.TrimSpace(v)
			}
		}
		return ""
	}
	own, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if got, want := cpus(string(own)), fmt.Sprintf("0-%d", runtime.NumCPU()-1); got != want {
		t.Errorf("the container's own process runs on %q, want %q", got, want)
	}
	r := e.brig("exec", e.id, "cat", "/proc/self/status")
	if r.code != 0 || cpus(r.stdout) != "1" {
		t.Errorf("exec'd with the config's default: CPUs %q (%d %s), want 1", cpus(r.stdout), r.code, r.stderr)
	}
	proc := *e.spec.Process
	proc.Args = []string{"cat", "/proc/self/status"}
	proc.ExecCPUAffinity = &specs.CPUAffinity{Final: "0"}
	pf := filepath.Join(t.TempDir(), "process.json")
	data, _ := json.Marshal(proc)
	os.WriteFile(pf, data, 0o644)
	if r := e.brig("exec", "--process", pf, e.id); r.code != 0 || cpus(r.stdout) != "0" {
		t.Errorf("exec'd with its own: CPUs %q (%d %s), want 0", cpus(r.stdout), r.code, r.stderr)
	}
	proc.ExecCPUAffinity = &specs.CPUAffinity{Final: "1-x"}
	data, _ = json.Marshal(proc)
	os.WriteFile(pf, data, 0o644)
	if r := e.brig("exec", "--process", pf, e.id); r.code == 0 || !strings.Contains(r.stderr, "process.execCPUAffinity.final") {
		t.Errorf("a bad CPU list: exit %d, %q; want a refusal naming the field", r.code, r.stderr)
	}
}
