package integration

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// containerd is a private containerd (own root, state and sockets) whose
// CRI plugin knows two runtime handlers, brig and runc, both through the
// runc v2 shim; brig's handler sets the shim's BinaryName to brig.
type containerd struct {
	dir, sock string
	cmd       *exec.Cmd
	// libcni keeps its result cache in /var/lib/cni, which containerd
	// 1.6 can't move; removed at the end if it wasn't there before.
	cniCacheNew bool
}

var (
	ctdOnce sync.Once
	ctdD    *containerd
	ctdErr  error
)

const (
	ctdNS        = "brigtest" // ctr's namespace
	ctdImage     = "docker.io/brigtest/busybox:1"
	ctdPause     = "docker.io/brigtest/pause:1" // the CRI sandbox image
	criCgroupDir = "brigtest-cri"               // pods' cgroup parent
	criBridge    = "brigcni0"                   // pods' network: 10.214.99.0/24, the host at .1
	criSubnet    = "10.214.99"
)

// cniConfig is the pods' network: the bridge plugin on criBridge.
func cniConfig(dir string) string {
	return fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "brigtest", "plugins": [
  {"type": "bridge", "bridge": %q, "isGateway": false, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "%s.0/24", "rangeStart": "%s.10"}]], "dataDir": %q}}]}`,
		criBridge, criSubnet, criSubnet, filepath.Join(dir, "cni-ipam"))
}

func containerdConfig(dir string) string {
	return fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
[grpc]
  address = %[3]q
[ttrpc]
  address = "%[3]s.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  # A pod sandbox asks for oom_score_adj -998, which needs CAP_SYS_RESOURCE.
  restrict_oom_score_adj = true
  sandbox_image = %[4]q
  [plugins."io.containerd.grpc.v1.cri".cni]
    # A private CNI configuration: a bridge the tests make (criBridge),
    # host-local addresses kept in the private directory, no gateway (so
    # no IP forwarding is switched on) and no masquerading.
    conf_dir = "%[8]s"
    bin_dir = "/usr/lib/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = %[5]q
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.brig]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.brig.options]
        BinaryName = %[6]q
        Root = %[7]q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), filepath.Join(dir, "containerd.sock"), ctdPause,
		filepath.Join(dir, "runc-root"), brigBin, filepath.Join(dir, "brig-root"), filepath.Join(dir, "cni"))
}

func startContainerd(t *testing.T) *containerd {
	t.Helper()
	if _, err := exec.LookPath("containerd"); err != nil {
		t.Skip("containerd not installed (make deps installs it)")
	}
	ctdOnce.Do(func() {
		dir, err := os.MkdirTemp(workDir, "containerd-")
		if err != nil {
			ctdErr = err
			return
		}
		d := &containerd{dir: dir, sock: filepath.Join(dir, "containerd.sock")}
		if _, err := os.Stat("/var/lib/cni"); err != nil {
			d.cniCacheNew = true
		}
		cfg := filepath.Join(dir, "config.toml")
		if err := os.WriteFile(cfg, []byte(containerdConfig(dir)), 0o644); err != nil {
			ctdErr = err
			return
		}
		os.MkdirAll(filepath.Join(dir, "cni"), 0o755)
		if err := os.WriteFile(filepath.Join(dir, "cni", "10-brigtest.conflist"), []byte(cniConfig(dir)), 0o644); err != nil {
			ctdErr = err
			return
		}
		for _, c := range [][]string{
			{"link", "add", criBridge, "type", "bridge"},
			{"addr", "add", criSubnet + ".1/24", "dev", criBridge},
			{"link", "set", criBridge, "up"},
		} {
			if out, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
				ctdErr = fmt.Errorf("ip %v: %v %s", c, err, out)
				return
			}
		}
		d.cmd = exec.Command("containerd", "--config", cfg)
		logf, _ := os.Create(filepath.Join(dir, "containerd.log"))
		d.cmd.Stdout, d.cmd.Stderr = logf, logf
		if err := d.cmd.Start(); err != nil {
			ctdErr = err
			return
		}
		ctdD = d
		for i := 0; i < 150; i++ {
			if d.ctr("version").code == 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		for _, img := range []struct {
			name       string
			entrypoint []string
		}{
			{ctdImage, []string{"/bin/sh"}},
			{ctdPause, []string{"/bin/sleep", "2147483647"}},
		} {
			archive := filepath.Join(dir, strings.NewReplacer("/", "_", ":", "_").Replace(img.name)+".tar")
			if err := ociArchive(archive, rootfs, img.name, img.entrypoint); err != nil {
				ctdErr = err
				return
			}
			// ctr's own namespace and the CRI's.
			for _, ns := range []string{ctdNS, "k8s.io"} {
				if r := d.ctr("-n", ns, "images", "import", archive); r.code != 0 {
					ctdErr = fmt.Errorf("ctr images import %s: %s", img.name, r.stderr)
					return
				}
			}
		}
	})
	if ctdErr != nil {
		t.Fatalf("containerd: %v", ctdErr)
	}
	return ctdD
}

func (d *containerd) ctr(args ...string) result {
	return runCmd(exec.Command("ctr", append([]string{"--address", d.sock}, args...)...))
}

func (d *containerd) crictl(args ...string) result {
	bin := crictlBin()
	ep := "unix://" + d.sock
	conf := filepath.Join(d.dir, "crictl.yaml") // empty: the flags say it all
	if _, err := os.Stat(conf); err != nil {
		os.WriteFile(conf, nil, 0o644)
	}
	return runCmd(exec.Command(bin, append([]string{"--config", conf, "--runtime-endpoint", ep, "--image-endpoint", ep, "--timeout", "30s"}, args...)...))
}

func runCmd(cmd *exec.Cmd) result {
	return runCmdFor(cmd, 90*time.Second)
}

// runCmdFor is runCmd with a limit of d.
func runCmdFor(cmd *exec.Cmd, d time.Duration) result {
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	// Once the command is killed, a process it left holding the output
	// must not hold this up.
	cmd.WaitDelay = 10 * time.Second
	done := make(chan struct{})
	if err := cmd.Start(); err != nil {
		return result{stderr: err.Error(), code: -1}
	}
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		return result{stdout: out.String(), stderr: errb.String() + "\n(timed out)", code: -1}
	}
	return result{stdout: out.String(), stderr: errb.String(), code: cmd.ProcessState.ExitCode()}
}

// stopContainerd is called from TestMain's cleanup: it removes every pod and
// container, stops the daemon and then any shim it left, by the pids the
// shims recorded, and detaches mounts left under its directory.
func stopContainerd() {
	d := ctdD
	if d == nil {
		return
	}
	if d.crictl("version").code == 0 {
		d.crictl("rmp", "-a", "-f")
	}
	for _, ns := range []string{ctdNS, "k8s.io"} {
		if r := d.ctr("-n", ns, "tasks", "ls", "-q"); r.code == 0 {
			for _, id := range strings.Fields(r.stdout) {
				d.ctr("-n", ns, "tasks", "kill", "-s", "KILL", id)
				d.ctr("-n", ns, "tasks", "delete", "-f", id)
			}
		}
		if r := d.ctr("-n", ns, "containers", "ls", "-q"); r.code == 0 {
			for _, id := range strings.Fields(r.stdout) {
				d.ctr("-n", ns, "containers", "delete", id)
			}
		}
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		d.cmd.Process.Kill()
		<-done
	}
	// Shims outlive the daemon by design; each wrote its pid in its bundle.
	pids, _ := filepath.Glob(filepath.Join(d.dir, "state", "io.containerd.runtime.v2.task", "*", "*", "shim.pid"))
	for _, p := range pids {
		if data, err := os.ReadFile(p); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && pid > 1 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	exec.Command("ip", "link", "del", criBridge).Run()
	if d.cniCacheNew {
		os.Remove("/var/lib/cni/results") // only when empty: no pod is left
		os.Remove("/var/lib/cni")
	}
	detachMountsUnder(d.dir)
	ctls, _ := os.ReadDir("/sys/fs/cgroup")
	for _, c := range ctls {
		for _, g := range []string{criCgroupDir, ctdNS} {
			removeCgroupTree(filepath.Join("/sys/fs/cgroup", c.Name(), g))
		}
	}
}

// detachMountsUnder lazily unmounts every mount point below dir, deepest first.
func detachMountsUnder(dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			points = append(points, fields[4])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		syscall.Unmount(points[i], syscall.MNT_DETACH)
	}
}

// removeCgroupTree removes a cgroup directory and its children (empty ones).
func removeCgroupTree(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if e.IsDir() {
			removeCgroupTree(filepath.Join(dir, e.Name()))
		}
	}
	os.Remove(dir)
}

// TestContainerdCtr runs containers with `ctr run` through the runc v2 shim
// with brig as its binary, and with runc, expecting the same results.
func TestContainerdCtr(t *testing.T) {
	d := startContainerd(t)
	seccompFile := filepath.Join(d.dir, "deny-mkdir.json")
	os.WriteFile(seccompFile, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644)
	vol := t.TempDir()
	os.WriteFile(filepath.Join(vol, "f"), []byte("vol\n"), 0o644)
	for i, tc := range []struct {
		name string
		args []string // ctr run flags before the image
		cmd  string
		want string
		code int
		tty  bool
	}{
		{"exit code", nil, "exit 3", "", 3, false},
		{"env cwd", []string{"--env", "A=b", "--cwd", "/tmp"}, "echo $A; pwd", "b\n/tmp", 0, false},
		{"read-only", []string{"--read-only"}, "touch /x 2>&1", "Read-only file system", 1, false},
		{"bind mount ro", []string{"--mount", "type=bind,src=" + vol + ",dst=/v,options=rbind:ro"}, "cat /v/f; echo x > /v/g 2>&1", "vol\n", 1, false},
		// ctr's spec mounts no cgroupfs: the test binds the host's
		// hierarchies in and reads the container's own cgroup ($ID).
		{"memory", []string{"--memory-limit", "67108864", "--mount", "type=bind,src=/sys/fs/cgroup/memory/" + ctdNS + ",dst=/cg,options=rbind:ro"}, "cat /cg/$ID/memory.limit_in_bytes", "67108864", 0, false},
		{"cpus", []string{"--cpus", "0.5", "--mount", "type=bind,src=/sys/fs/cgroup/cpu/" + ctdNS + ",dst=/cg,options=rbind:ro"}, "cat /cg/$ID/cpu.cfs_quota_us", "50000", 0, false},
		{"cap-drop", []string{"--cap-drop", "CAP_CHOWN"}, "chown 1 /tmp 2>&1", "Operation not permitted", 1, false},
		{"no-new-privs default", nil, "grep NoNewPrivs /proc/self/status", "NoNewPrivs:\t1", 0, false},
		{"seccomp default", []string{"--seccomp"}, "grep Seccomp: /proc/self/status", "Seccomp:\t2", 0, false},
		{"seccomp profile", []string{"--seccomp", "--seccomp-profile", seccompFile}, "mkdir /tmp/d 2>&1", "Operation not permitted", 1, false},
		{"tty", []string{"--tty"}, "tty", "/dev/pts/0", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			results := map[string]result{}
			for _, rt := range []string{"brig", "runc"} {
				id := fmt.Sprintf("ctr-%s-%d", rt, i)
				args := []string{"-n", ctdNS, "run", "--rm"}
				if rt == "brig" {
					args = append(args, "--runc-binary", brigBin, "--runc-root", filepath.Join(d.dir, "brig-root"))
				}
				args = append(append(args, tc.args...), "--env", "ID="+id, ctdImage, id, "sh", "-c", tc.cmd)
				var r result
				if tc.tty {
					// ctr wants a terminal on its stdin: script(1) gives it one.
					line := "ctr --address " + d.sock
					for _, a := range args {
						line += " '" + a + "'"
					}
					r = runCmd(exec.Command("script", "-qec", line, "/dev/null"))
				} else {
					r = d.ctr(args...)
				}
				r.stdout = strings.ReplaceAll(r.stdout, "\r\n", "\n")
				results[rt] = r
				if ls := d.ctr("-n", ctdNS, "containers", "ls", "-q"); strings.Contains(ls.stdout, id) {
					t.Errorf("%s: container %s left after --rm", rt, id)
				}
			}
			b, r := results["brig"], results["runc"]
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
