package seccomp

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// brig's own seccomp compiler: from a profile to classic BPF, for the
// architectures a 64-bit x86 or Arm kernel can run (x86_64, x86, x32;
// aarch64, arm). libseccomp stays for two things: the syscall tables
// (names to numbers on every architecture, kept upstream) and the
// profiles that name an architecture outside these five, which it
// compiles as before.
//
// The program, per architecture:
//
//	ld arch; jeq native → its section, else the next check … ret KILL
//	section: ld nr; a balanced binary search over ranges of numbers with
//	one verdict each (runs of calls with the same plain action merged, calls
//	newer than the profile one ENOSYS range), each leaf a return or, for a
//	call with argument rules, those checks and then a return.
//
// A call whose verdict is a constant of its number never loads an
// argument, so the kernel's allow-cache skips the filter for it. Returns
// are shared within reach of a jump (see asm.go).
//
// Semantics, the same as libseccomp's where libseccomp defines them:
//   - a rule's checks all hold (AND); a rule that checks one argument twice
//     means either check (OR), as runc reads Docker's personality rule;
//   - for one call, rules with argument checks are tried first, in profile
//     order, and the first that matches decides; then the first rule
//     without checks; then the default. So "allow ioctl, but not TIOCSTI"
//     can be written (libseccomp lets an unconditional rule override the
//     conditional ones of another action);
//   - a rule without checks whose action is the default is left out;
//   - on x86 a socket or SysV IPC call matches both its direct number and
//     socketcall/ipc with the sub-call in argument 0, where its own
//     arguments can't be read: that form is matched without their checks
//     but argument 0's (as libseccomp does);
//   - 32-bit ABIs (x86, x32, arm) compare the low 32 bits of arguments only;
//   - calls numbered above the highest one the profile names for an
//     architecture (x86_64, x86, aarch64, arm) return ENOSYS when the
//     default doesn't allow, so libc falls back to an older call;
//   - x86_64 numbers with bit 30 set are x32 calls (killed when x32 isn't
//     in the profile); -1 is left to the default (a tracer's skipped call).

// abi is one architecture the compiler emits a section for.
type abi struct {
	spec   specs.Arch
	lib    libseccomp.ScmpArch
	audit  uint32
	bits32 bool
	x32    bool
}

var abis = []abi{
	{specs.ArchX86_64, libseccomp.ArchAMD64, AuditArchX86_64, false, false},
	{specs.ArchX32, libseccomp.ArchX32, AuditArchX86_64, true, true},
	{specs.ArchX86, libseccomp.ArchX86, AuditArchI386, true, false},
	{specs.ArchAARCH64, libseccomp.ArchARM64, AuditArchAArch64, false, false},
	{specs.ArchARM, libseccomp.ArchARM, AuditArchARM, true, false},
}

func abiOf(a specs.Arch) (abi, bool) {
	for _, x := range abis {
		if x.spec == a {
			return x, true
		}
	}
	return abi{}, false
}

const (
	x32Bit    = 0x40000000
	retKill   = unix.SECCOMP_RET_KILL_THREAD
	retENOSYS = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
)

// cond is one argument check.
type cond struct {
	arg   uint
	op    specs.LinuxSeccompOperator
	v, v2 uint64
}

// rule: when every check holds (none: always), return act.
type rule struct {
	act   uint32
	conds []cond
}

// retValue is the filter's return value for an OCI action.
func retValue(a specs.LinuxSeccompAction, errnoRet *uint) (uint32, error) {
	data := uint32(unix.EPERM)
	if errnoRet != nil {
		data = uint32(uint16(int16(*errnoRet)))
	}
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD, nil
	case specs.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS, nil
	case specs.ActTrap:
		return unix.SECCOMP_RET_TRAP, nil
	case specs.ActErrno:
		return unix.SECCOMP_RET_ERRNO | data, nil
	case specs.ActTrace:
		return unix.SECCOMP_RET_TRACE | data, nil
	case specs.ActAllow:
		return unix.SECCOMP_RET_ALLOW, nil
	case specs.ActLog:
		return unix.SECCOMP_RET_LOG, nil
	case specs.ActNotify:
		return unix.SECCOMP_RET_USER_NOTIF, nil
	}
	return 0, fmt.Errorf("unknown action %q", a)
}

// ruleSet is a profile resolved for compiling: per architecture, the
// rules of each call number in the order they are tried.
type ruleSet struct {
	def    uint32
	enosys bool // calls newer than the profile get ENOSYS
	arches []abi
	calls  map[specs.Arch]map[uint32][]rule
	max    map[specs.Arch]int64 // highest number the profile names; -1: none
}

// ownArches reports whether brig's compiler covers every architecture the
// filter has: the native one and those listed.
func ownArches(sc *specs.LinuxSeccomp) bool {
	native, err := libseccomp.GetNativeArch()
	if err != nil {
		return false
	}
	found := false
	for _, a := range abis {
		found = found || a.lib == native
	}
	if !found {
		return false
	}
	for _, a := range sc.Architectures {
		if _, ok := abiOf(a); !ok {
			return false
		}
	}
	return true
}

// resolve checks the profile and turns it into a ruleSet for the native
// architecture (unless only is set) and the listed ones.
func resolve(sc *specs.LinuxSeccomp, only specs.Arch) (*ruleSet, Warnings, error) {
	def, err := retValue(sc.DefaultAction, sc.DefaultErrnoRet)
	if err != nil {
		return nil, nil, fmt.Errorf("linux.seccomp.defaultAction: %w", err)
	}
	rs := &ruleSet{def: def, calls: map[specs.Arch]map[uint32][]rule{}, max: map[specs.Arch]int64{}}
	switch sc.DefaultAction {
	case specs.ActAllow, specs.ActLog:
	default:
		rs.enosys = true
	}
	add := func(a abi) {
		for _, x := range rs.arches {
			if x.spec == a.spec {
				return
			}
		}
		rs.arches = append(rs.arches, a)
		rs.calls[a.spec] = map[uint32][]rule{}
		rs.max[a.spec] = -1
	}
	if only == "" {
		native, err := libseccomp.GetNativeArch()
		if err != nil {
			return nil, nil, fmt.Errorf("seccomp: native architecture: %w", err)
		}
		for _, a := range abis {
			if a.lib == native {
				add(a)
			}
		}
	}
	for i, name := range sc.Architectures {
		a, ok := abiOf(name)
		if !ok {
			return nil, nil, fmt.Errorf("linux.seccomp.architectures[%d]: unknown %q", i, name)
		}
		if only == "" || name == only {
			add(a)
		}
	}
	if only != "" && len(rs.arches) == 0 {
		a, ok := abiOf(only)
		if !ok {
			return nil, nil, fmt.Errorf("unknown architecture %q", only)
		}
		add(a)
	}

	// Conditional rules are kept in profile order; the unconditional
	// ones go after them (see the package comment).
	uncond := map[specs.Arch]map[uint32]rule{}
	for _, a := range rs.arches {
		uncond[a.spec] = map[uint32]rule{}
	}
	var warn Warnings
	for i, sys := range sc.Syscalls {
		act, err := retValue(sys.Action, sys.ErrnoRet)
		if err != nil {
			return nil, nil, fmt.Errorf("linux.seccomp.syscalls[%d].action: %w", i, err)
		}
		conds := make([]cond, len(sys.Args))
		perArg := map[uint]int{}
		for j, a := range sys.Args {
			if _, ok := ops[a.Op]; !ok {
				return nil, nil, fmt.Errorf("linux.seccomp.syscalls[%d].args[%d].op: unknown %q", i, j, a.Op)
			}
			if a.Index > 5 {
				return nil, nil, fmt.Errorf("linux.seccomp.syscalls[%d].args[%d].index: %d is over 5", i, j, a.Index)
			}
			perArg[a.Index]++
			conds[j] = cond{arg: a.Index, op: a.Op, v: a.Value, v2: a.ValueTwo}
		}
		// One rule, or one per check when an argument is checked twice.
		var rules []rule
		switch {
		case len(conds) == 0:
			if act != def { // else no rule, but its names still count for ENOSYS
				rules = []rule{{act: act}}
			}
		case sameArgTwice(perArg):
			for _, c := range conds {
				rules = append(rules, rule{act: act, conds: []cond{c}})
			}
		default:
			rules = []rule{{act: act, conds: conds}}
		}
		for _, name := range sys.Names {
			known := false
			for _, a := range rs.arches {
				forms := numbers(a, name)
				known = known || len(forms) > 0
				for _, f := range forms {
					if int64(f.nr) > rs.max[a.spec] && !a.x32 {
						rs.max[a.spec] = int64(f.nr)
					}
					nr := f.nr
					if a.x32 {
						nr |= x32Bit
					}
					for _, r := range rules {
						if f.sub >= 0 {
							// socketcall/ipc: argument 0 is the sub-call;
							// the rule's other checks stay, on arguments
							// that are now socketcall's (libseccomp does
							// the same).
							c := []cond{{arg: 0, op: specs.OpEqualTo, v: uint64(f.sub)}}
							for _, x := range r.conds {
								if x.arg != 0 {
									c = append(c, x)
								}
							}
							r = rule{act: r.act, conds: c}
						}
						if len(r.conds) == 0 {
							if _, dup := uncond[a.spec][nr]; !dup {
								uncond[a.spec][nr] = r
							}
							continue
						}
						rs.calls[a.spec][nr] = append(rs.calls[a.spec][nr], r)
					}
				}
			}
			if !known && !knownNative(name) {
				warn = append(warn, fmt.Sprintf("linux.seccomp.syscalls[%d]: %q, unknown to this libseccomp, skipped", i, name))
			}
		}
	}
	for a, m := range uncond {
		for nr, r := range m {
			rs.calls[a][nr] = append(rs.calls[a][nr], r)
		}
	}
	return rs, warn, nil
}

func knownNative(name string) bool {
	_, err := libseccomp.GetSyscallFromName(name)
	return err == nil
}

// form is one number a call name has on an architecture: its own, or
// (x86) socketcall/ipc with the sub-call in argument 0 (sub ≥ 0).
type form struct {
	nr  uint32
	sub int
}

const (
	nrSocketcallX86 = 102
	nrIPCX86        = 117
)

var (
	directOnce sync.Once
	directX86  map[string]uint32 // direct numbers of x86's multiplexed calls
)

// numbers are the forms of a call on an architecture; none when it has no
// such call.
func numbers(a abi, name string) []form {
	nr, err := libseccomp.GetSyscallFromNameByArch(name, a.lib)
	if err != nil {
		return nil
	}
	if int(nr) >= 0 {
		return []form{{nr: uint32(nr), sub: -1}}
	}
	if a.lib != libseccomp.ArchX86 {
		return nil
	}
	// libseccomp's pseudo numbers: -101… socket calls, -201… IPC calls.
	var out []form
	switch n := -int(nr); {
	case n > 100 && n < 200:
		out = append(out, form{nr: nrSocketcallX86, sub: n - 100})
	case n > 200 && n < 300:
		out = append(out, form{nr: nrIPCX86, sub: n - 200})
	default:
		return nil
	}
	directOnce.Do(func() {
		directX86 = map[string]uint32{}
		for nr := 0; nr < 1024; nr++ {
			if s, err := libseccomp.ScmpSyscall(nr).GetNameByArch(libseccomp.ArchX86); err == nil {
				directX86[s] = uint32(nr)
			}
		}
	})
	if d, ok := directX86[name]; ok {
		out = append(out, form{nr: d, sub: -1})
	}
	return out
}

// span is a range of call numbers with one verdict.
type span struct {
	lo, hi uint32
	rules  []rule // nil: ret
	ret    uint32
	bits32 bool // the rules are a 32-bit ABI's
}

func (s span) key() string {
	if s.rules == nil {
		return fmt.Sprintf("r%x", s.ret)
	}
	var b strings.Builder
	for _, r := range s.rules {
		fmt.Fprintf(&b, "%x:%v;", r.act, r.conds)
	}
	fmt.Fprint(&b, s.bits32)
	return b.String()
}

// spans cuts the 32-bit number space of one audit architecture into
// ranges with one verdict each.
func (rs *ruleSet) spans(audit uint32) []span {
	var pts []span // single numbers with rules, sorted later
	var main, x32 *abi
	for i := range rs.arches {
		a := &rs.arches[i]
		if a.audit != audit {
			continue
		}
		if a.x32 {
			x32 = a
		} else {
			main = a
		}
		for nr, rules := range rs.calls[a.spec] {
			s := span{lo: nr, hi: nr, bits32: a.bits32}
			if len(rules) == 1 && len(rules[0].conds) == 0 {
				s.ret = rules[0].act
			} else {
				s.rules = rules
			}
			pts = append(pts, s)
		}
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].lo < pts[j].lo })
	// The background, which the named calls are laid over.
	var bg []span
	top := uint32(0xffffffff)
	if audit == AuditArchX86_64 {
		top = x32Bit - 1
	}
	switch m := int64(-1); {
	case main == nil:
		bg = append(bg, span{lo: 0, hi: top, ret: retKill})
	case rs.enosys && rs.max[main.spec] >= 0 && rs.max[main.spec] < int64(top):
		m = rs.max[main.spec]
		bg = append(bg, span{lo: 0, hi: uint32(m), ret: rs.def}, span{lo: uint32(m) + 1, hi: top, ret: retENOSYS})
	default:
		bg = append(bg, span{lo: 0, hi: top, ret: rs.def})
	}
	if audit == AuditArchX86_64 {
		x32Ret := uint32(retKill)
		if x32 != nil {
			x32Ret = rs.def
		}
		bg = append(bg, span{lo: x32Bit, hi: 0xfffffffe, ret: x32Ret}, span{lo: 0xffffffff, hi: 0xffffffff, ret: rs.def})
	}
	// Lay the points over the background.
	var out []span
	emit := func(s span) {
		if n := len(out); n > 0 && out[n-1].hi+1 == s.lo && out[n-1].key() == s.key() {
			out[n-1].hi = s.hi
			return
		}
		out = append(out, s)
	}
	p := 0
	for _, b := range bg {
		cur := uint64(b.lo)
		for p < len(pts) && uint64(pts[p].lo) <= uint64(b.hi) {
			if uint64(pts[p].lo) > cur {
				emit(span{lo: uint32(cur), hi: pts[p].lo - 1, ret: b.ret})
			}
			emit(pts[p])
			cur = uint64(pts[p].lo) + 1
			p++
		}
		if cur <= uint64(b.hi) {
			emit(span{lo: uint32(cur), hi: b.hi, ret: b.ret})
		}
	}
	return out
}

// compileOwn compiles a profile with brig's compiler.
func compileOwn(sc *specs.LinuxSeccomp, only specs.Arch) ([]unix.SockFilter, Warnings, error) {
	rs, warn, err := resolve(sc, only)
	if err != nil {
		return nil, nil, err
	}
	insns, err := rs.program()
	if err != nil {
		return nil, nil, err
	}
	return insns, warn, nil
}

// program emits the filter.
func (rs *ruleSet) program() ([]unix.SockFilter, error) {
	a := &asm{}
	var audits []uint32
	for _, x := range rs.arches {
		found := false
		for _, au := range audits {
			found = found || au == x.audit
		}
		if !found {
			audits = append(audits, x.audit)
		}
	}
	a.ld(4)
	for _, audit := range audits {
		sec, next := a.newLabel(), a.newLabel()
		a.jmp(unix.BPF_JEQ, audit, sec, next)
		a.bind(sec)
		g := &gen{a: a, def: rs.def}
		a.ld(0)
		g.section(rs.spans(audit))
		a.bind(next) // A still holds the architecture
	}
	a.ret(retKill)
	return a.assemble()
}

// gen emits one section's tree, its leaves and pools of returns. A
// subtree small enough for its jumps to reach past it gets its own pool
// right after it; the section's pool is the last.
type gen struct {
	a      *asm
	bits32 bool // the leaf being emitted is a 32-bit ABI's
	def    uint32
	pools  []*pool
}

type pool struct {
	at    map[uint32]*label
	order []uint32
}

func (g *gen) push() { g.pools = append(g.pools, &pool{at: map[uint32]*label{}}) }

// retTo is a label of a return of v in the innermost pool.
func (g *gen) retTo(v uint32) *label {
	p := g.pools[len(g.pools)-1]
	if l, ok := p.at[v]; ok {
		return l
	}
	l := g.a.newLabel()
	p.at[v] = l
	p.order = append(p.order, v)
	return l
}

// pop emits the innermost pool's returns.
func (g *gen) pop() {
	p := g.pools[len(g.pools)-1]
	g.pools = g.pools[:len(g.pools)-1]
	for _, v := range p.order {
		g.a.bind(p.at[v])
		g.a.ret(v)
	}
}

// size estimates a subtree's instructions, for placing pools.
func size(spans []span) int {
	n := len(spans) - 1
	for _, s := range spans {
		for _, r := range s.rules {
			n += 1 + 5*len(r.conds)
		}
	}
	return n
}

// section emits the search for one architecture; A holds the number.
func (g *gen) section(spans []span) {
	g.push()
	g.node(spans, nil)
	g.pop()
}

// node emits the search over spans. entry, when set, names its first
// instruction; a leaf that is a plain return emits nothing and makes entry
// name a return in the pool.
func (g *gen) node(spans []span, entry *label) {
	if len(spans) == 1 {
		s := spans[0]
		switch {
		case s.rules != nil:
			if entry != nil {
				g.a.bind(entry)
			}
			g.leaf(s)
		case entry != nil:
			entry.same = g.retTo(s.ret)
		default:
			g.a.ret(s.ret)
		}
		return
	}
	own := len(g.pools) == 1 && size(spans) < 200
	if own {
		g.push()
	}
	if entry != nil {
		g.a.bind(entry)
	}
	mid := len(spans) / 2
	left, right := g.a.newLabel(), g.a.newLabel()
	g.a.jmp(unix.BPF_JGE, spans[mid].lo, right, left)
	g.node(spans[:mid], left)
	g.node(spans[mid:], right)
	if own {
		g.pop()
	}
}

// leaf emits a call's rules: each rule's checks, the first that all hold
// returning its action; then the call's fallback (the last rule, without
// checks, or the default). A run of rules with one action that each
// compare one argument with a constant (a set of values or ranges:
// socket families, personality values, ioctl requests) is one search.
func (g *gen) leaf(s span) {
	g.bits32 = s.bits32
	rules := s.rules
	fallback := g.def
	if n := len(rules); n > 0 && len(rules[n-1].conds) == 0 {
		fallback, rules = rules[n-1].act, rules[:n-1]
	}
	for i := 0; i < len(rules); {
		r := rules[i]
		fail := g.a.newLabel()
		if i == len(rules)-1 {
			fail.same = g.retTo(fallback)
		}
		// The longest run from i that is one set of ranges.
		j, hi, ivs := i, uint32(0), []interval(nil)
		for k := i; k < len(rules); k++ {
			iv, ok := g.interval(rules[k], r)
			if !ok {
				break
			}
			nivs := union(ivs, iv)
			h, ok := oneHigh(nivs, g.bits32)
			if !ok {
				break
			}
			j, hi, ivs = k+1, h, nivs
		}
		if j-i >= 2 {
			if j == len(rules) {
				fail.same = g.retTo(fallback)
			}
			g.set(r.conds[0].arg, hi, ivs, g.retTo(r.act), fail)
			if fail.same == nil {
				g.a.bind(fail)
			}
			i = j
			continue
		}
		for k, c := range r.conds {
			pass := g.a.newLabel()
			if k == len(r.conds)-1 {
				pass = g.retTo(r.act)
			}
			g.check(c, pass, fail)
			if k < len(r.conds)-1 {
				g.a.bind(pass)
			}
		}
		if fail.same == nil {
			g.a.bind(fail)
		}
		i++
	}
	if len(rules) == 0 {
		g.a.ret(fallback)
	}
}

// interval is a closed range of argument values.
type interval struct{ lo, hi uint64 }

// interval is the values for which rule r holds, when r is one ordinary
// comparison of the same argument, with the same action, as rule like.
func (g *gen) interval(r, like rule) ([]interval, bool) {
	if len(r.conds) != 1 || r.act != like.act || r.conds[0].arg != like.conds[0].arg {
		return nil, false
	}
	c := r.conds[0]
	v, top := c.v, ^uint64(0)
	if g.bits32 {
		v, top = uint64(uint32(v)), 0xffffffff
	}
	switch c.op {
	case specs.OpEqualTo:
		return []interval{{v, v}}, true
	case specs.OpLessThan:
		if v == 0 {
			return nil, true
		}
		return []interval{{0, v - 1}}, true
	case specs.OpLessEqual:
		return []interval{{0, v}}, true
	case specs.OpGreaterThan:
		if v == top {
			return nil, true
		}
		return []interval{{v + 1, top}}, true
	case specs.OpGreaterEqual:
		return []interval{{v, top}}, true
	}
	return nil, false
}

// union merges ranges, sorted.
func union(a, b []interval) []interval {
	all := append(append([]interval(nil), a...), b...)
	sort.Slice(all, func(i, j int) bool { return all[i].lo < all[j].lo })
	var out []interval
	for _, x := range all {
		if n := len(out); n > 0 && (x.lo <= out[n-1].hi || out[n-1].hi != ^uint64(0) && x.lo == out[n-1].hi+1) {
			if x.hi > out[n-1].hi {
				out[n-1].hi = x.hi
			}
			continue
		}
		out = append(out, x)
	}
	return out
}

// oneHigh: every range lies within one value of the high 32 bits.
func oneHigh(ivs []interval, bits32 bool) (uint32, bool) {
	if bits32 || len(ivs) == 0 {
		return 0, true
	}
	h := uint32(ivs[0].lo >> 32)
	for _, x := range ivs {
		if uint32(x.lo>>32) != h || uint32(x.hi>>32) != h {
			return 0, false
		}
	}
	return h, true
}

// set emits: argument arg is in one of the ranges (all with high word hi).
func (g *gen) set(arg uint, hi uint32, ivs []interval, pass, fail *label) {
	a := g.a
	if len(ivs) == 0 {
		a.ja(fail)
		return
	}
	if !g.bits32 {
		a.ld(argHi(arg))
		lo := a.newLabel()
		a.jmp(unix.BPF_JEQ, hi, lo, fail)
		a.bind(lo)
	}
	a.ld(argLo(arg))
	for i, x := range ivs {
		next := fail
		if i < len(ivs)-1 {
			next = a.newLabel()
		}
		lo, top := uint32(x.lo), uint32(x.hi)
		switch {
		case lo == top:
			a.jmp(unix.BPF_JEQ, lo, pass, next)
		case lo == 0:
			a.jmp(unix.BPF_JGT, top, next, pass)
		default:
			// Sorted: below lo is below every later range too.
			in := a.newLabel()
			a.jmp(unix.BPF_JGT, top, next, in)
			a.bind(in)
			a.jmp(unix.BPF_JGE, lo, pass, fail)
		}
		if i < len(ivs)-1 {
			a.bind(next)
		}
	}
}

// argument word offsets in struct seccomp_data (little-endian).
func argLo(i uint) uint32 { return 16 + 8*uint32(i) }
func argHi(i uint) uint32 { return 20 + 8*uint32(i) }

// check emits one argument check: pass or fail.
func (g *gen) check(c cond, pass, fail *label) {
	a := g.a
	v, v2 := c.v, c.v2
	if g.bits32 {
		v, v2 = uint64(uint32(v)), uint64(uint32(v2))
	}
	switch c.op {
	case specs.OpNotEqual:
		g.check(cond{arg: c.arg, op: specs.OpEqualTo, v: c.v}, fail, pass)
	case specs.OpLessThan:
		g.check(cond{arg: c.arg, op: specs.OpGreaterEqual, v: c.v}, fail, pass)
	case specs.OpLessEqual:
		g.check(cond{arg: c.arg, op: specs.OpGreaterThan, v: c.v}, fail, pass)
	case specs.OpEqualTo:
		if !g.bits32 {
			a.ld(argHi(c.arg))
			lo := a.newLabel()
			a.jmp(unix.BPF_JEQ, uint32(v>>32), lo, fail)
			a.bind(lo)
		}
		a.ld(argLo(c.arg))
		a.jmp(unix.BPF_JEQ, uint32(v), pass, fail)
	case specs.OpMaskedEqual:
		v2 &= v                      // bits outside the mask are not compared (as libseccomp)
		if !g.bits32 && v>>32 != 0 { // a zero mask always matches
			a.ld(argHi(c.arg))
			if uint32(v>>32) != 0xffffffff {
				a.and(uint32(v >> 32))
			}
			lo := a.newLabel()
			a.jmp(unix.BPF_JEQ, uint32(v2>>32), lo, fail)
			a.bind(lo)
		}
		a.ld(argLo(c.arg))
		if uint32(v) != 0xffffffff {
			a.and(uint32(v))
		}
		a.jmp(unix.BPF_JEQ, uint32(v2), pass, fail)
	case specs.OpGreaterThan, specs.OpGreaterEqual:
		op := uint16(unix.BPF_JGT)
		if c.op == specs.OpGreaterEqual {
			op = unix.BPF_JGE
		}
		if !g.bits32 {
			a.ld(argHi(c.arg))
			eq, lo := a.newLabel(), a.newLabel()
			a.jmp(unix.BPF_JGT, uint32(v>>32), pass, eq)
			a.bind(eq)
			a.jmp(unix.BPF_JEQ, uint32(v>>32), lo, fail)
			a.bind(lo)
		}
		a.ld(argLo(c.arg))
		a.jmp(op, uint32(v), pass, fail)
	}
}
