// Package initproc is the process inside the container before it becomes
// the container's program. It applies the isolation layers in one fixed
// order (layers.go is the only place that order is written in code), waits
// for `brig start`, and execs.
package initproc

import (
	"encoding/json"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"brig/internal/caps"
	"brig/internal/lsm"
	"brig/internal/plan"
	"brig/internal/seccomp"
	"brig/internal/spec"
)

// Config is sent by the brig command to init, as the first JSON message
// after the namespaces exist.
type Config struct {
	// Exec: join a running container and run Process (brig exec);
	// otherwise set up a new container from Spec.
	Exec         bool           `json:"exec,omitempty"`
	ID           string         `json:"id"`
	Bundle       string         `json:"bundle"`
	Spec         *specs.Spec    `json:"spec"`
	Process      *specs.Process `json:"process"`
	NoPivot      bool           `json:"noPivot,omitempty"`
	NoNewKeyring bool           `json:"noNewKeyring,omitempty"`
	FifoPath     string         `json:"fifoPath,omitempty"`
	UserNS       bool           `json:"userNS,omitempty"`   // in a user namespace of its own (new or joined)
	CgroupNS     bool           `json:"cgroupNS,omitempty"` // a new cgroup namespace
	ConsoleFD    int            `json:"consoleFD,omitempty"`
	TreeFDs      map[int]int    `json:"treeFDs,omitempty"` // mounts[i] → fd of its source's tree, made by brig
	PreserveFDs  int            `json:"preserveFDs,omitempty"`
	State        *specs.State   `json:"state,omitempty"` // for createContainer/startContainer hooks
	// DieWithParent: the container's process is killed when the brig
	// command that runs it dies (brig run -- CMD leaves nothing behind).
	DieWithParent bool `json:"dieWithParent,omitempty"`
	// LandlockABI is the host's, as the brig command found it.
	LandlockABI int `json:"landlockABI,omitempty"`
	// ParentFD is a pidfd of that brig command (with DieWithParent).
	ParentFD int `json:"parentFD,omitempty"`
	// Caps are process.capabilities resolved against the host by brig.
	Caps *caps.Sets `json:"caps,omitempty"`
	// Mounts are the spec's mounts[], parsed by the plan (Spec.Mounts is
	// not sent).
	Mounts []spec.Mount `json:"mounts,omitempty"`
	// Seccomp is the filter the plan compiled from linux.seccomp (the
	// profile itself is not sent).
	Seccomp *seccomp.Program `json:"seccomp,omitempty"`
	// Landlock is the rule set the plan parsed from the annotation.
	Landlock *lsm.Landlock `json:"landlock,omitempty"`
	// ApparmorAvailable and SelinuxEnabled are what the host has.
	Debug bool `json:"debug,omitempty"`
}

// SetProcess sets the process and what the plan decided for it.
func (c *Config) SetProcess(p *plan.Process) {
	c.Process, c.Caps, c.Seccomp = p.Spec, p.Caps, p.Seccomp
	c.Landlock, c.LandlockABI = p.Landlock, p.LandlockABI
}

// Message is what init sends back.
type Message struct {
	Type  string `json:"type"` // "cgroup", "hooks", "seccomp", "ready", "error", "warning"
	Error string `json:"error,omitempty"`
	FD    int    `json:"fd,omitempty"`
}

// Reply is the brig command's answer to a "cgroup", "hooks" or "seccomp"
// message.
type Reply struct {
	Error string `json:"error,omitempty"`
	// CgroupPaths answer "cgroup": the container's cgroups by controller
	// ("" for v2), none when it has none.
	CgroupPaths map[string]string `json:"cgroupPaths,omitempty"`
}

// Config.Spec travels to the init as initSpec: the parts of the spec the
// init reads. Decoding JSON into a type makes encoding/json build the
// codecs of every type reachable from it, the first time in a process, and
// for the whole specs.Spec (linux.resources, and the Windows, Solaris, VM
// and z/OS parts) that took about 1 ms on this host, twice the time for
// these parts alone: the init pays it on every start, the brig command
// once for config.json either way.
type initSpec struct {
	Version    string         `json:"ociVersion"`
	Process    *specs.Process `json:"process,omitempty"`
	Root       *specs.Root    `json:"root,omitempty"`
	Hostname   string         `json:"hostname,omitempty"`
	Domainname string         `json:"domainname,omitempty"`
	Hooks      *specs.Hooks   `json:"hooks,omitempty"`
	Linux      *initLinux     `json:"linux,omitempty"`
}

// initLinux is the init's part of specs.Linux: no resources (brig writes
// the cgroup), no id mappings or namespace paths to act on (the C
// constructor and brig did), only which namespaces there are; no mounts,
// seccomp profile or annotations (Config carries them as the plan decided
// them).
type initLinux struct {
	Namespaces        []specs.LinuxNamespace  `json:"namespaces,omitempty"`
	Devices           []specs.LinuxDevice     `json:"devices,omitempty"`
	Sysctl            map[string]string       `json:"sysctl,omitempty"`
	RootfsPropagation string                  `json:"rootfsPropagation,omitempty"`
	MaskedPaths       []string                `json:"maskedPaths,omitempty"`
	ReadonlyPaths     []string                `json:"readonlyPaths,omitempty"`
	MountLabel        string                  `json:"mountLabel,omitempty"`
	Personality       *specs.LinuxPersonality `json:"personality,omitempty"`
}

func toInitSpec(s *specs.Spec) *initSpec {
	if s == nil {
		return nil
	}
	w := &initSpec{
		Version: s.Version, Process: s.Process, Root: s.Root, Hostname: s.Hostname,
		Domainname: s.Domainname, Hooks: s.Hooks,
	}
	if l := s.Linux; l != nil {
		w.Linux = &initLinux{
			Namespaces: l.Namespaces, Devices: l.Devices, Sysctl: l.Sysctl,
			RootfsPropagation: l.RootfsPropagation, MaskedPaths: l.MaskedPaths,
			ReadonlyPaths: l.ReadonlyPaths, MountLabel: l.MountLabel, Personality: l.Personality,
		}
	}
	return w
}

func (w *initSpec) spec() *specs.Spec {
	if w == nil {
		return nil
	}
	s := &specs.Spec{
		Version: w.Version, Process: w.Process, Root: w.Root, Hostname: w.Hostname,
		Domainname: w.Domainname, Hooks: w.Hooks,
	}
	if l := w.Linux; l != nil {
		s.Linux = &specs.Linux{
			Namespaces: l.Namespaces, Devices: l.Devices, Sysctl: l.Sysctl,
			RootfsPropagation: l.RootfsPropagation, MaskedPaths: l.MaskedPaths,
			ReadonlyPaths: l.ReadonlyPaths, MountLabel: l.MountLabel, Personality: l.Personality,
		}
	}
	return s
}

// configAlias has Config's fields without its JSON methods.
type configAlias Config

// wireConfig is Config as it travels: its Spec field shadows the
// embedded one.
type wireConfig struct {
	configAlias
	Spec *initSpec `json:"spec"`
}

// MarshalJSON sends the spec as initSpec.
func (c Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(wireConfig{configAlias(c), toInitSpec(c.Spec)})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (c *Config) UnmarshalJSON(data []byte) error {
	var w wireConfig
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*c = Config(w.configAlias)
	c.Spec = w.Spec.spec()
	return nil
}
