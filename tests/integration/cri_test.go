package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The CRI path kubelet takes: crictl (the Kubernetes project's CRI client)
// drives the private containerd's CRI plugin, which runs pods with the
// runtime handler a RuntimeClass names — brig or runc.

func crictlBin() string {
	if p, err := exec.LookPath("crictl"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		return filepath.Join(strings.TrimSpace(string(out)), "bin", "crictl")
	}
	return "crictl"
}

func needCrictl(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(crictlBin()); err != nil {
		t.Skip("crictl not installed (make deps installs it)")
	}
}

// pod is one pod sandbox run through the CRI.
type pod struct {
	t       *testing.T
	d       *containerd
	dir     string
	cfgFile string
	id      string
}

// runPod starts a pod sandbox with the given runtime handler: host network,
// its own pid and ipc namespaces, under criCgroupDir.
func runPod(t *testing.T, d *containerd, handler, name string) *pod {
	t.Helper()
	return runPodIn(t, d, handler, name, 2) // NODE
}

// runPodNet is runPod with a network namespace of the pod's own, on the
// CNI bridge.
func runPodNet(t *testing.T, d *containerd, handler, name string) *pod {
	t.Helper()
	return runPodIn(t, d, handler, name, 0) // POD
}

func runPodIn(t *testing.T, d *containerd, handler, name string, network int) *pod {
	t.Helper()
	dir := t.TempDir()
	cfg := map[string]any{
		"metadata":      map[string]any{"name": name, "namespace": "brigtest", "uid": name + "-uid"},
		"log_directory": dir,
		"linux": map[string]any{
			"cgroup_parent": "/" + criCgroupDir,
			"security_context": map[string]any{
				"namespace_options": map[string]any{"network": network, "pid": 0, "ipc": 0}, // pid, ipc: POD
			},
		},
	}
	p := &pod{t: t, d: d, dir: dir, cfgFile: filepath.Join(dir, "pod.json")}
	writeJSON(t, p.cfgFile, cfg)
	r := d.crictl("runp", "--runtime", handler, p.cfgFile)
	if r.code != 0 {
		t.Fatalf("RunPodSandbox (%s): %s", handler, r.stderr)
	}
	p.id = strings.TrimSpace(r.stdout)
	t.Cleanup(func() {
		d.crictl("stopp", p.id)
		d.crictl("rmp", "-f", p.id)
	})
	return p
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// container creates (CreateContainer) and starts (StartContainer) a
// container in the pod; security is the CRI LinuxContainerSecurityContext,
// resources the LinuxContainerResources. start's error is returned, not
// fatal: a seccomp profile can make the start itself fail.
func (p *pod) container(name string, cmd string, security, resources map[string]any) (string, result) {
	p.t.Helper()
	return p.containerWith(name, cmd, security, resources, nil)
}

// containerWith is container with more of the CRI ContainerConfig (mounts,
// envs).
func (p *pod) containerWith(name string, cmd string, security, resources, extra map[string]any) (string, result) {
	p.t.Helper()
	linux := map[string]any{}
	if security != nil {
		linux["security_context"] = security
	}
	if resources != nil {
		linux["resources"] = resources
	}
	cfg := map[string]any{
		"metadata": map[string]any{"name": name},
		"image":    map[string]any{"image": ctdImage},
		"command":  []string{"sh", "-c", cmd},
		"log_path": name + ".log",
		"linux":    linux,
	}
	for k, v := range extra {
		cfg[k] = v
	}
	file := filepath.Join(p.dir, name+".json")
	writeJSON(p.t, file, cfg)
	r := p.d.crictl("create", p.id, file, p.cfgFile)
	if r.code != 0 {
		p.t.Fatalf("CreateContainer %s: %s", name, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	return id, p.d.crictl("start", id)
}

// criStatus is the part of ContainerStatus the tests read.
type criStatus struct {
	State    string `json:"state"`
	ExitCode int    `json:"exitCode"`
	Reason   string `json:"reason"`
	Message  string `json:"message"`
}

func (p *pod) status(id string) criStatus {
	p.t.Helper()
	r := p.d.crictl("inspect", "-o", "json", id)
	var out struct {
		Status criStatus `json:"status"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		p.t.Fatalf("ContainerStatus %s: %v: %s %s", id, err, r.stdout, r.stderr)
	}
	return out.Status
}

// waitExited polls ContainerStatus until the container has exited.
func (p *pod) waitExited(id string) criStatus {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := p.status(id)
		if s.State == "CONTAINER_EXITED" || time.Now().After(deadline) {
			return s
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logs returns what the container wrote, from its CRI log file.
func (p *pod) logs(id string) string {
	p.t.Helper()
	return p.d.crictl("logs", id).stdout
}

// TestCRI runs the same containers through the CRI with the brig and the
// runc runtime handlers and expects the same statuses, exit codes and output.
func TestCRI(t *testing.T) {
	needCrictl(t)
	d := startContainerd(t)
	dir := t.TempDir()
	// The classic seccomp example: a Localhost profile that denies the
	// sleep call; this one kills, so `sleep` fails and the container ends
	// in an error state (busybox's sleep would ignore an errno).
	noSleep := filepath.Join(dir, "no-sleep.json")
	os.WriteFile(noSleep, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["clock_nanosleep","nanosleep"],"action":"SCMP_ACT_KILL_PROCESS"}]}`), 0o644)
	// Deny everything: the container cannot even be started.
	violation := filepath.Join(dir, "violation.json")
	os.WriteFile(violation, []byte(`{"defaultAction":"SCMP_ACT_ERRNO"}`), 0o644)
	// A profile brig learn wrote, as a pod's Localhost profile.
	learnedProf := learned(t)
	type tc struct {
		name      string
		cmd       string
		security  map[string]any
		resources map[string]any
		startFail bool
		code      int
		reason    string
		want      string
	}
	cases := []tc{
		{name: "exit code", cmd: "echo out; exit 3", code: 3, reason: "Error", want: "out"},
		{name: "runtime default seccomp", cmd: "grep Seccomp: /proc/self/status", reason: "Completed", want: "Seccomp:\t2",
			security: map[string]any{"seccomp": map[string]any{"profile_type": 0}}},
		{name: "localhost seccomp denies sleep", cmd: "sleep 1", code: 159, reason: "Error",
			security: map[string]any{"seccomp": map[string]any{"profile_type": 2, "localhost_ref": noSleep}}},
		{name: "localhost violation profile", cmd: "true", startFail: true,
			security: map[string]any{"seccomp": map[string]any{"profile_type": 2, "localhost_ref": violation}}},
		{name: "learned localhost profile replays", cmd: learnWork, reason: "Completed", want: "hi\ndone",
			security: map[string]any{"seccomp": map[string]any{"profile_type": 2, "localhost_ref": learnedProf}}},
		{name: "learned localhost profile denies", cmd: "mkdir /tmp/d 2>&1", code: 1, reason: "Error", want: "Operation not permitted",
			security: map[string]any{"seccomp": map[string]any{"profile_type": 2, "localhost_ref": learnedProf}}},
		{name: "no privilege escalation", cmd: "grep NoNewPrivs /proc/self/status", reason: "Completed", want: "NoNewPrivs:\t1",
			security: map[string]any{"no_new_privs": true}},
		{name: "drop ALL capabilities", cmd: "grep -E 'Cap(Eff|Bnd)' /proc/self/status", reason: "Completed", want: "CapEff:\t0000000000000000\nCapBnd:\t0000000000000000",
			security: map[string]any{"capabilities": map[string]any{"drop_capabilities": []string{"ALL"}}}},
		{name: "read-only root", cmd: "touch /x 2>&1; echo ok > /tmp/y 2>&1; true", reason: "Completed", want: "Read-only file system",
			security: map[string]any{"readonly_rootfs": true}},
		{name: "run as user", cmd: "id -u; id -g", reason: "Completed", want: "1000\n1000",
			security: map[string]any{"run_as_user": map[string]any{"value": 1000}, "run_as_group": map[string]any{"value": 1000}}},
		{name: "memory and cpu", cmd: "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.shares", reason: "Completed", want: "67108864\n50000\n512",
			resources: map[string]any{"memory_limit_in_bytes": 67108864, "cpu_quota": 50000, "cpu_period": 100000, "cpu_shares": 512}},
	}
	type got struct {
		startCode int
		status    criStatus
		logs      string
	}
	results := map[string]map[string]got{}
	for _, handler := range []string{"brig", "runc"} {
		results[handler] = map[string]got{}
		p := runPod(t, d, handler, "matrix-"+handler)
		for i, c := range cases {
			id, start := p.container(fmt.Sprintf("c%d", i), c.cmd, c.security, c.resources)
			g := got{startCode: start.code}
			if start.code == 0 {
				g.status = p.waitExited(id)
				g.logs = p.logs(id)
			} else {
				g.status = p.status(id)
			}
			results[handler][c.name] = g
			if r := d.crictl("rm", id); r.code != 0 {
				t.Errorf("%s: RemoveContainer %s: %s", handler, c.name, r.stderr)
			}
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, r := results["brig"][c.name], results["runc"][c.name]
			if c.startFail {
				if b.startCode == 0 {
					t.Errorf("brig: StartContainer succeeded, want an error")
				}
				if b.status.State != "CONTAINER_EXITED" && b.status.State != "CONTAINER_CREATED" {
					t.Errorf("brig: state %s after a failed start", b.status.State)
				}
			} else {
				if b.startCode != 0 {
					t.Fatalf("brig: StartContainer failed (runc: %d)", r.startCode)
				}
				if b.status.State != "CONTAINER_EXITED" || b.status.ExitCode != c.code || b.status.Reason != c.reason {
					t.Errorf("brig: %+v, want exit %d reason %s", b.status, c.code, c.reason)
				}
				contains(t, b.logs, c.want, "brig logs")
			}
			if b.startCode != r.startCode || b.status.State != r.status.State || b.status.ExitCode != r.status.ExitCode ||
				b.status.Reason != r.status.Reason || b.logs != r.logs {
				t.Errorf("brig and runc differ:\nbrig: start %d %+v %q\nrunc: start %d %+v %q",
					b.startCode, b.status, b.logs, r.startCode, r.status, r.logs)
			}
		})
	}
}

// TestCRILifecycle drives one long-running container through ExecSync,
// UpdateContainerResources, StopContainer and removal, with brig.
func TestCRILifecycle(t *testing.T) {
	needCrictl(t)
	d := startContainerd(t)
	p := runPod(t, d, "brig", "lifecycle")
	if out := d.crictl("inspectp", "-o", "json", p.id).stdout; !strings.Contains(out, `"SANDBOX_READY"`) {
		t.Fatalf("pod not ready: %s", out)
	}
	id, start := p.container("long", "echo up; trap 'echo bye; exit 0' TERM; while true; do sleep 0.2; done",
		map[string]any{"no_new_privs": true, "capabilities": map[string]any{"drop_capabilities": []string{"ALL"}}}, nil)
	if start.code != 0 {
		t.Fatalf("StartContainer: %s", start.stderr)
	}
	if s := p.status(id); s.State != "CONTAINER_RUNNING" {
		t.Fatalf("state %+v", s)
	}
	// ExecSync: the exec'd process joins the container's confinement.
	r := d.crictl("exec", "--sync", id, "sh", "-c", "echo $$; grep -E 'NoNewPrivs|CapEff' /proc/self/status")
	if r.code != 0 {
		t.Fatalf("ExecSync: %s", r.stderr)
	}
	contains(t, r.stdout, "NoNewPrivs:\t1", "exec")
	contains(t, r.stdout, "CapEff:\t0000000000000000", "exec")
	// crictl exits 1 and names the command's exit code.
	if r := d.crictl("exec", "--sync", id, "sh", "-c", "exit 7"); r.code == 0 || !strings.Contains(r.stderr, "exited with 7") {
		t.Errorf("ExecSync exit code: %d %s", r.code, r.stderr)
	}
	// The pod's pid namespace: the container sees the pause process.
	if r := d.crictl("exec", "--sync", id, "ps", "-o", "comm"); !strings.Contains(r.stdout, "sleep") {
		t.Errorf("shared pid namespace: %q", r.stdout)
	}
	if r := d.crictl("update", "--memory", "50331648", "--cpu-quota", "20000", id); r.code != 0 {
		t.Errorf("UpdateContainerResources: %s", r.stderr)
	}
	if r := d.crictl("exec", "--sync", id, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"); strings.Join(strings.Fields(r.stdout), " ") != "50331648 20000" {
		t.Errorf("limits after update: %q %s", r.stdout, r.stderr)
	}
	if r := d.crictl("stop", "--timeout", "10", id); r.code != 0 {
		t.Errorf("StopContainer: %s", r.stderr)
	}
	s := p.status(id)
	if s.State != "CONTAINER_EXITED" || s.ExitCode != 0 || s.Reason != "Completed" {
		t.Errorf("after stop: %+v", s)
	}
	contains(t, p.logs(id), "up\nbye", "logs (SIGTERM reached the trap)")
	if r := d.crictl("rm", id); r.code != 0 {
		t.Errorf("RemoveContainer: %s", r.stderr)
	}
	if r := d.crictl("stopp", p.id); r.code != 0 {
		t.Errorf("StopPodSandbox: %s", r.stderr)
	}
	if r := d.crictl("rmp", p.id); r.code != 0 {
		t.Errorf("RemovePodSandbox: %s", r.stderr)
	}
	if ls := d.crictl("pods", "-q").stdout; strings.Contains(ls, p.id) {
		t.Errorf("pod still listed: %s", ls)
	}
	// Nothing of the pod is left in brig's state or the cgroup tree.
	if ents := leftIn(filepath.Join(d.dir, "brig-root", "k8s.io")); len(ents) > 0 {
		t.Errorf("brig state left: %v", ents)
	}
	if ents, _ := os.ReadDir(filepath.Join("/sys/fs/cgroup/memory", criCgroupDir)); len(ents) > 0 {
		for _, e := range ents {
			if e.IsDir() {
				t.Errorf("cgroup left: %s", e.Name())
			}
		}
	}
}

// TestCRIPodNetwork: a pod with a network of its own (CNI bridge plugin,
// as kubelet's pods get): the address CRI reports is the container's eth0,
// the host reaches a server in it, and removing the pod removes its veth.
// brig and runc alike.
func TestCRIPodNetwork(t *testing.T) {
	needCrictl(t)
	d := startContainerd(t)
	for _, handler := range []string{"brig", "runc"} {
		t.Run(handler, func(t *testing.T) {
			p := runPodNet(t, d, handler, "net-"+handler)
			r := p.d.crictl("inspectp", "-o", "json", p.id)
			var ps struct {
				Status struct {
					Network struct {
						IP string `json:"ip"`
					} `json:"network"`
				} `json:"status"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &ps); err != nil {
				t.Fatalf("PodSandboxStatus: %v %s", err, r.stderr)
			}
			ip := ps.Status.Network.IP
			if !strings.HasPrefix(ip, criSubnet+".") {
				t.Fatalf("pod address %q, want one from %s.0/24", ip, criSubnet)
			}
			id, st := p.container("web", "mkdir -p /tmp/www && echo pod-"+handler+" > /tmp/www/id && ip -4 -o addr show eth0 && exec httpd -f -p 8080 -h /tmp/www", nil, nil)
			if st.code != 0 {
				t.Fatalf("StartContainer: %s", st.stderr)
			}
			var got string
			for i := 0; i < 100 && !strings.Contains(got, "pod-"+handler); i++ {
				time.Sleep(50 * time.Millisecond)
				out, _ := exec.Command("sh", "-c", strings.TrimSuffix(fetch(ip+":8080"), "; ")).Output()
				got = string(out)
			}
			contains(t, got, ip+":8080: pod-"+handler+"\n", "the host reaches the pod's server")
			contains(t, p.logs(id), "inet "+ip+"/24", "the container's eth0 has the address CRI reports")
			p.d.crictl("stopp", p.id)
			p.d.crictl("rmp", "-f", p.id)
			out, _ := exec.Command("ip", "-o", "link", "show", "master", criBridge).Output()
			if strings.TrimSpace(string(out)) != "" {
				t.Errorf("veths left on %s after the pod was removed: %s", criBridge, out)
			}
		})
	}
}
