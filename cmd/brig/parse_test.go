package main

import "testing"

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
