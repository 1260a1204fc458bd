package sandbox

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"brig/internal/lsm"
)

func TestBuildEgress(t *testing.T) {
	hosts := t.TempDir() + "/hosts"
	os.WriteFile(hosts, []byte("127.0.0.1 localhost\n"), 0o644)
	e := &Egress{NetNS: "/proc/42/ns/net", UserNS: "/proc/42/ns/user", Hosts: hosts, Ports: []uint16{443}}
	s, err := Build(&Options{Args: []string{"true"}, Egress: e}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var netPath string
	for _, n := range s.Linux.Namespaces {
		if n.Type == specs.NetworkNamespace {
			netPath = n.Path
		}
	}
	if netPath != e.NetNS {
		t.Errorf("network namespace path %q, want the fence's", netPath)
	}
	for _, c := range s.Process.Capabilities.Bounding {
		if c == "CAP_NET_RAW" || c == "CAP_NET_ADMIN" {
			t.Errorf("%s kept with an egress fence", c)
		}
	}
	if !slices.ContainsFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == "/etc/hosts" && m.Source == hosts }) {
		t.Error("no /etc/hosts mount from the fence's hosts file")
	}
	if lsm.LandlockABI() >= 4 {
		ann := s.Annotations[lsm.LandlockAnnotation]
		var ll lsm.Landlock
		if err := json.Unmarshal([]byte(ann), &ll); err != nil {
			t.Fatal(err)
		}
		if len(ll.Rules.NetPort) != 1 || !slices.Equal(ll.Rules.NetPort[0].Ports, []uint16{443}) || !slices.Contains(ll.Ruleset.HandledAccessNetwork, "connect_tcp") {
			t.Errorf("landlock net rules: %s", ann)
		}
		if !strings.Contains(ann, `"/etc/hosts"`) {
			t.Errorf("the hosts file has no landlock rule: %s", ann)
		}
	}
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Args: []string{"true"}, Egress: e, CapAdd: []string{"NET_RAW"}}, "--cap-add NET_RAW: not with --allow-net"},
		{Options{Args: []string{"true"}, Egress: e, NetHost: true}, "--net host and --allow-net"},
	} {
		if _, err := Build(&tc.o, t.TempDir()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
		}
	}
}
