package bpflsm

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestEntryKeys: a key holds the directory's inode and its filesystem's
// device as the kernel keeps it (stat's st_dev on these filesystems), the
// name and sub-name; a bad name is an error naming it.
func TestEntryKeys(t *testing.T) {
	dir := t.TempDir()
	keys, err := entryKeys([]Entry{{Dir: dir, Name: ".bashrc"}, {Dir: dir, Name: ".claude", MkdirOnly: true}, {Dir: dir, Name: ".claude", Sub: "settings.json"}}, 77)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 {
		t.Fatalf("%d keys, want 3", len(keys))
	}
	for k, v := range keys {
		if cg := binary.NativeEndian.Uint64(k[0:]); cg != 77 {
			t.Errorf("cgroup %d, want 77", cg)
		}
		if ino := binary.NativeEndian.Uint64(k[inoAt:]); ino != st.Ino {
			t.Errorf("inode %d, want %d", ino, st.Ino)
		}
		if dev := binary.NativeEndian.Uint32(k[devAt:]); uint64(dev) != uint64(unix.Major(st.Dev))<<20|uint64(unix.Minor(st.Dev)) {
			t.Errorf("device %#x, want %d:%d", dev, unix.Major(st.Dev), unix.Minor(st.Dev))
		}
		name := strings.TrimRight(string(k[nameAt:subAt]), "\x00")
		sub := strings.TrimRight(string(k[subAt:]), "\x00")
		want := uint8(denyAll)
		if name == ".claude" && sub == "" {
			want = mkdirOnly
		}
		if v != want || (name != ".bashrc" && name != ".claude") {
			t.Errorf("key %q/%q = %d", name, sub, v)
		}
	}
	for _, e := range []Entry{{Dir: dir, Name: "a/b"}, {Dir: dir, Name: ".."}, {Dir: dir, Name: strings.Repeat("x", 32)}, {Dir: dir, Name: "a", Sub: "b/c"}, {Dir: filepath.Join(dir, "missing"), Name: "a"}} {
		if _, err := entryKeys([]Entry{e}, 1); err == nil {
			t.Errorf("%+v: no error", e)
		}
	}
}

// TestPrograms: the programs pass the kernel's verifier and attach where
// the BPF LSM can be used (root, "bpf" among the LSMs, programs allowed);
// the integration suite checks what they refuse.
func TestPrograms(t *testing.T) {
	if err := Supported(); err != nil {
		t.Skip(err)
	}
	cg := "/sys/fs/cgroup"
	if _, err := os.Stat("/sys/fs/cgroup/unified"); err == nil {
		cg = "/sys/fs/cgroup/unified"
	}
	g, err := Attach(Rules{Cgroup: cg, Entries: []Entry{{Dir: t.TempDir(), Name: ".bashrc"}}, NoAttach: true})
	if err != nil {
		if strings.Contains(err.Error(), "operation not permitted") {
			t.Skipf("this host refuses BPF LSM programs: %v", err)
		}
		t.Fatal(err)
	}
	if !g.Active() {
		t.Error("no program attached")
	}
	g.Close()
}
