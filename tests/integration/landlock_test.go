package integration

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestLandlock: a rule set that allows executing and reading /bin, writing
// /tmp and /dev, binding and connecting to TCP port 8080 only: /etc can't
// be written or read, port 9090 can't be reached, the allowed things work.
func TestLandlock(t *testing.T) {
	if out, _ := exec.Command(brigBin, "features").Output(); strings.Contains(string(out), `"io.github.brig.landlock.abi": "0"`) {
		t.Skip("Landlock is not active on this kernel")
	}
	rules := map[string]any{
		"ruleset": map[string]any{"handledAccessNetwork": []string{"bind_tcp", "connect_tcp"}},
		"rules": map[string]any{
			"pathBeneath": []map[string]any{
				{"allowedAccess": []string{"execute", "read_file", "read_dir"}, "paths": []string{"/bin"}},
				{"allowedAccess": []string{"read_file", "write_file", "read_dir", "make_reg", "remove_file", "truncate"}, "paths": []string{"/tmp", "/dev"}},
			},
			"netPort": []map[string]any{{"allowedAccess": []string{"bind_tcp", "connect_tcp"}, "ports": []int{8080}}},
		},
	}
	data, _ := json.Marshal(rules)
	e := newEnv(t, "sh", "-c", `
ip link set lo up
echo x > /tmp/ok && echo tmp-write-ok
echo x > /etc/x 2>/dev/null && echo etc-written || echo etc-write-denied
cat /etc/passwd >/dev/null 2>&1 && echo etc-read || echo etc-read-denied
nc -l -p 8080 > /tmp/got & sleep 0.3
echo hello | nc 127.0.0.1 8080; sleep 0.2; cat /tmp/got
echo hi | nc 127.0.0.1 9090 2>&1
grep NoNewPrivs /proc/self/status 2>&1 || echo proc-denied`)
	e.spec.Root.Readonly = false
	e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"})
	e.spec.Annotations = map[string]string{"brig.landlock": string(data)}
	c := append([]string{"CAP_NET_ADMIN"}, e.spec.Process.Capabilities.Bounding...)
	e.spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: c, Effective: c, Permitted: c}
	r := e.run()
	for _, want := range []string{"tmp-write-ok", "etc-write-denied", "etc-read-denied", "hello", "Permission denied", "proc-denied"} {
		contains(t, r.stdout, want, "under Landlock")
	}
	notContains(t, r.stdout, "etc-written", "under Landlock")
}

func TestLandlockBadRuleSet(t *testing.T) {
	e := newEnv(t, "true")
	e.spec.Annotations = map[string]string{"brig.landlock": `{"rules":{"pathBeneath":[{"allowedAccess":["fly"],"paths":["/"]}]}}`}
	r := e.run()
	if r.code == 0 {
		t.Fatal("a bad Landlock right was accepted")
	}
	contains(t, r.stderr, "rules.pathBeneath[0].allowedAccess[0]", "error names the field")
	if ents := leftIn(e.root); len(ents) != 0 {
		t.Errorf("state left: %v", ents)
	}
}

// TestLandlockNotSilentlyLostToEarlySeccomp: a profile loaded before
// Landlock (here: no noNewPrivileges) that denies the landlock calls with
// ENOSYS makes Landlock look absent; brig refuses to start rather than run
// the rule set unenforced.
func TestLandlockNotSilentlyLostToEarlySeccomp(t *testing.T) {
	if out, _ := exec.Command(brigBin, "features").Output(); strings.Contains(string(out), `"io.github.brig.landlock.abi": "0"`) {
		t.Skip("Landlock is not active on this kernel")
	}
	e := newEnv(t, "cat", "/etc/passwd")
	e.spec.Process.NoNewPrivileges = false
	enosys := uint(38)
	e.spec.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self"}, Action: specs.ActErrno, ErrnoRet: &enosys}}}
	e.spec.Annotations = map[string]string{"brig.landlock": `{"rules":{"pathBeneath":[{"allowedAccess":["execute","read_file","read_dir"],"paths":["/bin"]}]}}`}
	r := e.run()
	if r.code == 0 || !strings.Contains(r.stderr, "denies the landlock system calls") {
		t.Errorf("exit %d (stdout %q): want a refusal naming the cause: %s", r.code, r.stdout, r.stderr)
	}
}
