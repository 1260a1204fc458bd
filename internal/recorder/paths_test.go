package recorder

import (
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestLookIn: a path is looked up inside the caller's root, symlinks and
// .. included, never on the host around it.
func TestLookIn(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc", "shown"), nil, 0o644)
	os.Symlink("/etc/shown", filepath.Join(root, "abs"))    // inside the root
	os.Symlink("/etc/hostname", filepath.Join(root, "out")) // the host has it; the root doesn't
	os.Symlink("../../../etc/passwd", filepath.Join(root, "up"))
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	for _, c := range []struct {
		path     string
		nofollow bool
		exists   bool
	}{
		{"/", false, true},
		{"/etc/shown", false, true},
		{"/etc/missing", false, false},
		{"/abs", false, true},
		{"/out", false, false}, // not /etc/hostname of the host
		{"/out", true, true},   // the link itself
		{"/up", false, false},  // .. stops at the root
		{"/etc/../../etc/shown", false, true},
	} {
		exists, _, err := lookIn(fd, c.path, c.nofollow)
		if err != nil || exists != c.exists {
			t.Errorf("lookIn(%q, nofollow %v) = %v, %v; want %v", c.path, c.nofollow, exists, err, c.exists)
		}
	}
}

// TestReadMem reads a string that ends just before an unmapped page.
func TestReadMem(t *testing.T) {
	page := os.Getpagesize()
	mem, err := unix.Mmap(-1, 0, 2*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem[:page])
	// unmapped, not PROT_NONE: /proc/PID/mem reads through protections
	if _, _, e := unix.Syscall(unix.SYS_MUNMAP, uintptrOf(&mem[page]), uintptr(page), 0); e != 0 {
		t.Fatal(e)
	}
	copy(mem[page-4:], "abc\x00")
	addr := uint64(uintptrOf(&mem[page-4]))
	b := make([]byte, unix.PathMax)
	n := readMem(os.Getpid(), addr, b)
	if n != 4 || string(b[:3]) != "abc" {
		t.Fatalf("readMem = %d bytes %q, want the 4 before the unmapped page", n, b[:min(n, 16)])
	}
}

func uintptrOf(b *byte) uintptr { return uintptr(unsafe.Pointer(b)) }
