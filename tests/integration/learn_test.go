package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The learned workload: busybox (the same static binary the test rootfs
// and images hold, so the profile means the same everywhere) writing and
// reading a file and trying a TCP connection.
const learnWork = `echo hi > /tmp/f; cat /tmp/f; busybox nc -w 1 127.0.0.1 9 </dev/null 2>/dev/null; echo done`

// learnCmd runs `brig learn ARGS` with a state root of its own that must
// be empty afterwards.
func learnCmd(t *testing.T, args ...string) result {
	t.Helper()
	root := sandboxRoot(t)
	r := runCmd(exec.Command(brigBin, append([]string{"--root", root, "learn"}, args...)...))
	if ents := leftIn(root); len(ents) != 0 {
		t.Errorf("brig learn left state: %v", ents)
		reap(root)
	}
	return r
}

// learnAs runs `brig learn ARGS` as uid, in dir, with a state root of its
// own that must be empty afterwards.
func learnAs(t *testing.T, uid int, dir string, args ...string) result {
	t.Helper()
	root := sandboxRoot(t)
	os.Chown(root, uid, uid)
	cmd := exec.Command(brigBin, append([]string{"--root", root, "learn"}, args...)...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	r := runCmd(cmd)
	if ents := leftIn(root); len(ents) != 0 {
		t.Errorf("brig learn left state: %v", ents)
		reap(root)
	}
	return r
}

// userDir is a directory uid owns, removed after the test.
func userDir(t *testing.T, uid int) string {
	t.Helper()
	dir, err := os.MkdirTemp(workDir, "user-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chown(dir, uid, uid)
	return dir
}

// Without root there is no eBPF: brig learn records through its seccomp
// listener instead, and says it is slower. What it learns replays the
// workload with no denial and denies what the workload never did, though
// the default profile allows it. What can't be done without root is
// refused before the command runs, naming the flag.
func TestLearnWithoutRoot(t *testing.T) {
	if data, err := os.ReadFile("/proc/sys/kernel/unprivileged_userns_clone"); err == nil && strings.TrimSpace(string(data)) == "0" {
		t.Skip("unprivileged user namespaces are disabled on this host")
	}
	dir := userDir(t, rootlessUID)
	prof := filepath.Join(dir, "learned.json")
	r := learnAs(t, rootlessUID, dir, "-o", prof, "--", "/bin/busybox", "sh", "-c", learnWork)
	if r.code != 0 || r.stdout != "hi\ndone\n" {
		t.Fatalf("learn without root: exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	contains(t, r.stderr, "recording through brig's seccomp listener", "learn without root")
	contains(t, r.stderr, "system calls allowed", "learn's summary")
	for i := range 2 {
		r := sandboxAs(t, rootlessUID, dir, "--security-opt", "seccomp="+prof, "--", "/bin/busybox", "sh", "-c", learnWork)
		if r.code != 0 || r.stdout != "hi\ndone\n" {
			t.Fatalf("replay %d: exit %d, stdout %q, stderr %s", i, r.code, r.stdout, r.stderr)
		}
	}
	for _, probe := range []struct{ name, cmd, denied string }{
		{"a call never made", "busybox mkdir /tmp/d && echo made", "mkdir: can't create directory '/tmp/d': Operation not permitted"},
		{"a socket type never used (UDP)", "busybox nslookup example.org 127.0.0.1", "socket: Operation not permitted"},
	} {
		r := sandboxAs(t, rootlessUID, dir, "--security-opt", "seccomp="+prof, "--", "/bin/busybox", "sh", "-c", probe.cmd)
		contains(t, r.stderr, probe.denied, probe.name+" under the learned profile")
		r = sandboxAs(t, rootlessUID, dir, "--", "/bin/busybox", "sh", "-c", probe.cmd)
		notContains(t, r.stderr, "Operation not permitted", probe.name+" under the default profile")
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"--recorder", "ebpf"}, "--recorder ebpf: recording needs root"},
		{[]string{"--recorder", "strace"}, `--recorder "strace": want ebpf or seccomp`},
		{[]string{"--security-opt", "seccomp=unconfined"}, "brig learn --recorder seccomp: the sandbox has no seccomp profile to record through"},
	} {
		out := filepath.Join(dir, "bad.json")
		r := learnAs(t, rootlessUID, dir, append(append([]string{"-o", out}, bad.args...), "--", "/bin/busybox", "echo", "ran")...)
		if r.code == 0 || strings.Contains(r.stdout, "ran") {
			t.Errorf("%v: exit %d, stdout %q: want a refusal before the command", bad.args, r.code, r.stdout)
		}
		contains(t, r.stderr, bad.want, fmt.Sprint(bad.args))
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%v: %s written", bad.args, out)
		}
	}
}

// TestLearnForks: a shell that forks while its children end learns
// through brig's seccomp listener as it runs without it. dash's and
// busybox's SIGCHLD handlers have no SA_RESTART: a fork sent to the
// listener while the signal was pending failed with EINTR ("Cannot
// fork"); the forks now stay the kernel's, and are learned from the
// tasks they make. busybox sh blocks every signal with a sigprocmask
// that saves its mask, then waits for a child in sigsuspend with the
// saved mask: a sigprocmask answered EINTR without running left it
// waiting for ever, with every signal blocked (about one learn in four
// in the VM lane, now and then on the host); the signal mask stays the
// kernel's too (seccomp.Kept). So are the calls every learned profile
// allows (recorder.Unwatched), among them a shell's pipes and dup2s:
// with jobs ending meanwhile, dash said "Pipe call failed", busybox sh
// "can't create pipe", and a redirection's dup2 failed, so the echo
// after it wrote to a closed fd ("I/O error"). The control: the same
// command in brig run.
func TestLearnForks(t *testing.T) {
	const work = `i=0; while [ $i -lt 60 ]; do (echo $i | cat >/dev/null) & ls / | wc -l >/dev/null; x=$(echo $i); echo $x >/dev/null; i=$((i+1)); done; wait; echo done`
	for _, sh := range [][]string{{"sh"}, {"/bin/busybox", "sh"}} {
		dir := t.TempDir()
		prof := filepath.Join(dir, "p.json")
		cmd := append(append([]string{}, sh...), "-c", work)
		if c := sandbox(t, dir, append([]string{"--"}, cmd...)...); c.code != 0 || c.stdout != "done\n" {
			t.Fatalf("%v: the control: exit %d, stdout %q, stderr %s", sh, c.code, c.stdout, c.stderr)
		}
		for i := range 3 {
			r := learnCmd(t, append([]string{"--recorder", "seccomp", "-o", prof, "--"}, cmd...)...)
			if r.code != 0 || r.stdout != "done\n" {
				t.Fatalf("%v, learn %d: exit %d, stdout %q, stderr %s", sh, i, r.code, r.stdout, r.stderr)
			}
			for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
				if !strings.HasPrefix(line, "brig") {
					t.Errorf("%v, learn %d: the shell said %q", sh, i, line)
				}
			}
		}
		r := sandbox(t, dir, append([]string{"--security-opt", "seccomp=" + prof, "--"}, cmd...)...)
		if r.code != 0 || r.stdout != "done\n" {
			t.Errorf("%v: replay: exit %d, stdout %q, stderr %s", sh, r.code, r.stdout, r.stderr)
		}
	}
}

// The two recorders agree: the same workload learned with eBPF and with
// brig's seccomp listener gives the same rules.
func TestLearnRecordersAgree(t *testing.T) {
	needRecorder(t)
	dir := t.TempDir()
	rules := map[string]string{}
	for _, rec := range []string{"ebpf", "seccomp"} {
		prof := filepath.Join(dir, rec+".json")
		r := learnCmd(t, "--recorder", rec, "-o", prof, "--", "/bin/busybox", "sh", "-c", learnWork+"; (echo sub) & wait")
		if r.code != 0 || r.stdout != "hi\ndone\nsub\n" {
			t.Fatalf("learn --recorder %s: exit %d, stdout %q, stderr %s", rec, r.code, r.stdout, r.stderr)
		}
		data, err := os.ReadFile(prof)
		if err != nil {
			t.Fatal(err)
		}
		var p specs.LinuxSeccomp
		if err := json.Unmarshal(data, &p); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(p.Syscalls)
		rules[rec] = string(b)
	}
	if rules["ebpf"] != rules["seccomp"] {
		t.Errorf("the recorders disagree:\nebpf:    %s\nseccomp: %s", rules["ebpf"], rules["seccomp"])
	}
}

// needRecorder skips a test that attaches the eBPF recorder in the VM
// lane: in the emulated guest (Debian 12's kernel 6.1 under TCG) an
// attach has left both vCPUs in a soft lockup in about one lane in two
// (with one recorder or two; never on the host, never in a guest running
// the learn tests alone with the kernel's messages on). The host lane
// runs these tests; BRIG_VM_RECORDER=1 scripts/vm.sh -r TestLearn runs
// them in the guest, to investigate.
func needRecorder(t *testing.T) {
	t.Helper()
	if os.Getenv("BRIG_VM_LANE") != "" && os.Getenv("BRIG_VM_RECORDER") == "" {
		t.Skip("the eBPF recorder in the emulated 6.1 guest: see needRecorder")
	}
}

// learned learns learnWork into a profile and returns its path.
func learned(t *testing.T) string {
	t.Helper()
	needRecorder(t)
	prof := filepath.Join(t.TempDir(), "learned.json")
	r := learnCmd(t, "-o", prof, "--", "/bin/busybox", "sh", "-c", learnWork)
	if r.code != 0 || r.stdout != "hi\ndone\n" {
		t.Fatalf("learn: exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	contains(t, r.stderr, "system calls allowed", "learn's summary")
	return prof
}

// A learned profile replays the workload with no denial, and denies what
// the workload never did — a call, and an argument value of a call it did
// make — though brig's default profile allows both.
func TestLearnReplay(t *testing.T) {
	prof := learned(t)
	data, err := os.ReadFile(prof)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		specs.LinuxSeccomp
		Learned struct {
			Command []string `json:"command"`
			Kernel  string   `json:"kernel"`
			Runs    int      `json:"runs"`
		} `json:"brigLearned"`
	}
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatal(err)
	}
	if p.DefaultAction != specs.ActErrno || len(p.Learned.Command) != 4 || p.Learned.Kernel == "" || p.Learned.Runs != 1 {
		t.Errorf("profile head: %+v %+v", p.DefaultAction, p.Learned)
	}
	dir := t.TempDir()
	for i := range 3 {
		r := sandbox(t, dir, "--security-opt", "seccomp="+prof, "--", "/bin/busybox", "sh", "-c", learnWork)
		if r.code != 0 || r.stdout != "hi\ndone\n" {
			t.Fatalf("replay %d: exit %d, stdout %q, stderr %s", i, r.code, r.stdout, r.stderr)
		}
	}
	for _, probe := range []struct{ name, cmd, denied string }{
		{"a call never made", "busybox mkdir /tmp/d && echo made", "mkdir: can't create directory '/tmp/d': Operation not permitted"},
		{"a socket type never used (UDP)", "busybox nslookup example.org 127.0.0.1", "socket: Operation not permitted"},
	} {
		r := sandbox(t, dir, "--security-opt", "seccomp="+prof, "--", "/bin/busybox", "sh", "-c", probe.cmd)
		contains(t, r.stderr, probe.denied, probe.name+" under the learned profile")
		r = sandbox(t, dir, "--", "/bin/busybox", "sh", "-c", probe.cmd)
		notContains(t, r.stderr, "Operation not permitted", probe.name+" under the default profile")
	}
}

// The learned profile is portable: runc runs the same workload with it
// from an OCI bundle, as brig does.
func TestLearnPortable(t *testing.T) {
	needRecorder(t)
	prof := learned(t)
	var sc specs.LinuxSeccomp
	data, _ := os.ReadFile(prof)
	if err := json.Unmarshal(data, &sc); err != nil {
		t.Fatal(err)
	}
	for _, rt := range []string{"brig", "runc"} {
		e := newEnv(t, "sh", "-c", learnWork)
		if rt == "runc" {
			e.bin = "runc"
		}
		e.spec.Root.Readonly = false
		e.spec.Linux.Seccomp = &sc
		r := e.run()
		if r.code != 0 || r.stdout != "hi\ndone\n" {
			t.Errorf("%s: exit %d, stdout %q, stderr %s", rt, r.code, r.stdout, r.stderr)
		}
		e.spec.Process.Args = []string{"sh", "-c", "mkdir /tmp/d"}
		r = e.run()
		if r.code == 0 || !strings.Contains(r.stderr, "Operation not permitted") {
			t.Errorf("%s: a call never made: exit %d, %q", rt, r.code, r.stderr)
		}
	}
}

// Docker and Podman take the learned profile with --security-opt seccomp=,
// with brig and with runc as their runtime.
func TestLearnEngines(t *testing.T) {
	prof := learned(t)
	cases := []engineCase{
		{"learned profile replays", []string{"--security-opt", "seccomp=" + prof}, learnWork, "hi\ndone\n", 0},
		{"learned profile denies", []string{"--security-opt", "seccomp=" + prof}, "mkdir /tmp/d 2>&1", "Operation not permitted", 1},
	}
	t.Run("docker", func(t *testing.T) {
		d := startDocker(t)
		runEngineMatrix(t, cases, func(rt string, tc engineCase) result {
			return d.docker(append(append([]string{"run", "--rm", "--runtime", rt}, tc.args...), dockerImage, "sh", "-c", tc.cmd)...)
		})
	})
	t.Run("podman", func(t *testing.T) {
		p := startPodman(t)
		runEngineMatrix(t, cases, func(rt string, tc engineCase) result {
			args := append([]string{"--runtime", p.runtime(rt), "run", "--rm", "--network", "none"}, tc.args...)
			return p.podman(append(args, podmanImage, "sh", "-c", tc.cmd)...)
		})
	})
}

// Learning again into the same profile writes the union of both runs.
func TestLearnMerge(t *testing.T) {
	needRecorder(t)
	prof := filepath.Join(t.TempDir(), "p.json")
	a := "busybox mkdir /tmp/d && echo made"
	b := "busybox nslookup example.org 127.0.0.1 >/dev/null 2>&1; echo looked"
	for _, w := range []string{a, b} {
		if r := learnCmd(t, "-o", prof, "--", "/bin/busybox", "sh", "-c", w); r.code != 0 {
			t.Fatalf("learn %q: exit %d: %s", w, r.code, r.stderr)
		}
	}
	data, _ := os.ReadFile(prof)
	contains(t, string(data), `"runs": 2`, "merged profile")
	dir := t.TempDir()
	for _, w := range []struct{ cmd, want string }{{a, "made\n"}, {b, "looked\n"}} {
		r := sandbox(t, dir, "--security-opt", "seccomp="+prof, "--", "/bin/busybox", "sh", "-c", w.cmd)
		if r.code != 0 || r.stdout != w.want {
			t.Errorf("%q under the merged profile: exit %d, %q, %s", w.cmd, r.code, r.stdout, r.stderr)
		}
	}
	// Two runs learning into one profile at once (replicas with one
	// annotation): neither is lost.
	{
		both := filepath.Join(t.TempDir(), "both.json")
		var wg sync.WaitGroup
		for _, w := range []string{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if r := learnCmd(t, "-o", both, "--", "/bin/busybox", "sh", "-c", w); r.code != 0 {
					t.Errorf("concurrent learn %q: exit %d: %s", w, r.code, r.stderr)
				}
			}()
		}
		wg.Wait()
		for _, w := range []struct{ cmd, want string }{{a, "made\n"}, {b, "looked\n"}} {
			r := sandbox(t, dir, "--security-opt", "seccomp="+both, "--", "/bin/busybox", "sh", "-c", w.cmd)
			if r.code != 0 || r.stdout != w.want {
				t.Errorf("%q under the profile two runs learned at once: exit %d, %q, %s", w.cmd, r.code, r.stdout, r.stderr)
			}
		}
	}
	// --merge adds another learned profile; the output must be new here.
	out := filepath.Join(t.TempDir(), "q.json")
	if r := learnCmd(t, "-o", out, "--merge", prof, "--", "/bin/busybox", "true"); r.code != 0 {
		t.Fatalf("--merge: exit %d: %s", r.code, r.stderr)
	}
	data, _ = os.ReadFile(out)
	contains(t, string(data), `"runs": 3`, "--merge")
}

// Bad input is refused before the workload runs, naming the problem, and
// nothing is written or left half-written.
func TestLearnBadInput(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	work := []string{"--rw", dir, "--", "/bin/busybox", "touch", marker}
	notProfile := filepath.Join(dir, "not-a-profile.json")
	os.WriteFile(notProfile, []byte(`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}`), 0o644)
	broken := filepath.Join(dir, "broken.json")
	os.WriteFile(broken, []byte(`{"defaultAction": `), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no output", nil, "-o PROFILE"},
		{"output directory missing", []string{"-o", filepath.Join(dir, "nope", "p.json")}, filepath.Join(dir, "nope")},
		{"output is a directory", []string{"-o", dir}, "is a directory"},
		{"output not writable", []string{"-o", "/proc/brig-learn.json"}, "/proc/brig-learn.json"},
		{"output is another profile", []string{"-o", notProfile}, "not a profile brig learn wrote"},
		{"merge with a non-profile", []string{"-o", filepath.Join(dir, "p.json"), "--merge", broken}, "not a profile brig learn wrote"},
		{"invalid base profile", []string{"-o", filepath.Join(dir, "p.json"), "--security-opt", "seccomp=" + broken}, "broken.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := learnCmd(t, append(tc.args, work...)...)
			if r.code == 0 {
				t.Fatal("learn succeeded")
			}
			contains(t, r.stderr, tc.want, "error")
			if _, err := os.Stat(marker); err == nil {
				t.Errorf("the workload ran")
				os.Remove(marker)
			}
			if _, err := os.Stat(filepath.Join(dir, "p.json")); err == nil {
				t.Errorf("a profile was written")
			}
			if data, _ := os.ReadFile(notProfile); !strings.Contains(string(data), "SCMP_ACT_ALLOW") {
				t.Errorf("the existing file was changed: %s", data)
			}
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), ".") {
					t.Errorf("a temporary file was left: %s", e.Name())
				}
			}
		})
	}
}

// A workload that never ends: SIGINT writes what was learned, the
// sandbox ends, and nothing is left.
func TestLearnInterrupted(t *testing.T) {
	needRecorder(t)
	prof := filepath.Join(t.TempDir(), "p.json")
	root := sandboxRoot(t)
	cmd := exec.Command(brigBin, "--root", root, "learn", "-o", prof, "--", "/bin/busybox", "sh", "-c", "echo started; exec busybox sleep 1000")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	buf := make([]byte, 8)
	if n, _ := out.Read(buf); string(buf[:n]) != "started\n" {
		t.Fatalf("no start: %q, %s", buf[:n], errb.String())
	}
	time.Sleep(200 * time.Millisecond) // into the sleep
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("brig learn did not end after SIGINT: %s", errb.String())
	}
	data, err := os.ReadFile(prof)
	if err != nil {
		t.Fatalf("no profile after SIGINT: %v (%s)", err, errb.String())
	}
	contains(t, string(data), `"clock_nanosleep"`, "the sleep, learned before the interrupt")
	if ents := leftIn(root); len(ents) != 0 {
		t.Errorf("state left: %v", ents)
	}
	if left := initProcesses(); len(left) > 0 {
		t.Errorf("processes left: %v", left)
	}
}

// An OCI container asks for learning with an annotation — brig's own, or
// oci-seccomp-bpf-hook's that Podman users know — and the profile is
// written when its process ends; it replays the container under runc.
// annotationDir is a directory of the test's own where brig writes
// profiles asked for by annotation (only below /var/lib/brig/learn).
func annotationDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "x")
	if err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(dir)
	os.MkdirAll("/var/lib/brig/learn", 0o700)
	dir = filepath.Join("/var/lib/brig/learn", "test-"+filepath.Base(dir))
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestLearnAnnotation(t *testing.T) {
	needRecorder(t)
	dir := annotationDir(t)
	prof := filepath.Join(dir, "oci.json")
	e := newEnv(t, "sh", "-c", learnWork)
	e.spec.Root.Readonly = false
	e.spec.Annotations = map[string]string{"brig.learn": prof}
	e.create()
	if _, err := os.Stat(prof); err == nil {
		t.Fatalf("a profile before the container ran")
	}
	e.brig("start", e.id)
	e.waitStatus("stopped")
	var data []byte
	for range 50 { // the recorder writes once it sees the process end
		if data, _ = os.ReadFile(prof); len(data) > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	contains(t, string(data), `"brigLearned"`, "the profile")
	var sc specs.LinuxSeccomp
	if err := json.Unmarshal(data, &sc); err != nil {
		t.Fatal(err)
	}
	r := newEnv(t, "sh", "-c", learnWork)
	r.bin = "runc"
	r.spec.Root.Readonly = false
	r.spec.Linux.Seccomp = &sc
	if res := r.run(); res.code != 0 || res.stdout != "hi\ndone\n" {
		t.Errorf("runc with the learned profile: exit %d, %q, %s", res.code, res.stdout, res.stderr)
	}
	// Beside it, the brig.landlock rule set for the files it used: the
	// replay under brig with both runs, and a file it never read is
	// refused (the control, without the rule set, reads it).
	ll, err := os.ReadFile(prof + ".landlock")
	if err != nil {
		t.Fatalf("no Landlock rule set beside the profile: %v", err)
	}
	t.Logf("learned rule set:\n%s", ll)
	// /tmp, or /tmp/f where an earlier test left that file in the shared
	// root (then it was written, not made).
	contains(t, string(ll), `"/tmp`, "the rule set (a file was written in /tmp)")
	if strings.Contains(string(ll), "/etc/passwd") {
		t.Errorf("the rule set names a file the workload never used:\n%s", ll)
	}
	probe := learnWork + "; cat /etc/passwd >/dev/null 2>&1 && echo read || echo refused"
	for _, withRules := range []bool{true, false} {
		p := newEnv(t, "sh", "-c", probe)
		p.spec.Root.Readonly = false
		p.spec.Linux.Seccomp = &sc
		want := "hi\ndone\nread\n"
		if withRules {
			p.spec.Annotations = map[string]string{"brig.landlock": string(ll)}
			want = "hi\ndone\nrefused\n"
		}
		if res := p.run(); res.code != 0 || res.stdout != want {
			t.Errorf("brig with the learned profile (rule set %v): exit %d, %q, want %q; %s", withRules, res.code, res.stdout, want, res.stderr)
		}
	}
	// The recorder can't write the profile (a directory took its place):
	// nobody waits for it, so it says why in PROFILE.error.
	blocked := filepath.Join(dir, "blocked.json")
	w := newEnv(t, "sh", "-c", learnWork)
	w.spec.Root.Readonly = false
	w.spec.Annotations = map[string]string{"brig.learn": blocked}
	w.create()
	os.Mkdir(blocked, 0o755)
	w.brig("start", w.id)
	w.waitStatus("stopped")
	var why []byte
	for range 50 {
		if why, _ = os.ReadFile(blocked + ".error"); len(why) > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	contains(t, string(why), "brig learn: ", "the recorder's failure, beside the profile")
	// Bad annotations fail create, naming the problem, leaving nothing.
	for _, ann := range []map[string]string{
		{"brig.learn": "relative.json"},
		{"io.containers.trace-syscall": "of:/proc/x.json"},
		{"brig.learn": filepath.Join(t.TempDir(), "p.json")},
		{"io.containers.trace-syscall": "write-it-somewhere"},
		{"brig.learn": filepath.Join(dir, "missing", "p.json")},
	} {
		b := newEnv(t, "true")
		b.spec.Annotations = ann
		b.write()
		res := b.brig("create", "--bundle", b.bundle, b.id)
		if res.code == 0 || !strings.Contains(res.stderr, "learn") && !strings.Contains(res.stderr, "annotations") {
			t.Errorf("%v: exit %d, %q", ann, res.code, res.stderr)
		}
		if left := leftIn(b.root); len(left) != 0 {
			t.Errorf("%v: state left: %v", ann, left)
		}
	}
}

// Podman passes oci-seccomp-bpf-hook's annotation through: a Podman user
// learns a profile with brig as the runtime, unchanged.
func TestLearnAnnotationPodman(t *testing.T) {
	p := startPodman(t)
	prof := filepath.Join(annotationDir(t), "podman.json")
	r := p.podman("--runtime", p.runtime("brig"), "run", "--rm", "--network", "none",
		"--annotation", "io.containers.trace-syscall=of:"+prof, podmanImage, "sh", "-c", learnWork)
	if r.code != 0 || r.stdout != "hi\ndone\n" {
		t.Fatalf("podman run: exit %d, %q, %s", r.code, r.stdout, r.stderr)
	}
	var data []byte
	for range 50 {
		if data, _ = os.ReadFile(prof); len(data) > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	contains(t, string(data), `"brigLearned"`, "the profile")
	r = p.podman("--runtime", p.runtime("brig"), "run", "--rm", "--network", "none",
		"--security-opt", "seccomp="+prof, podmanImage, "sh", "-c", learnWork)
	if r.code != 0 || r.stdout != "hi\ndone\n" {
		t.Errorf("podman run with the learned profile: exit %d, %q, %s", r.code, r.stdout, r.stderr)
	}
	r = p.podman("--runtime", p.runtime("brig"), "run", "--rm", "--network", "none",
		"--security-opt", "seccomp="+prof, podmanImage, "sh", "-c", "mkdir /tmp/d")
	contains(t, r.stderr, "Operation not permitted", "a call never made")
}

// TestLearnFiles: --profile-out writes a `brig run --profile` file with the
// host paths the workload used, as tight as files: the replay works, and
// what it was shown but never used is no longer there, nor writable where
// it was only read. Created files make their directory writable. As root
// fanotify records the files; without root brig's seccomp listener does,
// from the opens and execs it is sent (a script's #! interpreter too).
func TestLearnFiles(t *testing.T) {
	t.Run("root", func(t *testing.T) {
		needRecorder(t)
		testLearnFiles(t, 0)
	})
	t.Run("rootless", func(t *testing.T) {
		if data, err := os.ReadFile("/proc/sys/kernel/unprivileged_userns_clone"); err == nil && strings.TrimSpace(string(data)) == "0" {
			t.Skip("unprivileged user namespaces are disabled on this host")
		}
		testLearnFiles(t, rootlessUID)
	})
}

func testLearnFiles(t *testing.T, uid int) {
	base, err := os.MkdirTemp("", "brig-learn-files-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)
	os.Chmod(base, 0o755)
	data, proj, tools := filepath.Join(base, "data"), filepath.Join(base, "proj"), filepath.Join(base, "tools")
	for _, d := range []string{data, proj, tools} {
		os.MkdirAll(d, 0o755)
	}
	os.WriteFile(filepath.Join(data, "used"), []byte("used\n"), 0o644)
	os.WriteFile(filepath.Join(data, "unused"), []byte("secret\n"), 0o644)
	os.WriteFile(filepath.Join(data, "run.sh"), []byte("#!/bin/sh\necho ran\n"), 0o755)
	os.WriteFile(filepath.Join(proj, "log"), []byte("old\n"), 0o644)
	// a script whose interpreter is outside the system directories: the
	// kernel opens it, not the command (named sh: where /bin/sh is
	// busybox, the copy runs the applet its name says)
	if sh, err := os.ReadFile("/bin/sh"); err != nil || os.WriteFile(filepath.Join(tools, "sh"), sh, 0o755) != nil {
		t.Fatalf("copy /bin/sh: %v", err)
	}
	os.WriteFile(filepath.Join(data, "tool.sh"), []byte("#!"+tools+"/sh\necho tool\n"), 0o755)
	filepath.Walk(base, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, uid, uid) })
	work := "cat " + data + "/used; " + data + "/run.sh; " + data + "/tool.sh; echo more >> " + proj + "/log; echo made > " + proj + "/new"
	learn := func(args ...string) result {
		if uid == 0 {
			return learnCmd(t, args...)
		}
		return learnAs(t, uid, base, args...)
	}
	prof, sb := filepath.Join(base, "p.json"), filepath.Join(base, "s.yaml")
	r := learn("-o", prof, "--profile-out", sb, "--ro", data, "--ro", tools, "--rw", proj, "--", "sh", "-c", work)
	if r.code != 0 || r.stdout != "used\nran\ntool\n" {
		t.Fatalf("learn: exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	got, _ := os.ReadFile(sb)
	for _, want := range []string{"seccomp=" + prof, "ro:\n    - " + data + "/run.sh\n    - " + data + "/tool.sh\n    - " + data + "/used\n    - " + tools + "/sh\n",
		"rw:\n    - " + proj + "\n"} {
		contains(t, string(got), want, "the learned sandbox profile")
	}
	notContains(t, string(got), "unused", "a file the workload never used")
	os.Remove(filepath.Join(proj, "new"))
	// Replay with the profile alone: no flag but --profile.
	r = sandboxAs(t, uid, base, "--profile", sb, "--", "sh", "-c", work)
	if r.code != 0 || r.stdout != "used\nran\ntool\n" {
		t.Fatalf("replay: exit %d, stdout %q, stderr %s\nthe profile:\n%s", r.code, r.stdout, r.stderr, got)
	}
	for _, probe := range []struct{ name, cmd, control string }{
		{"a file shown during learning, never used", "cat " + data + "/unused", "--ro"},
		{"a file only read, written", "echo x >> " + data + "/used", "--rw"},
	} {
		r = sandboxAs(t, uid, base, "--profile", sb, "--", "sh", "-c", probe.cmd)
		if r.code == 0 {
			t.Errorf("%s: allowed under the learned profile", probe.name)
		}
		if c := sandboxAs(t, uid, base, probe.control, data, "--", "sh", "-c", probe.cmd); c.code != 0 {
			t.Errorf("control (%s %s), %s: %s", probe.control, data, probe.name, c.stderr)
		}
	}
	if r := learn("-o", prof, "--profile-out", "/no/such/dir/s.yaml", "--", "true"); r.code != 2 || !strings.Contains(r.stderr, "--profile-out") {
		t.Errorf("--profile-out into a missing directory: exit %d: %s", r.code, r.stderr)
	}
}

// TestLearnNetwork: the destinations the workload connected to become
// --allow-net entries of the learned sandbox profile; the replay reaches
// them and nothing else.
func TestLearnNetwork(t *testing.T) {
	needRecorder(t)
	egressServers(t)
	base := t.TempDir()
	prof, sb := filepath.Join(base, "p.json"), filepath.Join(base, "s.yaml")
	// A connect that fails (nothing listens on 9191) is a destination
	// the workload wants too: it is seen as it is made, not as it ends.
	r := learnCmd(t, "-o", prof, "--profile-out", sb, "--net", "host", "--", "sh", "-c", fetch(srvA+":9191")+fetch(srvA+":8080"))
	if r.code != 0 || !strings.HasSuffix(r.stdout, srvA+":8080: "+srvA+":8080\n") || !strings.Contains(r.stdout, srvA+":9191: nc: can't connect") {
		t.Fatalf("learn: exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	got, _ := os.ReadFile(sb)
	contains(t, string(got), "allow-net:\n    - "+srvA+":8080\n    - "+srvA+":9191\n", "the learned destinations, the refused one too")
	r = sandbox(t, base, "--profile", sb, "--", "sh", "-c", fetch(srvA+":8080")+fetch(srvA+":9090")+fetch(srvB+":8080"))
	contains(t, r.stdout, srvA+":8080: "+srvA+":8080\n", "the learned destination, replayed")
	contains(t, r.stdout, srvA+":9090: nc: can't connect", "another port")
	contains(t, r.stdout, srvB+":8080: nc: can't connect", "another host")
}

// Learning with names lets the file keep names: what the sandbox's DNS
// answered is written as the name asked for (through a CNAME too), with
// the port connected to, so a wildcard learns the names actually used;
// the replay follows DNS and reaches only those.
func TestLearnNetworkNames(t *testing.T) {
	needRecorder(t)
	egressServers(t)
	dns := zone(t, map[string][]string{
		"api.app.test":    {srvA},
		"cdn.app.test":    {"=edge.other.test"},
		"edge.other.test": {srvB},
		"unused.app.test": {srvB},
	})
	base := t.TempDir()
	prof, sb := filepath.Join(base, "p.json"), filepath.Join(base, "s.yaml")
	r := learnCmd(t, "-o", prof, "--profile-out", sb, "--dns-upstream", dns, "--allow-net", "*.app.test", "--", "sh", "-c",
		fetch("api.app.test:8080")+fetch("cdn.app.test:9090"))
	if r.code != 0 || !strings.Contains(r.stdout, "api.app.test:8080: "+srvA+":8080\n") || !strings.Contains(r.stdout, "cdn.app.test:9090: "+srvB+":9090\n") {
		t.Fatalf("learn: exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	got, _ := os.ReadFile(sb)
	contains(t, string(got), "allow-net:\n    - api.app.test:8080\n    - cdn.app.test:9090\n", "the destinations by the names used")
	r = sandbox(t, base, "--profile", sb, "--dns-upstream", dns, "--", "sh", "-c",
		fetch("api.app.test:8080")+fetch("cdn.app.test:9090")+fetch("unused.app.test:8080")+fetch("api.app.test:9090"))
	contains(t, r.stdout, "api.app.test:8080: "+srvA+":8080\n", "a learned name, replayed")
	contains(t, r.stdout, "cdn.app.test:9090: "+srvB+":9090\n", "a learned name through a CNAME, replayed")
	contains(t, r.stdout, "unused.app.test:8080: nc: bad address 'unused.app.test'", "a name the wildcard allowed but the workload never used")
	contains(t, r.stdout, "api.app.test:9090: nc: can't connect", "a learned name on another port")
}

// IPv6 destinations are learned too, by either recorder, and replayed
// exactly: the address and port connected to, nothing else.
func TestLearnNetworkIPv6(t *testing.T) {
	needRecorder(t)
	if !hostIPv6() {
		t.Skip("the host's IPv6 is off")
	}
	egressServers(t)
	a8080, a9090, b8080 := "["+srvA6+"]:8080", "["+srvA6+"]:9090", "["+srvB6+"]:8080"
	for _, rec := range []string{"ebpf", "seccomp"} {
		t.Run(rec, func(t *testing.T) {
			base := t.TempDir()
			prof, sb := filepath.Join(base, "p.json"), filepath.Join(base, "s.yaml")
			r := learnCmd(t, "--recorder", rec, "-o", prof, "--profile-out", sb, "--net", "host", "--", "sh", "-c", fetch(a8080))
			if r.code != 0 || !strings.Contains(r.stdout, a8080+": "+a8080+"\n") {
				t.Fatalf("learn: exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
			}
			got, _ := os.ReadFile(sb)
			contains(t, string(got), "allow-net:\n    - '"+a8080+"'\n", "the learned IPv6 destination")
			r = sandbox(t, base, "--profile", sb, "--", "sh", "-c", fetch(a8080)+fetch(a9090)+fetch(b8080))
			contains(t, r.stdout, a8080+": "+a8080+"\n", "the learned IPv6 destination, replayed")
			contains(t, r.stdout, a9090+": nc: can't connect", "another port")
			contains(t, r.stdout, b8080+": nc: can't connect", "another IPv6 host")
		})
	}
}
