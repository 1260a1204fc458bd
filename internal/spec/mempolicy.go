package spec

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// linux.memoryPolicy (runtime-spec 1.3): set_mempolicy(2) for the
// container's process, which execve keeps. The one vocabulary: validation,
// brig features and the init read these tables.

// MemoryPolicyModes are the modes and their kernel numbers.
var MemoryPolicyModes = map[specs.MemoryPolicyModeType]int{
	specs.MpolDefault: 0, specs.MpolPreferred: 1, specs.MpolBind: 2, specs.MpolInterleave: 3,
	specs.MpolLocal: 4, specs.MpolPreferredMany: 5, specs.MpolWeightedInterleave: 6,
}

// MemoryPolicyFlags are the mode flags and their kernel bits.
var MemoryPolicyFlags = map[specs.MemoryPolicyFlagType]int{
	specs.MpolFStaticNodes: 1 << 15, specs.MpolFRelativeNodes: 1 << 14, specs.MpolFNumaBalancing: 1 << 13,
}

// MaxNUMANode bounds a node number (the kernel's MAX_NUMNODES is at most
// 1024).
const MaxNUMANode = 1023

// MemoryPolicyNames lists modes and flags, sorted (for brig features).
func MemoryPolicyNames() (modes, flags []string) {
	for m := range MemoryPolicyModes {
		modes = append(modes, string(m))
	}
	for f := range MemoryPolicyFlags {
		flags = append(flags, string(f))
	}
	sort.Strings(modes)
	sort.Strings(flags)
	return modes, flags
}

// ParseNUMANodes reads "0-3,5" into node numbers.
func ParseNUMANodes(s string) ([]int, error) {
	var out []int
	if s == "" {
		return nil, nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 || a > MaxNUMANode {
			return nil, fmt.Errorf("%q: want node numbers 0 to %d, as 0-3,5", part, MaxNUMANode)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a || b > MaxNUMANode {
				return nil, fmt.Errorf("%q: want a range low-high of node numbers 0 to %d", part, MaxNUMANode)
			}
		}
		for n := a; n <= b; n++ {
			out = append(out, n)
		}
	}
	return out, nil
}

// CheckMemoryPolicy says what is wrong with a policy, field by field
// (JSON path relative to linux.memoryPolicy).
func CheckMemoryPolicy(mp *specs.LinuxMemoryPolicy) (field, msg string) {
	if _, ok := MemoryPolicyModes[mp.Mode]; !ok {
		modes, _ := MemoryPolicyNames()
		return "mode", fmt.Sprintf("%q: want one of %s", mp.Mode, strings.Join(modes, ", "))
	}
	nodes, err := ParseNUMANodes(mp.Nodes)
	if err != nil {
		return "nodes", err.Error()
	}
	switch mp.Mode {
	case specs.MpolDefault, specs.MpolLocal:
		if len(nodes) > 0 {
			return "nodes", fmt.Sprintf("%s takes no nodes", mp.Mode)
		}
	case specs.MpolBind, specs.MpolInterleave, specs.MpolWeightedInterleave, specs.MpolPreferredMany:
		if len(nodes) == 0 {
			return "nodes", fmt.Sprintf("%s needs nodes", mp.Mode)
		}
	}
	seen := map[specs.MemoryPolicyFlagType]bool{}
	for _, f := range mp.Flags {
		if _, ok := MemoryPolicyFlags[f]; !ok {
			_, flags := MemoryPolicyNames()
			return "flags", fmt.Sprintf("%q: want one of %s", f, strings.Join(flags, ", "))
		}
		seen[f] = true
	}
	if seen[specs.MpolFStaticNodes] && seen[specs.MpolFRelativeNodes] {
		return "flags", "MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other"
	}
	if len(mp.Flags) > 0 && (mp.Mode == specs.MpolDefault || mp.Mode == specs.MpolLocal) {
		return "flags", fmt.Sprintf("%s takes no flags", mp.Mode)
	}
	if seen[specs.MpolFNumaBalancing] && mp.Mode != specs.MpolBind && mp.Mode != specs.MpolPreferredMany {
		return "flags", "MPOL_F_NUMA_BALANCING goes with MPOL_BIND or MPOL_PREFERRED_MANY"
	}
	return "", ""
}
