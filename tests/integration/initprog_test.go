package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// execProbe prints what an exec'd process can observe of its own
// credentials, limits, signals, fds and environment.
const execProbe = `id; grep -E '^(Uid|Gid|Groups|Cap|NoNewPrivs|Seccomp|SigBlk|SigIgn)' /proc/self/status
umask; pwd; ulimit -n; ulimit -Hn; ulimit -v; env | sort
for f in /proc/$$/fd/*; do echo "fd ${f##*/}"; done
read -r a b c d pgrp rest < /proc/self/stat; [ "$pgrp" = "$$" ] && echo "own process group"
uname -s 2>&1 || echo "uname refused"`

// TestExecInitProgram: brig exec runs the process layers from a program
// of system calls the brig command compiles (internal/initprog), in C,
// without the Go runtime; the process must come out exactly as the Go
// init makes it. Each case runs both ways (BRIG_INIT=go forces the Go
// init) and compares everything the probe sees, the exit code and the
// error, and --debug must say the C init ran it.
func TestExecInitProgram(t *testing.T) {
	e := newEnv(t, "sleep", "600")
	e.spec.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"uname"}, Action: specs.ActErrno, ErrnoRet: errnoRet(1)}}}
	e.spec.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 512, Hard: 1024}}
	e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"})
	e.create()
	if r := e.brig("start", e.id); r.code != 0 {
		t.Fatalf("start: %s", r.stderr)
	}
	e.waitStatus("running")
	if r := e.brig("exec", e.id, "mkdir", "-m", "0700", "/tmp/private"); r.code != 0 {
		t.Fatalf("mkdir: %s", r.stderr)
	}
	base := *e.spec.Process
	umask := uint32(0o027)
	for _, tc := range []struct {
		name     string
		edit     func(p *specs.Process)
		preserve bool
		wantErr  string // in stderr, for a process that must not start
	}{
		{name: "the container's process"},
		{name: "user, groups, umask, cwd", edit: func(p *specs.Process) {
			p.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 20}, Umask: &umask}
			p.Cwd = "/tmp"
		}},
		{name: "non-root with an ambient capability", edit: func(p *specs.Process) {
			c := []string{"CAP_NET_BIND_SERVICE", "CAP_KILL"}
			p.User = specs.User{UID: 500, GID: 500}
			p.Capabilities = &specs.LinuxCapabilities{Bounding: c, Effective: c, Permitted: c, Inheritable: c, Ambient: c[:1]}
		}},
		{name: "no capabilities at all", edit: func(p *specs.Process) { p.Capabilities = nil }},
		{name: "rlimits, the address space last", edit: func(p *specs.Process) {
			p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_AS", Soft: 1 << 30, Hard: 1 << 30}, {Type: "RLIMIT_NOFILE", Soft: 100, Hard: 200}}
		}},
		{name: "seccomp without no_new_privs", edit: func(p *specs.Process) { p.NoNewPrivileges = false }},
		{name: "no HOME, a PATH with empty and missing entries", edit: func(p *specs.Process) {
			p.Env = []string{"PATH=::/nonexistent:/bin", "X=a b\tc"}
		}},
		{name: "a preserved fd", preserve: true},
		{name: "a missing executable", edit: func(p *specs.Process) { p.Args = []string{"nosuch"} }, wantErr: `process.args[0] "nosuch": executable file not found in $PATH`},
		{name: "a file that is not executable", edit: func(p *specs.Process) { p.Args = []string{"/etc/passwd"} }, wantErr: `process.args[0] "/etc/passwd": permission denied`},
		{name: "a missing cwd", edit: func(p *specs.Process) { p.Cwd = "/nonexistent" }, wantErr: `process.cwd "/nonexistent": does not exist in the container`},
		{name: "a cwd the user can't enter", edit: func(p *specs.Process) {
			p.User = specs.User{UID: 1000, GID: 1000}
			p.Cwd = "/tmp/private"
		}, wantErr: `process.cwd "/tmp/private": permission denied`},
		{name: "a hard limit above brig's", edit: func(p *specs.Process) {
			p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1 << 30, Hard: 1 << 30}}
		}, wantErr: "process.rlimits[0] RLIMIT_NOFILE: raising the hard limit needs CAP_SYS_RESOURCE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := base
			p.Args = []string{"sh", "-c", execProbe}
			p.Env = append([]string{}, base.Env...)
			if tc.edit != nil {
				tc.edit(&p)
			}
			file := filepath.Join(t.TempDir(), "process.json")
			data, err := json.Marshal(&p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, data, 0o644); err != nil {
				t.Fatal(err)
			}
			results := map[string]result{}
			for _, mode := range []string{"c", "go"} {
				args := []string{"--root", e.root, "--debug", "exec", "--process", file}
				cmd := exec.Command(brigBin)
				if tc.preserve {
					f, err := os.Open(file)
					if err != nil {
						t.Fatal(err)
					}
					defer f.Close()
					cmd.ExtraFiles = []*os.File{f}
					args = append(args, "--preserve-fds", "1")
				}
				cmd.Args = append([]string{brigBin}, append(args, e.id)...)
				cmd.Env = append(os.Environ(), "BRIG_INIT="+mode)
				r := runCmdFor(cmd, time.Minute)
				var debug string
				debug, r.stderr = splitDebug(r.stderr)
				if mode == "c" && !strings.Contains(debug, "the C init runs") {
					t.Errorf("the Go init ran it: %q", debug)
				}
				results[mode] = r
			}
			c, g := results["c"], results["go"]
			if tc.wantErr != "" {
				if c.code == 0 || !strings.Contains(c.stderr, tc.wantErr) {
					t.Errorf("C init: exit %d, stderr %q; want a failure with %q", c.code, c.stderr, tc.wantErr)
				}
			} else if c.code != 0 || !strings.Contains(c.stdout, "Seccomp:") {
				t.Errorf("C init: exit %d, stderr %q, stdout %q", c.code, c.stderr, c.stdout)
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

// splitDebug separates brig's --debug lines from the rest of its stderr.
func splitDebug(stderr string) (debug, rest string) {
	var lines []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "brig: debug:") {
			debug += l
		} else if l != "" {
			lines = append(lines, l)
		}
	}
	return debug, strings.Join(lines, "\n")
}
