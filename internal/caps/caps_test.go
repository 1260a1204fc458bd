package caps

import (
	"testing"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestResolve(t *testing.T) {
	s, err := Resolve(&specs.LinuxCapabilities{
		Bounding:  []string{"CAP_CHOWN", "CAP_KILL", "CAP_NOT_A_CAP"},
		Effective: []string{"CAP_KILL"},
		Ambient:   []string{"CAP_NET_BIND_SERVICE"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Bounding) != 2 || s.Bounding[0] != capability.CAP_CHOWN || s.Bounding[1] != capability.CAP_KILL {
		t.Errorf("bounding %v", s.Bounding)
	}
	if len(s.Effective) != 1 || len(s.Ambient) != 1 || len(s.Permitted) != 0 {
		t.Errorf("sets %+v", s)
	}
	if len(s.Missing) != 1 || s.Missing[0] != "CAP_NOT_A_CAP" {
		t.Errorf("missing %v", s.Missing)
	}
	if s, err := Resolve(nil); err != nil || len(s.Bounding) != 0 {
		t.Errorf("nil: %+v %v", s, err)
	}
}

func TestDropUnraisableAmbient(t *testing.T) {
	kill, bind := capability.CAP_KILL, capability.CAP_NET_BIND_SERVICE
	s := &Sets{Permitted: []capability.Cap{kill, bind}, Inheritable: []capability.Cap{bind}, Ambient: []capability.Cap{kill, bind}}
	d := s.DropUnraisableAmbient()
	if len(d) != 1 || d[0] != "CAP_KILL" || len(s.Ambient) != 1 || s.Ambient[0] != bind {
		t.Errorf("dropped %v, kept %v: want CAP_KILL dropped (not inheritable), NET_BIND_SERVICE kept", d, s.Ambient)
	}
}
