// Package initprog compiles what an exec'd process's init does (the
// process layers, steps 9 and 11 of docs/ARCHITECTURE.md) into a program
// of system calls, which the C half of brig's init (internal/nsenter,
// program.c) runs without starting a Go runtime. The order of the steps
// is decided here, in the brig command, from the same protocol.Config
// the Go init (internal/initproc) would receive; the C side only carries
// the calls out and names the step that failed.
//
// Compile refuses (and the Go init runs the process instead) anything the
// program can't express yet: a terminal, passed fds, LSM exec labels,
// Landlock, a NOTIFY filter, scheduling settings, CPU affinity, the
// lesser mode without namespaces.
//
// The wire form, all integers little-endian: a sequence of ops, each
//
//	u16 code, u16 zero, u32 length, length bytes of arguments
//
// where an argument is a u32, a u64, a string (u32 length, then its bytes)
// or a list of strings (u32 count, then the strings).
package initprog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"brig/internal/caps"
	"brig/internal/protocol"
	"brig/internal/spec"
)

// Op is one step of a program. The numbers are program.c's.
type Op uint16

// The ops, in the order the init makes them.
const (
	OpSetpgid    Op = 1  // a process group of its own
	OpCwdInside  Op = 2  // str cwd: chdir, and the result must be inside the root
	OpLookPath   Op = 3  // str args[0], strs candidates (PATH's directories joined with it): the executable
	OpHome       Op = 4  // u32 uid: HOME from /etc/passwd, added to the env
	OpRlimit     Op = 5  // u32 resource, u64 soft, u64 hard, str field
	OpCloseRange Op = 6  // u32 first: every fd from first on close-on-exec
	OpSeccomp    Op = 7  // u64 flags, str instructions
	OpBounding   Op = 8  // u64 kept: drop every other capability from the bounding set
	OpUser       Op = 9  // u32 uid, u32 gid, u32 flags, u32 umask, u32 count, u32 gids...
	OpCaps       Op = 10 // u64 effective, permitted, inheritable, ambient
	OpChdir      Op = 11 // str cwd
	OpNoNewPrivs Op = 12
	OpExec       Op = 13 // strs args, strs env
	// OpLandlock: u32 host ABI, u32 none, u64 handled fs, u64 handled
	// net, u64 scoped, u32 /proc/PID/task rule, u32 n, n × (u64 access,
	// str path), u32 m, m × (u64 access, u64 port)
	OpLandlock     Op = 14
	OpDeathSignal  Op = 15 // SIGKILL when brig dies (PR_SET_PDEATHSIG)
	OpParentAlive  Op = 16 // u32 fd: the signal again, and brig's pidfd must not be readable
	OpAppArmorExec Op = 17 // str profile: the profile the execve enters
)

// OpUser's flags.
const (
	UserTolerateSetgroups = 1 // setgroups may fail with EPERM (no groups asked, own user namespace)
	UserUmask             = 2 // umask is set
)

// Compile is cfg's program (an exec'd process's), or why the Go init must
// run cfg instead.
func Compile(cfg *protocol.Config) ([]byte, error) {
	if !cfg.Exec {
		return nil, errors.New("a new container")
	}
	if err := supported(cfg); err != nil {
		return nil, err
	}
	var p program
	if cfg.DieWithParent {
		p.op(OpDeathSignal)
	}
	if err := p.prepare(cfg); err != nil {
		return nil, err
	}
	p.earlySeccomp(cfg)
	if err := p.finish(cfg); err != nil {
		return nil, err
	}
	return p.done()
}

// MaxSize is the largest program the C init reads (program.c's
// MAX_PROGRAM).
const MaxSize = 1 << 20

// done is the program, or why it can't be one.
func (p *program) done() ([]byte, error) {
	if len(p.buf) > MaxSize {
		return nil, fmt.Errorf("a program of %d bytes", len(p.buf))
	}
	return p.buf, nil
}

// prepare is step 9: what can fail is checked first; the values are
// inherited across execve.
func (p *program) prepare(cfg *protocol.Config) error {
	proc := cfg.Process
	if cfg.Exec && !proc.Terminal {
		p.op(OpSetpgid)
	}
	p.op(OpCwdInside, str(proc.Cwd))
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	home := false
	for _, e := range proc.Env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
		home = home || strings.HasPrefix(e, "HOME=")
	}
	// The candidates as initproc's lookPath makes them: each entry of
	// PATH ("" is ".") joined with the name, cleaned.
	var candidates []string
	if !strings.Contains(proc.Args[0], "/") {
		for _, dir := range filepath.SplitList(path) {
			if dir == "" {
				dir = "."
			}
			candidates = append(candidates, filepath.Join(dir, proc.Args[0]))
		}
	}
	p.op(OpLookPath, str(proc.Args[0]), strs(candidates))
	if !home {
		p.op(OpHome, u32(proc.User.UID))
	}
	for i, r := range proc.Rlimits {
		if r.Type == "RLIMIT_AS" { // last: see initproc's finalProcess
			continue
		}
		if err := p.rlimit(i, r); err != nil {
			return err
		}
	}
	p.op(OpCloseRange, u32(uint32(3+cfg.PreserveFDs)))
	return nil
}

// earlySeccomp loads the filter now where it can't wait: without
// no_new_privs, loading needs CAP_SYS_ADMIN, still held.
func (p *program) earlySeccomp(cfg *protocol.Config) {
	if cfg.Seccomp != nil && !cfg.Process.NoNewPrivileges {
		// The exec label first: the profile may deny the calls its write
		// needs (as runc orders it).
		p.appArmor(cfg)
		p.seccomp(cfg)
	}
}

// appArmor sets the profile the execve enters, once.
func (p *program) appArmor(cfg *protocol.Config) {
	if cfg.Process.ApparmorProfile != "" && !p.labelled {
		p.op(OpAppArmorExec, str(cfg.Process.ApparmorProfile))
	}
	p.labelled = true
}

// finish is step 11: credentials, capabilities, no_new_privs, seccomp,
// execve.
func (p *program) finish(cfg *protocol.Config) error {
	proc := cfg.Process
	c := sets(cfg)
	p.op(OpBounding, u64(mask(c.Bounding)))
	var flags, umask uint32
	if cfg.UserNS && len(proc.User.AdditionalGids) == 0 {
		flags |= UserTolerateSetgroups
	}
	if proc.User.Umask != nil {
		flags |= UserUmask
		umask = *proc.User.Umask
	}
	user := [][]byte{u32(proc.User.UID), u32(proc.User.GID), u32(flags), u32(umask), u32(uint32(len(proc.User.AdditionalGids)))}
	for _, g := range proc.User.AdditionalGids {
		user = append(user, u32(g))
	}
	p.op(OpUser, user...)
	p.op(OpCaps, u64(mask(c.Effective)), u64(mask(c.Permitted)), u64(mask(c.Inheritable)), u64(mask(c.Ambient)))
	p.op(OpChdir, str(proc.Cwd))
	if proc.NoNewPrivileges {
		p.op(OpNoNewPrivs)
	}
	p.appArmor(cfg)
	// Landlock: before seccomp (which may not allow its calls); it sets
	// no_new_privs, as Landlock requires.
	if cfg.Landlock != nil {
		plan, err := cfg.Landlock.Plan(cfg.LandlockABI)
		if err != nil {
			return err
		}
		args := [][]byte{u32(uint32(cfg.LandlockABI)), u32(b2u(plan.None)), u64(plan.HandledFS), u64(plan.HandledNet), u64(plan.Scoped),
			u32(b2u(plan.ProcTaskReadDir)), u32(uint32(len(plan.Paths)))}
		for _, r := range plan.Paths {
			args = append(args, u64(r.Access), str(r.Path))
		}
		args = append(args, u32(uint32(len(plan.Ports))))
		for _, r := range plan.Ports {
			args = append(args, u64(r.Access), u64(uint64(r.Port)))
		}
		p.op(OpLandlock, args...)
	}
	for i, r := range proc.Rlimits {
		if r.Type != "RLIMIT_AS" {
			continue
		}
		if err := p.rlimit(i, r); err != nil {
			return err
		}
	}
	if cfg.Seccomp != nil && proc.NoNewPrivileges {
		p.seccomp(cfg)
	}
	if cfg.DieWithParent {
		// After the credential changes, which clear it; kept across
		// execve. brig may have died meanwhile: its pidfd says so.
		p.op(OpParentAlive, u32(passedFD(cfg, protocol.FD{Kind: protocol.FDParent})))
	}
	p.op(OpExec, strs(proc.Args), strs(proc.Env))
	return nil
}

// supported says why cfg needs the Go init, or nil.
func supported(cfg *protocol.Config) error {
	proc := cfg.Process
	switch {
	case cfg.Bare:
		return errors.New("no namespaces")
	case proc == nil || len(proc.Args) == 0:
		return errors.New("no process")
	case proc.Terminal || cfg.Console != nil:
		return errors.New("a terminal")
	case proc.SelinuxLabel != "":
		return errors.New("an SELinux label")
	case proc.ApparmorProfile != "" && cfg.DieWithParent:
		// It enters the profile before execve (lsm.PrepareAppArmorChange).
		return errors.New("an AppArmor profile entered before execve")
	case cfg.Seccomp != nil && (cfg.Seccomp.Notify || len(cfg.Seccomp.Insns) == 0):
		return errors.New("a seccomp listener")
	case proc.IOPriority != nil || proc.Scheduler != nil || proc.ExecCPUAffinity != nil:
		return errors.New("scheduling settings")
	}
	// The fds brig passes the Go init with the config are inherited by
	// the C init instead, after the preserved ones, in the same order
	// (passedFD): brig's pidfd and the trees of bind sources it cloned.
	parents := 0
	if cfg.Exec && len(cfg.FDs) > 0 {
		return fmt.Errorf("passed fds: a %s", cfg.FDs[0].Kind)
	}
	for _, fd := range cfg.FDs {
		switch fd.Kind {
		case protocol.FDParent:
			parents++
		case protocol.FDTree:
		default:
			return fmt.Errorf("passed fds: a %s", fd.Kind)
		}
	}
	if cfg.DieWithParent != (parents == 1) || parents > 1 {
		return errors.New("passed fds: brig's pidfd without dying with it")
	}
	c := sets(cfg)
	for _, set := range [][]capability.Cap{c.Bounding, c.Effective, c.Permitted, c.Inheritable, c.Ambient} {
		for _, c := range set {
			if c < 0 || c > 63 {
				return fmt.Errorf("capability %d", c)
			}
		}
	}
	return nil
}

// passedFD is the number the C init inherits the first of cfg.FDs that
// is like want at (0: none), right after the preserved fds.
func passedFD(cfg *protocol.Config, want protocol.FD) uint32 {
	for i, fd := range cfg.FDs {
		if fd == want {
			return uint32(3 + cfg.PreserveFDs + i)
		}
	}
	return 0
}

// sets are cfg's capabilities: none at all where it has no sets, as the
// Go init.
func sets(cfg *protocol.Config) *caps.Sets {
	if cfg.Caps == nil {
		return &caps.Sets{}
	}
	return cfg.Caps
}

type program struct {
	buf      []byte
	labelled bool // the AppArmor exec label is set
}

func (p *program) op(code Op, args ...[]byte) {
	n := 0
	for _, a := range args {
		n += len(a)
	}
	p.buf = binary.LittleEndian.AppendUint16(p.buf, uint16(code))
	p.buf = binary.LittleEndian.AppendUint16(p.buf, 0)
	p.buf = binary.LittleEndian.AppendUint32(p.buf, uint32(n))
	for _, a := range args {
		p.buf = append(p.buf, a...)
	}
}

func (p *program) rlimit(i int, r specs.POSIXRlimit) error {
	res, ok := spec.Rlimits[r.Type]
	if !ok {
		return fmt.Errorf("process.rlimits[%d]: unknown %q", i, r.Type)
	}
	p.op(OpRlimit, u32(uint32(res)), u64(r.Soft), u64(r.Hard), str(fmt.Sprintf("process.rlimits[%d] %s", i, r.Type)))
	return nil
}

func (p *program) seccomp(cfg *protocol.Config) {
	p.op(OpSeccomp, u64(uint64(cfg.Seccomp.Flags)), str(string(cfg.Seccomp.Bytes())))
}

func mask(cs []capability.Cap) uint64 {
	var m uint64
	for _, c := range cs {
		m |= 1 << uint(c)
	}
	return m
}

func u32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

func str(s string) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, uint32(len(s))), s...)
}

func strs(ss []string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(ss)))
	for _, s := range ss {
		b = append(b, str(s)...)
	}
	return b
}
