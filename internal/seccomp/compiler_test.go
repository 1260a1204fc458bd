package seccomp

import (
	"encoding/json"
	"math/rand"
	"os"
	"sync"
	"testing"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// The differential tests of brig's compiler: the same profile compiled by
// brig and by libseccomp (plus the ENOSYS prefix, as brig loaded it
// before) gives the same verdict for every call number 0–1100 of every
// architecture (x32's too), the edges of the number space, other
// architectures, and, for each call with argument rules, each value a rule
// names, ±1, 0, the maximum and the masked bits — run through the BPF
// interpreter.

// model is the compiler's semantics written plainly, rule by rule, with
// no BPF: the reference where libseccomp has a bug (2.5.4 loses a match
// when two rules of one call with the same action compare 64-bit values,
// see TestLibseccompMergeBug).
func model(sc *specs.LinuxSeccomp, only specs.Arch, audit uint32, nr uint32, args [6]uint64) uint32 {
	def, _ := retValue(sc.DefaultAction, sc.DefaultErrnoRet)
	native, _ := libseccomp.GetNativeArch()
	var in []abi
	for _, a := range abis {
		listed := a.lib == native && only == ""
		for _, x := range sc.Architectures {
			listed = listed || x == a.spec
		}
		if listed && a.audit == audit {
			in = append(in, a)
		}
	}
	var use *abi
	for i := range in {
		if (audit == AuditArchX86_64 && nr != 0xffffffff && nr >= x32Bit) == in[i].x32 {
			use = &in[i]
		}
	}
	if use == nil {
		if audit == AuditArchX86_64 && nr == 0xffffffff && len(in) > 0 {
			return def
		}
		return retKill
	}
	holds := func(c cond) bool {
		x, v, v2 := args[c.arg], c.v, c.v2
		if use.bits32 {
			x, v, v2 = uint64(uint32(x)), uint64(uint32(v)), uint64(uint32(v2))
		}
		switch c.op {
		case specs.OpEqualTo:
			return x == v
		case specs.OpNotEqual:
			return x != v
		case specs.OpLessThan:
			return x < v
		case specs.OpLessEqual:
			return x <= v
		case specs.OpGreaterThan:
			return x > v
		case specs.OpGreaterEqual:
			return x >= v
		case specs.OpMaskedEqual:
			return x&v == v2&v
		}
		return false
	}
	max, uncond, found := int64(-1), uint32(0), false
	for _, s := range sc.Syscalls {
		act, _ := retValue(s.Action, s.ErrnoRet)
		for _, n := range s.Names {
			for _, f := range memoNumbers(*use, n) {
				if use.x32 {
					f.nr |= x32Bit
				}
				if int64(f.nr) > max {
					max = int64(f.nr)
				}
				if f.nr != nr {
					continue
				}
				var conds []cond
				per := map[uint]int{}
				for _, a := range s.Args {
					per[a.Index]++
					conds = append(conds, cond{arg: a.Index, op: a.Op, v: a.Value, v2: a.ValueTwo})
				}
				groups := [][]cond{conds}
				if sameArgTwice(per) {
					groups = nil
					for _, c := range conds {
						groups = append(groups, []cond{c})
					}
				}
				if len(conds) == 0 && f.sub < 0 {
					if act != def && !found {
						uncond, found = act, true
					}
					continue
				}
				if len(conds) == 0 && act == def {
					continue
				}
				for _, g := range groups {
					if f.sub >= 0 {
						g2 := []cond{{arg: 0, op: specs.OpEqualTo, v: uint64(f.sub)}}
						for _, c := range g {
							if c.arg != 0 {
								g2 = append(g2, c)
							}
						}
						g = g2
					}
					all := true
					for _, c := range g {
						all = all && holds(c)
					}
					if all {
						return act // the first conditional rule that matches
					}
				}
			}
		}
	}
	if found {
		return uncond
	}
	switch sc.DefaultAction {
	case specs.ActAllow, specs.ActLog:
	default:
		if !use.x32 && max >= 0 && int64(nr) > max && (audit != AuditArchX86_64 || nr < x32Bit) {
			return retENOSYS
		}
	}
	return def
}

var memo sync.Map

func memoNumbers(a abi, name string) []form {
	k := string(a.spec) + "/" + name
	if v, ok := memo.Load(k); ok {
		return v.([]form)
	}
	f := numbers(a, name)
	memo.Store(k, f)
	return f
}

// semanticDiff: the call has rules of different actions, one without
// argument checks, where brig and libseccomp differ by design.
func semanticDiff(sc *specs.LinuxSeccomp, audit, nr uint32) bool {
	def, _ := retValue(sc.DefaultAction, sc.DefaultErrnoRet)
	for _, a := range probeArches {
		if a.audit != audit || (audit == AuditArchX86_64 && (nr >= x32Bit) != (a.bit != 0)) {
			continue
		}
		ab, _ := abiOf(specArch(a.name))
		acts := map[uint32]bool{}
		uncond := false
		for _, s := range sc.Syscalls {
			act, _ := retValue(s.Action, s.ErrnoRet)
			for _, n := range s.Names {
				for _, f := range memoNumbers(ab, n) {
					if f.nr|uint32(a.bit) == nr {
						acts[act] = true
						uncond = uncond || (len(s.Args) == 0 && f.sub < 0 && act != def)
					}
				}
			}
		}
		if uncond && len(acts) > 1 {
			return true
		}
	}
	return false
}

// probeArches are the (audit, number offset) pairs a filter on x86-64 sees.
var probeArches = []struct {
	name  string
	audit uint32
	lib   libseccomp.ScmpArch
	bit   int32
}{
	{"x86_64", AuditArchX86_64, libseccomp.ArchAMD64, 0},
	{"x86", AuditArchI386, libseccomp.ArchX86, 0},
	{"x32", AuditArchX86_64, libseccomp.ArchX32, x32Bit},
	{"aarch64", AuditArchAArch64, libseccomp.ArchARM64, 0},
	{"arm", AuditArchARM, libseccomp.ArchARM, 0},
}

func specArch(name string) specs.Arch {
	return map[string]specs.Arch{"x86_64": specs.ArchX86_64, "x86": specs.ArchX86, "x32": specs.ArchX32,
		"aarch64": specs.ArchAARCH64, "arm": specs.ArchARM}[name]
}

// argVectors are the argument values worth trying for a profile: every
// value a rule names, its neighbours and masked forms, in every position a
// rule checks, alone and all a rule's values together.
func argVectors(sc *specs.LinuxSeccomp) [][6]uint64 {
	out := [][6]uint64{{}, {^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}}
	seen := map[[6]uint64]bool{}
	add := func(v [6]uint64) {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	edges := func(a specs.LinuxSeccompArg) []uint64 {
		vs := []uint64{a.Value, a.Value - 1, a.Value + 1, a.ValueTwo, a.ValueTwo - 1, a.ValueTwo + 1,
			uint64(uint32(a.Value)), a.Value | 1<<32, a.Value &^ 0xffffffff, 0xffffffff, 1 << 32}
		if a.Op == specs.OpMaskedEqual {
			vs = append(vs, a.Value&a.ValueTwo, ^a.Value|a.ValueTwo, a.ValueTwo|^a.Value&0xf0, a.ValueTwo^1)
		}
		return vs
	}
	for _, s := range sc.Syscalls {
		var together [6]uint64
		for _, a := range s.Args {
			if a.Index > 5 {
				continue
			}
			for _, v := range edges(a) {
				var x [6]uint64
				x[a.Index] = v
				add(x)
				y := together
				y[a.Index] = v
				add(y)
			}
			if a.Op == specs.OpMaskedEqual {
				together[a.Index] = a.ValueTwo
			} else {
				together[a.Index] = a.Value
			}
			add(together)
		}
	}
	return out
}

// sameVerdicts compares brig's compilation of sc with libseccomp's.
// libseccompBugs, when set, counts where libseccomp departs from the
// model instead of failing (random profiles meet its merge bug).
func sameVerdicts(t *testing.T, sc *specs.LinuxSeccomp, only specs.Arch, libseccompBugs *int) {
	t.Helper()
	if only != "" {
		one := *sc
		one.Architectures = []specs.Arch{only}
		sc = &one
	}
	own, _, err := compileOwn(sc, only)
	if err != nil {
		t.Fatalf("brig: %v", err)
	}
	ref, _, err := compileLibseccomp(sc, only)
	if err != nil {
		t.Fatalf("libseccomp: %v", err)
	}
	op, rp := &Program{Insns: own}, &Program{Insns: ref}
	vectors := argVectors(sc)
	bad := 0
	try := func(audit uint32, nr int32, args [6]uint64) {
		lib, err1 := rp.Verdict(audit, nr, args)
		got, err2 := op.Verdict(audit, nr, args)
		if err1 != nil || err2 != nil {
			t.Fatalf("interpreter: %v %v", err1, err2)
		}
		want := model(sc, only, audit, uint32(nr), args)
		// Where libseccomp may differ: by design (brig tries a rule with
		// argument checks before one without, of another action; see
		// compiler.go), or by its merge bug in random profiles.
		switch {
		case lib == want, semanticDiff(sc, audit, uint32(nr)):
		case libseccompBugs != nil:
			*libseccompBugs++
		case bad < 10:
			bad++
			t.Errorf("arch %#x nr %#x args %#x: libseccomp %s, model %s", audit, uint32(nr), args, ActionName(lib), ActionName(want))
		}
		if want != got && bad < 10 {
			bad++
			t.Errorf("arch %#x nr %#x args %#x: libseccomp %s, model %s, brig %s", audit, uint32(nr), args, ActionName(lib), ActionName(want), ActionName(got))
		}
	}
	// Which numbers have argument rules: only those need every vector.
	withArgs := map[[2]int64]bool{}
	for _, s := range sc.Syscalls {
		if len(s.Args) == 0 {
			continue
		}
		for _, n := range s.Names {
			for _, a := range probeArches {
				ab, _ := abiOf(specArch(a.name))
				for _, f := range numbers(ab, n) {
					withArgs[[2]int64{int64(a.audit), int64(int32(f.nr) | a.bit)}] = true
				}
			}
		}
	}
	for _, a := range probeArches {
		if only != "" && only != specArch(a.name) {
			continue // a one-architecture program is only for reading
		}
		if only == "" && a.audit != AuditArchX86_64 && a.audit != AuditArchI386 {
			continue // not on this host: the program has no section for it
		}
		nrs := []int32{-1, -2, x32Bit - 1, x32Bit, x32Bit + 1, 0x7fffffff, -0x80000000, 0xf0002}
		for nr := int32(0); nr < 1100; nr++ {
			nrs = append(nrs, nr|a.bit)
		}
		for _, nr := range nrs {
			if only != "" && a.bit != 0 && uint32(nr) < x32Bit {
				continue // the prefix libseccomp's program had took x86-64's numbers
			}
			if withArgs[[2]int64{int64(a.audit), int64(nr)}] {
				for _, v := range vectors {
					try(a.audit, nr, v)
				}
				continue
			}
			try(a.audit, nr, [6]uint64{})
			try(a.audit, nr, vectors[1])
		}
	}
	if only == "" {
		for _, audit := range []uint32{0, AuditArchAArch64, AuditArchARM, 0x40000000} {
			try(audit, 0, [6]uint64{})
		}
	}
}

func profilesForDifferential(t *testing.T) map[string]*specs.LinuxSeccomp {
	one, acces := uint(1), uint(13)
	out := map[string]*specs.LinuxSeccomp{
		"brig default, docker caps": DefaultProfile(dockerCaps, "amd64", true),
		"brig default, all caps":    DefaultProfile(allCaps, "amd64", true),
		"brig default, no caps":     DefaultProfile(nil, "amd64", true),
		"deny list": {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"clock_nanosleep", "mkdir"}, Action: specs.ActErrno, ErrnoRet: &acces},
			{Names: []string{"kill"}, Action: specs.ActKillProcess, Args: []specs.LinuxSeccompArg{{Index: 1, Value: 9, Op: specs.OpEqualTo}}},
		}},
		"args": {DefaultAction: specs.ActErrno, DefaultErrnoRet: &one, Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"read", "write", "exit_group"}, Action: specs.ActAllow},
				{Names: []string{"socket"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 10, Op: specs.OpLessEqual}, {Index: 1, Value: 1, Op: specs.OpEqualTo}}},
				{Names: []string{"ioctl"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 1, Value: 0xff, ValueTwo: 0x54, Op: specs.OpMaskedEqual}}},
				{Names: []string{"mmap"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 2, Value: 4, Op: specs.OpNotEqual}}},
				{Names: []string{"open"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 1, Value: 0x100000000, Op: specs.OpGreaterThan}}},
				{Names: []string{"openat"}, Action: specs.ActTrace, Args: []specs.LinuxSeccompArg{{Index: 2, Value: 0xfffffffffffffff0, Op: specs.OpGreaterEqual}}},
				{Names: []string{"close"}, Action: specs.ActLog, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0x100000005, Op: specs.OpLessThan}}},
				{Names: []string{"semop", "shmat", "accept", "bind"}, Action: specs.ActAllow},
			}},
	}
	for name, caps := range map[string][]string{"docker default": dockerCaps, "docker default, all caps": allCaps} {
		spec := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}}
		docker, err := mobyseccomp.GetDefaultProfile(spec)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = docker
	}
	// Podman's and CRI-O's profile, where the host has it.
	if raw, err := os.ReadFile("/usr/share/containers/seccomp.json"); err == nil {
		sc, err := Parse(raw, dockerCaps)
		if err != nil {
			t.Fatal(err)
		}
		out["containers-common"] = sc
	}
	return out
}

func TestCompilerMatchesLibseccomp(t *testing.T) {
	for name, sc := range profilesForDifferential(t) {
		t.Run(name, func(t *testing.T) { sameVerdicts(t, sc, "", nil) })
	}
	t.Run("one arch", func(t *testing.T) {
		sc := DefaultProfile(dockerCaps, "amd64", true)
		for _, a := range []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32} {
			sameVerdicts(t, sc, a, nil)
		}
		// Arm's sections, compiled here for reading: the same verdicts.
		arm := DefaultProfile(dockerCaps, "arm64", true)
		for _, a := range []specs.Arch{specs.ArchAARCH64, specs.ArchARM} {
			sameVerdicts(t, arm, a, nil)
		}
	})
}

// randomProfile is a profile libseccomp reads the same way as brig: one
// action per call (libseccomp's answer to mixed actions differs by
// design, see compiler.go).
func randomProfile(r *rand.Rand) *specs.LinuxSeccomp {
	names := []string{"read", "write", "open", "close", "mmap", "mprotect", "ioctl", "socket", "personality", "clone",
		"kill", "prctl", "openat", "getpid", "accept", "semop", "bind", "futex", "io_uring_setup", "clone3", "arch_prctl", "mkdir"}
	acts := []specs.LinuxSeccompAction{specs.ActAllow, specs.ActErrno, specs.ActKillProcess, specs.ActTrap, specs.ActLog, specs.ActTrace, specs.ActKillThread}
	opsList := []specs.LinuxSeccompOperator{specs.OpEqualTo, specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpMaskedEqual}
	values := []uint64{0, 1, 2, 8, 0x5412, 0xffffffff, 1 << 32, 0x100000001, ^uint64(0), 0x7fffffff, 0x80000000}
	errno := func() *uint { e := uint(r.Intn(200)); return &e }
	sc := &specs.LinuxSeccomp{DefaultAction: acts[r.Intn(len(acts))], DefaultErrnoRet: errno()}
	all := []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}
	for _, a := range all {
		if r.Intn(2) == 0 {
			sc.Architectures = append(sc.Architectures, a)
		}
	}
	actOf := map[string]specs.LinuxSeccompAction{}
	for i := r.Intn(12); i >= 0; i-- {
		s := specs.LinuxSyscall{Action: acts[r.Intn(len(acts))], ErrnoRet: errno()}
		for j := 1 + r.Intn(3); j > 0; j-- {
			n := names[r.Intn(len(names))]
			if a, ok := actOf[n]; ok && a != s.Action {
				continue
			}
			actOf[n] = s.Action
			s.Names = append(s.Names, n)
		}
		if len(s.Names) == 0 {
			continue
		}
		used := map[uint]bool{}
		for j := r.Intn(3); j > 0; j-- {
			idx := uint(r.Intn(6))
			if used[idx] && r.Intn(2) == 0 {
				continue
			}
			used[idx] = true
			s.Args = append(s.Args, specs.LinuxSeccompArg{Index: idx, Op: opsList[r.Intn(len(opsList))],
				Value: values[r.Intn(len(values))], ValueTwo: values[r.Intn(len(values))]})
		}
		sc.Syscalls = append(sc.Syscalls, s)
	}
	// One errno per action and call, as libseccomp sees it.
	for i := range sc.Syscalls {
		sc.Syscalls[i].ErrnoRet = sc.DefaultErrnoRet
	}
	return sc
}

func TestCompilerRandomProfiles(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	bugs := 0
	defer func() { t.Logf("verdicts where libseccomp 2.5 departs from the model (and brig): %d", bugs) }()
	for i := 0; i < 150; i++ {
		sc := randomProfile(r)
		if _, _, err := compileLibseccomp(sc, ""); err != nil {
			continue // libseccomp refuses some combinations (e.g. a rule with the default's action and arguments)
		}
		if !t.Run("", func(t *testing.T) { sameVerdicts(t, sc, "", &bugs) }) {
			raw, _ := json.Marshal(sc)
			t.Logf("profile: %s", raw)
			return
		}
	}
}

// TestLibseccompMergeBug pins the libseccomp bug the model stands in for:
// two rules of one call with the same action, one comparing a 64-bit
// value, lose a match when libseccomp merges them; brig keeps it.
func TestLibseccompMergeBug(t *testing.T) {
	a := specs.LinuxSyscall{Names: []string{"accept"}, Action: specs.ActKillProcess, Args: []specs.LinuxSeccompArg{
		{Index: 1, Value: 0x7fffffff, Op: specs.OpEqualTo}, {Index: 0, Value: 0x100000000, Op: specs.OpLessThan}}}
	b := specs.LinuxSyscall{Names: []string{"accept"}, Action: specs.ActKillProcess, Args: []specs.LinuxSeccompArg{
		{Index: 0, Value: 21522, Op: specs.OpLessThan}}}
	sc := &specs.LinuxSeccomp{DefaultAction: specs.ActTrap, Syscalls: []specs.LinuxSyscall{a, b}}
	p, _, err := Compile(sc)
	if err != nil {
		t.Fatal(err)
	}
	args := [6]uint64{0xffffffff, 0x7fffffff} // the first rule holds
	v, _ := p.Verdict(AuditArchX86_64, 43, args)
	if v != unix.SECCOMP_RET_KILL_PROCESS {
		t.Errorf("brig: %s, want kill process", ActionName(v))
	}
	lib, _, err := compileLibseccomp(sc, "")
	if err != nil {
		t.Fatal(err)
	}
	v, _ = (&Program{Insns: lib}).Verdict(AuditArchX86_64, 43, args)
	t.Logf("libseccomp: %s", ActionName(v))
}

// FuzzParseCompile: any profile text is refused with an error or
// compiled; a compiled one gives the model's verdict for every call it
// names (and its neighbours), on each architecture, at each argument edge.
func FuzzParseCompile(f *testing.F) {
	r := rand.New(rand.NewSource(2))
	for i := 0; i < 20; i++ {
		raw, _ := json.Marshal(randomProfile(r))
		f.Add(raw)
	}
	raw, _ := json.Marshal(DefaultProfile(dockerCaps, "amd64", true))
	f.Add(raw)
	f.Fuzz(func(t *testing.T, data []byte) {
		sc, err := Parse(data, dockerCaps)
		if err != nil {
			return
		}
		if len(sc.Syscalls) > 64 {
			return // keep each run short
		}
		p, _, err := Compile(sc)
		if err != nil {
			return
		}
		if !ownArches(sc) {
			return
		}
		vectors := argVectors(sc)
		if len(vectors) > 200 {
			vectors = vectors[:200]
		}
		for _, a := range probeArches {
			nrs := map[uint32]bool{0xffffffff: true, x32Bit: true, x32Bit - 1: true}
			argNrs := map[uint32]bool{}
			for _, s := range sc.Syscalls {
				for _, n := range s.Names {
					ab, _ := abiOf(specArch(a.name))
					for _, fm := range memoNumbers(ab, n) {
						nr := fm.nr | uint32(a.bit)
						nrs[nr-1], nrs[nr], nrs[nr+1] = true, true, true
						if len(s.Args) > 0 || fm.sub >= 0 {
							argNrs[nr] = true
						}
					}
				}
			}
			for nr := range nrs {
				for i, v := range vectors {
					if i > 1 && len(sc.Syscalls) > 16 && !argNrs[nr] {
						break
					}
					got, err := p.Verdict(a.audit, int32(nr), v)
					if err != nil {
						t.Fatal(err)
					}
					if want := model(sc, "", a.audit, nr, v); got != want {
						t.Fatalf("arch %#x nr %#x args %#x: model %s, brig %s", a.audit, nr, v, ActionName(want), ActionName(got))
					}
				}
			}
		}
	})
}
