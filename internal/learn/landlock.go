package learn

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
)

// The Landlock half of learning by annotation: beside an OCI container's
// learned seccomp profile, the brig.landlock rule set (the annotation's
// value, see internal/lsm) for the files it used, by the paths it saw,
// with the same rules as brig run's --ro and --rw entries (files.go).

// LandlockSuffix names the rule set written beside an annotation's
// profile.
const LandlockSuffix = ".landlock"

var (
	llRead      = []string{"execute", "read_file", "read_dir"}
	llReadFile  = []string{"execute", "read_file"}
	llWrite     = []string{"execute", "read_file", "read_dir", "write_file", "remove_dir", "remove_file", "make_dir", "make_reg", "make_sym", "make_sock", "make_fifo", "truncate"}
	llWriteFile = []string{"execute", "read_file", "write_file", "truncate"}
)

// kernelFS are the container's kernel filesystems, which the file
// recorder doesn't watch: they get what brig run's sandbox gives them
// (/proc and /sys read-only, /dev's files usable).
var kernelFS = map[string][]string{
	"/proc": {"read_file", "read_dir"},
	"/sys":  {"read_file", "read_dir"},
	"/dev":  append(slices.Clone(llWrite), "ioctl_dev"),
}

// landlockSet is a rule set as paths by their rights.
type landlockSet map[string][]string // rights, joined by "," → paths

func (l landlockSet) add(rights []string, paths ...string) {
	k := strings.Join(rights, ",")
	l[k] = append(l[k], paths...)
}

// LandlockRuleSet is the brig.landlock value for rules r: a directory gets
// the rights of its kind, a file only a file's; root ("" for the host's)
// is where the paths are looked up.
func LandlockRuleSet(root string, r FileRules) landlockSet {
	l := landlockSet{}
	for path, rights := range kernelFS {
		l.add(rights, path)
	}
	isDir := func(p string) bool {
		fi, err := os.Stat(root + p)
		return err == nil && fi.IsDir()
	}
	for _, p := range r.RO {
		if isDir(p) {
			l.add(llRead, p)
		} else {
			l.add(llReadFile, p)
		}
	}
	for _, p := range r.RW {
		if isDir(p) {
			l.add(llWrite, p)
		} else {
			l.add(llWriteFile, p)
		}
	}
	return l
}

// wire is the annotation's JSON (its rules part: every filesystem right
// handled).
type wire struct {
	Rules struct {
		PathBeneath []struct {
			AllowedAccess []string `json:"allowedAccess"`
			Paths         []string `json:"paths"`
		} `json:"pathBeneath"`
	} `json:"rules"`
}

func (l landlockSet) marshal() ([]byte, error) {
	var w wire
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		paths := slices.Clone(l[k])
		slices.Sort(paths)
		w.Rules.PathBeneath = append(w.Rules.PathBeneath, struct {
			AllowedAccess []string `json:"allowedAccess"`
			Paths         []string `json:"paths"`
		}{strings.Split(k, ","), slices.Compact(paths)})
	}
	return json.MarshalIndent(w, "", "  ")
}

// WriteLandlock writes the rule set at path, as the union with the one
// there already (an earlier run's), atomically.
func WriteLandlock(path string, l landlockSet) error {
	if data, err := os.ReadFile(path); err == nil {
		var w wire
		if err := json.Unmarshal(data, &w); err != nil {
			return fmt.Errorf("%s: not a rule set learn wrote: %w", path, err)
		}
		for _, r := range w.Rules.PathBeneath {
			l.add(r.AllowedAccess, r.Paths...)
		}
	}
	data, err := l.marshal()
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, append(data, '\n'))
}
