package learn

import (
	"reflect"
	"testing"
)

func TestSplitArgs(t *testing.T) {
	o, rest, help, err := SplitArgs([]string{"-o", "p.json", "--rw", ".", "--merge", "a", "-merge", "b", "--profile-out", "s.yaml",
		"--recorder", "seccomp", "--", "make", "-o", "x"})
	if err != nil || help || o.Output != "p.json" || !reflect.DeepEqual(o.Merge, []string{"a", "b"}) || o.FilesOut != "s.yaml" || o.Recorder != "seccomp" ||
		!reflect.DeepEqual(rest, []string{"--rw", ".", "--", "make", "-o", "x"}) || !reflect.DeepEqual(o.Command, []string{"make", "-o", "x"}) {
		t.Errorf("%+v %v %v %v", o, rest, help, err)
	}
	if _, _, help, _ := SplitArgs([]string{"--rw", ".", "--help"}); !help {
		t.Error("--help not seen")
	}
	if _, _, help, _ := SplitArgs([]string{"--", "cmd", "--help"}); help {
		t.Error("the command's --help taken as learn's")
	}
	if _, _, _, err := SplitArgs([]string{"--rw", ".", "-o"}); err == nil || err.Error() != "-o needs a value" {
		t.Errorf("-o without a value: %v", err)
	}
	if _, _, help, err := SplitArgs([]string{"-h", "-o"}); !help || err != nil {
		t.Errorf("-h then -o: help %v, %v; want the help", help, err)
	}
	// Only one dash or two make a flag of learn's.
	if o, rest, _, _ := SplitArgs([]string{"---o", "x", "--", "true"}); o.Output != "" || len(rest) != 4 {
		t.Errorf("---o: %+v %v; want it left to brig run", o, rest)
	}
}
