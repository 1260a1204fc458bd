package resctrl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Apply against a directory standing in for the resctrl root: the group's
// schemata and tasks as the kernel would get them, a shared closID group
// kept, a monitoring group of the container's own.
func TestApply(t *testing.T) {
	root := t.TempDir()
	g, err := Apply(root, "c1", &specs.LinuxIntelRdt{L3CacheSchema: "L3:0=ff;1=f0", MemBwSchema: "MB:0=50", EnableMonitoring: true}, 42)
	if err != nil {
		t.Fatal(err)
	}
	read := func(p string) string { b, _ := os.ReadFile(p); return string(b) }
	if !g.Made || g.Dir != filepath.Join(root, "c1") || read(filepath.Join(g.Dir, "schemata")) != "L3:0=ff;1=f0\nMB:0=50\n" ||
		read(filepath.Join(g.Dir, "tasks")) != "42" || read(filepath.Join(g.Monitor, "tasks")) != "42" {
		t.Errorf("group %+v: schemata %q tasks %q", g, read(filepath.Join(g.Dir, "schemata")), read(filepath.Join(g.Dir, "tasks")))
	}
	// schemata wins over the two single schemas.
	os.Mkdir(filepath.Join(root, "gold"), 0o755)
	g, err = Apply(root, "c2", &specs.LinuxIntelRdt{ClosID: "gold", Schemata: []string{"L3:0=3", "MB:0=20"}, L3CacheSchema: "L3:0=ff"}, 7)
	if err != nil {
		t.Fatal(err)
	}
	if g.Made || g.Dir != filepath.Join(root, "gold") || read(filepath.Join(g.Dir, "schemata")) != "L3:0=3\nMB:0=20\n" {
		t.Errorf("shared group %+v: schemata %q", g, read(filepath.Join(g.Dir, "schemata")))
	}
	if err := Join(g, 8); err != nil || read(filepath.Join(g.Dir, "tasks")) != "8" {
		t.Errorf("join: %v", err)
	}
	// A group named after the container that exists already is not taken.
	if _, err := Apply(root, "c1", &specs.LinuxIntelRdt{}, 9); err == nil {
		t.Error("took another container's group")
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		r   specs.LinuxIntelRdt
		err string
	}{
		{specs.LinuxIntelRdt{ClosID: "gold", L3CacheSchema: "L3:0=ff", MemBwSchema: "MB:0=50"}, ""},
		{specs.LinuxIntelRdt{ClosID: ".."}, "closID"},
		{specs.LinuxIntelRdt{ClosID: "a/b"}, "closID"},
		{specs.LinuxIntelRdt{L3CacheSchema: "MB:0=1"}, "l3CacheSchema"},
		{specs.LinuxIntelRdt{MemBwSchema: "L3:0=1"}, "memBwSchema"},
		{specs.LinuxIntelRdt{Schemata: []string{"L3:0=1", ""}}, "schemata[1]"},
	} {
		err := Validate(&tc.r)
		if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%+v: %v, want %q", tc.r, err, tc.err)
		}
	}
	if err := Available(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no resctrl") {
		t.Errorf("a plain directory taken for resctrl: %v", err)
	}
}
