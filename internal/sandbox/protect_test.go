package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"brig/internal/bpflsm"
)

// tree makes files (a trailing / makes a directory; "a -> b" a link)
// under a new directory and returns it.
func tree(t *testing.T, entries ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, e := range entries {
		p := filepath.Join(dir, e)
		if name, target, ok := strings.Cut(e, " -> "); ok {
			p = filepath.Join(dir, name)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if strings.HasSuffix(e, "/") {
			os.MkdirAll(p, 0o755)
			continue
		}
		body := ""
		if name, content, ok := strings.Cut(e, "="); ok {
			p, body = filepath.Join(dir, name), content
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestProtections(t *testing.T) {
	for _, tc := range []struct {
		name      string
		entries   []string
		unprotect []string
		held      []string // mounted read-only (relative to the root)
		watched   []string // missing or links: watched, not mounted
		notHeld   []string
		pinned    []string // bound writable onto themselves, shallowest first
	}{
		{name: "repository", entries: []string{".git/hooks/", ".git/config", ".git/HEAD", ".bashrc", "src/main.go"},
			held: []string{".git/hooks", ".git/config", ".bashrc"}, watched: []string{".envrc", ".vscode"}, notHeld: []string{"src", ".git"}, pinned: []string{".git"}},
		{name: "hooks made when missing", entries: []string{".git/config", ".git/HEAD"},
			held: []string{".git/hooks", ".git/config"}, pinned: []string{".git"}},
		{name: "worktree", entries: []string{"main/.git/hooks/", "main/.git/config", "main/.git/worktrees/wt/commondir=../..",
			"main/.git/worktrees/wt/HEAD", "wt/.git=gitdir: ../main/.git/worktrees/wt"},
			held: []string{"main/.git/hooks", "main/.git/config"}, pinned: []string{"main/.git/worktrees", "main/.git/worktrees/wt"}},
		{name: "submodules", entries: []string{".git/hooks/", ".git/config", ".git/modules/lib/HEAD", ".git/modules/lib/hooks/",
			".git/modules/lib/config", ".git/modules/lib/modules/deep/HEAD", ".git/modules/lib/modules/deep/config"},
			held:   []string{".git/modules/lib/hooks", ".git/modules/lib/config", ".git/modules/lib/modules/deep/config", ".git/modules/lib/modules/deep/hooks"},
			pinned: []string{".git", ".git/modules", ".git/modules/lib", ".git/modules/lib/modules", ".git/modules/lib/modules/deep"}},
		{name: "hooksPath", entries: []string{".git/hooks/", ".git/HEAD", ".git/config=[core]\n\thooksPath = .husky/_\n", ".husky/_/pre-commit"},
			held: []string{".husky/_", ".git/config"}, pinned: []string{".git", ".husky"}},
		{name: "linked hooks", entries: []string{".git/config", ".githooks/pre-commit", ".git/hooks -> ../.githooks"},
			held: []string{".githooks"}, watched: []string{".git/hooks"}, pinned: []string{".git"}},
		{name: "unprotect one", entries: []string{".git/hooks/", ".git/config", ".bashrc"}, unprotect: []string{".git/hooks"},
			held: []string{".git/config", ".bashrc"}, notHeld: []string{".git/hooks"}, pinned: []string{".git"}},
		{name: "unprotect all", entries: []string{".git/hooks/", ".git/config", ".bashrc"}, unprotect: []string{"all"},
			notHeld: []string{".git/hooks", ".git/config", ".bashrc"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tree(t, tc.entries...)
			root := dir
			if tc.name == "worktree" {
				// Both work trees writable; the worktree's hooks and
				// config are the main repository's.
				root = filepath.Join(dir, "wt")
			}
			roots := []writableRoot{{root, root}}
			if tc.name == "worktree" {
				roots = append(roots, writableRoot{filepath.Join(dir, "main/.git"), filepath.Join(dir, "main/.git")})
			}
			ps, err := protections(roots, tc.unprotect)
			if err != nil {
				t.Fatal(err)
			}
			held := map[string]bool{}
			watched := map[string]bool{}
			var pinned []string
			for i, p := range ps {
				rel, _ := filepath.Rel(dir, p.Host)
				if p.Ancestor {
					pinned = append(pinned, rel)
					if m, ok := p.mount(); !ok || m.Destination != p.Host || slices.Contains(m.Options, "ro") {
						t.Errorf("%s: mount %+v, want a writable bind over itself", rel, m)
					}
					for _, q := range ps[:i] {
						if !q.Ancestor {
							t.Errorf("%s: bound after %s, which it holds or may hold", rel, q.Host)
						}
					}
					continue
				}
				if m, ok := p.mount(); ok {
					held[rel] = true
					if m.Destination != p.Host || !slices.Contains(m.Options, "ro") {
						t.Errorf("%s: mount %+v, want a read-only bind over itself", rel, m)
					}
				} else {
					watched[rel] = true
				}
			}
			for _, h := range tc.held {
				if !held[h] {
					t.Errorf("%s not held read-only; held %v", h, held)
				}
			}
			for _, w := range tc.watched {
				if !watched[w] {
					t.Errorf("%s not watched; watched %v", w, watched)
				}
			}
			for _, n := range tc.notHeld {
				if held[n] {
					t.Errorf("%s held, want it writable", n)
				}
			}
			if !slices.Equal(pinned, tc.pinned) {
				t.Errorf("pinned %q, want %q", pinned, tc.pinned)
			}
		})
	}
}

// TestGuardEntries: what the BPF LSM guard keeps: a missing protected
// path as an entry of its parent, or, its parent missing too, the
// parent's name (a directory only) and the sub-entry; a protected link.
func TestGuardEntries(t *testing.T) {
	dir := tree(t, ".git/hooks/", ".git/config", ".claude/", ".envrc -> elsewhere", "src/")
	ps, err := protections([]writableRoot{{dir, dir}}, []string{".bash_login", ".bash_logout", ".zshenv", ".zprofile", ".zlogin", ".idea",
		".npmrc", ".ssh", ".gitconfig", ".gitmodules", ".bash_profile", ".profile", ".zshrc", ".bashrc", ".claude/settings.local.json", ".git/config"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, e := range guardEntries(ps) {
		rel, _ := filepath.Rel(dir, e.Dir)
		got[fmt.Sprintf("%s|%s|%s|%v", rel, e.Name, e.Sub, e.MkdirOnly)] = true
	}
	want := []string{
		".|.vscode||false", ".|.envrc||false", ".claude|settings.json||false",
		".|.config||true", ".|.config|git|false", ".git|config.worktree||false",
		// a missing path's parent moved away and made again
		".|.claude|settings.json|false", ".|.git|config.worktree|false", "..|" + filepath.Base(dir) + "|.vscode|false",
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("no entry %s; got %v", w, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d entries %v, want %d", len(got), got, len(want))
	}
}

func TestProtectionsWatch(t *testing.T) {
	dir := tree(t, ".git/hooks/", ".git/config", "shared/", "link -> shared")
	ps, err := protections([]writableRoot{{dir, dir}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := changed(ps); len(c) != 0 {
		t.Fatalf("changed before anything was done: %v", c)
	}
	os.WriteFile(filepath.Join(dir, ".envrc"), []byte("curl x | sh"), 0o644)
	os.Mkdir(filepath.Join(dir, ".vscode"), 0o755)
	if c := changed(ps); len(c) != 2 || !strings.Contains(strings.Join(c, "\n"), ".envrc was created") {
		t.Errorf("changed: %v, want .envrc and .vscode created", c)
	}
	if _, err := protections([]writableRoot{{dir, dir}}, []string{".nope"}); err == nil || !strings.Contains(err.Error(), `--unprotect ".nope"`) {
		t.Errorf("unknown --unprotect name: %v", err)
	}
}

// TestBuildProtects: the read-only re-binds come after the writable bind
// they lie in, with the same place inside for -v.
func TestBuildProtects(t *testing.T) {
	proj := tree(t, ".git/hooks/", ".git/config", ".git/HEAD", "README")
	vol := tree(t, ".bashrc")
	s, err := Build(&Options{Args: []string{"true"}, RW: []string{proj}, Volumes: []string{vol + ":/home/u"}}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	idx := func(dst string) int {
		return slices.IndexFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == dst })
	}
	for _, tc := range []struct{ under, dst, src string }{
		{proj, proj + "/.git/hooks", proj + "/.git/hooks"},
		{proj, proj + "/.git/config", proj + "/.git/config"},
		{"/home/u", "/home/u/.bashrc", vol + "/.bashrc"},
	} {
		i, w := idx(tc.dst), idx(tc.under)
		if i < 0 || w < 0 || i < w {
			t.Errorf("%s: at %d, the writable bind at %d", tc.dst, i, w)
			continue
		}
		if m := s.Mounts[i]; m.Source != tc.src || !slices.Contains(m.Options, "ro") {
			t.Errorf("%s: %+v", tc.dst, m)
		}
	}
}

// TestProtectionsLinkedParent: a link on the way to a protected path is
// watched as a protected link (replacing it replaces what the path
// names), not bound.
func TestProtectionsLinkedParent(t *testing.T) {
	dir := tree(t, "dotfiles/claude/settings.json", ".claude -> dotfiles/claude", ".git/hooks/", ".git/config", ".git/commondir=../x", "wt/.git=gitdir: ../.git")
	ps, err := protections([]writableRoot{{dir, dir}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]protection{}
	for _, p := range ps {
		rel, _ := filepath.Rel(dir, p.Host)
		got[rel] = p
	}
	if p, ok := got[".claude"]; !ok || p.Link != "dotfiles/claude" || p.Ancestor {
		t.Errorf(".claude: %+v, want a watched link", p)
	}
	if p, ok := got[".git/commondir"]; !ok || p.Missing || p.Link != "" {
		t.Errorf(".git/commondir: %+v, want it held read-only", p)
	}
	// a refusal there names the flag that lets it go
	if name, _ := protectedName(ps, filepath.Join(dir, ".git/commondir")); name != ".git/config" {
		t.Errorf("commondir: --unprotect %s, want .git/config", name)
	}
	if _, ok := guardEntryFor(guardEntries(ps), dir, ".claude"); !ok {
		t.Errorf("no guard entry for the link .claude: %+v", guardEntries(ps))
	}
	// A work tree whose .git is a file: the file is held read-only.
	wt := filepath.Join(dir, "wt")
	ps, err = protections([]writableRoot{{wt, wt}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	held := false
	for _, p := range ps {
		if p.Host == filepath.Join(wt, ".git") && !p.Missing && p.Link == "" {
			held = true
		}
	}
	if !held {
		t.Errorf("the .git file is not held: %+v", ps)
	}
	if name, _ := protectedName(ps, filepath.Join(wt, ".git")); name != ".git/config" {
		t.Errorf("the .git file: --unprotect %s, want .git/config", name)
	}
}

func guardEntryFor(es []bpflsm.Entry, dir, name string) (bpflsm.Entry, bool) {
	for _, e := range es {
		if e.Dir == dir && e.Name == name && e.Sub == "" {
			return e, true
		}
	}
	return bpflsm.Entry{}, false
}

// TestCoveredInside: an ancestor bind is left out where another mount
// lies between its writable root and it.
func TestCoveredInside(t *testing.T) {
	roots := []writableRoot{{"/p", "/p"}}
	ms := []specs.Mount{bind("/p", "/p", false), bind("/elsewhere", "/p/data", true)}
	for _, tc := range []struct {
		dst  string
		want bool
	}{{"/p/.git", false}, {"/p/data", true}, {"/p/data/cfg", true}, {"/p/database", false}} {
		if got := coveredInside(ms, roots, protection{Host: tc.dst, Dst: tc.dst, Ancestor: true, Root: "/p"}); got != tc.want {
			t.Errorf("%s: covered %v, want %v", tc.dst, got, tc.want)
		}
	}
}
