// Package integration runs the brig binary against real containers, as
// root, and checks from inside and outside the container that each layer
// took effect. Every test cleans up after itself (state, cgroups, processes)
// even when it fails.
package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var (
	brigBin  string // the binary under test
	rootfs   string // a busybox root filesystem, shared read-only by tests
	workDir  string
	idSerial atomic.Int64
)

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("integration tests need root: skipped")
		os.Exit(0)
	}
	var err error
	workDir, err = os.MkdirTemp("", "brig-it-")
	if err != nil {
		panic(err)
	}
	// Containers with a user namespace run as unprivileged host uids: they
	// must be able to reach the shared rootfs.
	os.Chmod(workDir, 0o755)
	code := 1
	defer func() {
		stopDocker()
		stopContainerd()
		stopPodman()
		os.RemoveAll(workDir)
		for _, ctl := range []string{"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd", "unified", ""} {
			os.Remove(filepath.Join("/sys/fs/cgroup", ctl, "brigtest"))
		}
		os.Exit(code)
	}()
	brigBin = os.Getenv("BRIG")
	if brigBin == "" {
		brigBin = filepath.Join(workDir, "brig")
		// Built as `make build` builds it (the flags matter to the tests).
		out, err := exec.Command("make", "-C", "../..", "--no-print-directory", "build", "BIN="+brigBin).CombinedOutput()
		if err != nil {
			fmt.Printf("build brig: %v\n%s", err, out)
			return
		}
	}
	if rootfs, err = makeBusyboxRootfs(filepath.Join(workDir, "rootfs")); err != nil {
		fmt.Println("rootfs:", err)
		return
	}
	code = m.Run()
}

// makeBusyboxRootfs builds a minimal root: a static busybox and its applets.
func makeBusyboxRootfs(dir string) (string, error) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		return "", fmt.Errorf("busybox-static is needed (apt-get install busybox-static): %w", err)
	}
	for _, d := range []string{"bin", "proc", "sys", "dev", "etc", "tmp", "root", "var", "run"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return "", err
		}
	}
	os.Chmod(filepath.Join(dir, "tmp"), 0o1777)
	data, err := os.ReadFile(bb)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "busybox"), data, 0o755); err != nil {
		return "", err
	}
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		return "", err
	}
	for _, a := range strings.Fields(string(out)) {
		if a == "busybox" {
			continue
		}
		os.Symlink("busybox", filepath.Join(dir, "bin", a))
	}
	os.WriteFile(filepath.Join(dir, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "etc", "group"), []byte("root:x:0:\nnobody:x:65534:\n"), 0o644)
	return dir, nil
}

// leftIn lists what is left in a state root, but the compiled seccomp
// filters brig keeps there on purpose (seccomp.CacheDirName).
func leftIn(root string) []string {
	ents, _ := os.ReadDir(root)
	var left []string
	for _, e := range ents {
		if e.Name() != ".seccomp-cache" && e.Name() != ".bpflsm-cache" {
			left = append(left, e.Name())
		}
	}
	return left
}

// reap deletes, with brig delete --force, what a brig killed by its
// test (a timeout) left in root: its state, rootfs and cgroups, and its
// process, so that a later test doesn't trip over them.
func reap(root string) {
	for _, name := range leftIn(root) {
		if !strings.HasPrefix(name, ".") {
			runCmdFor(exec.Command(brigBin, "--root", root, "delete", "--force", name), time.Minute)
		}
	}
}

// env is one test's runtime: its own state root and bundle.
type env struct {
	t      *testing.T
	root   string // --root
	bundle string
	id     string
	spec   *specs.Spec
	bin    string   // runtime binary (brig unless a differential test says)
	extra  []string // environment variables added to the runtime's
	prefix []string // a command the runtime is run under (sh -c 'ulimit ...; exec "$0" "$@"')
}

// newEnv makes a bundle whose config is brig's default spec with the
// shared busybox rootfs, terminal off, a private cgroup path, and the given
// args. The test's cleanup deletes the container and checks nothing is left.
func newEnv(t *testing.T, args ...string) *env {
	t.Helper()
	e := &env{t: t, bin: brigBin}
	e.id = fmt.Sprintf("it%d-%d", os.Getpid(), idSerial.Add(1))
	// The state root must be reachable by a container root mapped to an
	// unprivileged host uid (it opens the exec fifo), as /run/brig is.
	root, err := os.MkdirTemp(workDir, "state-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(root, 0o711)
	e.root = root
	t.Cleanup(func() { os.RemoveAll(root) })
	e.bundle = t.TempDir()
	out, err := exec.Command(brigBin, "spec", "--bundle", e.bundle).CombinedOutput()
	if err != nil {
		t.Fatalf("brig spec: %v: %s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(e.bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	e.spec = &specs.Spec{}
	if err := json.Unmarshal(data, e.spec); err != nil {
		t.Fatal(err)
	}
	e.spec.Root.Path = rootfs
	e.spec.Process.Terminal = false
	// brig spec writes its default seccomp profile; the tests set the
	// profile they are about (TestSpecSeccomp checks brig spec's).
	e.spec.Linux.Seccomp = nil
	if len(args) > 0 {
		e.spec.Process.Args = args
	}
	e.spec.Linux.CgroupsPath = "/brigtest/" + e.id
	t.Cleanup(e.cleanup)
	return e
}

func (e *env) write() {
	e.t.Helper()
	data, err := json.MarshalIndent(e.spec, "", " ")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.bundle, "config.json"), data, 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) cleanup() {
	exec.Command(e.bin, "--root", e.root, "delete", "--force", e.id).Run()
	if ents := leftIn(e.root); len(ents) > 0 {
		e.t.Errorf("state left in %s after delete: %v", e.root, ents)
	}
	for _, ctl := range []string{"memory", "pids", "cpu", "freezer", "unified"} {
		p := filepath.Join("/sys/fs/cgroup", ctl, "brigtest", e.id)
		if _, err := os.Stat(p); err == nil {
			e.t.Errorf("cgroup left behind: %s", p)
		}
	}
}

type result struct {
	stdout, stderr string
	code           int
}

// brig runs the runtime with --root and the args; stdin is empty.
func (e *env) brig(args ...string) result {
	e.t.Helper()
	return e.brigIn(nil, args...)
}

func (e *env) brigIn(stdin []byte, args ...string) result {
	e.t.Helper()
	argv := append(append(append([]string{}, e.prefix...), e.bin, "--root", e.root), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = e.bundle
	if len(e.extra) > 0 {
		cmd.Env = append(os.Environ(), e.extra...)
	}
	// Files, not pipes: a created container's init keeps brig's stdio
	// open, and a pipe would never reach EOF.
	outf, err := os.CreateTemp(e.t.TempDir(), "stdout")
	if err != nil {
		e.t.Fatal(err)
	}
	defer outf.Close()
	errf, err := os.CreateTemp(e.t.TempDir(), "stderr")
	if err != nil {
		e.t.Fatal(err)
	}
	defer errf.Close()
	cmd.Stdout, cmd.Stderr = outf, errf
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("start %s: %v", e.bin, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timedOut := false
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		timedOut = true
	}
	stdout, _ := os.ReadFile(outf.Name())
	stderr, _ := os.ReadFile(errf.Name())
	if timedOut {
		e.t.Fatalf("%s %v: timed out\nstdout: %s\nstderr: %s", e.bin, args, stdout, stderr)
	}
	return result{stdout: string(stdout), stderr: string(stderr), code: cmd.ProcessState.ExitCode()}
}

// run writes the config and runs the container to completion.
func (e *env) run() result {
	e.t.Helper()
	e.write()
	return e.brig("run", "--bundle", e.bundle, e.id)
}

// mustRun is run that requires exit code 0 and returns stdout.
func (e *env) mustRun() string {
	e.t.Helper()
	r := e.run()
	if r.code != 0 {
		e.t.Fatalf("run: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// create writes the config and creates the container; the test's cleanup
// deletes it.
func (e *env) create(extra ...string) {
	e.t.Helper()
	e.write()
	args := append([]string{"create", "--bundle", e.bundle}, extra...)
	r := e.brig(append(args, e.id)...)
	if r.code != 0 {
		e.t.Fatalf("create: exit %d: %s", r.code, r.stderr)
	}
}

func (e *env) state() map[string]any {
	e.t.Helper()
	r := e.brig("state", e.id)
	if r.code != 0 {
		e.t.Fatalf("state: exit %d: %s", r.code, r.stderr)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
		e.t.Fatalf("state output %q: %v", r.stdout, err)
	}
	return m
}

func (e *env) pid() int {
	e.t.Helper()
	p, _ := e.state()["pid"].(float64)
	if p <= 0 {
		e.t.Fatalf("no pid in state")
	}
	return int(p)
}

func (e *env) status() string {
	e.t.Helper()
	s, _ := e.state()["status"].(string)
	return s
}

// waitStatus polls until the container reaches want.
func (e *env) waitStatus(want string) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if e.status() == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("container never became %s (is %s)", want, e.status())
}

func contains(t *testing.T, haystack, needle, what string) {
	t.Helper()
	if !strings.Contains(haystack, needle) {
		t.Errorf("%s: want %q in:\n%s", what, needle, haystack)
	}
}

func notContains(t *testing.T, haystack, needle, what string) {
	t.Helper()
	if strings.Contains(haystack, needle) {
		t.Errorf("%s: did not want %q in:\n%s", what, needle, haystack)
	}
}

// statusField reads a field of /proc/PID/status.
func statusField(t *testing.T, pid int, field string) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return ""
}

// gone reports whether pid has exited (it may linger as a zombie until
// its new parent reaps it).
func gone(pid int) bool {
	for i := 0; i < 100; i++ {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return true
		}
		s := string(data)
		if i := strings.LastIndexByte(s, ')'); i > 0 && len(s) > i+2 && (s[i+2] == 'Z' || s[i+2] == 'X') {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// dropNamespace removes a namespace type from the config.
func (e *env) dropNamespace(typ specs.LinuxNamespaceType) {
	var out []specs.LinuxNamespace
	for _, ns := range e.spec.Linux.Namespaces {
		if ns.Type != typ {
			out = append(out, ns)
		}
	}
	e.spec.Linux.Namespaces = out
}

// setNamespace adds or replaces a namespace.
func (e *env) setNamespace(typ specs.LinuxNamespaceType, path string) {
	e.dropNamespace(typ)
	e.spec.Linux.Namespaces = append(e.spec.Linux.Namespaces, specs.LinuxNamespace{Type: typ, Path: path})
}
