package cli

import (
	"errors"
	"os"
	"strings"
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
		got, err := ParseBytes(in)
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "1.5g", "k"} {
		if _, err := ParseBytes(bad); err == nil {
			t.Errorf("ParseBytes(%q) accepted", bad)
		}
	}
}

func TestParseUser(t *testing.T) {
	for _, tc := range []struct {
		in       string
		uid, gid uint32
		ok       bool
	}{{"1000", 1000, 0, true}, {"1000:100", 1000, 100, true}, {"0:0", 0, 0, true},
		{"", 0, 0, false}, {"root", 0, 0, false}, {"1:x", 0, 0, false}, {"4294967296", 0, 0, false}} {
		uid, gid, err := ParseUser(tc.in)
		if (err == nil) != tc.ok || uid != tc.uid || gid != tc.gid {
			t.Errorf("ParseUser(%q) = %d, %d, %v", tc.in, uid, gid, err)
		}
	}
}

func TestOneOf(t *testing.T) {
	if err := OneOf("format", "json", "table", "json"); err != nil {
		t.Error(err)
	}
	err := OneOf("format", "yaml", "text", "table", "json")
	if _, ok := err.(UsageError); !ok || err.Error() != `--format "yaml": want text, table or json` {
		t.Errorf("OneOf: %v", err)
	}
}

func TestReadJSON(t *testing.T) {
	dir := t.TempDir()
	good, bad := dir+"/good.json", dir+"/bad.json"
	os.WriteFile(good, []byte(`{"a":1}`), 0o644)
	os.WriteFile(bad, []byte(`{"a":`), 0o644)
	var v struct{ A int }
	if err := ReadJSON("process", good, &v); err != nil || v.A != 1 {
		t.Errorf("good: %v %+v", err, v)
	}
	if err := ReadJSON("process", bad, &v); err == nil || !strings.HasPrefix(err.Error(), "--process "+bad+": ") {
		t.Errorf("not JSON: %v, want the flag and the file named", err)
	}
	if err := ReadJSON("resources", dir+"/none", &v); err == nil || !strings.HasPrefix(err.Error(), "--resources: ") {
		t.Errorf("missing: %v", err)
	}
	var ue UsageError
	if errors.As(ReadJSON("x", bad, &v), &ue) {
		t.Error("bad content is a usage error")
	}
}
