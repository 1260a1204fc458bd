package integration

import (
	"encoding/json"
	"os/exec"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

type inspectReport struct {
	Namespaces map[string]struct {
		Host string `json:"host"`
	} `json:"namespaces"`
	Capabilities map[string][]string `json:"capabilities"`
	NoNewPrivs   bool                `json:"noNewPrivs"`
	Seccomp      struct {
		Mode    string `json:"mode"`
		Filters int    `json:"filters"`
	} `json:"seccomp"`
	Cgroup    map[string]string `json:"cgroupLimits"`
	Masked    []string          `json:"maskedPaths"`
	Writable  []string          `json:"writableMounts"`
	WeakSpots []string          `json:"weakSpots"`
}

// TestInspectSelfInRuncContainer: brig inspect --self, run inside a
// container made by runc from a known config, reports exactly that config.
func TestInspectSelfInRuncContainer(t *testing.T) {
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc not installed")
	}
	e := newEnv(t, "/brig", "inspect", "--self", "--format", "json")
	e.bin = "runc"
	e.spec.Version = "1.0.2"
	caps := []string{"CAP_CHOWN", "CAP_KILL"}
	e.spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	e.spec.Process.NoNewPrivileges = false
	e.dropNamespace(specs.IPCNamespace) // shared with the host: a weak spot to report
	e.spec.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"kexec_load"}, Action: specs.ActErrno}}}
	limit := int64(96 << 20)
	e.spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
	// brig and the libraries it links.
	e.spec.Mounts = append(e.spec.Mounts,
		specs.Mount{Destination: "/brig", Type: "bind", Source: brigBin, Options: []string{"bind", "ro"}},
		specs.Mount{Destination: "/lib", Type: "bind", Source: "/lib", Options: []string{"rbind", "ro"}},
		specs.Mount{Destination: "/lib64", Type: "bind", Source: "/lib64", Options: []string{"rbind", "ro"}},
		specs.Mount{Destination: "/usr/lib", Type: "bind", Source: "/usr/lib", Options: []string{"rbind", "ro"}},
	)
	out := e.mustRun()
	var r inspectReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("inspect output %q: %v", out, err)
	}
	if !slices.Equal(r.Capabilities["bounding"], caps) || !slices.Equal(r.Capabilities["effective"], caps) {
		t.Errorf("capabilities %v, want %v", r.Capabilities, caps)
	}
	if r.NoNewPrivs {
		t.Error("noNewPrivs reported true; the config has it false")
	}
	if r.Seccomp.Mode != "filter" || r.Seccomp.Filters != 1 {
		t.Errorf("seccomp %+v", r.Seccomp)
	}
	for ns, want := range map[string]string{"pid": "no", "uts": "no", "ipc": "yes", "cgroup": "no", "user": "yes"} {
		if got := r.Namespaces[ns].Host; got != want {
			t.Errorf("namespace %s host=%s, want %s", ns, got, want)
		}
	}
	if r.Cgroup["memory"] != "100663296" {
		t.Errorf("memory limit %q, want 100663296", r.Cgroup["memory"])
	}
	if !slices.Contains(r.Masked, "/proc/keys") {
		t.Errorf("masked %v lacks /proc/keys", r.Masked)
	}
	if slices.Contains(r.Writable, "/") {
		t.Errorf("writable %v includes the read-only root", r.Writable)
	}
	for _, want := range []string{"shares the host's ipc namespace", "no_new_privs is off"} {
		found := false
		for _, w := range r.WeakSpots {
			found = found || w == want || len(w) >= len(want) && w[:len(want)] == want
		}
		if !found {
			t.Errorf("weak spots %v lack %q", r.WeakSpots, want)
		}
	}
}

// TestInspectContainer: brig inspect ID, from the host, compares every
// namespace with its own.
func TestInspectContainer(t *testing.T) {
	e := newEnv(t, "sleep", "60")
	e.dropNamespace(specs.NetworkNamespace)
	running(t, e)
	r := e.brig("inspect", "--format", "json", e.id)
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	var rep inspectReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	for ns, want := range map[string]string{"mnt": "no", "net": "yes", "pid": "no", "user": "yes"} {
		if got := rep.Namespaces[ns].Host; got != want {
			t.Errorf("namespace %s host=%s, want %s", ns, got, want)
		}
	}
	if !rep.NoNewPrivs || rep.Seccomp.Mode != "disabled" {
		t.Errorf("nnp %v seccomp %v", rep.NoNewPrivs, rep.Seccomp)
	}
	text := e.brig("inspect", e.id).stdout
	contains(t, text, "shares the host's net namespace", "text verdict")
}
