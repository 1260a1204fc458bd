package recorder

import (
	"slices"
	"testing"
)

// What the listener leaves to the kernel depends on what it records: all
// of Unwatched when it records the calls; not the opens when it records
// the files (they are the file list); not the path-taking calls when it
// looks at paths; nothing when it records only denials.
func TestUnwatched(t *testing.T) {
	for _, tc := range []struct {
		name        string
		o           ListenOptions
		kept, watch []string
	}{
		{"calls", ListenOptions{Calls: true}, []string{"openat", "read", "write", "newfstatat", "dup2"}, []string{"execve", "mmap", "prctl"}},
		{"calls and files", ListenOptions{Calls: true, Files: true}, []string{"read", "write", "newfstatat"}, []string{"openat", "execve"}},
		{"calls and paths", ListenOptions{Calls: true, Paths: true}, []string{"read", "write", "dup2"}, []string{"openat", "newfstatat", "faccessat2", "chdir"}},
		{"denials only", ListenOptions{Paths: true}, nil, []string{"read", "openat"}},
	} {
		got := unwatched(tc.o)
		for _, n := range tc.kept {
			if !slices.Contains(got, n) {
				t.Errorf("%s: %s is sent to the listener", tc.name, n)
			}
		}
		for _, n := range tc.watch {
			if slices.Contains(got, n) {
				t.Errorf("%s: %s is left to the kernel", tc.name, n)
			}
		}
	}
}
