package container

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestExecProcess(t *testing.T) {
	base := &specs.Process{Args: []string{"/init"}, Env: []string{"PATH=/bin"}, Cwd: "/srv", Terminal: true,
		User:         specs.User{UID: 5, GID: 5, AdditionalGids: []uint32{7}},
		Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN"}}}
	u, g := uint32(1000), uint32(100)
	for _, tc := range []struct {
		name    string
		json    string
		ch      ProcessChanges
		check   func(*specs.Process) bool
		wantErr string
	}{
		{name: "the container's process is the template", ch: ProcessChanges{Args: []string{"sh"}},
			check: func(p *specs.Process) bool {
				return reflect.DeepEqual(p.Args, []string{"sh"}) && p.Cwd == "/srv" && !p.Terminal && p.User.UID == 5 && p.Env[0] == "PATH=/bin"
			}},
		{name: "flags change it", ch: ProcessChanges{Args: []string{"id"}, Terminal: true, Env: []string{"A=1"}, Cwd: "/tmp", UID: &u, GID: &g,
			AdditionalGids: []string{"9"}, Caps: []string{"net_admin"}, NoNewPrivs: true, AppArmor: "p", SELinuxLabel: "l"},
			check: func(p *specs.Process) bool {
				return p.Terminal && reflect.DeepEqual(p.Env, []string{"PATH=/bin", "A=1"}) && p.Cwd == "/tmp" && p.User.UID == 1000 && p.User.GID == 100 &&
					reflect.DeepEqual(p.User.AdditionalGids, []uint32{7, 9}) && reflect.DeepEqual(p.Capabilities.Bounding, []string{"CAP_CHOWN", "CAP_NET_ADMIN"}) &&
					reflect.DeepEqual(p.Capabilities.Ambient, []string{"CAP_NET_ADMIN"}) && p.NoNewPrivileges && p.ApparmorProfile == "p" && p.SelinuxLabel == "l"
			}},
		{name: "a process file replaces the template", json: `{"args":["ls"]}`, ch: ProcessChanges{Args: []string{"ignored"}},
			check: func(p *specs.Process) bool {
				return reflect.DeepEqual(p.Args, []string{"ls"}) && p.Cwd == "/" && p.Env == nil
			}},
		{name: "no command", wantErr: "want a command"},
		{name: "bad gid", ch: ProcessChanges{Args: []string{"x"}, AdditionalGids: []string{"x"}}, wantErr: `--additional-gids "x"`},
		{name: "unknown capability", ch: ProcessChanges{Args: []string{"x"}, Caps: []string{"nope"}}, wantErr: `--cap "nope"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var given *specs.Process
			if tc.json != "" {
				given = &specs.Process{}
				if err := json.Unmarshal([]byte(tc.json), given); err != nil {
					t.Fatal(err)
				}
			}
			p, err := ExecProcess(base, given, tc.ch)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !tc.check(p) {
				t.Errorf("%+v, %v", p, err)
			}
		})
	}
	// The template is not changed.
	if len(base.Env) != 1 || len(base.User.AdditionalGids) != 1 || len(base.Capabilities.Bounding) != 1 || base.Args[0] != "/init" {
		t.Errorf("the container's process was changed: %+v", base)
	}
}

func TestResources(t *testing.T) {
	size := func(s string) (int64, error) {
		if s == "bad" {
			return 0, errors.New("not a size")
		}
		if s == "1m" {
			return 1 << 20, nil
		}
		return 7, nil
	}
	nine, five := int64(9), int64(5)
	r, err := Resources(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &nine}, Memory: &specs.LinuxMemory{Limit: &five}}, map[string]string{"memory": "1m", "cpu-shares": "7", "cpuset-cpus": "0-1", "blkio-weight": "7"}, size)
	if err != nil || *r.Memory.Limit != 1<<20 || r.Pids.Limit == nil || *r.Pids.Limit != 9 || *r.CPU.Shares != 7 || r.CPU.Cpus != "0-1" || *r.BlockIO.Weight != 7 {
		t.Errorf("%+v, %v", r, err)
	}
	if _, err := Resources(&specs.LinuxResources{}, map[string]string{"memory-swap": "bad"}, size); err == nil || !strings.Contains(err.Error(), `--memory-swap "bad"`) {
		t.Errorf("bad size: %v", err)
	}
	seen := map[string]bool{}
	for _, f := range ResourceFlags {
		if seen[f.Name] || f.Usage == "" {
			t.Errorf("flag %q: twice, or no usage", f.Name)
		}
		seen[f.Name] = true
	}
}
