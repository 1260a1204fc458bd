package learn

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"brig/internal/egress"
	"brig/internal/recorder"
)

// The file half of what learn writes: a `brig run --profile` file whose
// --ro and --rw entries are the host paths the workload used (Landlock
// follows the mounts), as tight as files, widened to a directory only by
// these rules:
//
//   - a directory listed is shown whole (a listing shows everything);
//   - a file created needs its directory writable: the closest directory
//     that existed when learning began;
//   - more than WidenAt files used the same way in one directory: that
//     directory;
//
// and never to /, nor to the home directory or a parent of it. What the
// sandbox shows anyway needs no entry: reads and executions under its
// system directories (DefaultRO).

// WidenAt is how many files of one directory, used the same way, make the
// entry that directory.
const WidenAt = 8

// FileRules are the entries: ro and rw host paths.
type FileRules struct {
	RO, RW []string
	// Widened says which directories stand for more, and why.
	Widened []string
	// AllowNet are --allow-net entries: the destinations connected to.
	AllowNet []string
}

// Destinations are --allow-net entries for the destinations the
// workload connected to (or tried to): address and port, without the
// sandbox's own loopback and network. An address the sandbox's DNS
// responder gave as the answer for names (names: learning with
// --allow-net names or wildcards) is written as those names, so the
// replay follows DNS as the workload did, and a wildcard learns the names
// actually used.
func Destinations(connects []netip.AddrPort, names map[netip.Addr][]string) []string {
	var out []string
	for _, c := range connects {
		a := c.Addr()
		if c.Port() == 0 || a.IsLoopback() || a.IsUnspecified() || a.IsMulticast() || a.IsLinkLocalUnicast() ||
			egress.Network.Contains(a) || egress.Network6.Contains(a) {
			continue
		}
		if ns := names[a]; len(ns) > 0 {
			for _, n := range ns {
				out = append(out, fmt.Sprintf("%s:%d", n, c.Port()))
			}
			continue
		}
		out = append(out, c.String())
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Rules turns a file recording into entries. defaultRO are the
// directories the sandbox shows read-only anyway; home is the caller's
// home; started is when learning began (what existed then).
func Rules(use map[string]recorder.Access, defaultRO []string, home string, started time.Time) FileRules {
	return RulesIn("", use, defaultRO, home, started)
}

// RulesIn is Rules for paths as a container sees them: root is a path to
// its root directory ("" for the host's), where what existed is looked up.
func RulesIn(root string, use map[string]recorder.Access, defaultRO []string, home string, started time.Time) FileRules {
	under := func(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }
	tooWide := func(dir string) bool {
		return dir == "/" || (home != "" && under(home, dir) && dir != home) || dir == "."
	}
	rw, ro := map[string]bool{}, map[string]bool{}
	var why []string
	for p, a := range use {
		write := a&(recorder.Write|recorder.Created) != 0
		if !write && slices.ContainsFunc(defaultRO, func(d string) bool { return under(p, d) }) {
			continue
		}
		switch {
		case a&recorder.Created != 0:
			dir := existedAt(root, filepath.Dir(p), started)
			if tooWide(dir) {
				rw[p] = true // only the file: its directory would be too wide
			} else {
				rw[dir] = true
			}
		case write:
			rw[p] = true
		case a&recorder.Dir != 0:
			ro[p] = true
		default:
			ro[p] = true
		}
	}
	widen := func(set map[string]bool, kind string) {
		byDir := map[string][]string{}
		for p := range set {
			byDir[filepath.Dir(p)] = append(byDir[filepath.Dir(p)], p)
		}
		for dir, ps := range byDir {
			if len(ps) > WidenAt && !tooWide(dir) {
				for _, p := range ps {
					delete(set, p)
				}
				set[dir] = true
				why = append(why, fmt.Sprintf("%s (%s: %d files used in it)", dir, kind, len(ps)))
			}
		}
	}
	widen(rw, "rw")
	widen(ro, "ro")
	// What a writable entry holds needs no read-only one.
	out := FileRules{Widened: why}
	for p := range rw {
		out.RW = append(out.RW, p)
	}
	out.RW = minimal(out.RW)
	for p := range ro {
		if !slices.ContainsFunc(out.RW, func(w string) bool { return under(p, w) }) {
			out.RO = append(out.RO, p)
		}
	}
	out.RO = minimal(out.RO)
	sort.Strings(out.Widened)
	return out
}

// existedAt is the closest directory at or above dir that existed before
// t (born before it, or with no birth time to tell).
func existedAt(root, dir string, t time.Time) string {
	for {
		fi, err := os.Stat(root + dir)
		if err == nil && fi.IsDir() && !bornAfter(root+dir, t) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return dir
		}
		dir = parent
	}
}

// minimal sorts paths and drops those under another of them.
func minimal(ps []string) []string {
	sort.Strings(ps)
	var out []string
	for _, p := range ps {
		if len(out) > 0 {
			last := out[len(out)-1]
			if p == last || strings.HasPrefix(p, last+"/") || last == "/" {
				continue
			}
		}
		out = append(out, p)
	}
	return out
}

// SandboxProfile is the `brig run --profile` file learn writes.
type SandboxProfile struct {
	SecurityOpt []string `yaml:"security-opt,omitempty"`
	RO          []string `yaml:"ro,omitempty"`
	RW          []string `yaml:"rw,omitempty"`
	AllowNet    []string `yaml:"allow-net,omitempty"`
}

// WriteSandbox writes the profile file (atomically), merged with what an
// earlier learn wrote there: the union of the entries.
func WriteSandbox(path, seccompProfile string, r FileRules) error {
	abs, err := filepath.Abs(seccompProfile)
	if err != nil {
		return err
	}
	p := SandboxProfile{SecurityOpt: []string{"seccomp=" + abs}, RO: r.RO, RW: r.RW, AllowNet: r.AllowNet}
	if data, err := os.ReadFile(path); err == nil {
		var old SandboxProfile
		if err := yaml.Unmarshal(data, &old); err != nil {
			return fmt.Errorf("--profile-out %s: exists and is not a profile learn wrote: %w", path, err)
		}
		p.RW = minimal(append(p.RW, old.RW...))
		var ro []string
		for _, x := range append(p.RO, old.RO...) {
			if !slices.ContainsFunc(p.RW, func(w string) bool { return x == w || strings.HasPrefix(x, w+"/") }) {
				ro = append(ro, x)
			}
		}
		p.RO = minimal(ro)
		p.AllowNet = append(p.AllowNet, old.AllowNet...)
		slices.Sort(p.AllowNet)
		p.AllowNet = slices.Compact(p.AllowNet)
	}
	data, err := yaml.Marshal(&p)
	if err != nil {
		return err
	}
	head := "# learned by brig learn: brig run --profile " + filepath.Base(path) + " -- CMD\n"
	if len(r.Widened) > 0 {
		head += "# widened to a directory: " + strings.Join(r.Widened, "; ") + "\n"
	}
	return WriteFileAtomic(path, append([]byte(head), data...))
}
