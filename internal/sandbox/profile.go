package sandbox

import (
	"fmt"
	"os"
	"sort"

	"gopkg.in/yaml.v3"
)

// NotInProfile are the `brig run --` flags a profile file can't hold: the
// file itself, and what is about one invocation rather than the policy.
// Every other flag is a setting (the flag set is the one list of names).
var NotInProfile = map[string]bool{"profile": true, "check": true, "d": true, "read-only": true, "i": true}

// ProfileArgs reads a YAML profile (a tool's shipped sandbox policy) and
// returns it as flags, to be parsed before the command line's own; isFlag
// says whether a name is a flag of the command.
func ProfileArgs(path string, isFlag func(name string) bool) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--profile: %w", err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("--profile %s: %w", path, err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var args []string
	for _, k := range keys {
		if !isFlag(k) || NotInProfile[k] {
			return nil, fmt.Errorf("--profile %s: unknown setting %q (use the names of brig run -- flags)", path, k)
		}
		switch v := m[k].(type) {
		case []any:
			for _, x := range v {
				args = append(args, "--"+k+"="+fmt.Sprint(x))
			}
		case bool:
			args = append(args, fmt.Sprintf("--%s=%v", k, v))
		case nil:
			return nil, fmt.Errorf("--profile %s: %s has no value", path, k)
		default:
			args = append(args, "--"+k+"="+fmt.Sprint(v))
		}
	}
	return args, nil
}
