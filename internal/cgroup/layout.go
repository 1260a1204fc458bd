package cgroup

import (
	"os"
	"path/filepath"
	"strconv"
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

// Events are what a cgroup's limits did, from its paths (by controller,
// "" for v2): processes the OOM killer killed (memory.oom_control's or
// memory.events' oom_kill), and forks refused at pids.max (pids.events'
// max).
func Events(paths map[string]string) (oomKills, pidsMax uint64) {
	read := func(key, file, field string) (uint64, bool) {
		dir, ok := paths[key]
		if !ok || dir == "" {
			return 0, false
		}
		data, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			return 0, false
		}
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, field+" "); ok {
				n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
				return n, err == nil
			}
		}
		return 0, false
	}
	if n, ok := read("memory", "memory.oom_control", "oom_kill"); ok {
		oomKills = n
	} else if n, ok := read("", "memory.events", "oom_kill"); ok {
		oomKills = n
	}
	if n, ok := read("pids", "pids.events", "max"); ok {
		pidsMax = n
	} else if n, ok := read("", "pids.events", "max"); ok {
		pidsMax = n
	}
	return oomKills, pidsMax
}
