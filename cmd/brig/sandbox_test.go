package main

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"brig/internal/learn"
	"brig/internal/sandbox"
)

// The flag set of brig run -- is the one list of a profile file's
// settings: every flag but the few about one invocation is accepted in a
// profile, the exceptions are real flags, and every key brig learn writes
// is a setting.
func TestProfileSettingsAreTheFlags(t *testing.T) {
	fs, _ := sandboxFlags("run")
	isFlag := func(k string) bool { return fs.Lookup(k) != nil }
	for k := range sandbox.NotInProfile {
		if !isFlag(k) {
			t.Errorf("NotInProfile names %q, which is no flag", k)
		}
	}
	dir := t.TempDir()
	fs.VisitAll(func(f *flag.Flag) {
		path := filepath.Join(dir, f.Name+".yaml")
		os.WriteFile(path, []byte(f.Name+": x\n"), 0o644)
		args, err := sandbox.ProfileArgs(path, isFlag)
		if sandbox.NotInProfile[f.Name] {
			if err == nil {
				t.Errorf("profile setting %q accepted", f.Name)
			}
			return
		}
		if err != nil || !reflect.DeepEqual(args, []string{"--" + f.Name + "=x"}) {
			t.Errorf("profile setting %q: %v %v", f.Name, args, err)
		}
	})
	path := filepath.Join(dir, "typo.yaml")
	os.WriteFile(path, []byte("memroy: 1g\n"), 0o644)
	if _, err := sandbox.ProfileArgs(path, isFlag); err == nil || !strings.Contains(err.Error(), `"memroy"`) {
		t.Errorf("unknown setting: %v", err)
	}
	tp := reflect.TypeOf(learn.SandboxProfile{})
	for i := 0; i < tp.NumField(); i++ {
		k, _, _ := strings.Cut(tp.Field(i).Tag.Get("yaml"), ",")
		if !isFlag(k) || sandbox.NotInProfile[k] {
			t.Errorf("brig learn writes %q, which a profile can't hold", k)
		}
	}
}
