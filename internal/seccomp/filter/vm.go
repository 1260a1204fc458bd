package filter

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Audit architecture numbers (linux/audit.h) of the arches brig compiles for.
const (
	AuditArchX86_64  = 0xc000003e
	AuditArchI386    = 0x40000003
	AuditArchAArch64 = 0xc00000b7
	AuditArchARM     = 0x40000028
)

// Verdict runs the compiled program on a synthetic seccomp_data, the way
// the kernel would for a call nr with args on arch, and returns the
// filter's return value (SECCOMP_RET_* | data). It uses the classic BPF
// interpreter of golang.org/x/net/bpf; that one loads words big-endian, so
// each 32-bit field is laid out big-endian to read back as the kernel's
// native value.
func (p *Program) Verdict(arch uint32, nr int32, args [6]uint64) (uint32, error) {
	e, err := p.Evaluator()
	if err != nil {
		return 0, err
	}
	return e.Verdict(arch, nr, args)
}

// Evaluator runs one program on many calls: the program is checked and
// prepared once (a seccomp listener asks it for every notification).
type Evaluator struct{ vm *bpf.VM }

// Evaluator prepares p for Verdict.
func (p *Program) Evaluator() (*Evaluator, error) {
	raw := make([]bpf.RawInstruction, len(p.Insns))
	for i, in := range p.Insns {
		raw[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		return nil, fmt.Errorf("seccomp: program has instructions the interpreter does not know")
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	return &Evaluator{vm: vm}, nil
}

// Verdict is the program's return value for a call nr with args on arch
// (an audit architecture number), as the kernel would compute it.
func (e *Evaluator) Verdict(arch uint32, nr int32, args [6]uint64) (uint32, error) {
	vm := e.vm
	var data [64]byte
	binary.BigEndian.PutUint32(data[0:], uint32(nr))
	binary.BigEndian.PutUint32(data[4:], arch)
	for i, a := range args {
		binary.BigEndian.PutUint32(data[16+8*i:], uint32(a))
		binary.BigEndian.PutUint32(data[20+8*i:], uint32(a>>32))
	}
	v, err := vm.Run(data[:])
	if err != nil {
		return 0, fmt.Errorf("seccomp: run filter: %w", err)
	}
	return uint32(v), nil
}

// ActionName names a filter return value: "allow", "errno 1", "kill"...
func ActionName(v uint32) string {
	data := v & unix.SECCOMP_RET_DATA
	switch v & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_KILL_PROCESS:
		return "kill process"
	case unix.SECCOMP_RET_KILL_THREAD:
		return "kill thread"
	case unix.SECCOMP_RET_TRAP:
		return "trap"
	case unix.SECCOMP_RET_ERRNO:
		return fmt.Sprintf("errno %d (%s)", data, unix.ErrnoName(unix.Errno(data)))
	case unix.SECCOMP_RET_USER_NOTIF:
		return "notify"
	case unix.SECCOMP_RET_TRACE:
		return fmt.Sprintf("trace %d", data)
	case unix.SECCOMP_RET_LOG:
		return "log"
	case unix.SECCOMP_RET_ALLOW:
		return "allow"
	}
	return fmt.Sprintf("0x%08x", v)
}
