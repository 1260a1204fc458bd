package integration

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// CVE-2019-5736: the container must never be able to open brig's binary
// for writing through /proc/PID/exe.
func TestBinaryNotWritableThroughProcExe(t *testing.T) {
	e := newEnv(t, "sleep", "60")
	e.create()
	pid := e.pid()
	exe := fmt.Sprintf("/proc/%d/exe", pid)
	// Even host root: the init runs from a read-only mount of the binary.
	if err := unix.Access(exe, unix.W_OK); !errors.Is(err, unix.EROFS) {
		t.Errorf("access(%s, W_OK) = %v, want EROFS", exe, err)
	}
	if f, err := os.OpenFile(exe, os.O_WRONLY, 0); err == nil {
		f.Close()
		t.Errorf("opened the init's executable for writing")
	}
	// From a container sharing its pid namespace, the waiting init is not
	// dumpable: its exe can't even be opened.
	b := newEnv(t, "sh", "-c", "cat /proc/1/exe >/dev/null 2>&1 && echo exe-readable || echo exe-denied; echo x >> /proc/1/exe 2>/dev/null && echo exe-written || echo exe-not-written")
	b.setNamespace(specs.PIDNamespace, fmt.Sprintf("/proc/%d/ns/pid", pid))
	b.spec.Process.Capabilities = nil // no CAP_SYS_PTRACE
	out := b.mustRun()
	contains(t, out, "exe-denied", "non-dumpable init")
	contains(t, out, "exe-not-written", "binary write")
}

// No file descriptor of brig's leaks into the container unless asked for
// with --preserve-fds.
func TestNoFdLeak(t *testing.T) {
	for _, preserve := range []int{0, 2} {
		t.Run(fmt.Sprintf("preserve=%d", preserve), func(t *testing.T) {
			e := newEnv(t, "sh", "-c", "ls /proc/self/fd | sort -n | tr '\\n' ' '")
			e.write()
			cmd := exec.Command(e.bin, "--root", e.root, "run", "--preserve-fds", fmt.Sprint(preserve), "--bundle", e.bundle, e.id)
			var extra []*os.File
			for i := 0; i < 3; i++ {
				f, err := os.Open(e.bundle) // a host directory: the worst thing to leak
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				extra = append(extra, f)
			}
			cmd.ExtraFiles = extra
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			fds := strings.Fields(string(out))
			t.Logf("fds: %v", fds)
			// 0 1 2, the preserved ones, and the one ls opens to read the dir.
			want := 3 + preserve + 1
			if len(fds) != want {
				t.Errorf("fds in the container: %v, want %d of them", fds, want)
			}
		})
	}
	// brig run -- passes the init more (a pidfd of brig, the trees of
	// --rw paths cloned host-side, as root and rootless): none reaches
	// the command.
	dir, err := os.MkdirTemp("", "brig-fds-") // searchable by the other user
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o777)
	for _, uid := range []int{0, 65534} {
		r := sandboxAs(t, uid, dir, "--rw", dir, "--", "sh", "-c", "ls /proc/self/fd | sort -n | tr '\\n' ' '")
		if fds := strings.Fields(r.stdout); r.code != 0 || len(fds) != 4 {
			t.Errorf("uid %d: fds in the sandbox: %q (%d, %s), want 0 1 2 and ls's own", uid, r.stdout, r.code, r.stderr)
		}
	}
}

// CVE-2024-21626: a process.cwd through a leaked fd would start the process
// in a host directory. brig leaks none, and refuses a cwd outside the root.
func TestCwdStaysInContainer(t *testing.T) {
	for fd := 3; fd <= 8; fd++ {
		e := newEnv(t, "sh", "-c", "pwd -P")
		e.spec.Process.Cwd = fmt.Sprintf("/proc/self/fd/%d", fd)
		r := e.run()
		if r.code == 0 {
			wd := strings.TrimSpace(r.stdout)
			if !strings.HasPrefix(wd, "/") || strings.Contains(wd, "unreachable") || strings.HasPrefix(wd, "/proc/self/fd") {
				t.Errorf("cwd /proc/self/fd/%d gave the process %q", fd, wd)
			}
		}
	}
}

// CVE-2025-31133 class: /dev/null replaced by a symlink must not turn a
// mask into a bind of something else.
func TestMaskWithFakeDevNull(t *testing.T) {
	dev := t.TempDir()
	target := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(target, []byte("host secret\n"), 0o644)
	if err := os.Symlink(target, filepath.Join(dev, "null")); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, "cat", "/proc/keys")
	e.spec.Mounts = append(withoutMount(e.spec.Mounts, "/dev"), specs.Mount{Destination: "/dev", Type: "bind", Source: dev, Options: []string{"rbind"}})
	e.spec.Linux.MaskedPaths = []string{"/proc/keys"}
	r := e.run()
	t.Logf("exit %d, stderr %s", r.code, r.stderr)
	if r.code == 0 {
		notContains(t, r.stdout, "host secret", "masked path content")
	} else {
		contains(t, r.stderr, "null", "error about /dev/null")
	}
	if data, _ := os.ReadFile(target); string(data) != "host secret\n" {
		t.Errorf("host file changed: %q", data)
	}
}

// Procfs redirection: a mount over part of /proc could capture the writes
// brig makes to procfs (sysctls, LSM labels). Such a mount is refused at
// the door, as runc refuses it (only lxcfs-style files may be covered);
// and brig's own sysctl writes go through a procfs handle of its own.
func TestSysctlWritesReachRealProcfs(t *testing.T) {
	bad := newEnv(t, "true")
	bad.spec.Mounts = append(bad.spec.Mounts, specs.Mount{Destination: "/proc/sys/net", Type: "tmpfs", Source: "tmpfs"})
	if r := bad.run(); r.code == 0 || !strings.Contains(r.stderr, "/proc/sys/net") {
		t.Errorf("a tmpfs over /proc/sys/net: exit %d, stderr %q; want a refusal naming it", r.code, r.stderr)
	}
	e := newEnv(t, "sleep", "60")
	e.spec.Linux.ReadonlyPaths = nil
	e.spec.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
	pid := running(t, e)
	out, err := exec.Command("nsenter", fmt.Sprintf("--net=/proc/%d/ns/net", pid), "cat", "/proc/sys/net/ipv4/ip_forward").Output()
	if err != nil {
		t.Fatalf("nsenter: %v", err)
	}
	if strings.TrimSpace(string(out)) != "1" {
		t.Errorf("sysctl in the container's netns = %q, want 1", out)
	}
}

// CVE-2024-21626 with the fd a host directory for sure: a preserved fd
// (--preserve-fds 1) that is the bundle's directory on the host, named as
// process.cwd through /proc/self/fd/3. The process must not start there
// (the fds of TestCwdStaysInContainer are refused earlier, so this is the
// case that proves the working-directory check).
func TestCwdPreservedHostFd(t *testing.T) {
	e := newEnv(t, "sh", "-c", "pwd -P; ls; echo marker-ls")
	e.spec.Process.Cwd = "/proc/self/fd/3"
	e.write()
	os.WriteFile(filepath.Join(e.bundle, "HOSTFILE"), []byte("x"), 0o644)
	cmd := exec.Command(e.bin, "--root", e.root, "run", "--preserve-fds", "1", "--bundle", e.bundle, e.id)
	f, err := os.Open(e.bundle)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd.ExtraFiles = []*os.File{f}
	out, err := cmd.CombinedOutput()
	if strings.Contains(string(out), "HOSTFILE") || err == nil {
		t.Errorf("the process started in the host directory: %v %q", err, out)
	}
	contains(t, string(out), "process.cwd", "the refusal")
}

// The container's init is brig-init, beside brig, when it is the one built
// with this brig; a brig copied alone, or beside another build's
// brig-init, starts itself as the init. Seen from outside: the file the
// waiting init runs (/proc/PID/exe's device and inode), what --version
// says, and that the container runs either way.
func TestSlimInit(t *testing.T) {
	slim := filepath.Join(filepath.Dir(brigBin), "brig-init")
	if _, err := os.Stat(slim); err != nil {
		t.Fatalf("the build has no brig-init beside brig: %v", err)
	}
	dir, err := os.MkdirTemp(workDir, "slim-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	alone := filepath.Join(dir, "alone", "brig")
	other := filepath.Join(dir, "other", "brig")
	for _, c := range [][2]string{{brigBin, alone}, {brigBin, other}, {slim, filepath.Join(dir, "other", "brig-init")}} {
		data, err := os.ReadFile(c[0])
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(c[1]) == "brig-init" {
			// Another build's: one byte of its Go build ID changed.
			i := bytes.Index(data[:4096], []byte("Go\x00\x00"))
			if i < 0 {
				t.Fatal("no Go build ID note in brig-init's first page")
			}
			data[i+4] ^= 1
		}
		os.MkdirAll(filepath.Dir(c[1]), 0o755)
		if err := os.WriteFile(c[1], data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, bin, want string // want: the file the init runs
	}{
		{"beside", brigBin, slim},
		{"alone", alone, alone},
		{"other build", other, other},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command(tc.bin, "--version").CombinedOutput()
			if err != nil {
				t.Fatalf("--version: %v: %s", err, out)
			}
			wantLine := "init: " + slim
			if tc.want != slim {
				wantLine = "init: brig itself"
			}
			contains(t, string(out), wantLine, "--version")
			e := newEnv(t, "sleep", "60")
			e.bin = tc.bin
			e.create()
			var got, want unix.Stat_t
			if err := unix.Stat(fmt.Sprintf("/proc/%d/exe", e.pid()), &got); err != nil {
				t.Fatal(err)
			}
			if err := unix.Stat(tc.want, &want); err != nil {
				t.Fatal(err)
			}
			if got.Dev != want.Dev || got.Ino != want.Ino {
				t.Errorf("the init runs %d:%d, want %s (%d:%d)", got.Dev, got.Ino, tc.want, want.Dev, want.Ino)
			}
			if err := unix.Access(fmt.Sprintf("/proc/%d/exe", e.pid()), unix.W_OK); !errors.Is(err, unix.EROFS) {
				t.Errorf("access(/proc/PID/exe, W_OK) = %v, want EROFS", err)
			}
			if r := e.brig("start", e.id); r.code != 0 {
				t.Fatalf("start: %d %s", r.code, r.stderr)
			}
			e.waitStatus("running")
		})
	}
}
