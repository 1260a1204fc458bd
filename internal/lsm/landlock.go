package lsm

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/landlock-lsm/go-landlock/landlock"
	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// LandlockAnnotation holds a container's Landlock rule set as JSON. The
// shape follows the runtime-spec proposal for a linux.landlock field:
//
//	{
//	  "ruleset": {"handledAccessFS": ["execute", "write_file", ...],
//	              "handledAccessNetwork": ["bind_tcp", "connect_tcp"],
//	              "scoped": ["abstract_unix_socket", "signal"]},
//	  "rules": {"pathBeneath": [{"allowedAccess": ["execute", "read_file", "read_dir"], "paths": ["/usr"]}],
//	            "netPort": [{"allowedAccess": ["connect_tcp"], "ports": [443]}]},
//	  "disableBestEffort": false
//	}
//
// An omitted handledAccessFS means every filesystem right, so paths not
// named are unreachable. Paths are the container's. Best effort (the
// default) leaves out rights the kernel's Landlock ABI lacks; with
// disableBestEffort such a rule set is an error.
const LandlockAnnotation = "brig.landlock"

// Landlock is the parsed rule set.
type Landlock struct {
	Ruleset struct {
		HandledAccessFS      []string `json:"handledAccessFS,omitempty"`
		HandledAccessNetwork []string `json:"handledAccessNetwork,omitempty"`
		Scoped               []string `json:"scoped,omitempty"`
	} `json:"ruleset"`
	Rules struct {
		PathBeneath []struct {
			AllowedAccess []string `json:"allowedAccess"`
			Paths         []string `json:"paths"`
		} `json:"pathBeneath,omitempty"`
		NetPort []struct {
			AllowedAccess []string `json:"allowedAccess"`
			Ports         []uint16 `json:"ports"`
		} `json:"netPort,omitempty"`
	} `json:"rules"`
	DisableBestEffort bool `json:"disableBestEffort,omitempty"`
}

var fsRights = map[string]uint64{
	"execute": ll.AccessFSExecute, "write_file": ll.AccessFSWriteFile, "read_file": ll.AccessFSReadFile,
	"read_dir": ll.AccessFSReadDir, "remove_dir": ll.AccessFSRemoveDir, "remove_file": ll.AccessFSRemoveFile,
	"make_char": ll.AccessFSMakeChar, "make_dir": ll.AccessFSMakeDir, "make_reg": ll.AccessFSMakeReg,
	"make_sock": ll.AccessFSMakeSock, "make_fifo": ll.AccessFSMakeFifo, "make_block": ll.AccessFSMakeBlock,
	"make_sym": ll.AccessFSMakeSym, "refer": ll.AccessFSRefer, "truncate": ll.AccessFSTruncate,
	"ioctl_dev": ll.AccessFSIoctlDev,
}

var netRights = map[string]uint64{"bind_tcp": ll.AccessNetBindTCP, "connect_tcp": ll.AccessNetConnectTCP}

var scopes = map[string]uint64{"abstract_unix_socket": ll.ScopeAbstractUnixSocket, "signal": ll.ScopeSignal}

// ParseLandlock reads the annotation; nil, nil when it is absent.
func ParseLandlock(annotations map[string]string) (*Landlock, error) {
	v, ok := annotations[LandlockAnnotation]
	if !ok {
		return nil, nil
	}
	var l Landlock
	if err := json.Unmarshal([]byte(v), &l); err != nil {
		return nil, fmt.Errorf("annotations[%q]: %w", LandlockAnnotation, err)
	}
	if _, _, _, err := l.sets(); err != nil {
		return nil, err
	}
	return &l, nil
}

func bits(names []string, table map[string]uint64, path string) (uint64, error) {
	var out uint64
	for i, n := range names {
		b, ok := table[n]
		if !ok {
			known := make([]string, 0, len(table))
			for k := range table {
				known = append(known, k)
			}
			sort.Strings(known)
			return 0, fmt.Errorf("annotations[%q] %s[%d]: unknown right %q (known: %s)", LandlockAnnotation, path, i, n, strings.Join(known, ", "))
		}
		out |= b
	}
	return out, nil
}

func (l *Landlock) sets() (fs, net, scoped uint64, err error) {
	if len(l.Ruleset.HandledAccessFS) == 0 {
		for _, b := range fsRights {
			fs |= b
		}
	} else if fs, err = bits(l.Ruleset.HandledAccessFS, fsRights, "ruleset.handledAccessFS"); err != nil {
		return
	}
	if net, err = bits(l.Ruleset.HandledAccessNetwork, netRights, "ruleset.handledAccessNetwork"); err != nil {
		return
	}
	if scoped, err = bits(l.Ruleset.Scoped, scopes, "ruleset.scoped"); err != nil {
		return
	}
	for i, r := range l.Rules.PathBeneath {
		if _, err = bits(r.AllowedAccess, fsRights, fmt.Sprintf("rules.pathBeneath[%d].allowedAccess", i)); err != nil {
			return
		}
		if len(r.Paths) == 0 {
			err = fmt.Errorf("annotations[%q] rules.pathBeneath[%d].paths: missing", LandlockAnnotation, i)
			return
		}
	}
	for i, r := range l.Rules.NetPort {
		if _, err = bits(r.AllowedAccess, netRights, fmt.Sprintf("rules.netPort[%d].allowedAccess", i)); err != nil {
			return
		}
	}
	return
}

// LandlockABI is the kernel's Landlock ABI version (0: none).
func LandlockABI() int {
	v, err := ll.LandlockGetABIVersion()
	if err != nil {
		return 0
	}
	return v
}

// Enforce restricts the calling process (init, just before execve) to the
// rule set. It sets no_new_privs, which Landlock needs. hostABI is the ABI
// the brig command found on the host: less here means the system calls
// are denied to this process (a seccomp filter that had to be loaded
// earlier), and best effort must not quietly become nothing.
func (l *Landlock) Enforce(hostABI int) error {
	fs, net, scoped, err := l.sets()
	if err != nil {
		return err
	}
	if abi := LandlockABI(); abi < hostABI {
		return fmt.Errorf("landlock: the host has ABI %d but this process reaches %d: the container's seccomp profile, loaded before Landlock (for SCMP_ACT_NOTIFY or without noNewPrivileges), denies the landlock system calls", hostABI, abi)
	}
	if LandlockABI() == 0 {
		if l.DisableBestEffort {
			return errors.New("landlock: the kernel has no Landlock and disableBestEffort is set")
		}
		return nil
	}
	cfg := landlock.Config{
		HandledAccessFS:  landlock.AccessFSSet(fs),
		HandledAccessNet: landlock.AccessNetSet(net),
		Scoped:           landlock.ScopedSet(scoped),
	}
	if !l.DisableBestEffort {
		cfg = cfg.BestEffort()
	}
	var rules []landlock.Rule
	for _, r := range l.Rules.PathBeneath {
		b, _ := bits(r.AllowedAccess, fsRights, "")
		rule := landlock.PathAccess(landlock.AccessFSSet(b), r.Paths...)
		if b&ll.AccessFSRefer != 0 {
			rule = rule.WithRefer()
		}
		if b&ll.AccessFSIoctlDev != 0 {
			rule = rule.WithIoctlDev()
		}
		rules = append(rules, rule)
	}
	for _, r := range l.Rules.NetPort {
		b, _ := bits(r.AllowedAccess, netRights, "")
		for _, p := range r.Ports {
			if b&ll.AccessNetBindTCP != 0 {
				rules = append(rules, landlock.BindTCP(p))
			}
			if b&ll.AccessNetConnectTCP != 0 {
				rules = append(rules, landlock.ConnectTCP(p))
			}
		}
	}
	if err := cfg.Restrict(rules...); err != nil {
		return fmt.Errorf("landlock: %w", err)
	}
	return nil
}

// Describe says which rights this kernel enforces of a rule set, for the
// brig command to report before the container starts.
func (l *Landlock) Describe() string {
	abi := LandlockABI()
	if abi == 0 {
		return "landlock: not available on this kernel: the rule set is not enforced"
	}
	var missing []string
	if len(l.Ruleset.HandledAccessNetwork) > 0 && abi < 4 {
		missing = append(missing, "network rules need ABI 4")
	}
	if len(l.Ruleset.Scoped) > 0 && abi < 6 {
		missing = append(missing, "scopes need ABI 6")
	}
	if abi < 5 {
		missing = append(missing, "ioctl_dev needs ABI 5")
	}
	if abi < 3 {
		missing = append(missing, "truncate needs ABI 3")
	}
	if len(missing) == 0 {
		return fmt.Sprintf("landlock: ABI %d enforces the whole rule set", abi)
	}
	return fmt.Sprintf("landlock: ABI %d, best effort: %s", abi, strings.Join(missing, "; "))
}

// LandlockFromSpec returns the rule set of a container config.
func LandlockFromSpec(s *specs.Spec) (*Landlock, error) {
	if s == nil {
		return nil, nil
	}
	return ParseLandlock(s.Annotations)
}

// LandlockPlan is a rule set as the kernel takes it: what Enforce has
// go-landlock do on a kernel of a given ABI, worked out in the brig
// command for the C init, which restricts itself without go-landlock
// (internal/initprog). TestLandlockPlan pins it to go-landlock's rules,
// and the integration tests run rule sets under both inits
// (TestCreateInitProgram, TestSandboxInitProgram) and compare.
type LandlockPlan struct {
	// None: nothing to restrict (no Landlock, or best effort reduced the
	// rule set to nothing).
	None                          bool
	HandledFS, HandledNet, Scoped uint64
	Paths                         []LandlockPath
	Ports                         []LandlockPort
	// ProcTaskReadDir is go-landlock's workaround for its issue 39 below
	// ABI 8: read_dir on /proc/PID/task of the restricted process, so
	// that the Go runtime's reads of it keep working.
	ProcTaskReadDir bool
}

// LandlockPath allows Access beneath Path.
type LandlockPath struct {
	Access uint64
	Path   string
}

// LandlockPort allows Access (bind or connect) on TCP port Port.
type LandlockPort struct {
	Access uint64
	Port   uint16
}

// landlockABIs are go-landlock v0.11's rights per ABI version: what its
// best effort keeps of a rule set on a kernel of that version.
var landlockABIs = []struct{ fs, net, scoped uint64 }{
	{0, 0, 0},
	{1<<13 - 1, 0, 0},
	{1<<14 - 1, 0, 0},
	{1<<15 - 1, 0, 0},
	{1<<15 - 1, 1<<2 - 1, 0},
	{1<<16 - 1, 1<<2 - 1, 0},
	{1<<16 - 1, 1<<2 - 1, 1<<2 - 1},
	{1<<16 - 1, 1<<2 - 1, 1<<2 - 1},
	{1<<16 - 1, 1<<2 - 1, 1<<2 - 1},
	{1<<17 - 1, 1<<2 - 1, 1<<2 - 1},
	{1<<17 - 1, 1<<4 - 1, 1<<2 - 1},
	{1<<17 - 1, 1<<4 - 1, 1<<2 - 1},
}

// Plan is the rule set Enforce would restrict a process to on a kernel of
// Landlock ABI abi, step for step as go-landlock v0.11 builds it: the
// rules checked against the handled rights, best effort's reduction to
// the ABI (a rule needing "refer" where the ABI lacks it drops the whole
// rule set), and its read_dir rule for /proc/PID/task below ABI 8.
func (l *Landlock) Plan(abi int) (*LandlockPlan, error) {
	fs, net, scoped, err := l.sets()
	if err != nil {
		return nil, err
	}
	if abi <= 0 {
		if l.DisableBestEffort {
			return nil, errors.New("landlock: the kernel has no Landlock and disableBestEffort is set")
		}
		return &LandlockPlan{None: true}, nil
	}
	if abi >= len(landlockABIs) {
		abi = len(landlockABIs) - 1
	}
	p := &LandlockPlan{ProcTaskReadDir: abi < 8 && fs&ll.AccessFSReadDir != 0}
	for _, r := range l.Rules.PathBeneath {
		b, _ := bits(r.AllowedAccess, fsRights, "")
		for _, path := range r.Paths {
			p.Paths = append(p.Paths, LandlockPath{Access: b, Path: path})
		}
	}
	for _, r := range l.Rules.NetPort {
		b, _ := bits(r.AllowedAccess, netRights, "")
		for _, port := range r.Ports {
			for _, right := range []uint64{ll.AccessNetBindTCP, ll.AccessNetConnectTCP} {
				if b&right != 0 {
					p.Ports = append(p.Ports, LandlockPort{Access: right, Port: port})
				}
			}
		}
	}
	// Every rule's rights must be handled by the rule set.
	for _, r := range p.Paths {
		if r.Access&^fs != 0 {
			return nil, fmt.Errorf("landlock: incompatible rule for %s: rights %#x not handled by the rule set (%#x): %w", r.Path, r.Access, fs, unix.EINVAL)
		}
	}
	for _, r := range p.Ports {
		if r.Access&^net != 0 {
			return nil, fmt.Errorf("landlock: incompatible rule for port %d: rights %#x not handled by the rule set (%#x): %w", r.Port, r.Access, net, unix.EINVAL)
		}
	}
	sup := landlockABIs[abi]
	if l.DisableBestEffort {
		if fs&^sup.fs != 0 || net&^sup.net != 0 || scoped&^sup.scoped != 0 {
			return nil, fmt.Errorf("landlock: missing kernel Landlock support. Got Landlock ABI v%d, wanted rights %#x, network %#x, scopes %#x", abi, fs, net, scoped)
		}
	} else {
		fs, net, scoped = fs&sup.fs, net&sup.net, scoped&sup.scoped
		for i := range p.Paths {
			if p.Paths[i].Access&ll.AccessFSRefer != 0 && fs&ll.AccessFSRefer == 0 {
				return &LandlockPlan{None: true}, nil
			}
			p.Paths[i].Access &= fs
		}
		for i := range p.Ports {
			p.Ports[i].Access &= net
		}
	}
	if fs == 0 && net == 0 && scoped == 0 {
		return &LandlockPlan{None: true}, nil
	}
	p.HandledFS, p.HandledNet, p.Scoped = fs, net, scoped
	// A rule without rights is not added (the kernel refuses it).
	p.Paths = slices.DeleteFunc(p.Paths, func(r LandlockPath) bool { return r.Access == 0 })
	p.Ports = slices.DeleteFunc(p.Ports, func(r LandlockPort) bool { return r.Access == 0 })
	if len(p.Paths) == 0 {
		p.Paths = nil
	}
	if len(p.Ports) == 0 {
		p.Ports = nil
	}
	return p, nil
}
