package bootstrap

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// goBuildID reads what `go tool buildid` reads, from the first page, and
// refuses what isn't such a file without panicking.
func TestGoBuildID(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := buildIDOf(f)
	if err != nil {
		t.Fatalf("buildIDOf(the test binary): %v", err)
	}
	out, err := exec.Command("go", "tool", "buildid", self).Output()
	if err != nil {
		t.Skipf("go tool buildid: %v", err)
	}
	if want := strings.TrimSpace(string(out)); got != want {
		t.Errorf("build ID %q, go tool buildid says %q", got, want)
	}
	page := make([]byte, 4096)
	n, _ := io.ReadFull(f, page) // buildIDOf read through its own handle
	page = page[:n]
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"not ELF", []byte(strings.Repeat("x", 100))},
		{"header only", page[:64]},
		{"cut in the notes", page[:0x2a0]},
		{"32-bit", append([]byte{0x7f, 'E', 'L', 'F', 1, 1}, page[6:]...)},
		{"no note", func() []byte {
			b := bytes.Clone(page)
			i := bytes.Index(b, []byte("Go\x00\x00"))
			copy(b[i:], "Xo")
			return b
		}()},
		{"huge sizes", func() []byte {
			b := bytes.Clone(page)
			i := bytes.Index(b, []byte("Go\x00\x00"))
			binary.LittleEndian.PutUint32(b[i-8:], 0xffffffff) // descsz
			return b
		}()},
	} {
		if id, err := goBuildID(tc.b); err == nil {
			t.Errorf("%s: got %q, want an error", tc.name, id)
		}
	}
}

func FuzzGoBuildID(f *testing.F) {
	self, err := os.Executable()
	if err != nil {
		f.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data[:4096])
	f.Add(data[:64])
	f.Fuzz(func(t *testing.T, b []byte) {
		goBuildID(b)
	})
}
