package sandbox

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"brig/internal/cli"
	"brig/internal/learn"
)

// The flag set of brig run -- is the one list of a profile file's
// settings: every flag but the few about one invocation is accepted in a
// profile, the exceptions are real flags, and every key brig learn writes
// is a setting.
func TestProfileSettingsAreTheFlags(t *testing.T) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	(&Flags{}).Define(fs)
	isFlag := func(k string) bool { return fs.Lookup(k) != nil }
	for k := range NotInProfile {
		if !isFlag(k) {
			t.Errorf("NotInProfile names %q, which is no flag", k)
		}
	}
	dir := t.TempDir()
	fs.VisitAll(func(f *flag.Flag) {
		path := filepath.Join(dir, f.Name+".yaml")
		os.WriteFile(path, []byte(f.Name+": x\n"), 0o644)
		args, err := ProfileArgs(path, isFlag)
		if NotInProfile[f.Name] {
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
	if _, err := ProfileArgs(path, isFlag); err == nil || !strings.Contains(err.Error(), `"memroy"`) {
		t.Errorf("unknown setting: %v", err)
	}
	tp := reflect.TypeOf(learn.SandboxProfile{})
	for i := 0; i < tp.NumField(); i++ {
		k, _, _ := strings.Cut(tp.Field(i).Tag.Get("yaml"), ",")
		if !isFlag(k) || NotInProfile[k] {
			t.Errorf("brig learn writes %q, which a profile can't hold", k)
		}
	}
}

// Each flag value that can't be is refused naming the flag, as a usage
// error; good values become the options.
func TestFlagsOptions(t *testing.T) {
	parse := func(args ...string) (*Options, RunOptions, error) {
		fs := flag.NewFlagSet("run", flag.ContinueOnError)
		v := &Flags{}
		v.Define(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return v.Options(fs.Args())
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--home", "all"}, `--home "all": want none, ro or rw`},
		{[]string{"--net", "bridge"}, `--net "bridge": want none or host`},
		{[]string{"--security-opt", "apparmor=x"}, `--security-opt "apparmor=x"`},
		{[]string{"--pids-limit", "-3"}, `--pids-limit "-3"`},
		{[]string{"--memory", "lots"}, `--memory "lots"`},
		{[]string{"--memory", "1m"}, "--memory 1m: below the least"},
		{[]string{"-u", "root"}, "-u: uid"},
		{[]string{"--report", "--report-format", "xml"}, `--report-format "xml"`},
		{[]string{"--report-files"}, "--report-files: only with --report"},
	} {
		_, _, err := parse(append(tc.args, "true")...)
		var ue cli.UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want a usage error with %q", tc.args, err, tc.want)
		}
	}
	o, ro, err := parse("--memory", "64m", "--pids-limit", "0", "-u", "1000:100", "--net", "host", "--security-opt", "seccomp=unconfined",
		"--report", "--report-format", "json", "--name", "n", "--allow-ptrace", "id", "-u")
	if err != nil || o.Memory != 64<<20 || o.Pids != 0 || o.User.UID != 1000 || o.User.GID != 100 || !o.NetHost || o.Seccomp != "unconfined" ||
		!o.AllowPtrace || !reflect.DeepEqual(o.Args, []string{"id", "-u"}) || ro.Report != "json" || ro.Name != "n" {
		t.Errorf("%+v %+v %v", o, ro, err)
	}
	if o, _, _ := parse("true"); o.Memory != Unset || o.Pids != Unset {
		t.Errorf("defaults: memory %d, pids %d; want both Unset", o.Memory, o.Pids)
	}
}
