package seccomp

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// A small classic-BPF assembler for the compiler: instructions jump to
// labels, and layout is settled at the end. Classic BPF jumps only forward,
// and a conditional jump reaches at most 255 instructions; a branch that
// lands farther gets a copy of its target right after the jump when the
// target is a return (one instruction, and one fewer to run), or an
// unconditional jump (32-bit reach) otherwise.

type label struct {
	at   *node  // the instruction the label names, once bound
	same *label // or: the same place as this one
}

func (l *label) target() *node {
	for l.same != nil {
		l = l.same
	}
	return l.at
}

type node struct {
	code   uint16
	k      uint32
	jt, jf *label // conditional jumps; jt alone for BPF_JA
}

type asm struct {
	prog    []*node
	pending []*label
}

func (a *asm) newLabel() *label { return &label{} }

// bind names the next instruction emitted.
func (a *asm) bind(l *label) { a.pending = append(a.pending, l) }

func (a *asm) emit(n *node) *node {
	for _, l := range a.pending {
		l.at = n
	}
	a.pending = a.pending[:0]
	a.prog = append(a.prog, n)
	return n
}

func (a *asm) ld(off uint32) {
	a.emit(&node{code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, k: off})
}

func (a *asm) and(k uint32) {
	a.emit(&node{code: unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, k: k})
}

// jmp is a conditional jump: op is BPF_JEQ, BPF_JGT, BPF_JGE or BPF_JSET.
func (a *asm) jmp(op uint16, k uint32, jt, jf *label) {
	a.emit(&node{code: unix.BPF_JMP | op | unix.BPF_K, k: k, jt: jt, jf: jf})
}

func (a *asm) ja(to *label) {
	a.emit(&node{code: unix.BPF_JMP | unix.BPF_JA, jt: to})
}

func (a *asm) ret(v uint32) {
	a.emit(&node{code: unix.BPF_RET | unix.BPF_K, k: v})
}

func isRet(n *node) bool { return n.code == unix.BPF_RET|unix.BPF_K }

// assemble lays the program out, fixing branches that can't reach.
func (a *asm) assemble() ([]unix.SockFilter, error) {
	if len(a.pending) > 0 {
		return nil, fmt.Errorf("seccomp: compiler bug: label bound past the end of the program")
	}
	for round := 0; ; round++ {
		// Layout only adds instructions: a program already too long is
		// refused now, not after fixing every far jump of it (seconds
		// for a profile of thousands of rules).
		if len(a.prog) > 4096 {
			return nil, fmt.Errorf("seccomp: program of %d instructions is over the kernel's 4096", len(a.prog))
		}
		if round > 8192 {
			return nil, fmt.Errorf("seccomp: compiler bug: layout does not settle")
		}
		pos := make(map[*node]int, len(a.prog))
		for i, n := range a.prog {
			pos[n] = i
		}
		fixed := false
		for i := 0; i < len(a.prog) && !fixed; i++ {
			n := a.prog[i]
			if n.code&0x07 != unix.BPF_JMP || n.code == unix.BPF_JMP|unix.BPF_JA {
				continue
			}
			for _, br := range []**label{&n.jt, &n.jf} {
				if (*br).target() == nil {
					return nil, fmt.Errorf("seccomp: compiler bug: jump to an unbound label")
				}
				d := pos[(*br).target()] - i - 1
				if d < 0 {
					return nil, fmt.Errorf("seccomp: compiler bug: backward jump")
				}
				if d <= 255 {
					continue
				}
				// Out of reach: put a stand-in right after the jump.
				var stand *node
				if t := (*br).target(); isRet(t) {
					stand = &node{code: t.code, k: t.k}
				} else {
					stand = &node{code: unix.BPF_JMP | unix.BPF_JA, jt: *br}
				}
				a.prog = append(a.prog[:i+1], append([]*node{stand}, a.prog[i+1:]...)...)
				*br = &label{at: stand}
				fixed = true
				break
			}
		}
		if !fixed {
			break
		}
	}
	if len(a.prog) > 4096 {
		return nil, fmt.Errorf("seccomp: program of %d instructions is over the kernel's 4096", len(a.prog))
	}
	pos := make(map[*node]int, len(a.prog))
	for i, n := range a.prog {
		pos[n] = i
	}
	out := make([]unix.SockFilter, len(a.prog))
	for i, n := range a.prog {
		f := unix.SockFilter{Code: n.code, K: n.k}
		switch {
		case n.code == unix.BPF_JMP|unix.BPF_JA:
			f.K = uint32(pos[n.jt.target()] - i - 1)
		case n.code&0x07 == unix.BPF_JMP:
			f.Jt = uint8(pos[n.jt.target()] - i - 1)
			f.Jf = uint8(pos[n.jf.target()] - i - 1)
		}
		out[i] = f
	}
	return out, nil
}
