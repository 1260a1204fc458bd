package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ParseSignal accepts a number, a name with or without SIG, any case,
// and SIGRTMIN+N / SIGRTMAX-N.
func ParseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("signal %d out of range", n)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	if strings.HasPrefix(name, "SIGRTMIN+") || strings.HasPrefix(name, "SIGRTMAX-") {
		n, err := strconv.Atoi(name[9:])
		if err == nil {
			if name[6] == 'I' && 34+n <= 64 {
				return unix.Signal(34 + n), nil
			}
			if name[6] == 'A' && 64-n >= 34 {
				return unix.Signal(64 - n), nil
			}
		}
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

// ParseBytes reads 1024, 512k, 64m, 1g (or kb, mb, gb); -1 stays -1.
func ParseBytes(s string) (int64, error) {
	mult := int64(1)
	ls := strings.ToLower(s)
	for suffix, m := range map[string]int64{"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30} {
		if strings.HasSuffix(ls, suffix) {
			if len(suffix) == 2 || !strings.HasSuffix(ls, "b") {
				mult = m
				ls = strings.TrimSuffix(ls, suffix)
				break
			}
		}
	}
	n, err := strconv.ParseInt(ls, 10, 64)
	if err != nil {
		return 0, err
	}
	return n * mult, nil
}

// ParseUser reads UID[:GID] (numbers only: names would need the
// container's /etc/passwd, which the caller resolves).
func ParseUser(s string) (uint32, uint32, error) {
	us, gs, hasG := strings.Cut(s, ":")
	uid, err := strconv.ParseUint(us, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("uid %q is not a number", us)
	}
	gid := uint64(0)
	if hasG {
		if gid, err = strconv.ParseUint(gs, 10, 32); err != nil {
			return 0, 0, fmt.Errorf("gid %q is not a number", gs)
		}
	}
	return uint32(uid), uint32(gid), nil
}

// PrintJSON writes v to stdout as JSON, indented or on one line.
func PrintJSON(v any, indent bool) error {
	var data []byte
	var err error
	if indent {
		data, err = json.MarshalIndent(v, "", "  ")
	} else {
		data, err = json.Marshal(v)
	}
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(append(data, '\n'))
	return err
}

// OneOf checks a flag's value is one of want: a UsageError naming the
// flag otherwise.
func OneOf(flag, v string, want ...string) error {
	for _, w := range want {
		if v == w {
			return nil
		}
	}
	return Usagef("--%s %q: want %s", flag, v, orList(want))
}

func orList(w []string) string {
	if len(w) < 2 {
		return strings.Join(w, "")
	}
	return strings.Join(w[:len(w)-1], ", ") + " or " + w[len(w)-1]
}

// ReadJSON decodes the file path ("-": stdin) that flag names into v.
// Its errors name the flag (and the file, for content that isn't JSON);
// they are not usage errors.
func ReadJSON(flag, path string, v any) error {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return fmt.Errorf("--%s: %w", flag, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("--%s %s: %w", flag, path, err)
	}
	return nil
}
