package cgroup

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

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
