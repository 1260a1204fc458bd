package hooks

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	one := 1
	t.Setenv("BRIG_HOOK_TEST", "inherited")
	st := &specs.State{Version: "1.2.0", ID: "c1", Status: specs.StateCreating, Pid: 7, Bundle: "/b"}
	for _, tc := range []struct {
		name    string
		hooks   []specs.Hook
		wantErr string
		check   func(t *testing.T)
	}{
		{name: "state on stdin, args and env", hooks: []specs.Hook{{
			Path: "/bin/sh", Args: []string{"sh", "-c", `cat > ` + out + `; echo "$0 $X" >> ` + out, "argzero"}, Env: []string{"X=y"},
		}}, check: func(t *testing.T) {
			data, _ := os.ReadFile(out)
			for _, want := range []string{`"id":"c1"`, `"status":"creating"`, `"pid":7`, "argzero y"} {
				if !strings.Contains(string(data), want) {
					t.Errorf("hook saw %q, want %q in it", data, want)
				}
			}
		}},
		{name: "failure stops the rest", hooks: []specs.Hook{
			{Path: "/bin/sh", Args: []string{"sh", "-c", "echo boom >&2; exit 2"}},
			{Path: "/bin/sh", Args: []string{"sh", "-c", "touch " + out + ".second"}},
		}, wantErr: "boom", check: func(t *testing.T) {
			if _, err := os.Stat(out + ".second"); err == nil {
				t.Error("hook after a failed one ran")
			}
		}},
		{name: "no env: the runtime's own", hooks: []specs.Hook{{
			Path: "/bin/sh", Args: []string{"sh", "-c", `echo "$BRIG_HOOK_TEST" > ` + out + `.env`},
		}}, check: func(t *testing.T) {
			if data, _ := os.ReadFile(out + ".env"); string(data) != "inherited\n" {
				t.Errorf("a hook without env saw %q, want the runtime's environment", data)
			}
		}},
		{name: "an empty env is empty", hooks: []specs.Hook{{
			Path: "/bin/sh", Env: []string{}, Args: []string{"sh", "-c", `echo "[$BRIG_HOOK_TEST]" > ` + out + `.empty`},
		}}, check: func(t *testing.T) {
			if data, _ := os.ReadFile(out + ".empty"); string(data) != "[]\n" {
				t.Errorf("a hook with env [] saw %q", data)
			}
		}},
		{name: "timeout", hooks: []specs.Hook{{Path: "/bin/sleep", Args: []string{"sleep", "20"}, Timeout: &one}}, wantErr: "timed out"},
		{name: "missing binary", hooks: []specs.Hook{{Path: "/no/such/hook"}}, wantErr: "/no/such/hook"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Run("test", tc.hooks, st)
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			}
			if tc.check != nil {
				tc.check(t)
			}
		})
	}
}
