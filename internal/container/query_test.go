package container

import "testing"

func TestFilterPs(t *testing.T) {
	out := "UID PID PPID CMD\nroot 1 0 init\nroot 42 1 sh\nroot 420 42 sleep\n"
	for _, tc := range []struct {
		out  string
		pids []int
		want string
	}{
		{out, []int{42}, "UID PID PPID CMD\nroot 42 1 sh\n"},
		{out, []int{420, 1}, "UID PID PPID CMD\nroot 1 0 init\nroot 420 42 sleep\n"},
		{out, nil, "UID PID PPID CMD\n"},
		{"  PID TTY CMD\n   42 ?   sh\n", []int{42}, "  PID TTY CMD\n   42 ?   sh\n"},
	} {
		if got, err := filterPs(tc.out, tc.pids); err != nil || got != tc.want {
			t.Errorf("filterPs(%q, %v) = %q, %v; want %q", tc.out, tc.pids, got, err, tc.want)
		}
	}
	if _, err := filterPs("UID CMD\nroot init\n", []int{1}); err == nil {
		t.Error("ps output without a PID column accepted")
	}
}
