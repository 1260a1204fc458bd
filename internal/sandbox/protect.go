package sandbox

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"brig/internal/bpflsm"
)

// Protected are the names, relative to the top of every writable path
// (--rw, a writable -v source, --home rw), that `brig run --` keeps
// read-only: files a tool on the host reads and acts on after the
// sandbox has ended, so that writing one is a way out of the sandbox
// (a git hook runs at the user's next commit, a .bashrc at their next
// shell). This is the one list; README's "For agent and tool authors"
// section prints it, --check lists it and --unprotect NAME lets one go.
//
// Beyond the list, the git directory a `.git` file names (worktrees,
// submodules) and its common directory get the same hooks and config
// protection, as do the submodules' git directories under .git/modules
// and a core.hooksPath that points inside a writable path.
var Protected = []string{
	// git: hooks run and config is obeyed (core.hooksPath, core.fsmonitor,
	// core.sshCommand, filters, aliases) by the next git command.
	".git/hooks", ".git/config", ".git/config.worktree", ".gitmodules",
	// shell and tool start-up files, where the writable path is a home.
	".bashrc", ".bash_profile", ".bash_login", ".bash_logout", ".profile",
	".zshrc", ".zshenv", ".zprofile", ".zlogin", ".envrc",
	".gitconfig", ".config/git", ".npmrc", ".ssh",
	// editors' and agents' per-project settings that run commands.
	".vscode", ".idea", ".claude/settings.json", ".claude/settings.local.json",
}

// protection is one protected path of one run.
type protection struct {
	Host string // where it is on the host
	Dst  string // where the sandbox sees it
	Name string // its entry in Protected ("" for one derived from git's files)
	// Missing: it doesn't exist, so no mount can hold it; Link: it is a
	// symbolic link (a mount would follow it), with its target.
	Missing bool
	Link    string
	// Ancestor: a directory between a writable root and a protected path,
	// bound onto itself (writable) so that it is a mount point, which
	// can't be renamed or removed: otherwise `mv .git x; mkdir .git`
	// would leave the read-only binds behind with the old name.
	Ancestor bool
	Root     string // its writable root (the host source)
}

// writableRoot is a writable bind: its host source, its place inside.
type writableRoot struct{ Src, Dst string }

// protections finds the protected paths under the writable roots, minus
// the names the caller let go (Protected entries, or "all").
func protections(roots []writableRoot, unprotect []string) ([]protection, error) {
	for _, u := range unprotect {
		if u != "all" && !slices.Contains(Protected, u) {
			return nil, fmt.Errorf("--unprotect %q: not a protected name (want all, or one of %s)", u, strings.Join(Protected, " "))
		}
	}
	if slices.Contains(unprotect, "all") {
		return nil, nil
	}
	var out []protection
	seen := map[string]bool{}
	var add func(host, name string)
	add = func(host, name string) {
		host = filepath.Clean(host)
		if seen[host] {
			return
		}
		dst, ok := inside(roots, host)
		if !ok {
			return // not writable in the sandbox: nothing to protect
		}
		seen[host] = true
		top, _ := rootOf(roots, host)
		p := protection{Host: host, Dst: dst, Name: name, Root: top}
		fi, err := os.Lstat(host)
		switch {
		case err != nil:
			p.Missing = true
		case fi.Mode()&os.ModeSymlink != 0:
			p.Link, _ = os.Readlink(host)
		}
		out = append(out, p)
		if p.Link != "" {
			// What it points to, where that is writable (hooks shared
			// through a link to a directory in the work tree).
			if t, err := filepath.EvalSymlinks(host); err == nil {
				add(t, "")
			}
		}
	}
	for _, r := range roots {
		for _, gd := range gitDirs(r.Src) {
			if !slices.Contains(unprotect, ".git/hooks") {
				hooks := filepath.Join(gd, "hooks")
				if _, err := os.Lstat(hooks); os.IsNotExist(err) && isInside(roots, gd) {
					// No hooks directory (git makes one at init, but it can
					// be removed): made empty, as git would, so that a
					// mount holds it and none can be planted.
					mkdirAs(hooks, gd)
				}
				add(hooks, "")
				if hp := hooksPath(gd, r.Src); hp != "" {
					add(hp, "")
				}
			}
			if !slices.Contains(unprotect, ".git/config") {
				add(filepath.Join(gd, "config"), "")
				add(filepath.Join(gd, "config.worktree"), "")
				// commondir sends git to another directory's config and
				// hooks (a worktree's names its repository's)
				add(filepath.Join(gd, "commondir"), "")
			}
		}
		// A .git file names the git directory: pointed elsewhere, it
		// would bring other hooks and config.
		if fi, err := os.Lstat(filepath.Join(r.Src, ".git")); err == nil && fi.Mode().IsRegular() && !slices.Contains(unprotect, ".git/config") {
			add(filepath.Join(r.Src, ".git"), "")
		}
		for _, name := range Protected {
			if !slices.Contains(unprotect, name) {
				add(filepath.Join(r.Src, name), name)
			}
		}
	}
	return withAncestors(roots, out), nil
}

// withAncestors puts before the protections the existing directories
// between each read-only one and its writable root (shallowest first),
// but for those a read-only protection already holds: bound onto
// themselves, they can't be moved away. A symbolic link on the way to a
// protected path (a dotfile manager's `.claude -> dotfiles/claude`) is
// watched as a protected link: replacing it would replace what the path
// names.
func withAncestors(roots []writableRoot, ps []protection) []protection {
	var anc, links []protection
	seen := map[string]bool{}
	for _, p := range ps {
		top, ok := rootOf(roots, p.Host)
		if !ok {
			continue
		}
		held := !p.Missing && p.Link == ""
		for d := filepath.Dir(p.Host); d != top && strings.HasPrefix(d, top+"/"); d = filepath.Dir(d) {
			if seen[d] || heldBy(ps, d) {
				continue
			}
			fi, err := os.Lstat(d)
			if err != nil {
				continue
			}
			dst, _ := inside(roots, d)
			switch {
			case fi.Mode()&os.ModeSymlink != 0:
				seen[d] = true
				target, _ := os.Readlink(d)
				links = append(links, protection{Host: d, Dst: dst, Name: p.Name, Link: target})
			case fi.IsDir() && held:
				seen[d] = true
				anc = append(anc, protection{Host: d, Dst: dst, Ancestor: true, Root: top})
			}
		}
	}
	slices.SortStableFunc(anc, func(a, b protection) int {
		return strings.Count(a.Dst, "/") - strings.Count(b.Dst, "/")
	})
	return append(append(anc, ps...), links...)
}

// heldBy says whether a read-only protection holds d.
func heldBy(ps []protection, d string) bool {
	for _, p := range ps {
		if !p.Missing && p.Link == "" && !p.Ancestor && (d == p.Host || strings.HasPrefix(d, p.Host+"/")) {
			return true
		}
	}
	return false
}

// rootOf is the source of the deepest writable root that holds host.
func rootOf(roots []writableRoot, host string) (string, bool) {
	best := ""
	for _, r := range roots {
		if (host == r.Src || strings.HasPrefix(host, r.Src+"/")) && len(r.Src) > len(best) {
			best = r.Src
		}
	}
	return best, best != ""
}

// guardEntries are the directory entries the BPF LSM guard keeps as they
// are: each missing protected path (as an entry of its parent, or, where
// the parent is missing too, as a sub-entry of the parent's name, which
// may be made as a directory only), and each protected link.
func guardEntries(ps []protection) []bpflsm.Entry {
	var out []bpflsm.Entry
	ok := func(names ...string) bool {
		for _, n := range names {
			if len(n) > bpflsm.MaxName {
				return false
			}
		}
		return true
	}
	for _, p := range ps {
		if !p.Missing && p.Link == "" {
			continue
		}
		parent, base := filepath.Dir(p.Host), filepath.Base(p.Host)
		if fi, err := os.Lstat(parent); err == nil && fi.IsDir() {
			if ok(base) {
				out = append(out, bpflsm.Entry{Dir: parent, Name: base})
			}
			// And as a sub-entry of the parent's name, in case the parent
			// is moved away and made again (it is no mount point: only
			// the ancestors of read-only paths are). (Where the parent is
			// the writable root, a mount point, the entry is never met.)
			if grand := filepath.Dir(parent); p.Missing && ok(base, filepath.Base(parent)) && grand != parent {
				out = append(out, bpflsm.Entry{Dir: grand, Name: filepath.Base(parent), Sub: base})
			}
			continue
		}
		grand, pbase := filepath.Dir(parent), filepath.Base(parent)
		if fi, err := os.Lstat(grand); err == nil && fi.IsDir() && p.Missing && ok(base, pbase) {
			out = append(out, bpflsm.Entry{Dir: grand, Name: pbase, MkdirOnly: true}, bpflsm.Entry{Dir: grand, Name: pbase, Sub: base})
		}
	}
	return out
}

// mkdirAs makes dir, owned as like is.
func mkdirAs(dir, like string) {
	fi, err := os.Stat(like)
	if err != nil || os.Mkdir(dir, 0o755) != nil {
		return
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		os.Lchown(dir, int(st.Uid), int(st.Gid))
	}
}

// mounts are the read-only re-binds of the protected paths that exist,
// each after the writable bind it lies in. A missing path can't be held
// by a mount without making it on the host; a symbolic link can't be
// mounted over: both are watched instead (see changed).
func (p protection) mount() (specs.Mount, bool) {
	if p.Missing || p.Link != "" {
		return specs.Mount{}, false
	}
	if p.Ancestor {
		return bind(p.Host, p.Dst, false), true
	}
	return bind(p.Host, p.Dst, true), true
}

// changed says what the run did to the protected paths it could not hold
// by a mount: created where missing, or a link pointed elsewhere.
func changed(ps []protection) []string {
	var out []string
	for _, p := range ps {
		fi, err := os.Lstat(p.Host)
		switch {
		case p.Missing && err == nil:
			out = append(out, p.Host+" was created")
		case p.Link != "" && (err != nil || fi.Mode()&os.ModeSymlink == 0):
			out = append(out, p.Host+" (a link) was replaced")
		case p.Link != "":
			if t, _ := os.Readlink(p.Host); t != p.Link {
				out = append(out, p.Host+" now links to "+t)
			}
		}
	}
	return out
}

// inside maps a host path to where the sandbox sees it, if a writable
// root holds it (the deepest root wins).
func inside(roots []writableRoot, host string) (string, bool) {
	best := -1
	for i, r := range roots {
		if (host == r.Src || strings.HasPrefix(host, r.Src+"/")) && (best < 0 || len(r.Src) > len(roots[best].Src)) {
			best = i
		}
	}
	if best < 0 {
		return "", false
	}
	return filepath.Join(roots[best].Dst, strings.TrimPrefix(host, roots[best].Src)), true
}

func isInside(roots []writableRoot, host string) bool {
	_, ok := inside(roots, host)
	return ok
}

// gitDirs are the git directories whose hooks and config a work tree at
// top uses: .git itself, or the one a .git file names and its common
// directory (worktrees, submodules), and the submodules' git directories
// under .git/modules.
func gitDirs(top string) []string {
	dotgit := filepath.Join(top, ".git")
	fi, err := os.Lstat(dotgit)
	if err != nil {
		return nil
	}
	var dirs []string
	gd := dotgit
	if fi.Mode().IsRegular() {
		data, err := os.ReadFile(dotgit)
		if err != nil {
			return nil
		}
		rest, ok := strings.CutPrefix(strings.TrimSpace(string(data)), "gitdir:")
		if !ok {
			return nil
		}
		gd = strings.TrimSpace(rest)
		if !filepath.IsAbs(gd) {
			gd = filepath.Join(top, gd)
		}
		dirs = append(dirs, gd)
		if c, err := os.ReadFile(filepath.Join(gd, "commondir")); err == nil {
			common := strings.TrimSpace(string(c))
			if !filepath.IsAbs(common) {
				common = filepath.Join(gd, common)
			}
			dirs = append(dirs, filepath.Clean(common))
		}
	} else if fi.IsDir() {
		dirs = append(dirs, gd)
	}
	// Submodules' git directories: each is a directory with a HEAD under
	// modules/, nested ones under their parent's modules/. Bounded: a
	// huge tree is not walked in full on every run.
	for _, d := range slices.Clone(dirs) {
		n := 0
		filepath.WalkDir(filepath.Join(d, "modules"), func(p string, e fs.DirEntry, err error) error {
			if err != nil || !e.IsDir() {
				return nil
			}
			if n++; n > 2000 {
				return filepath.SkipAll
			}
			switch e.Name() {
			case "objects", "refs", "logs", "hooks", "info", "lfs":
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(p, "HEAD")); err == nil {
				dirs = append(dirs, p)
			}
			return nil
		})
	}
	return dirs
}

// hooksPath is core.hooksPath from a git directory's config, made
// absolute (a relative one is relative to the work tree's top), or "".
func hooksPath(gitDir, top string) string {
	f, err := os.Open(filepath.Join(gitDir, "config"))
	if err != nil {
		return ""
	}
	defer f.Close()
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "[") {
			section = strings.ToLower(strings.Trim(strings.Fields(l + " ")[0], "[]"))
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok || section != "core" || !strings.EqualFold(strings.TrimSpace(k), "hookspath") {
			continue
		}
		v = strings.Trim(strings.TrimSpace(v), `"`)
		if v == "" {
			return ""
		}
		if strings.HasPrefix(v, "~/") {
			if h, err := os.UserHomeDir(); err == nil {
				v = filepath.Join(h, v[2:])
			}
		}
		if !filepath.IsAbs(v) {
			v = filepath.Join(top, v)
		}
		return filepath.Clean(v)
	}
	return ""
}
