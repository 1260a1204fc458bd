package spec

import (
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestParseNUMANodes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
		err  string
	}{
		{"", nil, ""}, {"0", []int{0}, ""}, {"0-2,5", []int{0, 1, 2, 5}, ""},
		{"3-1", nil, "range"}, {"x", nil, "node numbers"}, {"1024", nil, "node numbers"}, {"0-", nil, "range"},
	} {
		got, err := ParseNUMANodes(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %v, want an error with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%q: %v %v, want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestCheckMemoryPolicy(t *testing.T) {
	for _, tc := range []struct {
		mp    specs.LinuxMemoryPolicy
		field string
	}{
		{specs.LinuxMemoryPolicy{Mode: specs.MpolBind, Nodes: "0"}, ""},
		{specs.LinuxMemoryPolicy{Mode: specs.MpolLocal}, ""},
		{specs.LinuxMemoryPolicy{Mode: specs.MpolPreferred, Nodes: "1"}, ""},
		{specs.LinuxMemoryPolicy{Mode: specs.MpolBind, Nodes: "0", Flags: []specs.MemoryPolicyFlagType{specs.MpolFNumaBalancing}}, ""},
		{specs.LinuxMemoryPolicy{Mode: "MPOL_NOPE"}, "mode"},
		{specs.LinuxMemoryPolicy{Mode: specs.MpolBind}, "nodes"},
		{specs.LinuxMemoryPolicy{Mode: specs.MpolDefault, Nodes: "0"}, "nodes"},
		{specs.LinuxMemoryPolicy{Mode: specs.MpolInterleave, Nodes: "0", Flags: []specs.MemoryPolicyFlagType{"MPOL_F_NOPE"}}, "flags"},
		{specs.LinuxMemoryPolicy{Mode: specs.MpolInterleave, Nodes: "0", Flags: []specs.MemoryPolicyFlagType{specs.MpolFStaticNodes, specs.MpolFRelativeNodes}}, "flags"},
		{specs.LinuxMemoryPolicy{Mode: specs.MpolInterleave, Nodes: "0", Flags: []specs.MemoryPolicyFlagType{specs.MpolFNumaBalancing}}, "flags"},
	} {
		if field, msg := CheckMemoryPolicy(&tc.mp); field != tc.field {
			t.Errorf("%+v: field %q (%s), want %q", tc.mp, field, msg, tc.field)
		}
	}
	// Every mode and flag brig features lists is one the check knows.
	modes, flags := MemoryPolicyNames()
	if len(modes) != 7 || len(flags) != 3 {
		t.Errorf("modes %v, flags %v", modes, flags)
	}
}
