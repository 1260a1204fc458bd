package seccomp

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The seccomp vocabulary has one owner, this package: the tables the
// compiler uses (actions, ops, archs, filterFlags) are what the config
// validator accepts and what `brig features` lists.

// ActionNames are the actions brig compiles.
func ActionNames() []string { return names(actions) }

// OperatorNames are the argument comparisons brig compiles.
func OperatorNames() []string { return names(ops) }

// ArchNames are the architectures a profile may name.
func ArchNames() []string { return names(archs) }

// FlagNames are the filter flags brig loads with.
func FlagNames() []string { return names(filterFlags) }

func names[K ~string, V any](m map[K]V) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, string(k))
	}
	return out
}

// Validate reports every problem of a linux.seccomp object that needs no
// compiling to find, each with its JSON path.
func Validate(sc *specs.LinuxSeccomp) error {
	var errs []error
	add := func(path, format string, a ...any) {
		errs = append(errs, fmt.Errorf("linux.seccomp%s: %s", path, fmt.Sprintf(format, a...)))
	}
	if _, ok := actions[sc.DefaultAction]; !ok {
		add(".defaultAction", "unknown action %q", sc.DefaultAction)
	}
	for i, a := range sc.Architectures {
		if _, ok := archs[a]; !ok {
			add(fmt.Sprintf(".architectures[%d]", i), "unknown architecture %q", a)
		}
	}
	for i, f := range sc.Flags {
		if _, ok := filterFlags[f]; !ok {
			add(fmt.Sprintf(".flags[%d]", i), "unknown flag %q", f)
		}
	}
	for i, sys := range sc.Syscalls {
		sp := fmt.Sprintf(".syscalls[%d]", i)
		if len(sys.Names) == 0 {
			add(sp+".names", "missing")
		}
		if _, ok := actions[sys.Action]; !ok {
			add(sp+".action", "unknown action %q", sys.Action)
		}
		checkArgs(add, sp, sys.Args)
	}
	if UsesNotify(sc) && sc.ListenerPath == "" {
		add(".listenerPath", "SCMP_ACT_NOTIFY needs a listenerPath")
	}
	return errors.Join(errs...)
}

// checkArgs checks a rule's argument conditions (in either profile format).
func checkArgs(add func(path, format string, a ...any), sp string, args []specs.LinuxSeccompArg) {
	for j, a := range args {
		if _, ok := ops[a.Op]; !ok {
			add(fmt.Sprintf("%s.args[%d].op", sp, j), "unknown operator %q", a.Op)
		}
		if a.Index > 5 {
			add(fmt.Sprintf("%s.args[%d].index", sp, j), "%d is above 5", a.Index)
		}
	}
}
