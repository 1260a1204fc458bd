package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzCommandLine: any command line a user might type — random flags and
// values after any command that reads, answers or refuses without making
// a container — never panics, hangs or leaves anything in the state root
// or the working directory. (Commands that start containers are covered by
// the integration suite's bad-input tests.)
func FuzzCommandLine(f *testing.F) {
	for _, s := range []string{
		"state\x00x", "list\x00--format\x00yaml", "kill\x00--al\x00id", "delete\x00-f\x00a/b", "spec\x00--seccomp\x00strict",
		"features", "seccomp\x00explain\x00--nope", "pause\x00", "resume\x00..", "ps\x00--format\x00json\x00x",
		"inspect\x00nosuch", "run\x00--memroy\x001g\x00--\x00true", "run\x00--rw\x00/nonexistent\x00--\x00true",
		"run\x00--allow-net\x00*.com\x00--\x00true", "run\x00--report-format\x00xml\x00--report\x00--\x00true",
		"update\x00--cpu-share\x00x\x00id", "learn\x00-o", "exec\x00--tyy\x00id\x00true",
	} {
		f.Add(s)
	}
	safe := map[string]bool{"state": true, "list": true, "kill": true, "delete": true, "spec": true, "features": true,
		"seccomp": true, "pause": true, "resume": true, "ps": true, "inspect": true, "update": true, "run": true,
		"learn": true, "exec": true, "start": true, "create": true}
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Split(line, "\x00")
		if len(args) == 0 || !safe[args[0]] || len(args) > 12 {
			return
		}
		// A command that could start something gets only a first argument
		// the flag parser refuses at once (a flag that doesn't exist, or
		// learn's -o with nothing after it): a mistake further on could
		// be a value or come after "--", and the command would run (it
		// did: `run -- -zz` started a sandbox from the test binary, which
		// left an empty cgroup behind).
		switch args[0] {
		case "run", "learn", "exec", "start", "create":
			a := ""
			if len(args) > 1 {
				a = args[1]
			}
			unknown := strings.HasPrefix(a, "-") && strings.Contains(a, "zz") || a == "--memroy" || a == "--tyy"
			if !unknown && !(args[0] == "learn" && a == "-o" && len(args) == 2) {
				return
			}
		}
		root, wd := t.TempDir(), t.TempDir()
		old, _ := os.Getwd()
		os.Chdir(wd)
		defer os.Chdir(old)
		realMain(append([]string{"--root", root}, args...), discard{})
		for _, dir := range []string{root, wd} {
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if e.Name() == ".seccomp-cache" || e.Name() == ".bpflsm-cache" || (dir == wd && e.Name() == "config.json" && args[0] == "spec") {
					continue
				}
				t.Errorf("%q left %s", args, filepath.Join(dir, e.Name()))
			}
		}
		// Nor did it start a sandbox (its cgroup would be named after
		// this process).
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/pids/brig", fmt.Sprintf("brig-run-%d", os.Getpid()))); err == nil {
			t.Errorf("%q started a sandbox", args)
		}
	})
}
