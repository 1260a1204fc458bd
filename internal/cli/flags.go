// Package cli is the kit brig's command line is built with: flag sets
// that name a mistake in one line (with the closest flag for a typo), a
// usage error that exits 2, a repeatable flag, the log, and parsers of the
// values runc's command line takes (signals, sizes, UID[:GID]). It knows
// no command; cmd/brig holds those.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Flags is a command's flag set: flags are shown and named with two
// dashes (both are accepted), and a mistake is one line — the flag, what
// is wrong, the closest flag when it looks like a typo, and where the
// help is — never the help itself.
type Flags struct {
	*flag.FlagSet
	cmd string
	// Usage writes the text before the flags (default: a usage line).
	Usage func(w io.Writer)
}

// NewFlags makes a command's flag set with a usage line.
func NewFlags(c string, usageLine string) *Flags {
	f := &Flags{FlagSet: flag.NewFlagSet(c, flag.ContinueOnError), cmd: c}
	f.Usage = func(w io.Writer) { fmt.Fprintf(w, "Usage: brig %s %s\n", c, usageLine) }
	return f
}

// Parse parses args; --help prints the help on stdout and returns
// flag.ErrHelp; a mistake is a UsageError.
func (f *Flags) Parse(args []string) error {
	f.SetOutput(io.Discard)
	f.FlagSet.Usage = func() {}
	err := f.FlagSet.Parse(args)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		f.PrintHelp(os.Stdout)
		return flag.ErrHelp
	}
	return UsageError{f.explain(err)}
}

// ParseID parses args and wants exactly one argument left: a container's
// id.
func (f *Flags) ParseID(args []string) (string, error) {
	if err := f.Parse(args); err != nil {
		return "", err
	}
	if f.NArg() != 1 {
		return "", Usagef("want exactly one container id, got %d arguments", f.NArg())
	}
	return f.Arg(0), nil
}

// PrintHelp writes the usage text and the flags.
func (f *Flags) PrintHelp(w io.Writer) {
	f.Usage(w)
	fmt.Fprintln(w, "\nFlags:")
	printFlags(w, f.FlagSet)
}

// explain turns the flag package's error into one line.
func (f *Flags) explain(err error) string {
	msg := err.Error()
	help := fmt.Sprintf("(brig %s --help lists the flags)", f.cmd)
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		name = strings.TrimLeft(name, "-")
		if s := closest(f.FlagSet, name); s != "" {
			return fmt.Sprintf("%s: no such flag; did you mean %s? %s", dashed(name), dashed(s), help)
		}
		return fmt.Sprintf("%s: no such flag %s", dashed(name), help)
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: "); ok {
		return fmt.Sprintf("%s needs a value %s", dashed(strings.TrimLeft(name, "-")), help)
	}
	if rest, ok := strings.CutPrefix(msg, "invalid value "); ok {
		// invalid value "x" for flag -name: reason
		if v, after, ok := strings.Cut(rest, " for flag -"); ok {
			name, reason, _ := strings.Cut(after, ": ")
			return fmt.Sprintf("%s %s: %s", dashed(name), v, reason)
		}
	}
	if rest, ok := strings.CutPrefix(msg, "invalid boolean value "); ok {
		if v, after, ok := strings.Cut(rest, " for -"); ok {
			name, _, _ := strings.Cut(after, ":")
			return fmt.Sprintf("%s %s: want true or false", dashed(name), v)
		}
	}
	return msg + " " + help
}

func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// closest is the flag a mistyped name most likely meant ("" if none is
// near): within two edits, or one it starts or ends like.
func closest(fs *flag.FlagSet, name string) string {
	best, bestD := "", 3
	fs.VisitAll(func(f *flag.Flag) {
		if len(f.Name) == 1 && len(name) > 1 {
			return // a short alias is never what a longer typo meant
		}
		d := editDistance(name, f.Name)
		if len(f.Name) > 2 && len(name) > 2 && (strings.HasPrefix(f.Name, name) || strings.HasPrefix(name, f.Name)) {
			d = min(d, 2)
		}
		if d < bestD || (d == bestD && f.Name < best) {
			best, bestD = f.Name, d
		}
	})
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			// a swap of two neighbours is one edit
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev[j-1])
			}
		}
		prev = cur
	}
	return prev[len(b)]
}

// printFlags lists the flags as users write them: --name VALUE.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	var lines []string
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		line := "  " + dashed(f.Name)
		if arg != "" {
			line += " " + strings.ToUpper(arg)
		}
		line += "\n    \t" + strings.ReplaceAll(usage, "\n", "\n    \t")
		if d := f.DefValue; d != "" && d != "false" && d != "0" && d != "[]" && !strings.Contains(usage, "default") {
			line += fmt.Sprintf(" (default %s)", d)
		}
		lines = append(lines, line)
	})
	sort.Strings(lines)
	fmt.Fprintln(w, strings.Join(lines, "\n"))
}

// UsageError is a mistake in the command line: brig exits 2 with it.
type UsageError struct{ Msg string }

func (u UsageError) Error() string { return u.Msg }

// Usagef makes a UsageError.
func Usagef(format string, a ...any) error { return UsageError{fmt.Sprintf(format, a...)} }

// StringList is a repeatable string flag.
type StringList []string

func (s *StringList) String() string     { return strings.Join(*s, ",") }
func (s *StringList) Set(v string) error { *s = append(*s, v); return nil }
