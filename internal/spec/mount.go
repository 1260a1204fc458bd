package spec

import specs "github.com/opencontainers/runtime-spec/specs-go"

// Mount is a mounts[] entry with its options parsed once, in the parent:
// the plan carries these to the init, and nothing parses the options again.
type Mount struct {
	specs.Mount
	Opts MountOptions `json:"opts"`
}

// Bind reports whether the entry is a bind mount: type "bind", or a bind
// or rbind option with any type (as runc reads it). This is the one
// predicate brig uses for it.
func (m *Mount) Bind() bool { return m.Opts.Bind || m.Type == "bind" }

// ParseMounts parses every entry's options.
func ParseMounts(ms []specs.Mount) []Mount {
	out := make([]Mount, len(ms))
	for i, m := range ms {
		out[i] = Mount{Mount: m, Opts: ParseMountOptions(m.Options)}
	}
	return out
}
