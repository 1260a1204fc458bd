package learn

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"brig/internal/recorder"
)

func TestRules(t *testing.T) {
	old := t.TempDir() // exists before "learning began"
	time.Sleep(10 * time.Millisecond)
	started := time.Now()
	time.Sleep(10 * time.Millisecond)
	newDir := filepath.Join(old, "build")
	os.Mkdir(newDir, 0o755) // made during the run
	many := map[string]recorder.Access{}
	for i := 0; i <= WidenAt; i++ {
		many[fmt.Sprintf("/data/set/f%d", i)] = recorder.Read
	}
	for _, tc := range []struct {
		name   string
		use    map[string]recorder.Access
		home   string
		ro, rw []string
	}{
		{name: "system directories need nothing", use: map[string]recorder.Access{"/usr/bin/sh": recorder.Exec | recorder.Read, "/etc/passwd": recorder.Read},
			ro: nil, rw: nil},
		{name: "files stay files", use: map[string]recorder.Access{"/data/a": recorder.Read, "/data/run.sh": recorder.Exec, "/proj/out": recorder.Write | recorder.Read},
			ro: []string{"/data/a", "/data/run.sh"}, rw: []string{"/proj/out"}},
		{name: "a write under a system directory is an entry", use: map[string]recorder.Access{"/etc/app.conf": recorder.Write},
			rw: []string{"/etc/app.conf"}},
		{name: "a created file: the directory that existed", use: map[string]recorder.Access{filepath.Join(newDir, "x.o"): recorder.Write | recorder.Created},
			rw: []string{old}},
		{name: "a listed directory is shown whole", use: map[string]recorder.Access{"/data": recorder.Read | recorder.Dir, "/data/a": recorder.Read},
			ro: []string{"/data"}},
		{name: "many files: their directory", use: many, ro: []string{"/data/set"}},
		{name: "never the home's parent", use: func() map[string]recorder.Access {
			m := map[string]recorder.Access{}
			for i := 0; i <= WidenAt; i++ {
				m[fmt.Sprintf("/home/f%d", i)] = recorder.Read
			}
			return m
		}(), home: "/home/u", ro: func() []string {
			var out []string
			for i := 0; i <= WidenAt; i++ {
				out = append(out, fmt.Sprintf("/home/f%d", i))
			}
			slices.Sort(out)
			return out
		}()},
		{name: "read under a writable entry needs no ro one", use: map[string]recorder.Access{old: recorder.Read | recorder.Dir, old + "/new": recorder.Write | recorder.Created},
			rw: []string{old}},
		{name: "a created file whose directory would be /: the file", use: map[string]recorder.Access{"/new-at-root": recorder.Write | recorder.Created},
			rw: []string{"/new-at-root"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Rules(tc.use, []string{"/usr", "/etc", "/bin"}, tc.home, started)
			if !slices.Equal(r.RO, tc.ro) || !slices.Equal(r.RW, tc.rw) {
				t.Errorf("ro %v (want %v), rw %v (want %v)", r.RO, tc.ro, r.RW, tc.rw)
			}
		})
	}
}

func TestWriteSandboxMerges(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "s.yaml")
	if err := WriteSandbox(out, filepath.Join(dir, "p.json"), FileRules{RO: []string{"/data/a"}, RW: []string{"/proj/out"}}); err != nil {
		t.Fatal(err)
	}
	if err := WriteSandbox(out, filepath.Join(dir, "p.json"), FileRules{RO: []string{"/data/b", "/proj/out"}, RW: []string{"/logs"}}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(out)
	want := "security-opt:\n    - seccomp=" + filepath.Join(dir, "p.json") + "\nro:\n    - /data/a\n    - /data/b\nrw:\n    - /logs\n    - /proj/out\n"
	if got := string(data); !strings.Contains(got, want) {
		t.Errorf("merged profile:\n%s\nwant:\n%s", got, want)
	}
	os.WriteFile(out, []byte("{{{"), 0o644)
	if err := WriteSandbox(out, "p.json", FileRules{}); err == nil {
		t.Error("a file that isn't a profile was overwritten")
	}
}

func TestDestinations(t *testing.T) {
	got := Destinations([]netip.AddrPort{
		netip.MustParseAddrPort("192.0.2.7:443"), netip.MustParseAddrPort("192.0.2.7:443"),
		netip.MustParseAddrPort("127.0.0.53:53"), netip.MustParseAddrPort("10.0.2.3:53"),
		netip.MustParseAddrPort("0.0.0.0:80"), netip.MustParseAddrPort("198.51.100.1:0"),
		netip.MustParseAddrPort("198.51.100.1:8080"),
	}, nil)
	if want := []string{"192.0.2.7:443", "198.51.100.1:8080"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// Addresses the sandbox's DNS gave for names are written as the
	// names (each one it answered for), the rest as addresses.
	got = Destinations([]netip.AddrPort{
		netip.MustParseAddrPort("192.0.2.7:443"), netip.MustParseAddrPort("192.0.2.8:8080"), netip.MustParseAddrPort("198.51.100.1:22"),
	}, map[netip.Addr][]string{
		netip.MustParseAddr("192.0.2.7"): {"a.example.com", "b.example.com"},
		netip.MustParseAddr("192.0.2.8"): {"api.example.com"},
	})
	if want := []string{"198.51.100.1:22", "a.example.com:443", "api.example.com:8080", "b.example.com:443"}; !slices.Equal(got, want) {
		t.Errorf("by name: got %v, want %v", got, want)
	}
}
