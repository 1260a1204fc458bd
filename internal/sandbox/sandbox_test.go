package sandbox

import (
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

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

// hasCap reads the effective set as /proc/self/status shows it.
func TestHasCap(t *testing.T) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	var eff uint64
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:\t"); ok {
			eff, _ = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	for _, c := range []int{unix.CAP_CHOWN, unix.CAP_SYS_ADMIN, unix.CAP_NET_RAW, unix.CAP_SYS_RESOURCE, unix.CAP_BPF} {
		if got, want := hasCap(c), eff&(1<<c) != 0; got != want {
			t.Errorf("hasCap(%d) = %v, /proc/self/status says %v", c, got, want)
		}
	}
}
