package main

import (
	"strings"
	"testing"
)

// Every brig seccomp subcommand refuses a wrong argument list or value in
// one line with exit code 2, naming what is wrong.
func TestSeccompArguments(t *testing.T) {
	for _, tc := range []struct {
		args string
		want string
	}{
		{"seccomp", "want a seccomp command"},
		{"seccomp nope", `unknown seccomp command "nope"`},
		{"seccomp default extra", "default takes no profile"},
		{"seccomp check", "check wants one profile"},
		{"seccomp check default default", "check wants one profile"},
		{"seccomp compile", "compile wants one profile"},
		{"seccomp compile --arch sparc default", `--arch "sparc"`},
		{"seccomp explain default default", "explain wants one profile"},
		{"seccomp test default", "test wants a profile and a syscall"},
		{"seccomp test default read 1 2 3 4 5 6 7", "at most 6 arguments"},
		{"seccomp test default read x", `argument 0 "x"`},
		{"seccomp diff default", "diff wants two profiles"},
		{"seccomp explain --caps CAP_NOPE default", `--caps: unknown capability "CAP_NOPE"`},
		{"seccomp explain --nope default", "--nope: no such flag"},
	} {
		var out strings.Builder
		code := realMain(strings.Fields(tc.args), &out)
		msg := strings.TrimSpace(out.String())
		if code != 2 || !strings.Contains(msg, tc.want) || strings.Count(msg, "\n") > 0 {
			t.Errorf("brig %s: exit %d, %q; want exit 2 and one line with %q", tc.args, code, msg, tc.want)
		}
	}
}
