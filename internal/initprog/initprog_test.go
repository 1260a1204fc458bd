package initprog

import (
	"encoding/binary"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"brig/internal/caps"
	"brig/internal/lsm"
	"brig/internal/protocol"
	"brig/internal/seccomp/filter"
	"brig/internal/spec"
)

func execConfig() *protocol.Config {
	return &protocol.Config{
		Exec: true,
		Process: &specs.Process{
			Args: []string{"sh", "-c", "true"}, Cwd: "/", NoNewPrivileges: true,
			Env:     []string{"PATH=/bin"},
			Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_AS", Soft: 1, Hard: 2}, {Type: "RLIMIT_NOFILE", Soft: 3, Hard: 4}},
		},
		Caps:    &caps.Sets{Bounding: []capability.Cap{capability.CAP_KILL}, Effective: []capability.Cap{capability.CAP_KILL}},
		Seccomp: &filter.Program{Insns: []unix.SockFilter{{Code: 6, K: 0x7fff0000}}},
	}
}

// ops decodes a program into its op codes, checking the framing.
func ops(t *testing.T, prog []byte) []Op {
	t.Helper()
	var out []Op
	for len(prog) > 0 {
		if len(prog) < 8 {
			t.Fatalf("truncated op header: %x", prog)
		}
		n := int(binary.LittleEndian.Uint32(prog[4:]))
		if len(prog) < 8+n {
			t.Fatalf("op %d: %d bytes of arguments, %d left", binary.LittleEndian.Uint16(prog), n, len(prog)-8)
		}
		out = append(out, Op(binary.LittleEndian.Uint16(prog)))
		prog = prog[8+n:]
	}
	return out
}

func TestCompileOrder(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(c *protocol.Config)
		want []Op
	}{
		{"no_new_privs: seccomp last, the address space after the ids",
			func(c *protocol.Config) {},
			[]Op{OpSetpgid, OpCwdInside, OpLookPath, OpHome, OpRlimit, OpCloseRange, OpBounding, OpUser, OpCaps, OpChdir, OpNoNewPrivs, OpRlimit, OpSeccomp, OpExec}},
		{"without no_new_privs: seccomp while capabilities are held",
			func(c *protocol.Config) { c.Process.NoNewPrivileges = false },
			[]Op{OpSetpgid, OpCwdInside, OpLookPath, OpHome, OpRlimit, OpCloseRange, OpSeccomp, OpBounding, OpUser, OpCaps, OpChdir, OpRlimit, OpExec}},
		{"an AppArmor profile: before an early filter",
			func(c *protocol.Config) { c.Process.NoNewPrivileges, c.Process.ApparmorProfile = false, "p" },
			[]Op{OpSetpgid, OpCwdInside, OpLookPath, OpHome, OpRlimit, OpCloseRange, OpAppArmorExec, OpSeccomp, OpBounding, OpUser, OpCaps, OpChdir, OpRlimit, OpExec}},
		{"an AppArmor profile: after no_new_privs",
			func(c *protocol.Config) { c.Process.ApparmorProfile = "p" },
			[]Op{OpSetpgid, OpCwdInside, OpLookPath, OpHome, OpRlimit, OpCloseRange, OpBounding, OpUser, OpCaps, OpChdir, OpNoNewPrivs, OpAppArmorExec, OpRlimit, OpSeccomp, OpExec}},
		{"HOME given, no seccomp, no limits",
			func(c *protocol.Config) {
				c.Process.Env = append(c.Process.Env, "HOME=/h")
				c.Process.Rlimits, c.Seccomp = nil, nil
			},
			[]Op{OpSetpgid, OpCwdInside, OpLookPath, OpCloseRange, OpBounding, OpUser, OpCaps, OpChdir, OpNoNewPrivs, OpExec}},
		{"Landlock after no_new_privs",
			func(c *protocol.Config) { c.Landlock, c.LandlockABI = &lsm.Landlock{}, 7 },
			[]Op{OpSetpgid, OpCwdInside, OpLookPath, OpHome, OpRlimit, OpCloseRange, OpBounding, OpUser, OpCaps, OpChdir, OpNoNewPrivs, OpLandlock, OpRlimit, OpSeccomp, OpExec}},
		{"no capability sets: every one empty",
			func(c *protocol.Config) { c.Caps = nil },
			[]Op{OpSetpgid, OpCwdInside, OpLookPath, OpHome, OpRlimit, OpCloseRange, OpBounding, OpUser, OpCaps, OpChdir, OpNoNewPrivs, OpRlimit, OpSeccomp, OpExec}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := execConfig()
			tc.edit(c)
			prog, err := Compile(c)
			if err != nil {
				t.Fatal(err)
			}
			if got := ops(t, prog); !slices.Equal(got, tc.want) {
				t.Errorf("ops %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCompileRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, why string
		edit      func(c *protocol.Config)
	}{
		{"create", "a new container", func(c *protocol.Config) { c.Exec = false }},
		{"bare", "no namespaces", func(c *protocol.Config) { c.Bare = true }},
		{"terminal", "a terminal", func(c *protocol.Config) { c.Process.Terminal = true }},
		{"console fd", "a terminal", func(c *protocol.Config) { c.Console = os.Stdin }},
		{"parent pidfd", "passed fds", func(c *protocol.Config) { c.DieWithParent = true }},
		{"apparmor, dying with brig", "AppArmor profile entered before execve", func(c *protocol.Config) {
			c.Process.ApparmorProfile = "p"
			c.DieWithParent, c.FDs = true, []protocol.FD{{Kind: protocol.FDParent}}
		}},
		{"selinux", "SELinux label", func(c *protocol.Config) { c.Process.SelinuxLabel = "l" }},
		{"a console fd passed", "passed fds", func(c *protocol.Config) { c.FDs = []protocol.FD{{Kind: protocol.FDConsole}} }},
		{"an exec passed fds", "passed fds", func(c *protocol.Config) { c.FDs = []protocol.FD{{Kind: protocol.FDParent}} }},
		{"a Landlock rule set the host can't have", "disableBestEffort", func(c *protocol.Config) {
			c.Landlock = &lsm.Landlock{DisableBestEffort: true}
		}},
		{"notify", "seccomp listener", func(c *protocol.Config) { c.Seccomp.Notify = true }},
		{"scheduler", "scheduling", func(c *protocol.Config) { c.Process.Scheduler = &specs.Scheduler{} }},
		{"io priority", "scheduling", func(c *protocol.Config) { c.Process.IOPriority = &specs.LinuxIOPriority{} }},
		{"affinity", "scheduling", func(c *protocol.Config) { c.Process.ExecCPUAffinity = &specs.CPUAffinity{} }},
		{"no args", "no process", func(c *protocol.Config) { c.Process.Args = nil }},
		{"unknown rlimit", "process.rlimits[1]", func(c *protocol.Config) { c.Process.Rlimits[1].Type = "RLIMIT_X" }},
		{"capability above 63", "capability 64", func(c *protocol.Config) { c.Caps.Ambient = []capability.Cap{64} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := execConfig()
			tc.edit(c)
			prog, err := Compile(c)
			if err == nil || !strings.Contains(err.Error(), tc.why) || prog != nil {
				t.Errorf("Compile: %v (%d bytes), want a refusal naming %q", err, len(prog), tc.why)
			}
		})
	}
}

// TestCompileValues checks the arguments of the ops whose values the C
// side reads as integers.
func TestCompileValues(t *testing.T) {
	c := execConfig()
	umask := uint32(0o027)
	c.UserNS = true
	c.Process.User = specs.User{UID: 7, GID: 8, Umask: &umask}
	c.Caps.Ambient = []capability.Cap{capability.CAP_KILL, capability.CAP_NET_BIND_SERVICE}
	prog, err := Compile(c)
	if err != nil {
		t.Fatal(err)
	}
	args := map[Op][]byte{}
	for len(prog) > 0 {
		n := int(binary.LittleEndian.Uint32(prog[4:]))
		args[Op(binary.LittleEndian.Uint16(prog))] = prog[8 : 8+n]
		prog = prog[8+n:]
	}
	u := args[OpUser]
	word := func(b []byte, i int) uint32 { return binary.LittleEndian.Uint32(b[4*i:]) }
	if word(u, 0) != 7 || word(u, 1) != 8 || word(u, 2) != UserTolerateSetgroups|UserUmask || word(u, 3) != 0o027 || word(u, 4) != 0 || len(u) != 20 {
		t.Errorf("OpUser arguments %x", u)
	}
	amb := binary.LittleEndian.Uint64(args[OpCaps][24:])
	if amb != 1<<capability.CAP_KILL|1<<capability.CAP_NET_BIND_SERVICE {
		t.Errorf("ambient mask %x", amb)
	}
	if b := binary.LittleEndian.Uint64(args[OpBounding]); b != 1<<capability.CAP_KILL {
		t.Errorf("bounding mask %x", b)
	}
	if cr := binary.LittleEndian.Uint32(args[OpCloseRange]); cr != 3 {
		t.Errorf("close_range from %d, want 3", cr)
	}
}

// TestCompileCreate: a new container's program — the parent-death signal
// first and again last, the mounts in order with a tree brig cloned
// named by the fd it is inherited at (after the preserved fds and brig's
// pidfd), ready before the wait for start, the process's steps after.
func TestCompileCreate(t *testing.T) {
	c := execConfig()
	c.Exec, c.ID, c.FifoPath, c.PreserveFDs = false, "a", "/run/brig/a/exec.fifo", 2
	c.Spec = &specs.Spec{Root: &specs.Root{Path: "/rootfs"}, Linux: &specs.Linux{
		Namespaces:  []specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace}},
		MaskedPaths: []string{"/proc/kcore"}}}
	c.Mounts = spec.ParseMounts([]specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc"},
		{Destination: "/data", Type: "bind", Source: "/srv/data", Options: []string{"rbind", "ro"}},
	})
	c.DieWithParent = true
	c.FDs = []protocol.FD{{Kind: protocol.FDParent}, {Kind: protocol.FDTree, Mount: 1}}
	prog, err := CompileCreate(c, Host{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Op{OpDeathSignal, OpLoopbackUp, OpRootPropagation, OpParentPrivate, OpBindRoot, OpMount, OpBind,
		OpDevice, OpDevice, OpDevice, OpDevice, OpDevice, OpDevice, OpMakeCwd, OpDevSymlinks, OpOpenState, OpPivotRoot,
		OpMaskPaths, OpKeyring, OpCwdInside, OpLookPath, OpHome, OpRlimit, OpCloseRange, OpReady, OpWaitStart,
		OpBounding, OpUser, OpCaps, OpChdir, OpNoNewPrivs, OpRlimit, OpSeccomp, OpParentAlive, OpExec}
	if got := ops(t, prog); !slices.Equal(got, want) {
		t.Fatalf("ops\n%v\nwant\n%v", got, want)
	}
	args := map[Op][]byte{}
	for rest := prog; len(rest) > 0; {
		n := int(binary.LittleEndian.Uint32(rest[4:]))
		args[Op(binary.LittleEndian.Uint16(rest))] = rest[8 : 8+n]
		rest = rest[8+n:]
	}
	if fd := binary.LittleEndian.Uint32(args[OpParentAlive]); fd != 5 {
		t.Errorf("brig's pidfd at %d, want 5 (after 2 preserved)", fd)
	}
	// OpBind: what, dest, source (strings), then the tree's fd.
	b := args[OpBind]
	for i := 0; i < 3; i++ {
		b = b[4+binary.LittleEndian.Uint32(b):]
	}
	if fd := binary.LittleEndian.Uint32(b); fd != 6 {
		t.Errorf("the tree of mounts[1] at %d, want 6", fd)
	}
	c.Spec.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/true"}}}
	prog, err = CompileCreate(c, Host{})
	if err != nil || !slices.Contains(ops(t, prog), OpHooks) {
		t.Errorf("createRuntime hooks (brig runs them): %v, want a program that waits for them", err)
	}
	c.Spec.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{Path: "/bin/true"}}}
	if _, err := CompileCreate(c, Host{}); err == nil || !strings.Contains(err.Error(), "hooks") {
		t.Errorf("startContainer hooks: %v, want a refusal", err)
	}
}
