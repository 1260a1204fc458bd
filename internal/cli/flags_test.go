package cli

import (
	"flag"
	"strings"
	"testing"
)

func TestExplain(t *testing.T) {
	f := NewFlags("run", "[flags]")
	f.String("memory", "", "")
	f.Int64("pids-limit", 0, "")
	f.Bool("all", false, "")
	f.Bool("a", false, "")
	f.Bool("tty", false, "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--memroy", "1g"}, "--memroy: no such flag; did you mean --memory?"},
		{[]string{"--pids-limt", "3"}, "did you mean --pids-limit?"},
		{[]string{"--al"}, "did you mean --all?"},
		{[]string{"--tyy"}, "did you mean --tty?"},
		{[]string{"--zzzzzz"}, "--zzzzzz: no such flag (brig run --help"},
		{[]string{"--pids-limit", "x"}, `--pids-limit "x": `},
		{[]string{"--memory"}, "--memory needs a value"},
		{[]string{"--all=maybe"}, `--all "maybe": want true or false`},
	} {
		err := f.Parse(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: %v, want one line with %q", tc.args, err, tc.want)
		}
	}
	if err := f.Parse([]string{"--help"}); err != flag.ErrHelp {
		t.Errorf("--help: %v", err)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"memroy", "memory", 1}, {"", "abc", 3}, {"kitten", "sitting", 3}, {"same", "same", 0}} {
		if d := editDistance(tc.a, tc.b); d != tc.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, d, tc.d)
		}
	}
}
