package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// hookScript writes a shell hook that appends its name, the state's status
// and its namespaces' view to a log.
func hookScript(t *testing.T, dir, name, log string) string {
	t.Helper()
	p := filepath.Join(dir, name+".sh")
	body := "#!/bin/sh\nstate=$(cat)\necho \"" + name + " $state\" >> " + log + "\n"
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHooks(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "hooks.log")
	e := newEnv(t, "sh", "-c", "echo running >> /hooklog/hooks.log")
	e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/hooklog", Type: "bind", Source: dir, Options: []string{"bind"}})
	h := func(name string) []specs.Hook {
		return []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", hookScript(t, dir, name, log)}}}
	}
	e.spec.Hooks = &specs.Hooks{
		CreateRuntime: h("createRuntime"), CreateContainer: h("createContainer"),
		Poststart: h("poststart"), Poststop: h("poststop"),
	}
	//lint:ignore SA1019 prestart is deprecated but still part of the spec
	e.spec.Hooks.Prestart = h("prestart")
	e.mustRun()
	data, _ := os.ReadFile(log)
	var order []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		name, st, _ := strings.Cut(l, " ")
		order = append(order, name)
		if name == "running" {
			continue
		}
		var s specs.State
		if err := json.Unmarshal([]byte(st), &s); err != nil || s.ID != e.id || s.Bundle != e.bundle {
			t.Errorf("%s hook got state %q (%v)", name, st, err)
		}
		if name == "poststop" && s.Status != "stopped" {
			t.Errorf("poststop status %q", s.Status)
		}
	}
	// createContainer runs in the container's mount namespace: it sees the
	// host's filesystem (before pivot_root) only because that is the spec.
	got := strings.Join(order, ",")
	if !strings.HasPrefix(got, "prestart,createRuntime,createContainer,") || !strings.HasSuffix(got, "poststop") || !strings.Contains(got, "running") || !strings.Contains(got, "poststart") {
		t.Errorf("hook order %s", got)
	}
}

func TestFailingHookFailsCreate(t *testing.T) {
	e := newEnv(t, "true")
	e.spec.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo nope >&2; exit 3"}}}}
	e.write()
	r := e.brig("create", "--bundle", e.bundle, e.id)
	if r.code == 0 {
		t.Fatal("create with a failing createRuntime hook succeeded")
	}
	contains(t, r.stderr, "createRuntime", "error names the hook")
	contains(t, r.stderr, "nope", "error has the hook's output")
	if ents := leftIn(e.root); len(ents) != 0 {
		t.Errorf("state left: %v", ents)
	}
}

func TestHookTimeout(t *testing.T) {
	e := newEnv(t, "true")
	one := 1
	e.spec.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sleep", Args: []string{"sleep", "30"}, Timeout: &one}}}
	e.write()
	start := time.Now()
	r := e.brig("create", "--bundle", e.bundle, e.id)
	if r.code == 0 {
		t.Fatal("create with a hook past its timeout succeeded")
	}
	contains(t, r.stderr, "timed out", "timeout error")
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("hook was not killed at its timeout (%v)", d)
	}
}

// consoleListener accepts one connection and receives the pty master.
func consoleListener(t *testing.T) (string, chan *os.File) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *os.File, 1)
	go func() {
		defer l.Close()
		c, err := l.Accept()
		if err != nil {
			ch <- nil
			return
		}
		defer c.Close()
		uc := c.(*net.UnixConn)
		buf, oob := make([]byte, 64), make([]byte, 64)
		_, oobn, _, _, err := uc.ReadMsgUnix(buf, oob)
		if err != nil {
			ch <- nil
			return
		}
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		if len(msgs) == 0 {
			ch <- nil
			return
		}
		fds, _ := unix.ParseUnixRights(&msgs[0])
		if len(fds) == 0 {
			ch <- nil
			return
		}
		ch <- os.NewFile(uintptr(fds[0]), "ptmx")
	}()
	return path, ch
}

func TestConsoleSocket(t *testing.T) {
	sock, ch := consoleListener(t)
	e := newEnv(t, "sh", "-c", "tty; stty size; echo on-a-tty")
	e.spec.Process.Terminal = true
	e.spec.Process.ConsoleSize = &specs.Box{Height: 30, Width: 100}
	e.create("--console-socket", sock)
	var master *os.File
	select {
	case master = <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("no pty master received")
	}
	if master == nil {
		t.Fatal("console socket got no fd")
	}
	defer master.Close()
	if r := e.brig("start", e.id); r.code != 0 {
		t.Fatal(r.stderr)
	}
	s := readUntil(master, "on-a-tty")
	contains(t, s, "/dev/pts/", "tty name")
	contains(t, s, "30 100", "console size")
	contains(t, s, "on-a-tty", "output through the pty")
}

func TestTerminalNeedsConsoleSocket(t *testing.T) {
	e := newEnv(t, "true")
	e.spec.Process.Terminal = true
	e.write()
	r := e.brig("create", "--bundle", e.bundle, e.id)
	if r.code == 0 || !strings.Contains(r.stderr, "console-socket") {
		t.Errorf("terminal without console socket: exit %d, %s", r.code, r.stderr)
	}
}

// openPty returns a pty pair for driving brig as a person at a terminal.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120})
	return m, s
}

// TestRunTerminalWithoutConsoleSocket: an interactive `brig run` with
// process.terminal proxies the container's pty to brig's own terminal.
func TestRunTerminalWithoutConsoleSocket(t *testing.T) {
	for _, mode := range []string{"run", "exec"} {
		t.Run(mode, func(t *testing.T) {
			m, s := openPty(t)
			defer m.Close()
			e := newEnv(t, "sh", "-c", "tty; stty size; read line; echo got:$line; exit 5")
			var cmd *exec.Cmd
			if mode == "run" {
				e.spec.Process.Terminal = true
				e.write()
				cmd = exec.Command(e.bin, "--root", e.root, "run", "--bundle", e.bundle, e.id)
			} else {
				e.spec.Process.Args = []string{"sleep", "60"}
				running(t, e)
				cmd = exec.Command(e.bin, "--root", e.root, "exec", "-t", e.id, "sh", "-c", "tty; stty size; read line; echo got:$line; exit 5")
			}
			cmd.Stdin, cmd.Stdout, cmd.Stderr = s, s, s
			cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true, Setctty: true}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			s.Close()
			var out []byte
			buf := make([]byte, 4096)
			deadline := time.Now().Add(15 * time.Second)
			sent := false
			for time.Now().Before(deadline) && !strings.Contains(string(out), "got:") {
				m.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				n, _ := m.Read(buf)
				out = append(out, buf[:n]...)
				if !sent && strings.Contains(string(out), "40 120") {
					m.Write([]byte("hello\r"))
					sent = true
				}
			}
			err := cmd.Wait()
			code := cmd.ProcessState.ExitCode()
			// what brig wrote after the command's output (an error, if
			// any), so a failure shows it
			for m.SetReadDeadline(time.Now().Add(200 * time.Millisecond)); ; {
				n, rerr := m.Read(buf)
				out = append(out, buf[:n]...)
				if rerr != nil {
					break
				}
			}
			got := string(out)
			contains(t, got, "/dev/pts/", "tty inside")
			contains(t, got, "40 120", "terminal size passed through")
			contains(t, got, "got:hello", "input through the pty")
			if code != 5 {
				t.Errorf("exit code %d (%v), want 5; output %q", code, err, got)
			}
		})
	}
}

// TestConsoleTargetNotFollowed: with /dev from the image (no /dev tmpfs),
// a /dev/console that is a symbolic link (here to a file of the image; in
// CVE-2025-52565's attack, swapped in by another container sharing /dev,
// to a file under /proc) gets no terminal mounted through it: create
// fails naming /dev/console, and the link's target is left as it was.
// brig opens /dev/console once without following links and mounts the
// terminal through that handle, so a swap after the check can't redirect
// the mount either. The control, a plain /dev/console in the same image,
// is the terminal.
func TestConsoleTargetNotFollowed(t *testing.T) {
	for _, tc := range []struct {
		name    string
		symlink bool
	}{{"symbolic link", true}, {"control: a file", false}} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			copyRootfs(t, root)
			for _, d := range []string{"dev/pts", "dev/shm", "dev/mqueue"} {
				os.MkdirAll(filepath.Join(root, d), 0o755)
			}
			os.Symlink("pts/ptmx", filepath.Join(root, "dev", "ptmx"))
			os.WriteFile(filepath.Join(root, "etc", "target"), []byte("untouched\n"), 0o644)
			console := filepath.Join(root, "dev", "console")
			os.Remove(console)
			if tc.symlink {
				os.Symlink("/etc/target", console)
			} else {
				os.WriteFile(console, nil, 0o600)
			}
			sock, ch := consoleListener(t)
			e := newEnv(t, "sh", "-c", "grep -c ' /dev/console ' /proc/self/mountinfo; grep -c ' /etc/target ' /proc/self/mountinfo; cat /etc/target")
			e.spec.Root.Path = root
			e.spec.Process.Terminal = true
			var mounts []specs.Mount
			for _, m := range e.spec.Mounts {
				if m.Destination != "/dev" { // its devpts, shm and mqueue stay
					mounts = append(mounts, m)
				}
			}
			e.spec.Mounts = mounts
			e.write()
			r := e.brig("create", "--bundle", e.bundle, "--console-socket", sock, e.id)
			if tc.symlink {
				if r.code == 0 || !strings.Contains(r.stderr, "/dev/console") {
					t.Fatalf("create through a /dev/console link: exit %d, %s", r.code, r.stderr)
				}
				if b, _ := os.ReadFile(filepath.Join(root, "etc", "target")); string(b) != "untouched\n" {
					t.Errorf("the link's target: %q", b)
				}
				return
			}
			if r.code != 0 {
				t.Fatalf("create: %s", r.stderr)
			}
			var master *os.File
			select {
			case master = <-ch:
			case <-time.After(10 * time.Second):
				t.Fatal("no pty master received")
			}
			defer master.Close()
			if r := e.brig("start", e.id); r.code != 0 {
				t.Fatal(r.stderr)
			}
			out := readUntil(master, "untouched")
			contains(t, strings.ReplaceAll(out, "\r", ""), "1\n0\nuntouched", "/dev/console bound, /etc/target not")
		})
	}
}

// readUntil reads a pty master until want has come, or 10 seconds.
func readUntil(master *os.File, want string) string {
	var out []byte
	buf := make([]byte, 4096)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(string(out), want) {
		master.SetReadDeadline(time.Now().Add(time.Second))
		n, _ := master.Read(buf)
		out = append(out, buf[:n]...)
	}
	return string(out)
}
