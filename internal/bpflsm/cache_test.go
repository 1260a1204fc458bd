package bpflsm

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCachedBTF: the first read of a boot scans and stores; the next one
// reads the stored entry; an entry of another boot, or one that lacks a
// name, is scanned again and replaced; a directory others can read is not
// used.
func TestCachedBTF(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		t.Skipf("no kernel BTF: %v", err)
	}
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		t.Skip(err)
	}
	dir := filepath.Join(t.TempDir(), "cache")
	want, err := cachedBTF(dir)
	if err != nil {
		t.Fatal(err)
	}
	entry := filepath.Join(dir, "btf-"+strings.TrimSpace(string(boot))+".json")
	read := func() btfCache {
		var c btfCache
		data, err := os.ReadFile(entry)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := read()
	if c.Funcs["bpf_lsm_path_mkdir"] != want.funcs["bpf_lsm_path_mkdir"] || len(c.Members) != len(fields) {
		t.Fatalf("stored %+v", c)
	}
	// A stored entry is what the next read gives: a marked one shows it.
	c.Members["dentry.d_inode"] = 12345
	data, _ := json.Marshal(c)
	os.WriteFile(entry, data, 0o600)
	if got, _ := cachedBTF(dir); got.members["dentry.d_inode"] != 12345 {
		t.Errorf("the stored entry was not used: %+v", got.members)
	}
	// Incomplete, or another boot's: scanned again and replaced.
	for _, bad := range []func(*btfCache){
		func(c *btfCache) { delete(c.Members, "inode.i_sb") },
		func(c *btfCache) { c.Boot = "another" },
	} {
		c := read()
		bad(&c)
		data, _ := json.Marshal(c)
		os.WriteFile(entry, data, 0o600)
		got, err := cachedBTF(dir)
		if err != nil || got.members["dentry.d_inode"] != want.members["dentry.d_inode"] || got.members["inode.i_sb"] != want.members["inode.i_sb"] {
			t.Errorf("a bad entry was used: %+v %v", got, err)
		}
	}
	// Another boot's file is removed when this boot's is written.
	os.WriteFile(filepath.Join(dir, "btf-old.json"), []byte("{}"), 0o600)
	os.Remove(entry)
	cachedBTF(dir)
	if _, err := os.Stat(filepath.Join(dir, "btf-old.json")); err == nil {
		t.Error("another boot's entry was kept")
	}
	// A directory others can read is not brig's: not written.
	open := filepath.Join(t.TempDir(), "open")
	os.Mkdir(open, 0o755)
	if _, err := cachedBTF(open); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(open); len(ents) != 0 {
		t.Errorf("wrote into a directory others can read: %v", ents)
	}
}
