package sandbox

import (
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"brig/internal/recorder"
	"brig/internal/report"
)

// fileEntries turns the paths the command failed on (recorder.Refusals,
// as root) into report entries, each with the flag that would allow it:
//   - a path the sandbox doesn't show (ENOENT where no bind of the
//     sandbox reaches — its own root, its private /tmp — but the host has
//     it): --ro PATH, or --rw PATH for a write;
//   - a write refused by a read-only mount (EROFS) or by Landlock (EACCES
//     on a write where the path is shown read-only): --rw PATH, or
//     --unprotect NAME for a protected path;
//   - a write to the sandbox's own root, which is always read-only: no
//     flag, but where to write instead.
//
// Other failures (a missing file the host lacks too, EACCES on a read:
// the file's own permissions) are not the sandbox's doing and are left
// out. exists says whether a host path exists; cwd resolves relative
// paths (the command's working directory: a later chdir is not seen; a
// path relative to another directory fd is left out). cut counts the
// paths left out because the recorder cut them (too long to name),
// unplaced those relative to another directory fd.
func fileEntries(refs []recorder.PathRefusal, s *specs.Spec, prot []protection, cwd string, exists func(string) bool) (_ []report.Entry, cut, unplaced int) {
	type key struct{ what, allow string }
	counts := map[key]int{}
	var order []key
	for _, r := range refs {
		p := r.Path
		if !filepath.IsAbs(p) {
			if r.DirRelative {
				unplaced++ // against a directory fd: where, can't be told
				continue
			}
			p = filepath.Join(cwd, p)
		}
		p = filepath.Clean(p)
		if under(p, []string{"/proc", "/sys", "/dev"}) {
			continue
		}
		if r.Truncated {
			cut++
			continue
		}
		m := coveringMount(s.Mounts, p)
		var k key
		switch {
		case r.Errno == unix.ENOENT:
			// where a bind shows the host's directory, the host lacks it
			// too; elsewhere (the sandbox's root, its private /tmp) the
			// host's file is hidden
			if (m != nil && isBind(m)) || !exists(p) {
				continue
			}
			flag := "--ro "
			if r.Write {
				flag = "--rw "
			}
			k = key{p + " (not in the sandbox)", flag + p}
		case r.Errno == unix.EROFS || (r.Errno == unix.EACCES && r.Write):
			if name, ok := protectedName(prot, p); ok {
				k = key{p + " (protected: read-only)", "--unprotect " + name}
				break
			}
			if m == nil || !isBind(m) {
				k = key{p + " (the sandbox's root is read-only)", "none: write under /tmp or a --rw path"}
				break
			}
			if r.Errno == unix.EACCES && !readOnly(m) {
				continue // a writable mount: the file's own permissions
			}
			host := filepath.Join(m.Source, strings.TrimPrefix(p, m.Destination))
			for !exists(host) && host != m.Source {
				host = filepath.Dir(host)
			}
			k = key{p + " (read-only in the sandbox)", "--rw " + host}
		default:
			continue
		}
		if _, ok := counts[k]; !ok {
			order = append(order, k)
		}
		counts[k] += r.Count
	}
	out := make([]report.Entry, 0, len(order))
	for _, k := range order {
		out = append(out, report.Entry{Layer: "files", What: k.what, Count: counts[k], Allow: k.allow})
	}
	return out, cut, unplaced
}

// coveringMount is the mount whose destination holds p (the deepest; of
// two at one place, the later, which covers the other), or nil when only
// the sandbox's own root does.
func coveringMount(ms []specs.Mount, p string) *specs.Mount {
	var best *specs.Mount
	for i := range ms {
		d := filepath.Clean(ms[i].Destination)
		if !under(p, []string{d}) {
			continue
		}
		if best == nil || len(d) >= len(filepath.Clean(best.Destination)) {
			best = &ms[i]
		}
	}
	return best
}

func isBind(m *specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

func readOnly(m *specs.Mount) bool {
	for _, o := range m.Options {
		if o == "ro" || o == "rro" {
			return true
		}
	}
	return false
}

// protectedName is the --unprotect name of the protected path that holds
// p, if one does.
func protectedName(prot []protection, p string) (string, bool) {
	for _, pr := range prot {
		// what holds p, or a missing one whose making p would begin (a
		// parent the BPF LSM guard lets be made as a directory only)
		if pr.Ancestor || (!under(p, []string{pr.Dst}) && !(pr.Missing && p == filepath.Dir(pr.Dst))) {
			continue
		}
		switch {
		case pr.Name != "":
			return pr.Name, true
		case filepath.Base(pr.Dst) == "hooks" || strings.Contains(pr.Dst, "/hooks/"):
			return ".git/hooks", true
		case strings.HasPrefix(filepath.Base(pr.Dst), "config"), filepath.Base(pr.Dst) == "commondir", filepath.Base(pr.Dst) == ".git":
			// what sends git elsewhere goes with its config
			return ".git/config", true
		}
		return "all", true
	}
	return "", false
}

// hostExists says whether the host has path (brig's own view).
func hostExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
