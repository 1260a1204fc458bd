package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// dockerd is a private Docker daemon (its own data root, exec root and
// socket) with brig added as a runtime; stopped by pid at the end.
type dockerd struct {
	dir, sock string
	cmd       *exec.Cmd
}

var (
	dockerBridgeMade bool
	dockerOnce       sync.Once
	dockerD          *dockerd
	dockerErr        error
)

const (
	dockerImage = "brigtest-busybox:latest"
	// dockerBridge is the default bridge network's device, made by the
	// test (dockerd runs without iptables rules) and removed at the end.
	dockerBridge   = "brigtest0"
	dockerBridgeIP = "10.213.77.1"
)

func startDocker(t *testing.T) *dockerd {
	t.Helper()
	if _, err := exec.LookPath("dockerd"); err != nil {
		t.Skip("dockerd not installed (make deps installs docker.io)")
	}
	dockerOnce.Do(func() {
		dir, err := os.MkdirTemp(workDir, "docker-")
		if err != nil {
			dockerErr = err
			return
		}
		d := &dockerd{dir: dir, sock: filepath.Join(dir, "docker.sock")}
		for _, c := range [][]string{
			{"link", "add", dockerBridge, "type", "bridge"},
			{"addr", "add", dockerBridgeIP + "/24", "dev", dockerBridge},
			{"link", "set", dockerBridge, "up"},
		} {
			if out, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
				dockerErr = fmt.Errorf("ip %v: %v: %s", c, err, out)
				exec.Command("ip", "link", "del", dockerBridge).Run()
				return
			}
		}
		dockerBridgeMade = true
		d.cmd = exec.Command("dockerd", "--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
			"--pidfile", filepath.Join(dir, "pid"), "-H", "unix://"+d.sock, "--bridge", dockerBridge, "--iptables=false",
			"--ip-masq=false", "--ip6tables=false", "--storage-driver", "vfs", "--add-runtime", "brig="+brigBin)
		logf, _ := os.Create(filepath.Join(dir, "dockerd.log"))
		d.cmd.Stdout, d.cmd.Stderr = logf, logf
		if err := d.cmd.Start(); err != nil {
			dockerErr = err
			return
		}
		for i := 0; i < 150; i++ {
			if exec.Command("docker", "-H", "unix://"+d.sock, "version").Run() == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		tar := exec.Command("tar", "-C", rootfs, "-c", ".")
		imp := exec.Command("docker", "-H", "unix://"+d.sock, "import", "-", dockerImage)
		imp.Stdin, _ = tar.StdoutPipe()
		if err := imp.Start(); err != nil {
			dockerErr = err
			return
		}
		tar.Run()
		if err := imp.Wait(); err != nil {
			data, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
			dockerErr = fmt.Errorf("docker import: %v\n%s", err, data)
			return
		}
		dockerD = d
	})
	if dockerErr != nil {
		t.Fatalf("dockerd: %v", dockerErr)
	}
	return dockerD
}

// stopDocker is called from TestMain's cleanup.
func stopDocker() {
	if dockerBridgeMade {
		defer exec.Command("ip", "link", "del", dockerBridge).Run()
	}
	if dockerD == nil {
		return
	}
	if out, _ := exec.Command("docker", "-H", "unix://"+dockerD.sock, "ps", "-aq").Output(); len(out) > 0 {
		exec.Command("docker", append([]string{"-H", "unix://" + dockerD.sock, "rm", "-f"}, strings.Fields(string(out))...)...).Run()
	}
	dockerD.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { dockerD.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		dockerD.cmd.Process.Kill()
		<-done
	}
	// dockerd bind-mounts its data root on itself and, killed, leaves it
	// (with the mounts under it): the work directory couldn't go.
	data, _ := os.ReadFile("/proc/self/mountinfo")
	var under []string
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], dockerD.dir+"/") {
			under = append(under, f[4])
		}
	}
	for i := len(under) - 1; i >= 0; i-- {
		syscall.Unmount(under[i], syscall.MNT_DETACH)
	}
	// dockerd's cgroup parent, empty once its containers are gone.
	ctls, _ := os.ReadDir("/sys/fs/cgroup")
	for _, c := range ctls {
		os.Remove(filepath.Join("/sys/fs/cgroup", c.Name(), "docker"))
	}
	os.Remove("/sys/fs/cgroup/docker")
}

func (d *dockerd) docker(args ...string) result {
	return d.dockerIn("", args...)
}

func (d *dockerd) dockerIn(stdin string, args ...string) result {
	cmd := exec.Command("docker", append([]string{"-H", "unix://" + d.sock}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	return runCmd(cmd)
}

// engineCase is one `docker run` / `podman run` case: flags before the
// image, a shell command, and what it must print and exit with.
type engineCase struct {
	name string
	args []string
	cmd  string
	want string
	code int
}

// engineMatrix is the run matrix Docker and Podman share (both take the
// docker run flags); dir holds the files the cases refer to.
func engineMatrix(dir string) []engineCase {
	seccompFile := filepath.Join(dir, "deny-mkdir.json")
	os.WriteFile(seccompFile, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644)
	vol := filepath.Join(dir, "vol")
	os.MkdirAll(vol, 0o755)
	os.WriteFile(filepath.Join(vol, "f"), []byte("vol\n"), 0o644)
	disk := rootDisk()
	return []engineCase{
		{"exit code", nil, "exit 3", "", 3},
		{"stdin", []string{"-i"}, "cat", "from stdin", 0},
		{"tty", []string{"-t"}, "tty", "/dev/pts/0", 0},
		{"env workdir user", []string{"-e", "A=b", "-w", "/tmp", "-u", "1000:1000"}, "echo $A; pwd; id -u; id -g", "b\n/tmp\n1000\n1000", 0},
		{"read-only", []string{"--read-only"}, "touch /x 2>&1", "Read-only file system", 1},
		{"volume rw and ro", []string{"-v", vol + ":/v", "-v", vol + ":/vro:ro"}, "cat /v/f; echo x > /vro/g 2>&1", "vol\n", 1},
		{"tmpfs", []string{"--read-only", "--tmpfs", "/scratch"}, "echo ok > /scratch/a && cat /scratch/a", "ok", 0},
		{"memory", []string{"--memory", "64m", "--memory-reservation", "32m", "--memory-swap", "128m"},
			"cd /sys/fs/cgroup/memory; cat memory.limit_in_bytes memory.soft_limit_in_bytes memory.memsw.limit_in_bytes 2>/dev/null", "67108864\n33554432", 0},
		{"cpus", []string{"--cpus", "0.5", "--cpu-shares", "512", "--cpuset-cpus", "0"},
			"cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpuset/cpuset.cpus", "50000\n512\n0", 0},
		{"pids-limit", []string{"--pids-limit", "33"}, "cat /sys/fs/cgroup/pids/pids.max", "33", 0},
		{"blkio", []string{"--blkio-weight", "300", "--device-read-bps", disk + ":1mb", "--device-write-bps", disk + ":2mb",
			"--device-read-iops", disk + ":50", "--device-write-iops", disk + ":100"},
			"cd /sys/fs/cgroup/blkio; cat blkio.throttle.read_bps_device blkio.throttle.write_bps_device blkio.throttle.read_iops_device blkio.throttle.write_iops_device; cat blkio.weight blkio.bfq.weight 2>/dev/null | head -1", "1048576", 0},
		{"device", []string{"--device", "/dev/loop-control"}, "ls -l /dev/loop-control | cut -c1", "c", 0},
		{"cap-drop cap-add", []string{"--cap-drop", "ALL", "--cap-add", "CHOWN"}, "grep CapEff /proc/self/status", "0000000000000001", 0},
		{"no-new-privileges", []string{"--security-opt", "no-new-privileges"}, "grep NoNewPrivs /proc/self/status", "NoNewPrivs:\t1", 0},
		{"seccomp file", []string{"--security-opt", "seccomp=" + seccompFile}, "mkdir /tmp/d 2>&1", "Operation not permitted", 1},
		{"seccomp unconfined", []string{"--security-opt", "seccomp=unconfined"}, "grep Seccomp: /proc/self/status", "Seccomp:\t0", 0},
		{"default seccomp", nil, "grep Seccomp: /proc/self/status", "Seccomp:\t2", 0},
		{"hostname", []string{"--hostname", "dk1"}, "hostname", "dk1", 0},
		{"network none", []string{"--network", "none"}, "ls /sys/class/net", "lo", 0},
	}
}

// rootDisk is the block device holding the root filesystem (the whole
// disk, not a partition), for the I/O throttle cases.
func rootDisk() string {
	var st syscall.Stat_t
	if err := syscall.Stat("/", &st); err != nil {
		return "/dev/null"
	}
	sys := fmt.Sprintf("/sys/dev/block/%d:%d", st.Dev>>8&0xfff, st.Dev&0xff|st.Dev>>12&0xfff00)
	if _, err := os.Stat(filepath.Join(sys, "partition")); err == nil {
		sys = filepath.Join(sys, "..")
	}
	real, err := filepath.EvalSymlinks(sys)
	if err != nil {
		return "/dev/null"
	}
	return "/dev/" + filepath.Base(real)
}

// runEngineMatrix runs each case with brig and with runc through run (an
// engine's `run --rm --runtime RT FLAGS IMAGE sh -c CMD`) and expects the
// same output and exit code.
func runEngineMatrix(t *testing.T, cases []engineCase, run func(rt string, tc engineCase) result) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, r := run("brig", tc), run("runc", tc)
			if b.code != tc.code {
				t.Errorf("brig: exit %d, want %d (stderr %s)", b.code, tc.code, b.stderr)
			}
			contains(t, b.stdout, tc.want, "brig")
			if b.code != r.code || b.stdout != r.stdout {
				t.Errorf("brig and runc differ:\nbrig (%d): %q\nrunc (%d): %q", b.code, b.stdout, r.code, r.stdout)
			}
		})
	}
}

// TestDocker runs the docker run matrix with brig and with runc and
// expects the same results.
func TestDocker(t *testing.T) {
	d := startDocker(t)
	cases := append(engineMatrix(t.TempDir()), engineCase{"init", []string{"--init"}, "cat /proc/1/cmdline | tr '\\0' ' '", "init", 0})
	runEngineMatrix(t, cases, func(rt string, tc engineCase) result {
		args := append(append([]string{"run", "--rm", "--runtime", rt}, tc.args...), dockerImage, "sh", "-c", tc.cmd)
		return d.dockerIn("from stdin\n", args...)
	})
}

// TestDockerBridgeAndRestart: the default bridge network (a veth into the
// daemon's bridge, an address from its subnet, the host reachable) and a
// restart policy, with brig and with runc.
func TestDockerBridgeAndRestart(t *testing.T) {
	d := startDocker(t)
	for _, rt := range []string{"brig", "runc"} {
		r := d.docker("run", "--rm", "--runtime", rt, dockerImage, "sh", "-c",
			"ip -4 addr show eth0 | grep -o 'inet 10.213.77.[0-9]*'; ping -c1 -W2 "+dockerBridgeIP+" >/dev/null && echo reached")
		if r.code != 0 || !strings.Contains(r.stdout, "inet 10.213.77.") || !strings.Contains(r.stdout, "reached") {
			t.Errorf("%s: bridge network: exit %d %q %s", rt, r.code, r.stdout, r.stderr)
		}
		name := "restart-" + rt
		if r := d.docker("run", "-d", "--name", name, "--restart", "on-failure:2", "--runtime", rt, dockerImage, "sh", "-c", "exit 1"); r.code != 0 {
			t.Fatalf("%s: run --restart: %s", rt, r.stderr)
		}
		defer d.docker("rm", "-f", name)
		state := ""
		for i := 0; i < 300; i++ {
			state = strings.TrimSpace(d.docker("inspect", "-f", "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}", name).stdout)
			if state == "2 exited 1" {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if state != "2 exited 1" {
			t.Errorf("%s: restart policy on-failure:2: %q, want 2 restarts then exited 1", rt, state)
		}
	}
	if out, _ := exec.Command("ip", "-o", "link", "show", "master", dockerBridge).Output(); len(out) > 0 {
		t.Errorf("veths left on the bridge: %s", out)
	}
}

func TestDockerLifecycle(t *testing.T) {
	d := startDocker(t)
	if r := d.docker("run", "-d", "--name", "lc", "--runtime", "brig", dockerImage, "sh", "-c", "echo started; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done"); r.code != 0 {
		t.Fatalf("run -d: %s", r.stderr)
	}
	defer d.docker("rm", "-f", "lc")
	if r := d.docker("exec", "-u", "1000", "-e", "Z=1", "lc", "sh", "-c", "id -u; echo $Z"); r.stdout != "1000\n1\n" {
		t.Errorf("exec: %q %s", r.stdout, r.stderr)
	}
	if r := d.docker("exec", "-t", "lc", "tty"); !strings.Contains(r.stdout, "/dev/pts/") {
		t.Errorf("exec -t: %q %s", r.stdout, r.stderr)
	}
	if r := d.docker("exec", "-d", "lc", "sh", "-c", "echo detached > /tmp/d"); r.code != 0 {
		t.Errorf("exec -d: %s", r.stderr)
	}
	got := ""
	for i := 0; i < 50 && got != "detached"; i++ {
		got = strings.TrimSpace(d.docker("exec", "lc", "cat", "/tmp/d").stdout)
		time.Sleep(50 * time.Millisecond)
	}
	if got != "detached" {
		t.Errorf("exec -d did not run: %q", got)
	}
	if r := d.docker("top", "lc"); !strings.Contains(r.stdout, "sleep") && !strings.Contains(r.stdout, "sh -c") {
		t.Errorf("top: %q %s", r.stdout, r.stderr)
	}
	if r := d.docker("pause", "lc"); r.code != 0 {
		t.Errorf("pause: %s", r.stderr)
	}
	if r := d.docker("inspect", "-f", "{{.State.Status}}", "lc"); strings.TrimSpace(r.stdout) != "paused" {
		t.Errorf("status after pause: %q", r.stdout)
	}
	if r := d.docker("unpause", "lc"); r.code != 0 {
		t.Errorf("unpause: %s", r.stderr)
	}
	if r := d.docker("update", "--memory", "48m", "--memory-swap", "96m", "lc"); r.code != 0 {
		t.Errorf("update: %s", r.stderr)
	}
	if r := d.docker("exec", "lc", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"); strings.TrimSpace(r.stdout) != "50331648" {
		t.Errorf("memory after update: %q", r.stdout)
	}
	if r := d.docker("stats", "--no-stream", "--format", "{{.MemUsage}}", "lc"); !strings.Contains(r.stdout, "48MiB") {
		t.Errorf("stats: %q %s", r.stdout, r.stderr)
	}
	if r := d.docker("stop", "-t", "5", "lc"); r.code != 0 {
		t.Errorf("stop: %s", r.stderr)
	}
	if r := d.docker("logs", "lc"); !strings.Contains(r.stdout, "started") || !strings.Contains(r.stdout, "bye") {
		t.Errorf("logs (SIGTERM reached the trap): %q", r.stdout)
	}
	if r := d.docker("inspect", "-f", "{{.State.ExitCode}}", "lc"); strings.TrimSpace(r.stdout) != "0" {
		t.Errorf("exit code after stop: %q", r.stdout)
	}
	if r := d.docker("start", "lc"); r.code != 0 {
		t.Errorf("start again: %s", r.stderr)
	}
	pid1 := d.docker("inspect", "-f", "{{.State.Pid}}", "lc").stdout
	if r := d.docker("restart", "-t", "2", "lc"); r.code != 0 {
		t.Errorf("restart: %s", r.stderr)
	}
	if pid2 := d.docker("inspect", "-f", "{{.State.Status}} {{.State.Pid}}", "lc").stdout; !strings.HasPrefix(pid2, "running ") || strings.Fields(pid2)[1] == strings.TrimSpace(pid1) {
		t.Errorf("after restart: %q (pid before %q)", pid2, pid1)
	}
	if r := d.docker("kill", "-s", "KILL", "lc"); r.code != 0 {
		t.Errorf("kill: %s", r.stderr)
	}
	if r := d.docker("wait", "lc"); strings.TrimSpace(r.stdout) != "137" {
		t.Errorf("wait after kill -s KILL: %q", r.stdout)
	}
	// OOM kill as Docker reports it.
	r := d.docker("run", "--name", "oom", "--runtime", "brig", "--memory", "16m", "--memory-swap", "16m", dockerImage, "sh", "-c", "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done")
	defer d.docker("rm", "-f", "oom")
	if r.code != 137 {
		t.Errorf("oom: exit %d", r.code)
	}
	if r := d.docker("inspect", "-f", "{{.State.OOMKilled}}", "oom"); strings.TrimSpace(r.stdout) != "true" {
		t.Errorf("OOMKilled: %q", r.stdout)
	}
	// rm -f of a running container.
	if r := d.docker("run", "-d", "--name", "rmf", "--runtime", "brig", dockerImage, "sleep", "60"); r.code != 0 {
		t.Fatalf("run -d: %s", r.stderr)
	}
	id := strings.TrimSpace(d.docker("inspect", "-f", "{{.Id}}", "rmf").stdout)
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/memory/docker", id)); err != nil {
		t.Errorf("running container's cgroup: %v", err)
	}
	if r := d.docker("rm", "-f", "rmf"); r.code != 0 {
		t.Errorf("rm -f: %s", r.stderr)
	}
	if r := d.docker("inspect", "rmf"); r.code == 0 {
		t.Errorf("container still known after rm -f")
	}
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/memory/docker", id)); err == nil {
		t.Errorf("cgroup left after rm -f")
	}
	// --privileged: brig grants what this host's bounding set holds (runc fails here).
	if r := d.docker("run", "--rm", "--runtime", "brig", "--privileged", dockerImage, "true"); r.code != 0 {
		t.Errorf("--privileged: %s", r.stderr)
	}
}
