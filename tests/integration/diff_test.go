package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// probe prints what a container can observe of its own confinement.
const probe = `id; hostname; grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status; ulimit -n; ulimit -Hn; umask; pwd
ls -a /dev | sort | tr '\n' ' '; echo
awk '{print $5, substr($6,1,2)}' /proc/self/mountinfo | sort
cat /proc/self/uid_map; touch /probe 2>&1 | sed 's/.*: //'; cat /proc/sys/net/ipv4/ip_forward
echo "lo $(cat /sys/class/net/lo/operstate 2>&1)"`

// TestDifferentialAgainstRunc runs the same bundles with brig, runc and
// crun and compares what the container sees. Differences are failures
// unless listed as known (with the reason).
func TestDifferentialAgainstRunc(t *testing.T) {
	runtimes := []string{}
	for _, rt := range []string{"runc", "crun"} {
		if p, err := exec.LookPath(rt); err == nil && works(t, p) {
			runtimes = append(runtimes, p)
		} else {
			t.Logf("%s: not usable on this host, not compared", rt)
		}
	}
	if len(runtimes) == 0 {
		t.Skip("neither runc nor crun can run a container here")
	}
	for _, tc := range []struct {
		name string
		edit func(s *specs.Spec)
	}{
		{"default", func(s *specs.Spec) {}},
		{"user and groups", func(s *specs.Spec) {
			umask := uint32(0o077)
			s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 20}, Umask: &umask}
			s.Process.Cwd = "/tmp"
		}},
		{"writable root, more caps", func(s *specs.Spec) {
			s.Root.Readonly = false
			c := []string{"CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_KILL"}
			s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: c, Effective: c, Permitted: c}
		}},
		{"non-root ambient", func(s *specs.Spec) {
			c := []string{"CAP_NET_BIND_SERVICE"}
			s.Process.User = specs.User{UID: 500, GID: 500}
			s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: c, Effective: c, Permitted: c, Inheritable: c, Ambient: c}
		}},
		{"rlimits and sysctl", func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 100, Hard: 200}}
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
		}},
		{"user namespace", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
			s.Mounts = withoutMount(s.Mounts, "/sys/fs/cgroup")
		}},
		{"no masks, seccomp", func(s *specs.Spec) {
			s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
				Syscalls: []specs.LinuxSyscall{{Names: []string{"uname"}, Action: specs.ActErrno, ErrnoRet: errnoRet(1)}}}
		}},
		{"no new privs off", func(s *specs.Spec) { s.Process.NoNewPrivileges = false }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			outputs := map[string]result{}
			for _, bin := range append([]string{brigBin}, runtimes...) {
				e := newEnv(t, "sh", "-c", probe)
				e.bin = bin
				e.spec.Version = "1.0.2" // crun 1.8 refuses newer versions
				e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"})
				tc.edit(e.spec)
				outputs[bin] = e.run()
			}
			want := outputs[brigBin]
			for _, rt := range runtimes {
				got := outputs[rt]
				if got.code != want.code {
					t.Errorf("exit code: brig %d, %s %d (stderr %s / %s)", want.code, rt, got.code, want.stderr, got.stderr)
				}
				if d := diffLines(normalise(want.stdout), normalise(got.stdout)); d != "" {
					t.Errorf("brig and %s differ:\n%s", rt, d)
				}
			}
		})
	}
}

// knownDifferences are deliberate, each with its reason (README,
// "Differences from runc"):
//   - masked files: brig binds /dev/null read-only (writes to a masked path
//     fail instead of vanishing); runc binds it read-write;
//   - /sys/fs/cgroup: brig honours "ro" on the v1 tmpfs; runc 1.1 leaves it
//     writable;
//   - /sys/fs/cgroup/unified: brig also shows a hybrid host's v2 hierarchy
//     (systemd in a container needs it); runc 1.1 leaves it out.
var knownDifferences = []struct{ re, repl string }{
	{`^(/proc/[a-z_]+) r[ow]$`, "$1 (masked or read-only)"},
	{`^/sys/fs/cgroup r[ow]$`, "/sys/fs/cgroup (tmpfs)"},
	{`^/sys/fs/cgroup/unified r[ow]$`, ""},
}

func normalise(out string) string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		for _, k := range knownDifferences {
			l = regexp.MustCompile(k.re).ReplaceAllString(l, k.repl)
		}
		if l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// works reports whether a runtime can run a trivial container here.
func works(t *testing.T, bin string) bool {
	e := newEnv(t, "true")
	e.bin = bin
	e.spec.Version = "1.0.2"
	r := e.run()
	if r.code != 0 {
		t.Logf("%s cannot run a container here: %s", bin, strings.TrimSpace(r.stderr))
	}
	return r.code == 0
}

// diffLines lists lines present in one output and not the other.
func diffLines(a, b string) string {
	count := func(s string) map[string]int {
		m := map[string]int{}
		for _, l := range strings.Split(s, "\n") {
			m[l]++
		}
		return m
	}
	ca, cb := count(a), count(b)
	var out []string
	for l, n := range ca {
		if cb[l] < n {
			out = append(out, "  only brig:  "+l)
		}
	}
	for l, n := range cb {
		if ca[l] < n {
			out = append(out, "  only other: "+l)
		}
	}
	return strings.Join(out, "\n")
}

// TestTmpCopyUp: a tmpfs with tmpcopyup (Podman passes it for an image's
// volumes) starts with what the directory under it held — modes, owners,
// links — and takes writes in memory, read-only where asked; the same as
// runc and crun, which share the extension.
func TestTmpCopyUp(t *testing.T) {
	bins := []string{brigBin}
	for _, rt := range []string{"runc", "crun"} {
		if p, err := exec.LookPath(rt); err == nil && works(t, p) {
			bins = append(bins, p)
		}
	}
	const look = `ls -ln /etc | awk 'NR>1 {print $1, $3, $4, $9, $10, $11}' | sort; head -c 5 /etc/passwd; echo
echo x > /etc/new 2>/dev/null && echo wrote || echo write-refused; grep -c '^root:' /etc/passwd`
	for _, tc := range []struct {
		name  string
		opts  []string
		wrote string
	}{
		{"writable", []string{"tmpcopyup", "mode=755"}, "wrote"},
		{"read-only", []string{"tmpcopyup", "ro", "mode=755"}, "write-refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want string
			for _, bin := range bins {
				e := newEnv(t, "sh", "-c", look)
				e.bin = bin
				e.spec.Version = "1.0.2"
				e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/etc", Type: "tmpfs", Source: "tmpfs", Options: tc.opts})
				r := e.run()
				if r.code != 0 {
					t.Fatalf("%s: exit %d: %s", bin, r.code, r.stderr)
				}
				if bin == brigBin {
					want = r.stdout
					contains(t, r.stdout, "root:", "the image's /etc/passwd on the tmpfs")
					contains(t, r.stdout, tc.wrote, "writes to the tmpfs")
					continue
				}
				if r.stdout != want {
					t.Errorf("brig and %s differ:\n%s", bin, diffLines(want, r.stdout))
				}
			}
			// The image underneath is untouched.
			if _, err := os.Stat(filepath.Join(rootfs, "etc/new")); err == nil {
				t.Error("a write to the tmpfs reached the image")
			}
		})
	}
}

// TestProcessDefaultsLikeRunc: HOME where process.env has none (the
// user's home in the container's /etc/passwd, else /), and a process.cwd
// the image lacks, made even under a read-only root — as runc does, with
// the same bundle.
func TestProcessDefaultsLikeRunc(t *testing.T) {
	bins := []string{brigBin}
	if p, err := exec.LookPath("runc"); err == nil && works(t, p) {
		bins = append(bins, p)
	}
	for _, tc := range []struct {
		name string
		uid  uint32
		cwd  string
	}{
		{"root", 0, "/"},
		{"a uid without a passwd entry", 4242, "/"},
		{"a missing cwd, read-only root", 0, "/made/by/the/runtime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want string
			for _, bin := range bins {
				e := newEnv(t, "sh", "-c", `echo "HOME=$HOME"; pwd`)
				e.bin = bin
				e.spec.Version = "1.0.2"
				e.spec.Process.Env = []string{"PATH=/bin:/usr/bin"}
				e.spec.Process.User = specs.User{UID: tc.uid, GID: tc.uid}
				e.spec.Process.Cwd = tc.cwd
				e.spec.Root.Readonly = true
				// A root of its own: the runtime makes the cwd in it.
				e.spec.Root.Path = t.TempDir()
				copyRootfs(t, e.spec.Root.Path)
				r := e.run()
				if r.code != 0 {
					t.Fatalf("%s: exit %d: %s", bin, r.code, r.stderr)
				}
				if bin == brigBin {
					want = r.stdout
					if !strings.Contains(r.stdout, "HOME=/") || !strings.HasSuffix(r.stdout, tc.cwd+"\n") {
						t.Errorf("brig: %q", r.stdout)
					}
					continue
				}
				if r.stdout != want {
					t.Errorf("brig printed %q, %s %q", want, bin, r.stdout)
				}
			}
		})
	}
}

// TestRuncSpecConfig: the config `runc spec` writes (every tutorial's
// first step) runs, and shows the same capabilities as under runc: its
// ambient capabilities aren't inheritable, so the kernel can't raise
// them; both leave them out (brig says so).
func TestRuncSpecConfig(t *testing.T) {
	runc, err := exec.LookPath("runc")
	if err != nil || !works(t, runc) {
		t.Skip("no usable runc")
	}
	dir := t.TempDir()
	cmd := exec.Command(runc, "spec")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v: %s", err, out)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	if len(s.Process.Capabilities.Ambient) == 0 {
		t.Skip("this runc's spec asks for no ambient capabilities")
	}
	outs := map[string]result{}
	for _, bin := range []string{brigBin, runc} {
		e := newEnv(t)
		e.bin = bin
		e.spec = &s
		e.spec.Root = &specs.Root{Path: rootfs, Readonly: true}
		e.spec.Process.Terminal = false
		e.spec.Process.Args = []string{"grep", "^Cap", "/proc/self/status"}
		e.spec.Linux.CgroupsPath = "/brigtest/" + e.id
		outs[bin] = e.run()
		if outs[bin].code != 0 {
			t.Fatalf("%s: exit %d: %s", bin, outs[bin].code, outs[bin].stderr)
		}
		s = *cloneSpec(t, data)
	}
	if outs[brigBin].stdout != outs[runc].stdout {
		t.Errorf("brig:\n%s\nrunc:\n%s", outs[brigBin].stdout, outs[runc].stdout)
	}
	contains(t, outs[brigBin].stderr, "process.capabilities.ambient", "brig's warning")
}

func cloneSpec(t *testing.T, data []byte) *specs.Spec {
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// TestRealtimeRuntime: a real-time budget and SCHED_FIFO work with the
// default cgroupsPath (brig/ID on v1: brig's parent gets the budget), as
// runc runs them.
func TestRealtimeRuntime(t *testing.T) {
	if _, err := os.Stat("/sys/fs/cgroup/cpu/cpu.rt_runtime_us"); err != nil {
		t.Skip("no v1 real-time group scheduling here")
	}
	bins := []string{brigBin}
	if p, err := exec.LookPath("runc"); err == nil && works(t, p) {
		bins = append(bins, p)
	}
	for _, bin := range bins {
		e := newEnv(t, "sh", "-c", "grep -E '^policy' /proc/self/sched | tr -d ' \\t'")
		e.bin = bin
		e.spec.Version = "1.0.2"
		e.spec.Linux.CgroupsPath = ""
		period, runtime := uint64(1000000), int64(10000)
		e.spec.Linux.Resources = &specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimePeriod: &period, RealtimeRuntime: &runtime}}
		if bin == brigBin {
			e.spec.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedFIFO, Priority: 1}
		}
		r := e.run()
		if r.code != 0 {
			t.Errorf("%s: exit %d: %s", bin, r.code, r.stderr)
			continue
		}
		if bin == brigBin && !strings.Contains(r.stdout, "policy:1") {
			t.Errorf("brig: %q, want SCHED_FIFO (policy 1)", r.stdout)
		}
	}
	// brig's parent, given the budget, goes with the container.
	if _, err := os.Stat("/sys/fs/cgroup/cpu/brig"); err == nil {
		t.Error("the brig/ cgroup was left behind")
	}
}
