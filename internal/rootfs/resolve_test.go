package rootfs

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fdPath is where a handle really points (its /proc/self/fd link).
func fdPath(t *testing.T, f *os.File) string {
	t.Helper()
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpenInRoot(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	outside := filepath.Join(dir, "outside")
	for _, d := range []string{root + "/etc", root + "/proc", outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(root+"/etc/passwd", nil, 0o644)
	os.Symlink("/etc", root+"/abs")              // absolute: resolved inside root
	os.Symlink("../../../../etc", root+"/up")    // climbs out: stopped at root
	os.Symlink(outside, root+"/host")            // a host path: inside root, missing
	os.Symlink("/proc/self/root", root+"/magic") // a magic link stays one
	r, err := os.OpenFile(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	for _, tc := range []struct {
		path, want string // want: the real path, or "!ERRNO"
	}{
		{"/etc/passwd", root + "/etc/passwd"},
		{"etc", root + "/etc"},
		{"/abs/passwd", root + "/etc/passwd"},
		{"/up", root + "/etc"},
		{"/../../etc", root + "/etc"},
		{"/host", "!ENOENT"},
		{"/missing/x", "!ENOENT"},
		{"/etc/passwd/x", "!ENOTDIR"},
	} {
		h, err := openInRoot(r, tc.path)
		if strings.HasPrefix(tc.want, "!") {
			want := map[string]error{"!ENOENT": unix.ENOENT, "!ENOTDIR": unix.ENOTDIR}[tc.want]
			if err == nil {
				t.Errorf("openInRoot(%q) = %s, want %s", tc.path, fdPath(t, h), tc.want)
				h.Close()
			} else if !errors.Is(err, want) {
				t.Errorf("openInRoot(%q): %v, want %s", tc.path, err, tc.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("openInRoot(%q): %v", tc.path, err)
			continue
		}
		if got := fdPath(t, h); got != tc.want {
			t.Errorf("openInRoot(%q) = %s, want %s", tc.path, got, tc.want)
		}
		h.Close()
	}
	// A magic link through /proc can't be followed out of the root.
	if h, err := openInRoot(r, "/magic/x"); err == nil {
		t.Errorf("openInRoot through a magic link reached %s", fdPath(t, h))
		h.Close()
	}
}

func TestMkdirAllInRoot(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	os.MkdirAll(root+"/dev", 0o755)
	os.WriteFile(root+"/file", nil, 0o644)
	os.Symlink("/dev", root+"/devlink")
	os.Symlink("../outside", root+"/esc") // dir/outside from the host's view
	r, err := os.OpenFile(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, tc := range []struct {
		path, want string // want: the real path, or "" for an error
	}{
		{"/dev", root + "/dev"},             // exists: looked up
		{"/dev/pts", root + "/dev/pts"},     // created
		{"/devlink/shm", root + "/dev/shm"}, // through a symlink inside root
		{"/a/b/c", root + "/a/b/c"},
		{"/file", ""}, // not a directory
		{"/file/x", ""},
	} {
		h, err := mkdirAllInRoot(r, tc.path, 0o755)
		if tc.want == "" {
			if err == nil {
				t.Errorf("mkdirAllInRoot(%q) = %s, want an error", tc.path, fdPath(t, h))
				h.Close()
			}
			continue
		}
		if err != nil {
			t.Errorf("mkdirAllInRoot(%q): %v", tc.path, err)
			continue
		}
		if got := fdPath(t, h); got != tc.want {
			t.Errorf("mkdirAllInRoot(%q) = %s, want %s", tc.path, got, tc.want)
		}
		if fi, err := os.Stat(tc.want); err != nil || !fi.IsDir() {
			t.Errorf("mkdirAllInRoot(%q): %s is not a directory (%v)", tc.path, tc.want, err)
		}
		h.Close()
	}
	// A link climbing out of the root: whatever is made, is made inside.
	if h, err := mkdirAllInRoot(r, "/esc/made", 0o755); err == nil {
		if got := fdPath(t, h); !strings.HasPrefix(got, root+"/") {
			t.Errorf("mkdirAllInRoot through a climbing link made %s", got)
		}
		h.Close()
	}
	if _, err := os.Stat(filepath.Join(dir, "outside")); err == nil {
		t.Errorf("mkdirAllInRoot created %s, outside the root", filepath.Join(dir, "outside"))
	}
}
