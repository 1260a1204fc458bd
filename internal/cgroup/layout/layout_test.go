package layout

import "testing"

func TestLayout(t *testing.T) {
	for _, tc := range []struct{ vfs, want string }{
		{"rw,cpu,cpuacct", "cpu,cpuacct"},
		{"ro,xattr,release_agent=/x,name=systemd", "xattr,name=systemd"},
		{"rw", ""},
	} {
		if got := controllerOptions(tc.vfs); got != tc.want {
			t.Errorf("controllerOptions(%q) = %q, want %q", tc.vfs, got, tc.want)
		}
	}
	v2 := []Hierarchy{{Mountpoint: "/sys/fs/cgroup", V2: true}}
	hybrid := []Hierarchy{{Mountpoint: "/sys/fs/cgroup/memory", Options: "memory"}, {Mountpoint: "/sys/fs/cgroup/unified", V2: true}}
	if !OnlyV2(v2) || OnlyV2(hybrid) || OnlyV2(nil) {
		t.Error("OnlyV2: want true only for one v2 hierarchy at /sys/fs/cgroup")
	}
}
