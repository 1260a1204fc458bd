package integration

import (
	"fmt"
	"strings"
	"testing"
)

// nestedProbes are an attacker's probes, run as a script: each prints
// probe=outcome. $S is a sibling process of the caller's own (passed with
// -e: brig run gives the command none of the caller's environment); the
// socket probes are TCP (which Landlock would refuse too) and netlink
// (which only seccomp's socket rule refuses).
const nestedProbes = `
[ -n "$S" ] && echo sibling=known || echo sibling=unknown
echo in > /tmp/w/f 2>/dev/null && echo rw=written || echo rw=refused
cat /tmp/secret >/dev/null 2>&1 && echo secret=read || echo secret=refused
echo x > /tmp/outside 2>/dev/null && echo outside=written || echo outside=refused
case "$(busybox nc 127.0.0.1 1 </dev/null 2>&1)" in *"Permission denied"*) echo socket=refused;; *) echo socket=made;; esac
case "$(busybox ip link 2>&1)" in *"Permission denied"*) echo nl=refused;; *) echo nl=made;; esac
kill -0 $S 2>/dev/null && echo signal=sent || echo signal=refused
cat /proc/$S/environ >/dev/null 2>&1 && echo environ=read || echo environ=refused
grep -q "^NoNewPrivs:.1" /proc/self/status && echo nnp=set || echo nnp=unset
grep -q "^Seccomp:.2" /proc/self/status && echo seccomp=filtered || echo seccomp=none
grep -q "^CapEff:.0000000000000000" /proc/self/status && echo caps=none || echo caps=some
`

// nestedScript runs the probes without brig (the control), brig run
// --check, brig run without and with --allow-degraded namespaces, and
// counts the private TMPDIRs left.
var nestedScript = `mkdir -p /tmp/w; echo secret > /tmp/secret; sleep 60 & S=$!; export S
echo "== control"; sh -c '` + nestedProbes + `'
echo "== check"; /brig run --check | head -1
echo "== plain"; /brig run -- true; echo "plain=$?"
echo "== degraded"; /brig run -e S=$S --allow-degraded namespaces --rw /tmp/w --unprotect all -- sh -c '` + nestedProbes + `'
echo "degraded=$?"
echo "== left"; ls /tmp | grep -c brig-run-tmp
kill $S`

// TestSandboxNested: brig run inside a Docker and a Podman container with
// the engine's default seccomp profile and capabilities (the outer
// container run by runc and by brig), as root and as a user. There brig can make no
// namespaces: it refuses, naming --allow-degraded namespaces, and with it
// runs the command confined by Landlock, seccomp, no_new_privs and
// rlimits. Each probe is run first without brig, as the control that
// shows it can succeed there.
func TestSandboxNested(t *testing.T) {
	script := nestedScript

	engines := []struct {
		name string
		run  func(t *testing.T, rt, user string) result
	}{
		{"docker", func(t *testing.T, rt, user string) result {
			return startDocker(t).docker("run", "--rm", "--runtime", rt, "--user", user, "-e", "HOME=/tmp",
				"-v", brigBin+":/brig:ro", dockerImage, "sh", "-c", script)
		}},
		{"podman", func(t *testing.T, rt, user string) result {
			p := startPodman(t)
			return p.podman("--runtime", p.runtime(rt), "run", "--rm", "--network", "none", "--user", user, "-e", "HOME=/tmp",
				"-v", brigBin+":/brig:ro", podmanImage, "sh", "-c", script)
		}},
	}
	for _, e := range engines {
		for _, rt := range []string{"runc", "brig"} {
			for _, user := range []string{"0:0", "1000:1000"} {
				t.Run(e.name+"/"+rt+"/"+user, func(t *testing.T) {
					r := e.run(t, rt, user)
					checkNested(t, r)
				})
			}
		}
	}
}

// checkNested reads the nested script's output: the controls succeeded,
// brig refused to run without --allow-degraded namespaces, and with it
// refused every probe but the write inside --rw.
func checkNested(t *testing.T, r result) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("docker run: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	sections := map[string]map[string]string{}
	var cur string
	var check string
	for _, l := range strings.Split(r.stdout, "\n") {
		if s, ok := strings.CutPrefix(l, "== "); ok {
			cur, sections[s] = s, map[string]string{}
			continue
		}
		if cur == "check" {
			check = l
		}
		if k, v, ok := strings.Cut(l, "="); ok && cur != "" {
			sections[cur][k] = v
		} else if cur == "left" && l != "" {
			sections[cur]["count"] = l
		}
	}
	t.Logf("%s\n%s", r.stdout, r.stderr)
	control, degraded := sections["control"], sections["degraded"]
	for k, want := range map[string]string{"rw": "written", "secret": "read", "outside": "written", "socket": "made", "nl": "made",
		"sibling": "known", "signal": "sent", "environ": "read", "nnp": "unset"} {
		if control[k] != want {
			t.Errorf("control %s=%s, want %s: the probe can't show the sandbox's effect", k, control[k], want)
		}
	}
	for k, want := range map[string]string{"rw": "written", "secret": "refused", "outside": "refused", "socket": "refused", "nl": "refused",
		"sibling": "known", "signal": "refused", "environ": "refused", "nnp": "set", "seccomp": "filtered", "caps": "none"} {
		if degraded[k] != want {
			t.Errorf("without namespaces: %s=%s, want %s", k, degraded[k], want)
		}
	}
	if degraded["degraded"] != "0" {
		t.Errorf("brig run --allow-degraded namespaces exited %s", degraded["degraded"])
	}
	if sections["plain"]["plain"] == "0" || !strings.Contains(r.stderr, "add --allow-degraded namespaces") {
		t.Errorf("without --allow-degraded namespaces: exit %s, stderr %q; want a refusal naming the flag", sections["plain"]["plain"], r.stderr)
	}
	if !strings.HasPrefix(check, "no   namespaces") {
		t.Errorf("--check's first line: %q, want it to say no namespaces", check)
	}
	if sections["left"]["count"] != "0" {
		t.Errorf("private TMPDIRs left in /tmp: %s", sections["left"]["count"])
	}
}

// TestSandboxNestedCRI: the same inside a Kubernetes-style pod through
// containerd's CRI (the runc and brig handlers), with the runtime's
// default seccomp profile and capabilities, as root and as a user.
func TestSandboxNestedCRI(t *testing.T) {
	needCrictl(t)
	d := startContainerd(t)
	for _, handler := range []string{"runc", "brig"} {
		p := runPod(t, d, handler, "nested-"+handler)
		for i, uid := range []int{0, 1000} {
			t.Run(fmt.Sprintf("%s/%d", handler, uid), func(t *testing.T) {
				security := map[string]any{"seccomp": map[string]any{"profile_type": 0},
					"run_as_user": map[string]any{"value": uid}, "run_as_group": map[string]any{"value": uid}}
				extra := map[string]any{
					"mounts": []map[string]any{{"container_path": "/brig", "host_path": brigBin, "readonly": true}},
					"envs":   []map[string]any{{"key": "HOME", "value": "/tmp"}},
				}
				id, start := p.containerWith(fmt.Sprintf("n%d", i), nestedScript, security, nil, extra)
				if start.code != 0 {
					t.Fatalf("StartContainer: %s", start.stderr)
				}
				st := p.waitExited(id)
				logs := d.crictl("logs", id)
				d.crictl("rm", id)
				checkNested(t, result{stdout: logs.stdout, stderr: logs.stderr, code: st.ExitCode})
			})
		}
	}
}
