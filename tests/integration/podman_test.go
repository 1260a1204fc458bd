package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// podmanEnv is a private Podman store (its own root, run root and tmp dir,
// vfs storage, cgroupfs, events in a file): Podman has no daemon, so each
// command is one podman process, and the containers it leaves are removed
// at the end.
type podmanEnv struct {
	dir  string
	args []string
}

var (
	podmanOnce sync.Once
	podmanP    *podmanEnv
	podmanErr  error
)

const podmanImage = "localhost/brigtest/busybox:1"

func startPodman(t *testing.T) *podmanEnv {
	t.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skip("podman not installed (make deps installs it)")
	}
	podmanOnce.Do(func() {
		dir, err := os.MkdirTemp(workDir, "podman-")
		if err != nil {
			podmanErr = err
			return
		}
		// Podman gives root containers nofile and nproc hard limits of
		// the host maximum; without CAP_SYS_RESOURCE (this host) neither
		// runc nor brig may raise them, so the defaults are set here.
		conf := filepath.Join(dir, "containers.conf")
		os.WriteFile(conf, []byte("[containers]\ndefault_ulimits = [\"nofile=1024:4096\", \"nproc=4096:4096\"]\n"), 0o644)
		p := &podmanEnv{dir: dir, args: []string{"--root", filepath.Join(dir, "storage"), "--runroot", filepath.Join(dir, "run"),
			"--tmpdir", filepath.Join(dir, "tmp"), "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs",
			"--events-backend", "file"}}
		podmanP = p
		archive := filepath.Join(dir, "busybox.tar")
		if err := ociArchive(archive, rootfs, podmanImage, nil); err != nil {
			podmanErr = err
			return
		}
		if r := p.podman("load", "-i", archive); r.code != 0 {
			podmanErr = fmt.Errorf("podman load: %s", r.stderr)
		}
	})
	if podmanErr != nil {
		t.Fatalf("podman: %v", podmanErr)
	}
	return podmanP
}

func (p *podmanEnv) podman(args ...string) result {
	return p.podmanIn("", args...)
}

func (p *podmanEnv) podmanIn(stdin string, args ...string) result {
	cmd := exec.Command("podman", append(append([]string{}, p.args...), args...)...)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+filepath.Join(p.dir, "containers.conf"))
	cmd.Stdin = strings.NewReader(stdin)
	return runCmd(cmd)
}

// stopPodman is called from TestMain's cleanup.
func stopPodman() {
	if podmanP == nil {
		return
	}
	podmanP.podman("rm", "-a", "-f", "-t", "0")
	podmanP.podman("system", "reset", "-f")
	detachMountsUnder(podmanP.dir)
	ctls, _ := os.ReadDir("/sys/fs/cgroup")
	for _, c := range ctls {
		removeCgroupTree(filepath.Join("/sys/fs/cgroup", c.Name(), "libpod_parent"))
	}
}

func (p *podmanEnv) runtime(rt string) string {
	if rt == "brig" {
		return brigBin
	}
	return rt
}

// TestPodman runs the shared docker run matrix through `podman --runtime`
// with brig and with runc.
func TestPodman(t *testing.T) {
	p := startPodman(t)
	runEngineMatrix(t, engineMatrix(t.TempDir()), func(rt string, tc engineCase) result {
		args := []string{"--runtime", p.runtime(rt), "run", "--rm"}
		if !slices.Contains(tc.args, "--network") {
			args = append(args, "--network", "none") // no CNI state on the host
		}
		args = append(append(args, tc.args...), podmanImage, "sh", "-c", tc.cmd)
		return p.podmanIn("from stdin\n", args...)
	})
}

// TestPodmanLifecycle drives one detached container through exec, top,
// pause/unpause, stop, restart, kill, wait and removal, with brig.
func TestPodmanLifecycle(t *testing.T) {
	p := startPodman(t)
	rt := []string{"--runtime", brigBin}
	pm := func(args ...string) result { return p.podman(append(append([]string{}, rt...), args...)...) }
	r0 := pm("run", "-d", "--name", "plc", "--network", "none", podmanImage, "sh", "-c", "echo started; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done")
	if r0.code != 0 {
		t.Fatalf("run -d: %s", r0.stderr)
	}
	defer pm("rm", "-f", "-t", "0", "plc")
	if r := pm("exec", "-u", "1000", "-e", "Z=1", "plc", "sh", "-c", "id -u; echo $Z"); r.stdout != "1000\n1\n" {
		t.Errorf("exec: %q %s", r.stdout, r.stderr)
	}
	if r := pm("top", "plc"); !strings.Contains(r.stdout, "sleep") && !strings.Contains(r.stdout, "sh -c") {
		t.Errorf("top: %q %s", r.stdout, r.stderr)
	}
	if r := pm("pause", "plc"); r.code != 0 {
		t.Errorf("pause: %s", r.stderr)
	}
	if r := pm("inspect", "-f", "{{.State.Status}}", "plc"); strings.TrimSpace(r.stdout) != "paused" {
		t.Errorf("status after pause: %q", r.stdout)
	}
	if r := pm("unpause", "plc"); r.code != 0 {
		t.Errorf("unpause: %s", r.stderr)
	}
	if r := pm("stop", "-t", "5", "plc"); r.code != 0 {
		t.Errorf("stop: %s", r.stderr)
	}
	if r := pm("logs", "plc"); !strings.Contains(r.stdout, "started") || !strings.Contains(r.stdout, "bye") {
		t.Errorf("logs (SIGTERM reached the trap): %q", r.stdout)
	}
	if r := pm("inspect", "-f", "{{.State.ExitCode}}", "plc"); strings.TrimSpace(r.stdout) != "0" {
		t.Errorf("exit code after stop: %q", r.stdout)
	}
	if r := pm("start", "plc"); r.code != 0 {
		t.Errorf("restart: %s", r.stderr)
	}
	if r := pm("kill", "-s", "KILL", "plc"); r.code != 0 {
		t.Errorf("kill: %s", r.stderr)
	}
	if r := pm("wait", "plc"); strings.TrimSpace(r.stdout) != "137" {
		t.Errorf("wait after kill -s KILL: %q %s", r.stdout, r.stderr)
	}
	if r := pm("rm", "plc"); r.code != 0 {
		t.Errorf("rm: %s", r.stderr)
	}
	// Podman keeps no --root for its runtime's later commands (its
	// cleanup process would lose it), so brig's state is in /run/brig.
	if id := strings.TrimSpace(r0.stdout); id != "" {
		if _, err := os.Stat(filepath.Join("/run/brig", id)); err == nil {
			t.Errorf("brig state left for %s", id)
		}
	}
}
