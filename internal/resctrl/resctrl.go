// Package resctrl applies linux.intelRdt: a container's processes in a
// resctrl group (Intel RDT, AMD PQoS) with the schemata the config gives,
// and a monitoring group where asked. Where the host has no resctrl
// filesystem, a config that asks for it is refused: never ignored.
package resctrl

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Root is where the resctrl filesystem is mounted.
const Root = "/sys/fs/resctrl"

// magic is the resctrl filesystem's (RDTGROUP_SUPER_MAGIC).
const magic = 0x7655821

// Available says whether root is a mounted resctrl filesystem.
func Available(root string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil || st.Type != magic {
		return fmt.Errorf("this host has no resctrl filesystem at %s (Intel RDT or AMD PQoS; mount -t resctrl resctrl %s)", root, root)
	}
	return nil
}

// Validate checks linux.intelRdt's fields; the error names the field.
func Validate(r *specs.LinuxIntelRdt) error {
	if r.ClosID != "" {
		if r.ClosID == "." || r.ClosID == ".." || strings.ContainsAny(r.ClosID, "/\n") || len(r.ClosID) > 255 {
			return fmt.Errorf("linux.intelRdt.closID %q: not a directory name", r.ClosID)
		}
	}
	if r.L3CacheSchema != "" && !strings.HasPrefix(r.L3CacheSchema, "L3") {
		return fmt.Errorf("linux.intelRdt.l3CacheSchema %q: want L3:<cache id>=<mask>[;<cache id>=<mask>]", r.L3CacheSchema)
	}
	if r.MemBwSchema != "" && !strings.HasPrefix(r.MemBwSchema, "MB:") {
		return fmt.Errorf("linux.intelRdt.memBwSchema %q: want MB:<cache id>=<bandwidth>[;<cache id>=<bandwidth>]", r.MemBwSchema)
	}
	for i, l := range r.Schemata {
		if strings.TrimSpace(l) == "" || strings.Contains(l, "\n") {
			return fmt.Errorf("linux.intelRdt.schemata[%d] %q: want one schemata line", i, l)
		}
	}
	return nil
}

// Group is a container's place in resctrl, as state records it.
type Group struct {
	Dir     string `json:"dir"`               // the control group
	Made    bool   `json:"made,omitempty"`    // made for the container (removed with it)
	Monitor string `json:"monitor,omitempty"` // its monitoring group, made for it
}

// Apply puts pid in the container's group under root: the one closID
// names (made if missing, kept if it was there: others may share it), or
// one named id; the schemata are written when given; with
// enableMonitoring, a monitoring group of its own too.
func Apply(root, id string, r *specs.LinuxIntelRdt, pid int) (g Group, err error) {
	name := r.ClosID
	if name == "" {
		name = id
	}
	g.Dir = filepath.Join(root, name)
	if err := os.Mkdir(g.Dir, 0o755); err == nil {
		g.Made = true
	} else if !errors.Is(err, os.ErrExist) || r.ClosID == "" {
		return g, fmt.Errorf("linux.intelRdt: resctrl group %s: %w", g.Dir, err)
	}
	defer func() {
		if err != nil {
			Remove(g)
		}
	}()
	lines := r.Schemata
	if len(lines) == 0 {
		for _, l := range []string{r.L3CacheSchema, r.MemBwSchema} {
			if l != "" {
				lines = append(lines, l)
			}
		}
	}
	if len(lines) > 0 {
		if err := os.WriteFile(filepath.Join(g.Dir, "schemata"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			return g, fmt.Errorf("linux.intelRdt: schemata: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(g.Dir, "tasks"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return g, fmt.Errorf("linux.intelRdt: add the container's process to %s: %w", g.Dir, err)
	}
	if r.EnableMonitoring {
		mon := filepath.Join(g.Dir, "mon_groups", id)
		if err := os.MkdirAll(mon, 0o755); err != nil {
			return g, fmt.Errorf("linux.intelRdt.enableMonitoring: %w", err)
		}
		g.Monitor = mon
		if err := os.WriteFile(filepath.Join(mon, "tasks"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return g, fmt.Errorf("linux.intelRdt.enableMonitoring: %w", err)
		}
	}
	return g, nil
}

// Join adds another process (brig exec's) to the container's groups.
func Join(g Group, pid int) error {
	for _, d := range []string{g.Dir, g.Monitor} {
		if d == "" {
			continue
		}
		if err := os.WriteFile(filepath.Join(d, "tasks"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return fmt.Errorf("linux.intelRdt: add the process to %s: %w", d, err)
		}
	}
	return nil
}

// Remove removes the groups made for the container (their tasks go back
// to the default group); a shared closID group stays.
func Remove(g Group) {
	if g.Monitor != "" {
		os.Remove(g.Monitor)
	}
	if g.Made {
		os.Remove(g.Dir)
	}
}
