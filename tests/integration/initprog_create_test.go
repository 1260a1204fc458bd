package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// createProbe prints what a container can see of how it was set up:
// identity, names, credentials, limits, /dev, every mount with its
// options and propagation, its cgroups, kernel parameters.
const createProbe = `id; hostname; cat /proc/sys/kernel/domainname; uname -m
grep -E '^(Cap|NoNewPrivs|Seccomp:|Groups|SigBlk|SigIgn)' /proc/self/status
ulimit -n; ulimit -Hn; umask; pwd; cat /proc/sys/net/ipv4/ip_forward
for f in /dev/* /dev/pts/* /dev/shm /dev/mqueue; do stat -c '%n %A %u %g %t %T %N' "$f"; done
awk '{ $1 = $2 = $3 = ""; print }' /proc/self/mountinfo | sed -E 's/(shared|master|propagate_from):[0-9]+/\1:N/g'
cat /proc/self/cgroup; ls /sys/fs/cgroup; ls /sys/fs/cgroup/pids 2>&1 | head -3
touch /probe 2>&1 | sed 's/.*: //'; echo "lo $(cat /sys/class/net/lo/operstate 2>&1)"
echo x 2>&1 > /tmp/landlock && echo tmp-written || echo tmp-refused; echo "attr $(cat /proc/self/attr/current 2>&1)"
uname -s 2>&1 || echo "uname refused"
env | sort`

// TestCreateInitProgram: a new container is set up by the C init from
// the program the brig command compiles (internal/initprog), with no Go
// runtime in it; it must come out exactly as the Go init makes it. Each
// case runs both ways (BRIG_INIT=go forces the Go init) and compares all
// the probe sees; --debug must say which init ran. Failures must fail
// both ways, naming the same field.
func TestCreateInitProgram(t *testing.T) {
	hostDir := t.TempDir()
	os.WriteFile(filepath.Join(hostDir, "file"), []byte("from the host\n"), 0o644)
	hostFile := filepath.Join(hostDir, "file")
	fuseUID := uint32(1000)
	fuseMode := os.FileMode(0o600)
	for _, tc := range []struct {
		name    string
		edit    func(s *specs.Spec)
		prefix  []string // brig runs under this command
		want    []string // lines the probe must print (the case took effect); "~x": a line containing x
		goInit  string   // the Go init must run it, for this reason
		wantErr string   // in stderr, for a container that must not start
	}{
		{name: "brig spec's config"},
		{name: "brig spec's config with its seccomp profile", edit: func(s *specs.Spec) { s.Linux.Seccomp = defaultProfile(t) }},
		{name: "user, groups, umask, cwd on a tmpfs", edit: func(s *specs.Spec) {
			umask := uint32(0o077)
			s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 20}, Umask: &umask}
			s.Process.Cwd = "/tmp"
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "size=1m", "mode=1777"}})
		}},
		{name: "writable root, more capabilities, non-root ambient", edit: func(s *specs.Spec) {
			s.Root.Readonly = false
			c := []string{"CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_KILL"}
			s.Process.User = specs.User{UID: 500, GID: 500}
			s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: c, Effective: c, Permitted: c, Inheritable: c, Ambient: c[1:2]}
		}},
		{name: "rlimits, sysctl, hostname, domainname, 32-bit personality", edit: func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 100, Hard: 200}, {Type: "RLIMIT_AS", Soft: 1 << 32, Hard: 1 << 32}}
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1"}
			s.Hostname, s.Domainname = "probe-host", "probe.example"
			s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32}
		}, want: []string{"i686", "probe-host", "probe.example"}},
		{name: "no rlimits: brig's own, its soft limit below the hard one", edit: func(s *specs.Spec) { s.Process.Rlimits = nil },
			prefix: []string{"sh", "-c", `ulimit -S -n 1000 && ulimit -H -n 2000 && exec "$0" "$@"`}, want: []string{"1000", "2000"}},
		{name: "no masks, seccomp without no_new_privs", edit: func(s *specs.Spec) {
			s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
			s.Process.NoNewPrivileges = false
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
				Syscalls: []specs.LinuxSyscall{{Names: []string{"uname"}, Action: specs.ActErrno, ErrnoRet: errnoRet(1)}}}
		}, want: []string{"?", "NoNewPrivs:\t0"}},
		{name: "binds: a file, a read-only tree, propagation; shared root", edit: func(s *specs.Spec) {
			s.Linux.RootfsPropagation = "shared"
			s.Mounts = append(s.Mounts,
				specs.Mount{Destination: "/etc/probe", Type: "bind", Source: hostFile, Options: []string{"bind", "ro"}},
				specs.Mount{Destination: "/srv/tree", Type: "bind", Source: hostDir, Options: []string{"rbind", "rro", "nosuid", "rslave"}},
				specs.Mount{Destination: "/srv/again", Source: hostDir, Options: []string{"bind", "noexec", "private"}})
		}},
		{name: "no cgroup namespace: the container's own cgroups bound", edit: func(s *specs.Spec) {
			var ns []specs.LinuxNamespace
			for _, n := range s.Linux.Namespaces {
				if n.Type != specs.CgroupNamespace {
					ns = append(ns, n)
				}
			}
			s.Linux.Namespaces = ns
		}},
		{name: "a device of its own, a cwd the image lacks, no /sys/fs/cgroup", edit: func(s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: &fuseMode, UID: &fuseUID}}
			s.Process.Cwd = "/srv/made/here"
			s.Mounts = withoutMount(s.Mounts, "/sys/fs/cgroup")
		}, want: []string{"~/dev/fuse crw------- 1000 0 a e5", "/srv/made/here"}},
		{name: "a Landlock rule set", edit: func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"})
			s.Annotations = map[string]string{"brig.landlock": `{"rules":{"pathBeneath":[` +
				`{"allowedAccess":["execute","read_file","read_dir"],"paths":["/"]},` +
				`{"allowedAccess":["write_file"],"paths":["/dev/null"]}]}}`}
		}, want: []string{"tmp-refused", "NoNewPrivs:\t1"}},
		{name: "a user namespace", edit: func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
			s.Mounts = withoutMount(s.Mounts, "/sys/fs/cgroup")
		}},
		{name: "a user namespace with a bind, cloned by brig", edit: func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
			s.Mounts = append(withoutMount(s.Mounts, "/sys/fs/cgroup"), specs.Mount{Destination: "/tmp", Type: "bind", Source: hostDir, Options: []string{"rbind", "ro"}})
		}, want: []string{"~ /tmp ro,"}},
		{name: "createRuntime hooks, run by brig", edit: func(s *specs.Spec) {
			s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > /dev/null"}}}}
		}},
		{name: "a failing prestart hook", edit: func(s *specs.Spec) {
			//lint:ignore SA1019 prestart is deprecated but still part of the spec
			s.Hooks = &specs.Hooks{Prestart: []specs.Hook{{Path: "/bin/false"}}}
		}, wantErr: "prestart"},
		{name: "hooks run in the container", edit: func(s *specs.Spec) {
			s.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{Path: "/bin/true"}}}
		}, goInit: "hooks run in the container"},
		{name: "a missing executable", edit: func(s *specs.Spec) { s.Process.Args = []string{"nosuch"} },
			wantErr: `process.args[0] "nosuch": executable file not found in $PATH`},
		{name: "a missing bind source", edit: func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/srv", Type: "bind", Source: filepath.Join(hostDir, "nosuch"), Options: []string{"bind"}})
		}, wantErr: "(bind on /srv): bind source"},
		{name: "a mount on procfs", edit: func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/proc/sys/kernel", Type: "tmpfs", Source: "tmpfs"})
		}, wantErr: "the target is on procfs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			results := map[string]result{}
			for _, mode := range []string{"c", "go"} {
				e := newEnv(t, "sh", "-c", createProbe)
				e.extra = []string{"BRIG_INIT=" + mode}
				e.prefix = tc.prefix
				if tc.edit != nil {
					tc.edit(e.spec)
				}
				e.write()
				r := e.brig("--debug", "run", "--bundle", e.bundle, e.id)
				var debug string
				debug, r.stderr = splitDebug(r.stderr)
				r.stdout = strings.ReplaceAll(r.stdout, e.id, "ID")
				r.stderr = strings.ReplaceAll(r.stderr, e.id, "ID")
				switch {
				case mode == "go" && !strings.Contains(debug, "the Go init sets the container up"):
					t.Errorf("BRIG_INIT=go: %q", debug)
				case mode == "c" && tc.goInit == "" && !strings.Contains(debug, "the C init runs"):
					t.Errorf("the Go init ran it: %q", debug)
				case mode == "c" && tc.goInit != "" && !strings.Contains(debug, "the Go init sets the container up ("+tc.goInit):
					t.Errorf("want the Go init, for %s: %q", tc.goInit, debug)
				}
				results[mode] = r
			}
			c, g := results["c"], results["go"]
			if tc.wantErr != "" {
				for mode, r := range results {
					if r.code == 0 || !strings.Contains(r.stderr, tc.wantErr) {
						t.Errorf("%s init: exit %d, stderr %q; want a failure with %q", mode, r.code, r.stderr, tc.wantErr)
					}
				}
				return
			}
			if c.code != 0 || !strings.Contains(c.stdout, "NoNewPrivs") {
				t.Fatalf("C init: exit %d, stderr %q, stdout %q (Go init: exit %d, %q)", c.code, c.stderr, c.stdout, g.code, g.stderr)
			}
			lines := strings.Split(c.stdout, "\n")
			for _, w := range tc.want {
				if !slices.ContainsFunc(lines, func(l string) bool {
					if sub, ok := strings.CutPrefix(w, "~"); ok {
						return strings.Contains(l, sub)
					}
					return l == w
				}) {
					t.Errorf("the probe has no line %q:\n%s", w, c.stdout)
				}
			}
			if c.code != g.code || c.stderr != g.stderr {
				t.Errorf("exit and error: C init %d %q, Go init %d %q", c.code, c.stderr, g.code, g.stderr)
			}
			if d := diffLines(c.stdout, g.stdout); d != "" {
				t.Errorf("C init and Go init differ (only brig: the C init):\n%s", d)
			}
		})
	}
}

// TestSandboxInitProgram: `brig run -- CMD` (a user namespace with binds
// brig clones, Landlock, seccomp, a parent-death signal) is set up by the
// C init and comes out as the Go init makes it, as root and without.
func TestSandboxInitProgram(t *testing.T) {
	const probe = `id; grep -E '^(Cap|NoNewPrivs|Seccomp:|Groups|SigBlk|SigIgn)' /proc/self/status
awk '{ $1 = $2 = $3 = ""; print }' /proc/self/mountinfo | sed -E 's/(shared|master|propagate_from):[0-9]+/\1:N/g'
ulimit -a; umask; pwd; ls -a /; ls -a /dev | tr '\n' ' '
echo x > here && echo cwd-written; echo x > /etc/x 2>&1; cat /etc/shadow 2>&1 | head -1
env | grep -v '^BRIG_INIT=' | sort`
	for _, uid := range []int{0, 1000} {
		t.Run(fmt.Sprintf("uid %d", uid), func(t *testing.T) {
			results := map[string]result{}
			for _, mode := range []string{"c", "go"} {
				dir := t.TempDir()
				os.Chown(dir, uid, uid)
				os.Chmod(filepath.Dir(dir), 0o755)
				t.Setenv("BRIG_INIT", mode)
				r := sandboxAs(t, uid, dir, "--", "sh", "-c", probe)
				r.stdout = strings.ReplaceAll(r.stdout, dir, "DIR")
				r.stdout = sandboxRootfs.ReplaceAllString(r.stdout, "ROOTFS")
				results[mode] = r
			}
			c, g := results["c"], results["go"]
			if c.code != 0 || !strings.Contains(c.stdout, "cwd-written") || !strings.Contains(c.stdout, "NoNewPrivs:\t1") {
				t.Fatalf("C init: exit %d, stderr %q, stdout %q", c.code, c.stderr, c.stdout)
			}
			if c.code != g.code || c.stderr != g.stderr {
				t.Errorf("exit and error: C init %d %q, Go init %d %q", c.code, c.stderr, g.code, g.stderr)
			}
			if d := diffLines(c.stdout, g.stdout); d != "" {
				t.Errorf("C init and Go init differ (only brig: the C init):\n%s", d)
			}
		})
	}
}

// sandboxRootfs is the sandbox's root directory, named per run.
var sandboxRootfs = regexp.MustCompile(`/\S*/\.rootfs-brig-run-[0-9]+`)

// defaultProfile is brig spec's seccomp profile.
func defaultProfile(t *testing.T) *specs.LinuxSeccomp {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command(brigBin, "spec", "--bundle", dir).CombinedOutput(); err != nil {
		t.Fatalf("brig spec: %v: %s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil || s.Linux == nil || s.Linux.Seccomp == nil {
		t.Fatalf("brig spec's config has no seccomp profile: %v", err)
	}
	return s.Linux.Seccomp
}
