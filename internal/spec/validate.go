package spec

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Namespace types brig knows, in the order the kernel's clone flags list them.
var namespaceTypes = map[specs.LinuxNamespaceType]bool{
	specs.PIDNamespace: true, specs.NetworkNamespace: true, specs.MountNamespace: true,
	specs.IPCNamespace: true, specs.UTSNamespace: true, specs.UserNamespace: true,
	specs.CgroupNamespace: true, specs.TimeNamespace: true,
}

// NamespaceTypes are the namespace types a config may name.
func NamespaceTypes() []string {
	var out []string
	for t := range namespaceTypes {
		out = append(out, string(t))
	}
	sort.Strings(out)
	return out
}

// HookNames are the hook lists brig runs, in the runtime-spec's order.
var HookNames = []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}

// Rlimits brig can set (RLIMIT_* names as the spec gives them).
var Rlimits = map[string]int{
	"RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3,
	"RLIMIT_CORE": 4, "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7,
	"RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9, "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11,
	"RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13, "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}

// ociVersion is a 1.x version: SemVer (MAJOR.MINOR.PATCH, a pre-release
// and build after - and +), with the patch level optional, as some tools
// write "1.0".
// Compiled on first use, not by every brig process as it starts.
var ociVersion = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^1\.(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))?(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)
})

// problems collects validation errors, each prefixed with its JSON path.
type problems []error

func (p *problems) add(path, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

// Validate checks a parsed spec for what brig needs before it creates
// anything. Every problem is reported with its JSON path. linux.seccomp
// is checked by checkSeccomp (seccomp.Validate, which the plan passes:
// this package doesn't link the seccomp compiler, so that the init, which
// needs its mount and device vocabulary, doesn't either); nil skips it.
func Validate(s *specs.Spec, checkSeccomp func(*specs.LinuxSeccomp) error) error {
	var p problems
	if s.Version == "" {
		p.add("ociVersion", "missing")
	} else if !ociVersion().MatchString(s.Version) {
		p.add("ociVersion", "%q is not a 1.x runtime-spec version (SemVer, e.g. 1.2.0)", s.Version)
	}
	if s.Root == nil || s.Root.Path == "" {
		p.add("root.path", "missing")
	}
	if s.Process != nil {
		validateProcess(&p, "process", s.Process)
	}
	for i, m := range s.Mounts {
		path := fmt.Sprintf("mounts[%d]", i)
		if m.Destination == "" {
			p.add(path+".destination", "missing")
		} else if !filepath.IsAbs(m.Destination) {
			p.add(path+".destination", "%q is not an absolute path", m.Destination)
		}
		pm := Mount{Mount: m, Opts: ParseMountOptions(m.Options)}
		bind := pm.Bind()
		if bind && m.Source == "" {
			p.add(path+".source", "missing for a bind mount")
		}
		validateIdmap(&p, path, pm, bind, s.Linux)
	}
	// A uts namespace of the container's own, new or joined (as runc):
	// never the host's.
	if s.Hostname != "" || s.Domainname != "" {
		if s.Linux == nil || !HasNamespace(s.Linux.Namespaces, specs.UTSNamespace) {
			if s.Hostname != "" {
				p.add("hostname", "needs a uts namespace (linux.namespaces)")
			} else {
				p.add("domainname", "needs a uts namespace (linux.namespaces)")
			}
		}
	}
	if s.Hooks != nil {
		validateHooks(&p, s.Hooks)
	}
	if s.Linux != nil {
		validateLinux(&p, s, checkSeccomp)
	}
	return errors.Join(p...)
}

// validateIdmap checks an id-mapped mount: a bind mount, with both
// mappings of its own, or the container's user namespace's.
func validateIdmap(p *problems, path string, m Mount, bind bool, l *specs.Linux) {
	if !m.Opts.Idmap && len(m.UIDMappings) == 0 && len(m.GIDMappings) == 0 {
		return
	}
	if !bind {
		p.add(path+".options", "id-mapped mounts are bind mounts (type %q)", m.Type)
	}
	if (len(m.UIDMappings) == 0) != (len(m.GIDMappings) == 0) {
		p.add(path+".uidMappings", "give both uidMappings and gidMappings, or neither")
	}
	if len(m.UIDMappings) == 0 && len(m.GIDMappings) == 0 && (l == nil || len(l.UIDMappings) == 0) {
		p.add(path+".options", "idmap without mappings needs linux.uidMappings/gidMappings to map through")
	}
	for name, maps := range map[string][]specs.LinuxIDMapping{".uidMappings": m.UIDMappings, ".gidMappings": m.GIDMappings} {
		for i, mp := range maps {
			if mp.Size == 0 {
				p.add(fmt.Sprintf("%s%s[%d].size", path, name, i), "must be positive")
			}
		}
	}
}

// ValidateProcess checks a process given to exec (--process FILE).
func ValidateProcess(proc *specs.Process) error {
	var p problems
	validateProcess(&p, "process", proc)
	return errors.Join(p...)
}

func validateProcess(p *problems, path string, proc *specs.Process) {
	if len(proc.Args) == 0 {
		if proc.CommandLine != "" {
			p.add(path+".commandLine", "Windows only: on Linux the process is process.args")
		} else {
			p.add(path+".args", "missing: a process needs at least one argument")
		}
	}
	if proc.Cwd == "" {
		p.add(path+".cwd", "missing")
	} else if !filepath.IsAbs(proc.Cwd) {
		p.add(path+".cwd", "%q is not an absolute path", proc.Cwd)
	}
	for i, e := range proc.Env {
		if !strings.Contains(e, "=") {
			p.add(fmt.Sprintf("%s.env[%d]", path, i), "%q is not KEY=VALUE", e)
		}
	}
	if a := proc.ExecCPUAffinity; a != nil {
		for field, list := range map[string]string{"initial": a.Initial, "final": a.Final} {
			if list == "" {
				continue
			}
			if _, err := ParseCPUList(list); err != nil {
				p.add(path+".execCPUAffinity."+field, "%v", err)
			}
		}
	}
	seen := map[string]bool{}
	for i, r := range proc.Rlimits {
		rp := fmt.Sprintf("%s.rlimits[%d]", path, i)
		if _, ok := Rlimits[r.Type]; !ok {
			p.add(rp+".type", "unknown rlimit %q", r.Type)
		}
		if seen[r.Type] {
			p.add(rp+".type", "duplicate rlimit %q", r.Type)
		}
		seen[r.Type] = true
		if r.Soft > r.Hard {
			p.add(rp, "soft limit %d is above hard limit %d", r.Soft, r.Hard)
		}
	}
	if c := proc.Capabilities; c != nil {
		for set, list := range map[string][]string{
			"bounding": c.Bounding, "effective": c.Effective, "inheritable": c.Inheritable,
			"permitted": c.Permitted, "ambient": c.Ambient,
		} {
			for i, name := range list {
				if _, ok := CapabilityByName(name); !ok {
					p.add(fmt.Sprintf("%s.capabilities.%s[%d]", path, set, i), "unknown capability %q", name)
				}
			}
		}
	}
	if proc.ConsoleSize != nil && !proc.Terminal {
		p.add(path+".consoleSize", "set without process.terminal")
	}
	if proc.OOMScoreAdj != nil && (*proc.OOMScoreAdj < -1000 || *proc.OOMScoreAdj > 1000) {
		p.add(path+".oomScoreAdj", "%d is outside -1000..1000", *proc.OOMScoreAdj)
	}
	if io := proc.IOPriority; io != nil {
		switch io.Class {
		case specs.IOPRIO_CLASS_RT, specs.IOPRIO_CLASS_BE, specs.IOPRIO_CLASS_IDLE:
		default:
			p.add(path+".ioPriority.class", "unknown class %q", io.Class)
		}
		if io.Priority < 0 || io.Priority > 7 {
			p.add(path+".ioPriority.priority", "%d is outside 0..7", io.Priority)
		}
	}
}

func validateHooks(p *problems, h *specs.Hooks) {
	lists := map[string][]specs.Hook{
		//lint:ignore SA1019 prestart is deprecated but still part of the spec
		"prestart": h.Prestart, "createRuntime": h.CreateRuntime, "createContainer": h.CreateContainer,
		"startContainer": h.StartContainer, "poststart": h.Poststart, "poststop": h.Poststop,
	}
	for name, hooks := range lists {
		for i, hk := range hooks {
			hp := fmt.Sprintf("hooks.%s[%d]", name, i)
			if !filepath.IsAbs(hk.Path) {
				p.add(hp+".path", "%q is not an absolute path", hk.Path)
			}
			if hk.Timeout != nil && *hk.Timeout <= 0 {
				p.add(hp+".timeout", "must be positive, got %d", *hk.Timeout)
			}
		}
	}
}

func validateLinux(p *problems, s *specs.Spec, checkSeccomp func(*specs.LinuxSeccomp) error) {
	l := s.Linux
	seen := map[specs.LinuxNamespaceType]bool{}
	for i, ns := range l.Namespaces {
		np := fmt.Sprintf("linux.namespaces[%d]", i)
		if !namespaceTypes[ns.Type] {
			p.add(np+".type", "unknown namespace type %q", ns.Type)
			continue
		}
		if seen[ns.Type] {
			p.add(np+".type", "duplicate namespace %q", ns.Type)
		}
		seen[ns.Type] = true
		if ns.Path != "" && !filepath.IsAbs(ns.Path) {
			p.add(np+".path", "%q is not an absolute path", ns.Path)
		}
		if strings.ContainsAny(ns.Path, "\n") {
			p.add(np+".path", "contains a newline")
		}
	}
	newUser := HasNewNamespace(l.Namespaces, specs.UserNamespace)
	if (len(l.UIDMappings) > 0 || len(l.GIDMappings) > 0) && !newUser {
		p.add("linux.uidMappings", "id mappings need a new user namespace")
	}
	if newUser && (len(l.UIDMappings) == 0 || len(l.GIDMappings) == 0) {
		p.add("linux.uidMappings", "a new user namespace needs uidMappings and gidMappings")
	}
	for name, maps := range map[string][]specs.LinuxIDMapping{"linux.uidMappings": l.UIDMappings, "linux.gidMappings": l.GIDMappings} {
		for i, m := range maps {
			if m.Size == 0 {
				p.add(fmt.Sprintf("%s[%d].size", name, i), "must be positive")
			}
		}
	}
	if len(l.TimeOffsets) > 0 && !HasNewNamespace(l.Namespaces, specs.TimeNamespace) {
		p.add("linux.timeOffsets", "needs a new time namespace")
	}
	for clock := range l.TimeOffsets {
		if clock != "monotonic" && clock != "boottime" {
			p.add("linux.timeOffsets", "unknown clock %q (monotonic or boottime)", clock)
		}
	}
	if mp := l.MemoryPolicy; mp != nil {
		if field, msg := CheckMemoryPolicy(mp); field != "" {
			p.add("linux.memoryPolicy."+field, "%s", msg)
		}
	}
	if len(l.NetDevices) > 0 && !HasNamespace(l.Namespaces, specs.NetworkNamespace) {
		p.add("linux.netDevices", "needs a network namespace of the container's own (linux.namespaces has no network entry)")
	}
	inside := map[string]string{}
	for host, d := range l.NetDevices {
		if err := CheckIfName(host); err != nil {
			p.add("linux.netDevices."+host, "%v", err)
		}
		name := d.Name
		if name == "" {
			name = host
		} else if err := CheckIfName(name); err != nil {
			p.add("linux.netDevices."+host+".name", "%v", err)
		}
		if other, ok := inside[name]; ok {
			p.add("linux.netDevices."+host+".name", "%q is also the name of %s inside the container", name, other)
		}
		inside[name] = host
	}
	for key := range l.Sysctl {
		// As runc: the config's own hostname and domainname are set by
		// their fields; a sysctl of the same would fight them.
		switch {
		case (key == "kernel.hostname" || key == "kernel/hostname") && s.Hostname != "":
			p.add("linux.sysctl."+key, "not allowed: it conflicts with the hostname field")
			continue
		case (key == "kernel.domainname" || key == "kernel/domainname") && s.Domainname != "":
			p.add("linux.sysctl."+key, "not allowed: it conflicts with the domainname field")
			continue
		}
		if err := checkSysctl(key, l.Namespaces); err != nil {
			p.add("linux.sysctl."+key, "%v", err)
		}
	}
	for i, d := range l.Devices {
		dp := fmt.Sprintf("linux.devices[%d]", i)
		if !filepath.IsAbs(d.Path) {
			p.add(dp+".path", "%q is not an absolute path", d.Path)
		}
		switch d.Type {
		case "c", "b", "u", "p":
		default:
			p.add(dp+".type", "unknown device type %q (c, b, u or p)", d.Type)
		}
	}
	if r := l.Resources; r != nil {
		for i, d := range r.Devices {
			switch d.Type {
			case "", "a", "c", "b":
			default:
				p.add(fmt.Sprintf("linux.resources.devices[%d].type", i), "unknown type %q (a, c or b)", d.Type)
			}
			for _, c := range d.Access {
				if !strings.ContainsRune("rwm", c) {
					p.add(fmt.Sprintf("linux.resources.devices[%d].access", i), "unknown access %q (r, w, m)", d.Access)
					break
				}
			}
		}
		if r.Memory != nil && r.Memory.Swappiness != nil && *r.Memory.Swappiness > 100 {
			p.add("linux.resources.memory.swappiness", "%d is above 100", *r.Memory.Swappiness)
		}
		if r.BlockIO != nil && r.BlockIO.Weight != nil && (*r.BlockIO.Weight < 10 || *r.BlockIO.Weight > 1000) && *r.BlockIO.Weight != 0 {
			p.add("linux.resources.blockIO.weight", "%d is outside 10..1000", *r.BlockIO.Weight)
		}
	}
	switch l.RootfsPropagation {
	case "", "shared", "slave", "private", "unbindable", "rshared", "rslave", "rprivate", "runbindable":
	default:
		p.add("linux.rootfsPropagation", "unknown propagation %q", l.RootfsPropagation)
	}
	if l.Seccomp != nil && checkSeccomp != nil {
		if err := checkSeccomp(l.Seccomp); err != nil {
			*p = append(*p, err)
		}
	}
	if l.Personality != nil {
		switch l.Personality.Domain {
		case specs.PerLinux, specs.PerLinux32:
		default:
			p.add("linux.personality.domain", "unknown domain %q", l.Personality.Domain)
		}
	}
}

func checkSysctl(key string, nss []specs.LinuxNamespace) error {
	ipc := map[string]bool{
		"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true, "kernel.sem": true,
		"kernel.shmall": true, "kernel.shmmax": true, "kernel.shmmni": true, "kernel.shm_rmid_forced": true,
	}
	switch {
	case ipc[key] || strings.HasPrefix(key, "fs.mqueue."):
		if !HasNewNamespace(nss, specs.IPCNamespace) {
			return errors.New("needs a new ipc namespace")
		}
	case strings.HasPrefix(key, "net."):
		if !HasNamespace(nss, specs.NetworkNamespace) {
			return errors.New("needs a network namespace")
		}
	case key == "kernel.hostname" || key == "kernel.domainname":
		if !HasNewNamespace(nss, specs.UTSNamespace) {
			return errors.New("needs a new uts namespace")
		}
	default:
		return errors.New("not a namespaced sysctl: it would change the host")
	}
	return nil
}

// HasNamespace reports whether nss has a namespace of type t, new or joined.
func HasNamespace(nss []specs.LinuxNamespace, t specs.LinuxNamespaceType) bool {
	for _, ns := range nss {
		if ns.Type == t {
			return true
		}
	}
	return false
}

// HasNewNamespace reports whether nss creates a new namespace of type t.
func HasNewNamespace(nss []specs.LinuxNamespace, t specs.LinuxNamespaceType) bool {
	for _, ns := range nss {
		if ns.Type == t && ns.Path == "" {
			return true
		}
	}
	return false
}

// CapabilityByName maps "CAP_SYS_ADMIN" to its number.
func CapabilityByName(name string) (capability.Cap, bool) {
	n := strings.ToLower(strings.TrimPrefix(strings.ToUpper(name), "CAP_"))
	for _, c := range capability.ListKnown() {
		if c.String() == n {
			return c, true
		}
	}
	return 0, false
}

// CheckIfName checks a network device name as the kernel does
// (dev_valid_name): 1 to 15 bytes, not "." or "..", no '/', ':' or space.
func CheckIfName(name string) error {
	switch {
	case name == "":
		return errors.New("empty network device name")
	case len(name) > 15:
		return fmt.Errorf("network device name %q: longer than 15 bytes", name)
	case name == "." || name == "..":
		return fmt.Errorf("network device name %q: not allowed", name)
	case strings.ContainsAny(name, "/: \t\n\v\f\r"):
		return fmt.Errorf("network device name %q: no '/', ':' or white space", name)
	}
	return nil
}

// ParseCPUList reads a CPU list as the kernel writes one ("0-3,7").
func ParseCPUList(list string) (*unix.CPUSet, error) {
	var set unix.CPUSet
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		b := a
		if err == nil && isRange {
			b, err = strconv.Atoi(hi)
		}
		if err != nil || a < 0 || b < a || b >= 1024 {
			return nil, fmt.Errorf("%q: not a CPU list (as 0-3,7)", list)
		}
		for c := a; c <= b; c++ {
			set.Set(c)
		}
	}
	return &set, nil
}
