// Package caps sets a process's five capability sets from the spec. Names
// the running kernel or the caller's bounding set lack are left out and
// reported, so a container asking for every capability gets all that the
// host can grant (runc fails instead).
package caps

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"brig/internal/spec"
)

// Sets are resolved capability lists. The brig command resolves them
// (it can read its own bounding set) and init applies them: init may run
// where /proc is not mounted.
type Sets struct {
	Bounding    []capability.Cap `json:"bounding,omitempty"`
	Effective   []capability.Cap `json:"effective,omitempty"`
	Inheritable []capability.Cap `json:"inheritable,omitempty"`
	Permitted   []capability.Cap `json:"permitted,omitempty"`
	Ambient     []capability.Cap `json:"ambient,omitempty"`
	// Missing are names asked for that this host can't grant.
	Missing []string `json:"missing,omitempty"`
}

// Resolve maps the spec's names to capabilities, dropping those above the
// kernel's last capability or outside the caller's bounding set.
func Resolve(c *specs.LinuxCapabilities) (*Sets, error) {
	s := &Sets{}
	if c == nil {
		return s, nil
	}
	self, err := capability.NewPid2(0)
	if err != nil {
		return nil, err
	}
	if err := self.Load(); err != nil {
		return nil, fmt.Errorf("read own capabilities: %w", err)
	}
	last, err := capability.LastCap()
	if err != nil {
		return nil, err
	}
	missing := map[string]bool{}
	conv := func(names []string) []capability.Cap {
		var out []capability.Cap
		for _, n := range names {
			cp, ok := spec.CapabilityByName(n)
			if !ok {
				missing[n] = true
				continue
			}
			if cp > last || !self.Get(capability.BOUNDING, cp) {
				missing[strings.ToUpper(n)] = true
				continue
			}
			out = append(out, cp)
		}
		return out
	}
	s.Bounding = conv(c.Bounding)
	s.Effective = conv(c.Effective)
	s.Inheritable = conv(c.Inheritable)
	s.Permitted = conv(c.Permitted)
	s.Ambient = conv(c.Ambient)
	for n := range missing {
		s.Missing = append(s.Missing, n)
	}
	sort.Strings(s.Missing)
	return s, nil
}

// DropUnraisableAmbient takes out of the ambient set what the kernel won't
// raise there — a capability not both permitted and inheritable — and
// names it. runc spec's own config asks for ambient capabilities it
// doesn't make inheritable; runc and crun leave them out and run it.
func (s *Sets) DropUnraisableAmbient() []string {
	var kept []capability.Cap
	var dropped []string
	for _, c := range s.Ambient {
		if slices.Contains(s.Permitted, c) && slices.Contains(s.Inheritable, c) {
			kept = append(kept, c)
			continue
		}
		dropped = append(dropped, "CAP_"+strings.ToUpper(c.String()))
	}
	s.Ambient = kept
	return dropped
}

// ApplyBounding drops every capability not in the bounding set. It needs
// CAP_SETPCAP, so it runs before the uid change. Nothing is read from
// /proc: the sets are built from s alone.
func (s *Sets) ApplyBounding() error {
	c, err := capability.NewPid2(0)
	if err != nil {
		return err
	}
	c.Clear(capability.BOUNDING)
	c.Set(capability.BOUNDING, s.Bounding...)
	if err := c.Apply(capability.BOUNDING); err != nil {
		return fmt.Errorf("set bounding capabilities: %w", err)
	}
	return nil
}

// Apply sets effective, permitted, inheritable and ambient on the calling
// thread (the one that will execve).
func (s *Sets) Apply() error {
	c, err := capability.NewPid2(0)
	if err != nil {
		return err
	}
	c.Clear(capability.CAPS | capability.AMBS)
	c.Set(capability.EFFECTIVE, s.Effective...)
	c.Set(capability.PERMITTED, s.Permitted...)
	c.Set(capability.INHERITABLE, s.Inheritable...)
	c.Set(capability.AMBIENT, s.Ambient...)
	if err := c.Apply(capability.CAPS | capability.AMBS); err != nil {
		return fmt.Errorf("set capabilities: %w", err)
	}
	return nil
}
