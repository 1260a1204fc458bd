package main

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]unix.Signal{
		"9": unix.SIGKILL, "KILL": unix.SIGKILL, "SIGKILL": unix.SIGKILL, "kill": unix.SIGKILL,
		"term": unix.SIGTERM, "HUP": unix.SIGHUP, "SIGRTMIN+1": 35, "rtmax-1": 63, "64": 64,
	} {
		got, err := ParseSignal(in)
		if err != nil || got != want {
			t.Errorf("ParseSignal(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "65", "-1", "NOPE", "SIGRTMIN+99"} {
		if _, err := ParseSignal(bad); err == nil {
			t.Errorf("ParseSignal(%q) accepted", bad)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{
		"1024": 1024, "64k": 64 << 10, "64K": 64 << 10, "96m": 96 << 20, "1g": 1 << 30, "2mb": 2 << 20, "-1": -1,
	} {
		got, err := parseBytes(in)
		if err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "1.5g", "k"} {
		if _, err := parseBytes(bad); err == nil {
			t.Errorf("parseBytes(%q) accepted", bad)
		}
	}
}

func TestRealMainUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{}, {"nosuch"}, {"--log-format", "xml", "list"}, {"--rootless", "x", "list"}, {"state"}, {"kill"},
	} {
		if code := realMain(args, discard{}); code == 0 {
			t.Errorf("brig %v exited 0", args)
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
