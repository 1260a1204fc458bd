package sandbox

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"brig/internal/recorder"
	"brig/internal/report"
)

// Each failure the recorder saw becomes the entry a user needs, with the
// flag that allows it; what the sandbox didn't cause is left out.
func TestFileEntries(t *testing.T) {
	s := &specs.Spec{Mounts: []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc"},
		{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"},
		{Destination: "/usr", Type: "bind", Source: "/usr", Options: []string{"rbind", "ro"}},
		{Destination: "/work", Type: "bind", Source: "/home/u/work", Options: []string{"rbind"}},
		{Destination: "/work/.git/hooks", Type: "bind", Source: "/home/u/work/.git/hooks", Options: []string{"rbind", "ro"}},
		{Destination: "/data", Type: "bind", Source: "/srv/data", Options: []string{"rbind", "ro"}},
	}}
	prot := []protection{
		{Host: "/home/u/work/.git/hooks", Dst: "/work/.git/hooks"},
		{Host: "/home/u/work/.envrc", Dst: "/work/.envrc", Name: ".envrc", Missing: true},
	}
	onHost := map[string]bool{"/home/u/.gitconfig": true, "/tmp/host-socket": true, "/srv/data": true, "/srv/data/sub": true,
		"/etc/secret": true, "/proc/1/environ": true, "/home/u/work/notes": true}
	exists := func(p string) bool { return onHost[p] }
	ref := func(p string, errno unix.Errno, write bool) recorder.PathRefusal {
		return recorder.PathRefusal{Path: p, Errno: errno, Write: write, Count: 1, Call: "openat"}
	}
	for _, tc := range []struct {
		name string
		in   recorder.PathRefusal
		want *report.Entry // nil: left out
	}{
		{"hidden by the root", ref("/home/u/.gitconfig", unix.ENOENT, false),
			&report.Entry{What: "/home/u/.gitconfig (not in the sandbox)", Allow: "--ro /home/u/.gitconfig"}},
		{"hidden, written", ref("/etc/secret", unix.ENOENT, true),
			&report.Entry{What: "/etc/secret (not in the sandbox)", Allow: "--rw /etc/secret"}},
		{"hidden by the private /tmp", ref("/tmp/host-socket", unix.ENOENT, false),
			&report.Entry{What: "/tmp/host-socket (not in the sandbox)", Allow: "--ro /tmp/host-socket"}},
		{"missing on the host too", ref("/home/u/.npmrc", unix.ENOENT, false), nil},
		{"missing below a bind", ref("/usr/lib/locale/C.UTF-8", unix.ENOENT, false), nil},
		{"relative, below the cwd's bind", ref("notes", unix.ENOENT, false), nil},
		{"relative to a directory fd", func() recorder.PathRefusal {
			r := ref("secret", unix.ENOENT, false)
			r.DirRelative = true
			return r
		}(), nil},
		{"under /proc", ref("/proc/1/environ", unix.ENOENT, false), nil},
		{"read-only bind", ref("/data/sub", unix.EROFS, true),
			&report.Entry{What: "/data/sub (read-only in the sandbox)", Allow: "--rw /srv/data/sub"}},
		{"new file in a read-only bind", ref("/data/sub/new", unix.EROFS, true),
			&report.Entry{What: "/data/sub/new (read-only in the sandbox)", Allow: "--rw /srv/data/sub"}},
		{"Landlock on a read-only path", ref("/data/sub", unix.EACCES, true),
			&report.Entry{What: "/data/sub (read-only in the sandbox)", Allow: "--rw /srv/data/sub"}},
		{"permissions in a writable bind", ref("/work/notes", unix.EACCES, true), nil},
		{"a read refused", ref("/data/sub", unix.EACCES, false), nil},
		{"protected hooks", ref("/work/.git/hooks/pre-commit", unix.EROFS, true),
			&report.Entry{What: "/work/.git/hooks/pre-commit (protected: read-only)", Allow: "--unprotect .git/hooks"}},
		{"the root", ref("/newfile", unix.EROFS, true),
			&report.Entry{What: "/newfile (the sandbox's root is read-only)", Allow: "none: write under /tmp or a --rw path"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _, _ := fileEntries([]recorder.PathRefusal{tc.in}, s, prot, "/work", exists)
			switch {
			case tc.want == nil && len(got) > 0:
				t.Errorf("got %+v, want nothing", got)
			case tc.want != nil && (len(got) != 1 || got[0].What != tc.want.What || got[0].Allow != tc.want.Allow || got[0].Layer != "files"):
				t.Errorf("got %+v, want %+v", got, *tc.want)
			}
		})
	}
	// Relative to the working directory, where the host has it hidden.
	if got, _, _ := fileEntries([]recorder.PathRefusal{ref("secret", unix.ENOENT, false)}, s, prot, "/etc", exists); len(got) != 1 || got[0].Allow != "--ro /etc/secret" {
		t.Errorf("a relative path: %+v, want --ro /etc/secret", got)
	}
	// The same path by two calls: one entry, counted twice.
	got, _, _ := fileEntries([]recorder.PathRefusal{ref("/etc/secret", unix.ENOENT, false), ref("/etc/secret", unix.ENOENT, false)}, s, prot, "/", exists)
	if len(got) != 1 || got[0].Count != 2 {
		t.Errorf("two refusals of one path: %+v, want one entry counted twice", got)
	}
	// A path the recorder cut names no file: not listed, but counted,
	// so the report says its list is incomplete.
	long := ref("/etc/"+strings.Repeat("x", 250), unix.ENOENT, false)
	long.Truncated = true
	rel := ref("x", unix.ENOENT, false)
	rel.DirRelative = true
	got, cut, unplaced := fileEntries([]recorder.PathRefusal{long, rel, ref("/etc/secret", unix.ENOENT, false)}, s, prot, "/", exists)
	if len(got) != 1 || cut != 1 || unplaced != 1 {
		t.Errorf("a cut path and one against a directory fd: %+v, %d cut, %d unplaced; want only /etc/secret listed, 1 and 1", got, cut, unplaced)
	}
}
