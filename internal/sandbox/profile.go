package sandbox

import (
	"fmt"
	"os"
	"sort"

	"gopkg.in/yaml.v3"
)

// profileKeys are the settings a profile file may hold: the names of
// `brig run --` flags, each a value or a list of values.
var profileKeys = map[string]bool{
	"e": true, "env": true, "ro": true, "rw": true, "v": true, "tmpfs": true, "cap-add": true, "cap-drop": true,
	"security-opt": true, "w": true, "u": true, "hostname": true, "name": true, "net": true, "memory": true,
	"cpus": true, "pids-limit": true, "home": true, "allow-degraded": true, "t": true, "allow-net": true, "dns-upstream": true,
	"unprotect": true, "report": true, "report-format": true, "allow-ptrace": true,
}

// ProfileArgs reads a YAML profile (a tool's shipped sandbox policy) and
// returns it as flags, to be parsed before the command line's own.
func ProfileArgs(path string) ([]string, error) {
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
		if !profileKeys[k] {
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
