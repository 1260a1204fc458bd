package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const rootlessUID = 1000

// rootlessEnv makes a bundle from `brig spec --rootless` for an
// unprivileged user, with a state root and bundle that user owns.
func rootlessEnv(t *testing.T, args ...string) (*env, func(args ...string) result) {
	t.Helper()
	if data, err := os.ReadFile("/proc/sys/kernel/unprivileged_userns_clone"); err == nil && strings.TrimSpace(string(data)) == "0" {
		t.Skip("unprivileged user namespaces are disabled on this host")
	}
	e := newEnv(t, args...)
	dir, err := os.MkdirTemp(workDir, "rootless-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chown(dir, rootlessUID, rootlessUID)
	e.bundle = filepath.Join(dir, "bundle")
	e.root = filepath.Join(dir, "state")
	for _, d := range []string{e.bundle, e.root} {
		os.Mkdir(d, 0o755)
		os.Chown(d, rootlessUID, rootlessUID)
	}
	run := func(args ...string) result {
		cmd := exec.Command(brigBin, append([]string{"--root", e.root}, args...)...)
		cmd.Dir = e.bundle
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: rootlessUID, Gid: rootlessUID}}
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/"}
		// Files, not pipes: a created container's init keeps them open.
		outf, _ := os.CreateTemp(workDir, "out-")
		errf, _ := os.CreateTemp(workDir, "err-")
		defer os.Remove(outf.Name())
		defer os.Remove(errf.Name())
		defer outf.Close()
		defer errf.Close()
		cmd.Stdout, cmd.Stderr = outf, errf
		cmd.Run()
		out, _ := os.ReadFile(outf.Name())
		errb, _ := os.ReadFile(errf.Name())
		return result{stdout: string(out), stderr: string(errb), code: cmd.ProcessState.ExitCode()}
	}
	if r := run("spec", "--rootless", "--bundle", e.bundle); r.code != 0 {
		t.Fatalf("spec --rootless: %s", r.stderr)
	}
	data, _ := os.ReadFile(filepath.Join(e.bundle, "config.json"))
	e.spec = &specs.Spec{}
	if err := json.Unmarshal(data, e.spec); err != nil {
		t.Fatal(err)
	}
	e.spec.Root.Path = rootfs
	e.spec.Process.Terminal = false
	e.spec.Process.Args = args
	e.write()
	os.Chown(filepath.Join(e.bundle, "config.json"), rootlessUID, rootlessUID)
	t.Cleanup(func() { run("delete", "--force", e.id) })
	return e, run
}

func TestRootless(t *testing.T) {
	e, run := rootlessEnv(t, "sh", "-c", "id -u; cat /proc/self/uid_map; hostname; grep NoNewPrivs /proc/self/status; touch /tmp/x 2>&1; ls /sys | wc -l")
	if e.spec.Linux.UIDMappings[0].HostID != rootlessUID {
		t.Fatalf("spec --rootless maps host uid %d, want the caller's %d", e.spec.Linux.UIDMappings[0].HostID, rootlessUID)
	}
	r := run("run", "--bundle", e.bundle, e.id)
	if r.code != 0 {
		t.Fatalf("rootless run: exit %d: %s", r.code, r.stderr)
	}
	f := strings.Fields(r.stdout)
	if len(f) < 5 || f[0] != "0" || f[1] != "0" || f[2] != "1000" || f[3] != "1" {
		t.Errorf("inside: root mapped to host uid 1000: %q", r.stdout)
	}
	contains(t, r.stdout, "brig\n", "hostname in its own uts namespace")
	contains(t, r.stdout, "NoNewPrivs:\t1", "no_new_privs")
	contains(t, r.stderr, "no cgroup", "says what it had to leave out")
}

func TestRootlessLifecycleAndExec(t *testing.T) {
	e, run := rootlessEnv(t, "sleep", "60")
	if r := run("create", "--bundle", e.bundle, e.id); r.code != 0 {
		t.Fatalf("create: %s", r.stderr)
	}
	if r := run("start", e.id); r.code != 0 {
		t.Fatalf("start: %s", r.stderr)
	}
	var st map[string]any
	json.Unmarshal([]byte(run("state", e.id).stdout), &st)
	if st["status"] != "running" {
		t.Fatalf("state: %v", st)
	}
	pid := int(st["pid"].(float64))
	if uid := strings.Fields(statusField(t, pid, "Uid"))[0]; uid != "1000" {
		t.Errorf("container process runs as host uid %s, want 1000", uid)
	}
	r := run("exec", e.id, "sh", "-c", "id -u; cat /proc/1/comm")
	if r.code != 0 || !strings.Contains(r.stdout, "0\nsleep") {
		t.Errorf("rootless exec: exit %d, %q %s", r.code, r.stdout, r.stderr)
	}
	if r := run("kill", e.id, "KILL"); r.code != 0 {
		t.Fatalf("kill: %s", r.stderr)
	}
	if !gone(pid) {
		t.Fatal("container survived kill")
	}
	if r := run("delete", e.id); r.code != 0 {
		t.Fatalf("delete: %s", r.stderr)
	}
	if ents := leftIn(e.root); len(ents) != 0 {
		t.Errorf("state left: %v", ents)
	}
}

func TestRootlessRefusesLimitsAndHostUserNamespace(t *testing.T) {
	e, run := rootlessEnv(t, "true")
	n := int64(10)
	e.spec.Linux.Resources = &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &n}}
	e.write()
	if r := run("run", "--bundle", e.bundle, e.id); r.code == 0 || !strings.Contains(r.stderr, "linux.resources") {
		t.Errorf("rootless with a pids limit and no delegated cgroup: exit %d, %s", r.code, r.stderr)
	}
	e.spec.Linux.Resources = nil
	e.dropNamespace(specs.UserNamespace)
	e.spec.Linux.UIDMappings, e.spec.Linux.GIDMappings = nil, nil
	e.write()
	if r := run("run", "--bundle", e.bundle, e.id); r.code == 0 || !strings.Contains(r.stderr, "user namespace") {
		t.Errorf("rootless without a user namespace: exit %d, %s", r.code, r.stderr)
	}
	if ents := leftIn(e.root); len(ents) != 0 {
		t.Errorf("state left: %v", ents)
	}
}

// CVE-2016-9962: a created container's init waits with the host user's
// credentials (rootless); that same user must not be able to open its
// /proc/PID/exe (brig's binary) or read its environment: the C
// constructor makes it non-dumpable. (As root the prober's capabilities
// decide before dumpability does, so only this case shows it.)
func TestRootlessInitNotDumpable(t *testing.T) {
	e, run := rootlessEnv(t, "sleep", "60")
	if r := run("create", "--bundle", e.bundle, e.id); r.code != 0 {
		t.Fatalf("create: %s", r.stderr)
	}
	var st map[string]any
	json.Unmarshal([]byte(run("state", e.id).stdout), &st)
	pid := int(st["pid"].(float64))
	cmd := exec.Command("sh", "-c", "p=/proc/"+strconv.Itoa(pid)+"; cat $p/exe >/dev/null 2>&1 && echo exe-readable || echo exe-denied; cat $p/environ >/dev/null 2>&1 && echo env-readable || echo env-denied")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: rootlessUID, Gid: rootlessUID}}
	out, _ := cmd.CombinedOutput()
	contains(t, string(out), "exe-denied", "the waiting init's exe, from the same host user")
	contains(t, string(out), "env-denied", "the waiting init's environment, from the same host user")
}
