package seccomp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// BuiltinName is what commands accept in place of a profile file for the
// built-in default.
const BuiltinName = "default"

// LoadFile reads a profile: the runtime-spec's linux.seccomp object, or a
// Docker/Moby profile (names, includes/excludes by capability, arch and
// kernel, archMap), which is what Kubernetes Localhost profiles are too.
// bounding is the container's bounding set, which includes/excludes test.
// The name "default" gives the built-in profile.
func LoadFile(path string, bounding []string) (*specs.LinuxSeccomp, error) {
	if path == BuiltinName {
		return DefaultProfile(bounding, runtime.GOARCH, KernelAtLeast(4, 8)), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	sc, err := Parse(data, bounding)
	if err != nil {
		return nil, fmt.Errorf("seccomp profile %s: %w", path, err)
	}
	return sc, nil
}

// Parse converts profile text to the runtime-spec form, checking it first
// so every problem is reported with its JSON path.
func Parse(data []byte, bounding []string) (*specs.LinuxSeccomp, error) {
	var raw mobyseccomp.Seccomp
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("%s: got JSON %s, want %s", te.Field, te.Value, te.Type)
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line := 1 + bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n"))
			return nil, fmt.Errorf("syntax error at line %d: %v", line, err)
		}
		return nil, fmt.Errorf("not a seccomp profile: %w", err)
	}
	if err := Check(&raw); err != nil {
		return nil, err
	}
	rs := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: bounding}}}
	sc, err := mobyseccomp.LoadProfile(string(data), rs)
	if err != nil {
		return nil, err
	}
	if sc == nil {
		return nil, errors.New("the profile is empty (no defaultAction, no syscalls)")
	}
	return sc, nil
}

// Check reports every problem in a profile, each with its JSON path.
func Check(p *mobyseccomp.Seccomp) error {
	var errs []error
	add := func(path, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, a...)))
	}
	if p.DefaultAction == "" {
		add("defaultAction", "missing")
	} else if _, err := Action(p.DefaultAction, nil); err != nil {
		add("defaultAction", "unknown action %q", p.DefaultAction)
	}
	if len(p.Architectures) > 0 && len(p.ArchMap) > 0 {
		add("archMap", "use either architectures or archMap, not both")
	}
	for i, a := range p.Architectures {
		if _, ok := archs[a]; !ok {
			add(fmt.Sprintf("architectures[%d]", i), "unknown %q", a)
		}
	}
	for i, sys := range p.Syscalls {
		sp := fmt.Sprintf("syscalls[%d]", i)
		if sys == nil {
			add(sp, "null")
			continue
		}
		//lint:ignore SA1019 old profiles use name; they must still be checked
		if sys.Name != "" && len(sys.Names) > 0 {
			add(sp, "use either name or names, not both")
		}
		//lint:ignore SA1019 old profiles use name; they must still be checked
		if sys.Name == "" && len(sys.Names) == 0 {
			add(sp+".names", "missing")
		}
		if _, err := Action(sys.Action, nil); err != nil {
			add(sp+".action", "unknown action %q", sys.Action)
		}
		checkArgs(add, sp, sys.Args)
		for _, f := range []struct {
			name string
			f    *mobyseccomp.Filter
		}{{"includes", sys.Includes}, {"excludes", sys.Excludes}} {
			if f.f == nil {
				continue
			}
			for k, c := range f.f.Caps {
				if !strings.HasPrefix(c, "CAP_") {
					add(fmt.Sprintf("%s.%s.caps[%d]", sp, f.name, k), "%q is not a capability name", c)
				}
			}
		}
	}
	for i, f := range p.Flags {
		switch f {
		case specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv:
		default:
			add(fmt.Sprintf("flags[%d]", i), "unknown flag %q", f)
		}
	}
	return errors.Join(errs...)
}

// KernelAtLeast reports whether the running kernel is major.minor or newer.
func KernelAtLeast(major, minor int) bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	var ma, mi int
	fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &ma, &mi)
	return ma > major || (ma == major && mi >= minor)
}
