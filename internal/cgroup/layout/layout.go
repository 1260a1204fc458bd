// Package layout reads the host's cgroup hierarchies from its mount
// table: the one reader of the layout, for the cgroup manager and for the
// container's /sys/fs/cgroup (rootfs), with no cgroup library behind it
// (the init links it).
package layout

import (
	"strings"

	"github.com/moby/sys/mountinfo"
)

// Hierarchy is one cgroup hierarchy mounted on the host.
type Hierarchy struct {
	Mountpoint string
	V2         bool
	// Options: a v1 hierarchy's controllers and name= (e.g. "cpu,cpuacct"
	// or "name=systemd"), as a mount of it takes them.
	Options string
}

// Hierarchies lists the host's cgroup hierarchies, as mounted: the one
// place that reads the host's cgroup layout from its mount table (rootfs
// rebuilds it inside the container from this).
func Hierarchies() ([]Hierarchy, error) {
	infos, err := mountinfo.GetMounts(func(i *mountinfo.Info) (skip, stop bool) {
		return i.FSType != "cgroup" && i.FSType != "cgroup2", false
	})
	if err != nil {
		return nil, err
	}
	out := make([]Hierarchy, 0, len(infos))
	for _, i := range infos {
		out = append(out, Hierarchy{Mountpoint: i.Mountpoint, V2: i.FSType == "cgroup2", Options: controllerOptions(i.VFSOptions)})
	}
	return out, nil
}

// OnlyV2 says whether the layout is a pure v2 one at /sys/fs/cgroup.
func OnlyV2(hs []Hierarchy) bool {
	return len(hs) == 1 && hs[0].V2 && hs[0].Mountpoint == "/sys/fs/cgroup"
}

// controllerOptions keeps a hierarchy's controller and name= options.
func controllerOptions(vfs string) string {
	var out []string
	for _, o := range strings.Split(vfs, ",") {
		switch {
		case o == "rw" || o == "ro" || o == "" || strings.HasPrefix(o, "release_agent"):
		default:
			out = append(out, o)
		}
	}
	return strings.Join(out, ",")
}
